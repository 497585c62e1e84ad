"""Checkpoints: encoder weights as safetensors + a JSON config; training state for ``--resume``.

Layout of a run folder::

    RUN_DIR/checkpoints/step-000400/model.safetensors   encoder state dict
                                    config.json         encoder, input size, normalisation, threshold
                                    train_state.pt      optimizer, scheduler, scaler, step, RNG per rank
    RUN_DIR/checkpoints/last.json                       {"dir": "step-000400", "step": 400}
    RUN_DIR/checkpoints/best/model.safetensors          best validation EER so far
    RUN_DIR/checkpoints/best/config.json

Every checkpoint folder is written under a temporary name and renamed into place, and
``last.json`` is replaced atomically after it, so a kill at any moment leaves the previous
complete checkpoint in charge. :func:`load_trained_encoder` is what ``infer --model`` uses.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..data import atomic_write_text, json_text
from ..faults import kill_point
from ..engine import Encoder, get_encoder

FORMAT = "fakeproof-train-checkpoint/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "train_state.pt"
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
        "detector": detector,
        "licence": s.licence,
    }


def _weights_dict(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share storage
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in encoder.state_dict().items()}


def _write_folder(final: Path, encoder: torch.nn.Module, config: dict, state: dict | None, same_weights_as: Path | None = None) -> Path:
    tmp = final.with_name(final.name + ".tmp")
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


def last_checkpoint(run_dir: Path) -> Path | None:
    p = Path(run_dir) / "checkpoints" / "last.json"
    if not p.exists():
        return None
    folder = p.parent / json.loads(p.read_text())["dir"]
    return folder if (folder / STATE).exists() else None


def load_train_state(folder: Path) -> dict:
    return torch.load(Path(folder) / STATE, map_location="cpu", weights_only=True)


def resolve_checkpoint(path) -> Path:
    """The checkpoint folder ``path`` names: a run folder (its best checkpoint, else its last), a
    checkpoint folder, its ``model.safetensors`` or its ``config.json``."""
    p = Path(path)
    if p.is_file():
        if p.suffix in (".safetensors", ".json"):
            p = p.parent
        else:
            raise ValueError(f"{path}: not a checkpoint (expected a run folder, a checkpoint folder, {WEIGHTS} or {CONFIG})")
    if not p.is_dir():
        raise FileNotFoundError(f"{path}: no such run folder or checkpoint")
    for cand in (p / "checkpoints" / "best", p):
        if (cand / WEIGHTS).exists() and (cand / CONFIG).exists():
            return cand
    last = last_checkpoint(p)
    if last is not None:
        return last
    raise FileNotFoundError(f"{path}: no checkpoint inside (looked for checkpoints/best/{WEIGHTS}, {WEIGHTS}, checkpoints/last.json)")


def read_config(folder: Path) -> dict:
    cfg = json.loads((Path(folder) / CONFIG).read_text())
    if cfg.get("format") != FORMAT:
        raise ValueError(f"{Path(folder) / CONFIG}: not a fakeproof training checkpoint (format {cfg.get('format')!r})")
    return cfg


def build_encoder(config: dict, device: str = "cpu", models_dir=None, weights_file: Path | None = None) -> Encoder:
    """The architecture named in ``config``, built through the encoder registry.

    First with the checkpoint's own ``weights_file`` as the factory's weights (facenet and AdaFace
    factories read fakeproof's safetensors, so the pretrained file need not be present), then the
    registry default, then ``config['base_weights']``; the caller loads the fine-tuned weights."""
    name = config["encoder"]
    attempts: list[str | None] = [str(weights_file)] if weights_file else []
    attempts.append(None)
    if config.get("base_weights"):
        attempts.append(str(config["base_weights"]))
    reasons = []
    for w in dict.fromkeys(attempts):
        try:
            return get_encoder(name, weights=w, models_dir=models_dir, device=device)
        except KeyError as e:
            raise ValueError(f"checkpoint encoder {name!r} is not in the registry: {e.args[0] if e.args else e}") from None
        except (FileNotFoundError, OSError, ValueError, RuntimeError) as e:
            reasons.append(f"weights={w or 'default'}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    raise FileNotFoundError(f"cannot build encoder {name!r} for this checkpoint ({'; '.join(reasons)})")


def load_trained_encoder(path_or_run_dir, device: str = "cpu", models_dir=None) -> tuple[Encoder, dict]:
    """``(encoder, config)`` of a fine-tuned checkpoint, in eval mode on ``device``.

    ``config['threshold']`` is the cosine threshold at the validation EER of that checkpoint;
    ``config['input_size']``/``['normalisation']`` describe what the encoder takes."""
    folder = resolve_checkpoint(path_or_run_dir)
    config = read_config(folder)
    enc = build_encoder(config, device="cpu", models_dir=models_dir, weights_file=folder / WEIGHTS)
    state = load_file(str(folder / WEIGHTS))
    missing, unexpected = enc.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder / WEIGHTS}: does not fit encoder {config['encoder']!r} (missing {len(missing)} keys, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})")
    enc.fingerprint = None  # the engine's embedding cache must not mix fine-tuned and base weights
    enc = enc.to(device).eval()
    config["checkpoint"] = str(folder)
    return enc, config
