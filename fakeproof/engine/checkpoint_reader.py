"""Reading ``train run`` checkpoints (what ``--model RUN_DIR`` loads); writing them is
:mod:`fakeproof.train.checkpoint_writer`. Layout of a run folder::

    RUN_DIR/checkpoints/step-000400/model.safetensors   encoder state dict
                                    config.json         encoder, input size, normalisation, threshold
                                    train_state.pt      optimizer, scheduler, scaler, step, RNG per rank
    RUN_DIR/checkpoints/last.json                       {"dir": "step-000400", "step": 400}
    RUN_DIR/checkpoints/best/model.safetensors          best validation EER so far
    RUN_DIR/checkpoints/best/config.json
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import InputError, NotFoundError, WeightsNotInstalledError
from .encoders import Encoder, get_encoder

FORMAT = "fakeproof-train-checkpoint/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "train_state.pt"
DECISION = "decision.json"  # fakeproof.train.closing.DECISION_FILE


def last_checkpoint(run_dir: Path) -> Path | None:
    p = Path(run_dir) / "checkpoints" / "last.json"
    if not p.exists():
        return None
    folder = p.parent / str(_read_json(p).get("dir", ""))
    return folder if (folder / STATE).exists() else None


def _read_json(path: Path) -> dict:
    """A JSON object from a checkpoint file; a damaged one is one line naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: damaged checkpoint file, not JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: damaged checkpoint file (expected a JSON object)")
    return data


def read_decision(path) -> dict | None:
    """A run folder's ``decision.json`` (written by ``train run``'s closing check: which model it
    recommends); None for anything else (a checkpoint folder, a file, a run without one)."""
    p = Path(path)
    if not (p.is_dir() and (p / "checkpoints").is_dir() and (p / DECISION).is_file()):
        return None
    return _read_json(p / DECISION)


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
            raise InputError(f"{path}: not a checkpoint (expected a run folder, a checkpoint folder, {WEIGHTS} or {CONFIG})")
    if not p.is_dir():
        raise NotFoundError(f"{path}: no such run folder or checkpoint")
    for cand in (p / "checkpoints" / "best", p):
        if (cand / WEIGHTS).exists() and (cand / CONFIG).exists():
            return cand
    last = last_checkpoint(p)
    if last is not None:
        return last
    raise NotFoundError(f"{path}: no checkpoint inside (looked for checkpoints/best/{WEIGHTS}, {WEIGHTS}, checkpoints/last.json)")


def read_config(folder: Path) -> dict:
    cfg = _read_json(Path(folder) / CONFIG)
    if cfg.get("format") != FORMAT:
        raise InputError(f"{Path(folder) / CONFIG}: not a fakeproof training checkpoint (format {cfg.get('format')!r})")
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
            raise InputError(f"checkpoint encoder {name!r} is not in the registry: {e.args[0] if e.args else e}") from None
        except (FileNotFoundError, OSError, ValueError, RuntimeError) as e:
            reasons.append(f"weights={w or 'default'}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    raise WeightsNotInstalledError(f"cannot build encoder {name!r} for this checkpoint ({'; '.join(reasons)})")


def load_trained_encoder(path_or_run_dir, device: str = "cpu", models_dir=None) -> tuple[Encoder, dict]:
    """``(encoder, config)`` of a fine-tuned checkpoint, in eval mode on ``device``.

    ``config['threshold']`` is the cosine threshold at the validation EER of that checkpoint;
    ``config['input_size']``/``['normalisation']`` describe what the encoder takes."""
    folder = resolve_checkpoint(path_or_run_dir)
    config = read_config(folder)
    enc = build_encoder(config, device="cpu", models_dir=models_dir, weights_file=folder / WEIGHTS)
    if config.get("artefact_head"):  # an encoder + artefact head (fakeproof.engine.encoders.guard)
        from .encoders.guard import guard

        enc = guard(enc, config["artefact_head"], pretrained=False)
    if config.get("normalisation") and config["normalisation"] != enc.spec.normalisation:
        # e.g. a FaceNet run fine-tuned on prewhitened input before the normalisation fix
        raise InputError(
            f"{folder / CONFIG}: trained on input normalised as {config['normalisation']!r}, but "
            f"{config['encoder']} now takes {enc.spec.normalisation!r}; re-run `train run` from this version"
        )
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own types for a truncated/damaged file
        raise InputError(f"{folder / WEIGHTS}: damaged or truncated weights file ({(str(e).splitlines() or [type(e).__name__])[0][:160]})") from None
    missing, unexpected = enc.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(f"{folder / WEIGHTS}: does not fit encoder {config['encoder']!r} (missing {len(missing)} keys, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})")
    enc.fingerprint = None  # the engine's embedding cache must not mix fine-tuned and base weights
    enc = enc.to(device).eval()
    config["checkpoint"] = str(folder)
    return enc, config
