"""``fakeproof models list|prepare``: what weights fakeproof knows, which are present, where to get them."""
from __future__ import annotations

from typing import Optional

import typer

from .cli_errors import HandledGroup
from .cli_options import MODEL_HELP, chosen_model, encoder_alias_option
from .engine_options import EngineOptions, engine_options
from .engine.encoders import list_encoders
from .ui import console, rows_as_json, summary_table

app = typer.Typer(no_args_is_help=True, cls=HandledGroup)


def _extra_weight_rows(models_dir) -> list[list]:
    """Generator weights declared by the generate stage's backends (if that stage provides them)."""
    try:
        from .generate.registry import list_backend_weights
    except ImportError:
        return []
    rows = []
    for backend, w in list_backend_weights(models_dir):
        rows.append([f"generator:{backend}", "-", "-", "-", w.name, "yes" if w.present else "NO", w.licence, str(w.path) if w.path else "-", w.source])
    return rows


@app.command("list")
@engine_options(("models_dir",))
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="print a JSON list of objects (keys: the column names in snake_case)"),
    engine: EngineOptions = None,
):
    """Every registered encoder (and generator backend weight): input, normalisation, file, presence, licence, source.

    On a terminal a table (one block per model when the terminal is narrow); into a pipe one plain
    line per model, names never cut (``fakeproof models list | grep -w facenet``)."""
    models_dir = engine.models_dir
    rows = []
    for s in list_encoders(models_dir):
        ws = s.weights or ()
        present = all(w.present for w in ws) if ws else False
        files = ", ".join(str(w.path) if w.path else w.name for w in ws) or "-"
        rows.append(
            [s.name, f"{s.input_size[0]}x{s.input_size[1]}", s.color_order, s.normalisation, ", ".join(w.name for w in ws) or "-", "yes" if present else "NO", s.licence, files, s.source]
        )
    rows += _extra_weight_rows(models_dir)
    cols = ["name", "input", "colour", "normalisation", "weight file", "present", "licence", "expected at", "where to get it"]
    if as_json:
        print(rows_as_json(rows, cols))
        return
    console.print(summary_table("fakeproof models", rows, cols))
    console.print("Also: [bold]onnx:PATH[/] for any ArcFace-style ONNX recogniser (e.g. insightface w600k_r50.onnx).")


@app.command("prepare")
@engine_options(("model",), helps={"model": "the encoder to convert and cache now: " + MODEL_HELP})
def prepare_cmd(
    encoder: Optional[str] = encoder_alias_option(),
    engine: EngineOptions = None,
):
    """Convert and cache the shipped weights once (FaceNet graph or dlib .dat -> torch state dict), warm the detector."""
    from .engine import FaceEngine

    eng = FaceEngine.from_names(chosen_model(engine.model, encoder), device="cpu")
    spec = eng.spec
    import numpy as np

    eng.detect(np.zeros((64, 64, 3), np.uint8))
    console.print(f"[green]ready[/]: {spec.name} ({spec.input_size[0]}x{spec.input_size[1]}, dim {spec.embedding_dim}) and MTCNN")
