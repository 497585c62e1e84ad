"""Options that mean the same in every command: ``--model`` (one name for a model everywhere, read
by :func:`fakeproof.engine.resolve_model`) and its deprecated spelling ``--encoder``."""
from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console


# the forms fakeproof.engine.resolve_model reads
MODEL_HELP = "a registry name (facenet, adaface_ir101, onnx:PATH, ...; `fakeproof models list`), a `train run` folder or checkpoint, or a .onnx from `infer export-onnx`"

_err = Console(stderr=True)


def model_option(default: str = "facenet", help: str = MODEL_HELP):
    return typer.Option(default, "--model", "-m", help=help)


def encoder_alias_option():
    """``--encoder``: the old name of ``--model`` (hidden; still accepted, with a warning)."""
    return typer.Option(None, "--encoder", hidden=True, help="deprecated spelling of --model")


def chosen_model(model: str, encoder_alias: Optional[str]) -> str:
    if encoder_alias is None:
        return model
    _err.print("[yellow]--encoder is deprecated: use --model (same values)[/]", highlight=False)
    return encoder_alias
