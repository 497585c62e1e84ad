"""Writing ``train run`` checkpoints: encoder weights as safetensors + a JSON config, and the
training state for ``--resume`` (the run-folder layout: :mod:`fakeproof.engine.checkpoint_reader`).

Every checkpoint folder is written under a temporary name and renamed into place, and
``last.json`` is replaced atomically after it, so a kill at any moment leaves the previous
complete checkpoint in charge. Reading them back (``--model RUN_DIR``, ``--resume``) is
:mod:`fakeproof.engine.checkpoint_reader`."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..data import atomic_write_text, json_text
from ..data.atomic import named
from ..errors import FakeproofError
from ..engine import Encoder
from ..engine.checkpoint_reader import CONFIG, FORMAT, STATE, WEIGHTS
from ..faults import kill_point

KEEP_LAST = 2


def encoder_config(encoder: Encoder, encoder_name: str, base_weights: str | None, detector: str, margin: float) -> dict:
    """What a checkpoint's config says about the encoder (enough to rebuild it and feed it)."""
    s = encoder.spec
    return {
        "format": FORMAT,
        "encoder": encoder_name,
        "base_weights": base_weights,
        "input_size": list(s.input_size),
        "color_order": s.color_order,
        "normalisation": s.normalisation,
        "embedding_dim": s.embedding_dim,
        "align_margin": margin,
        "template": s.template,
        "detector": detector,
        "licence": s.licence,
    }


def _weights_dict(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share storage
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in encoder.state_dict().items()}


def _write_folder(final: Path, encoder: torch.nn.Module, config: dict, state: dict | None, same_weights_as: Path | None = None) -> Path:
    """Write the checkpoint folder beside ``final`` and swap it in; on a full disk (or any OSError)
    the half-written folder is removed and the error names ``final``."""
    tmp = final.with_name(final.name + ".tmp")
    try:
        return _write_folder_via(tmp, final, encoder, config, state, same_weights_as)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise named(e, final / WEIGHTS) from None
        text = str(e)  # safetensors and torch.save report a failed write as their own error types
        if any(w in text.lower() for w in ("no space", "os error", "oserror", "failed writing", "ioerror", "file write failed")):
            first = (text.splitlines() or [type(e).__name__])[0][:200]
            raise FakeproofError(f"{final / WEIGHTS}: cannot write the checkpoint ({first})") from None
        raise


def _write_folder_via(tmp: Path, final: Path, encoder, config: dict, state: dict | None, same_weights_as: Path | None) -> Path:
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    linked = False
    if same_weights_as is not None and (same_weights_as / WEIGHTS).exists():
        try:  # the best checkpoint is usually the step just saved: share the file instead of a copy
            os.link(same_weights_as / WEIGHTS, tmp / WEIGHTS)
            linked = True
        except OSError:
            pass
    if not linked:
        save_file(_weights_dict(encoder), str(tmp / WEIGHTS), metadata={"format": FORMAT, "encoder": str(config.get("encoder"))})
    kill_point("checkpoint weights written")
    atomic_write_text(tmp / CONFIG, json_text(config))
    if state is not None:
        torch.save(state, tmp / STATE)
        kill_point("checkpoint state written")
    old = final.with_name(final.name + ".old")
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        kill_point("old checkpoint set aside")
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
    return final


def save_step(run_dir: Path, encoder: torch.nn.Module, config: dict, state: dict, step: int) -> Path:
    """A resumable checkpoint at ``step``; older ones beyond the last :data:`KEEP_LAST` are removed."""
    ck = Path(run_dir) / "checkpoints"
    folder = _write_folder(ck / f"step-{step:06d}", encoder, {**config, "step": step, "saved": time.time()}, state)
    atomic_write_text(ck / "last.json", json.dumps({"dir": folder.name, "step": step}) + "\n")
    kill_point("last.json written")
    steps = sorted(p for p in ck.glob("step-*") if p.is_dir() and not p.name.endswith((".tmp", ".old")))
    for p in steps[:-KEEP_LAST]:
        shutil.rmtree(p, ignore_errors=True)
    return folder


def save_best(run_dir: Path, encoder: torch.nn.Module, config: dict, same_weights_as: Path | None = None) -> Path:
    """``checkpoints/best``; ``same_weights_as``: a step folder holding these very weights (hard-linked)."""
    return _write_folder(Path(run_dir) / "checkpoints" / "best", encoder, {**config, "saved": time.time()}, None, same_weights_as)
