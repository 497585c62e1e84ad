"""One way to name a model. Every command that takes ``--model`` resolves it here, to an encoder
and its decision threshold. ``--model`` is one of:

- an encoder registry name or registry string (``facenet``, ``adaface_ir101``, ``onnx:PATH`` for
  an ArcFace-style ONNX recogniser, and whatever else :func:`~fakeproof.engine.get_encoder`
  accepts): anything that is not a path on disk is handed to the registry;
- a ``train run`` folder, a checkpoint folder, or its ``model.safetensors`` / ``config.json``: a
  fine-tuned encoder (:mod:`fakeproof.engine.checkpoint_reader`);
- a ``.onnx`` file written by ``infer export-onnx`` (run on ONNX Runtime; its metadata carries the
  crop geometry, normalisation and threshold).

A bare name that is both registered and a folder in the current directory means the registry.

Threshold (cosine similarity at or above which a pair is "same person"): the checkpoint's
``config['threshold']`` (its validation EER threshold), else the exported model's metadata, else
the stock encoders' measured EER thresholds (:mod:`fakeproof.engine.encoders.operating_points`), else :data:`GENERIC_THRESHOLD`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, NotFoundError
from .encoders import AUTO, DEFAULT_ENCODER, Encoder, encoder_names, get_encoder, resolve_encoder_name
from .encoders.operating_points import operating_points

# Cosine thresholds of the stock encoders come from their measured operating points (EER threshold on
# real pairs, fakeproof.engine.encoders.operating_points). Only a starting point: set ``--threshold``
# or fine-tune (``train run`` stores its own threshold).
GENERIC_THRESHOLD = 0.5  # any other encoder, until it is measured or fine-tuned

CHECKPOINT_SUFFIXES = (".safetensors", ".json")
_REGISTRY_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:")  # onnx:PATH, fusion:A+B, ...


@dataclass
class ResolvedModel:
    """An encoder ready for the face engine, with where it came from and its threshold."""

    encoder: Encoder
    name: str  # what was asked for: registry string, checkpoint folder or ONNX file
    kind: str  # "registry" | "checkpoint" | "exported onnx" | "encoder"
    threshold: float
    threshold_source: str  # "checkpoint" | "onnx metadata" | "stock default" | "generic default" | "encoder"
    architecture: str  # the registry name that rebuilds this network (a checkpoint's base encoder)
    config: dict = field(default_factory=dict)  # the checkpoint config (fine-tuned models)

    @property
    def spec(self):
        return self.encoder.spec

    @property
    def runtime(self) -> str:
        return "onnx" if getattr(self.encoder, "is_onnx", False) else "torch"

    def describe(self) -> str:
        s = self.spec
        return f"{self.name} [{self.runtime}] {s.name} {s.input_size[0]}x{s.input_size[1]} dim {s.embedding_dim}, threshold {self.threshold:.3f} ({self.threshold_source})"


def stock_threshold(encoder_name: str) -> tuple[float, str]:
    op = operating_points(encoder_name)
    if op is not None:
        return op.eer_threshold, "stock EER threshold"
    return GENERIC_THRESHOLD, "generic default"


def model_kind(model: str) -> str:
    """How ``model`` will be read: ``registry``, ``checkpoint`` or ``exported onnx`` (no loading)."""
    p = Path(model).expanduser()
    if _REGISTRY_PREFIX.match(model) and not p.exists():
        return "registry"
    if p.exists() and "/" not in model and model in encoder_names():
        return "registry"
    if p.suffix.lower() == ".onnx":
        return "exported onnx"
    if p.exists() or "/" in model or "\\" in model:
        return "checkpoint"
    return "registry"


def resolve_model(model: str | Encoder = DEFAULT_ENCODER, device: str = "cpu", weights: str | None = None, models_dir=None, announce: bool = True) -> ResolvedModel:
    """Resolve ``--model`` (see the module docstring) on ``device``. Raises ``FileNotFoundError`` /
    ``ValueError`` / ``KeyError`` with a one-line reason for anything it cannot load."""
    if isinstance(model, Encoder):
        thr, src = getattr(model, "threshold", None), "encoder"
        if thr is None:
            thr, src = stock_threshold(model.spec.name)
        return ResolvedModel(model, model.spec.name, "encoder", float(thr), src, model.spec.name)
    model = str(model)
    kind = model_kind(model)
    p = Path(model).expanduser()
    if kind == "registry":
        concrete = resolve_encoder_name(model, models_dir)
        if model == AUTO and announce:  # every command says which encoder `auto` stood for (once)
            import sys

            print(f"model: auto -> {concrete}", file=sys.stderr)
        enc = get_encoder(concrete, weights=weights, models_dir=models_dir, device=device)
        thr, src = stock_threshold(enc.spec.name)
        return ResolvedModel(enc, model if concrete == model else f"{model} -> {concrete}", kind, float(thr), src, concrete)
    if kind == "exported onnx":
        if not p.is_file():
            raise NotFoundError(f"{p}: no such ONNX file")
        from .onnx import ExportedOnnx, is_fakeproof_onnx

        if not is_fakeproof_onnx(p):
            raise InputError(f"{p}: not exported by `fakeproof infer export-onnx` (no fakeproof metadata); use --model onnx:{p} for a plain ArcFace-style ONNX recogniser")
        enc = ExportedOnnx(p, device=device)
        thr, src = (enc.threshold, "onnx metadata") if enc.threshold_known else (GENERIC_THRESHOLD, "generic default")
        return ResolvedModel(enc, str(p), kind, float(thr), src, enc.spec.name)
    if not p.exists():
        raise NotFoundError(f"{p}: no such run folder, checkpoint or ONNX file")
    if not (p.is_dir() or p.suffix in CHECKPOINT_SUFFIXES):
        raise InputError(f"{p}: not a model (expected a registry name, a train run folder, a checkpoint folder/model.safetensors/config.json, or an exported .onnx)")
    from .checkpoint_reader import load_trained_encoder

    enc, config = load_trained_encoder(p, device=device, models_dir=models_dir)
    if config.get("threshold") is not None:
        thr, src = float(config["threshold"]), "checkpoint"
    else:
        thr, src = stock_threshold(config.get("encoder", ""))
    return ResolvedModel(enc, config.get("checkpoint", str(p)), kind, float(thr), src, config["encoder"], config)
