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

Every form resolves to a :class:`~fakeproof.engine.cards.ModelCard` (what the model is: crop,
normalisation, metric, calibration, operating points, capabilities) plus the encoder holding the
weights; ``encoder.card`` is that card, so the face engine and every consumer score pairs with
``card.similarity`` / ``card.scale``. The calibration comes from the stock card (registry names;
a fusion's is derived from its parts'), the checkpoint's ``config.json`` ``calibration`` (fitted
on its validation split by ``train run``), or the exported model's metadata.

Threshold: on the similarity scale (:mod:`fakeproof.engine.cards`), where 0.5 is the decision
point of every calibrated model (:data:`GENERIC_THRESHOLD`); uncalibrated models (``onnx:PATH``,
AdaFace until measured) read 0.5 on the raw cosine. ``resolved.raw_threshold`` is the same
threshold as a raw cosine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, NotFoundError
from .cards import DECISION, Calibration, ModelCard, card_for_encoder, stock_calibration
from .encoders import AUTO, DEFAULT_ENCODER, Encoder, encoder_names, get_encoder, resolve_encoder_name

GENERIC_THRESHOLD = DECISION  # the decision point of the similarity scale, for every model

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
    card: ModelCard | None = None  # what the model is (set by resolve_model; also encoder.card)

    @property
    def spec(self):
        return self.encoder.spec

    @property
    def raw_threshold(self) -> float:
        """The threshold as a raw cosine (``threshold`` is on the similarity scale)."""
        return self.card.raw_threshold(self.threshold) if self.card is not None else self.threshold

    @property
    def runtime(self) -> str:
        return "onnx" if getattr(self.encoder, "is_onnx", False) else "torch"

    def describe(self) -> str:
        s = self.spec
        cal = "calibrated similarity" if self.card is not None and self.card.calibrated else "raw cosine (uncalibrated)"
        return f"{self.name} [{self.runtime}] {s.name} {s.input_size[0]}x{s.input_size[1]} dim {s.embedding_dim}, threshold {self.threshold:.3f} on the {cal} scale ({self.threshold_source})"


def stock_threshold(encoder_name: str) -> tuple[float, str]:
    """The default threshold on the similarity scale and where it comes from."""
    cal = stock_calibration(encoder_name)
    return GENERIC_THRESHOLD, ("stock calibration" if not cal.is_identity else "generic default")


def calibration_from_config(config: dict, architecture: str) -> Calibration:
    """A checkpoint's (or exported model's) own calibration; older ones that stored only a raw
    ``threshold`` keep their base encoder's impostor knot with that threshold as the decision point."""
    if config.get("calibration"):
        return Calibration.from_dict(config["calibration"])
    thr = config.get("threshold")
    # a checkpoint is trained with a cosine loss: its base's COSINE knots, whatever metric the stock card declares
    base = stock_calibration(architecture, "cosine")
    if thr is None:
        return base
    imp = base.raw[1] if len(base.raw) == 4 else min(0.0, float(thr) - 0.25)
    return Calibration.from_points(imp, float(thr), "from the stored raw threshold (no calibration recorded)")


def _attach(enc: Encoder, calibration: Calibration, name: str) -> ModelCard:
    card = card_for_encoder(enc, calibration=calibration, name=name)
    enc.card = card
    return card


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
        card = model.card or _attach(model, stock_calibration(model.spec.name), model.spec.name)
        thr, src = stock_threshold(model.spec.name)
        return ResolvedModel(model, model.spec.name, "encoder", float(thr), src, model.spec.name, card=card)
    model = str(model)
    kind = model_kind(model)
    p = Path(model).expanduser()
    if kind == "registry":
        concrete = resolve_encoder_name(model, models_dir)
        if model == AUTO and announce:  # every command says which encoder `auto` stood for (once)
            import sys

            print(f"model: auto -> {concrete}", file=sys.stderr)
        enc = get_encoder(concrete, weights=weights, models_dir=models_dir, device=device)
        card = _attach(enc, stock_calibration(enc.spec.name), concrete)
        thr, src = stock_threshold(enc.spec.name)
        return ResolvedModel(enc, model if concrete == model else f"{model} -> {concrete}", kind, float(thr), src, concrete, card=card)
    if kind == "exported onnx":
        if not p.is_file():
            raise NotFoundError(f"{p}: no such ONNX file")
        from .onnx import ExportedOnnx, is_fakeproof_onnx

        if not is_fakeproof_onnx(p):
            raise InputError(f"{p}: not exported by `fakeproof infer export-onnx` (no fakeproof metadata); use --model onnx:{p} for a plain ArcFace-style ONNX recogniser")
        enc = ExportedOnnx(p, device=device)
        cal = enc.calibration if enc.calibration is not None else calibration_from_config({"threshold": enc.threshold}, enc.spec.name)
        card = _attach(enc, cal, str(p))
        thr, src = (GENERIC_THRESHOLD, "onnx metadata") if enc.threshold_known or enc.calibration is not None else (GENERIC_THRESHOLD, "generic default")
        if enc.calibration is not None and enc.threshold_known:
            thr = enc.threshold  # exported with its calibration: the threshold is on the scale
        return ResolvedModel(enc, str(p), kind, float(thr), src, enc.spec.name, card=card)
    if not p.exists():
        raise NotFoundError(f"{p}: no such run folder, checkpoint or ONNX file")
    if not (p.is_dir() or p.suffix in CHECKPOINT_SUFFIXES):
        raise InputError(f"{p}: not a model (expected a registry name, a train run folder, a checkpoint folder/model.safetensors/config.json, or an exported .onnx)")
    from .checkpoint_reader import load_trained_encoder, read_decision

    decision = read_decision(p)  # a run folder whose closing check recommends a model (train run: decision.json)
    if decision is not None and decision.get("recommended") == "stock":
        import sys

        stock = decision.get("stock_model") or AUTO
        print(f"model: {p} -> the stock encoder {stock} (the run's closing check found training did not beat it: {p / 'decision.json'}; "
              f"--model {p / 'checkpoints' / 'best'} forces the trained checkpoint)", file=sys.stderr)
        return resolve_model(stock, device=device, weights=decision.get("stock_weights") or weights, models_dir=models_dir, announce=False)
    enc, config = load_trained_encoder(p, device=device, models_dir=models_dir)
    if decision is not None and not decision.get("guard", True) and hasattr(enc, "tau"):
        import sys

        enc.tau.fill_(float("inf"))  # the guard did not beat stock beyond noise: the gate is off
        enc.fingerprint = None
        config["guard"] = "off (decision.json)"
        print(f"model: {p}: the trained encoder with its artefact guard switched off, as the run's closing check recommends ({p / 'decision.json'}; "
              f"--model {p / 'checkpoints' / 'best'} keeps the guard)", file=sys.stderr)
    card = _attach(enc, calibration_from_config(config, config.get("encoder", "")), config.get("checkpoint", str(p)))
    src = "checkpoint calibration" if config.get("calibration") or config.get("threshold") is not None else stock_threshold(config.get("encoder", ""))[1]
    return ResolvedModel(enc, config.get("checkpoint", str(p)), kind, float(GENERIC_THRESHOLD), src, config["encoder"], config, card=card)
