"""What ``--model`` names, resolved to an encoder and its decision threshold.

``--model`` takes one of:

- an encoder registry name (``facenet``, ``adaface_ir101``, ``onnx:PATH``): the stock weights;
- a ``train run`` folder, a checkpoint folder, or its ``model.safetensors`` / ``config.json``:
  a fine-tuned encoder (``fakeproof.train.checkpoint.load_trained_encoder``);
- a ``.onnx`` file written by ``infer export-onnx`` (run on ONNX Runtime; its metadata carries the
  crop geometry, normalisation and threshold).

``runtime="onnx"`` runs any of them on ONNX Runtime: torch models are exported once to
``$FAKEPROOF_HOME/onnx/`` (keyed by the weights' fingerprint) and loaded from there.

Threshold (cosine similarity at or above which a pair is "same person"): the checkpoint's
``config['threshold']`` (its validation EER threshold), else the exported model's metadata, else
:data:`STOCK_THRESHOLDS` for the stock encoders, else :data:`GENERIC_THRESHOLD`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..engine import Encoder, get_encoder, resolve_device
from ..engine.paths import cache_home

# Cosine thresholds of the stock encoders, at the EER of genuine/impostor pairs built from real
# in-the-wild photos (every same-identity pair and as many random different-identity pairs of
# ../shared/data celeba-mini + five-celebrities; MTCNN + ArcFace-template alignment), measured with
# ``infer score-pairs`` + ``infer evaluate`` (see the infer stage report / benchmarks). Only a
# starting point: set ``--threshold`` or fine-tune (``train run`` stores its own threshold).
STOCK_THRESHOLDS: dict[str, float] = {
    "facenet": 0.38,
    # dlib's descriptors share a cone: impostor cosines sit near 0.85 (EER 3.28% on those pairs,
    # benchmarks/dlib_alignment.py variant (a))
    "dlib_resnet": 0.894,
}
GENERIC_THRESHOLD = 0.5  # any other encoder, until it is measured or fine-tuned

CHECKPOINT_SUFFIXES = (".safetensors", ".json")


@dataclass
class InferModel:
    """An encoder ready for the face engine, with where it came from and its threshold."""

    encoder: Encoder
    name: str  # registry name, checkpoint folder or ONNX file
    threshold: float
    threshold_source: str  # "checkpoint" | "onnx metadata" | "stock default" | "generic default" | "--threshold"
    runtime: str = "torch"  # "torch" | "onnx"
    config: dict = field(default_factory=dict)  # the checkpoint config (fine-tuned models)

    @property
    def spec(self):
        return self.encoder.spec

    def describe(self) -> str:
        s = self.spec
        return f"{self.name} [{self.runtime}] {s.name} {s.input_size[0]}x{s.input_size[1]} dim {s.embedding_dim}, threshold {self.threshold:.3f} ({self.threshold_source})"


def stock_threshold(encoder_name: str) -> tuple[float, str]:
    if encoder_name in STOCK_THRESHOLDS:
        return STOCK_THRESHOLDS[encoder_name], "stock default"
    return GENERIC_THRESHOLD, "generic default"


def _is_checkpoint_path(p: Path) -> bool:
    return p.is_dir() or (p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)


def load_model(
    model: str | Encoder = "facenet",
    device: str = "auto",
    runtime: str = "torch",
    weights: str | None = None,
    models_dir=None,
    threshold: float | None = None,
) -> InferModel:
    """Resolve ``--model`` (see the module docstring). Raises ``FileNotFoundError`` / ``ValueError``
    / ``KeyError`` with a one-line reason for anything it cannot load."""
    if runtime not in ("torch", "onnx"):
        raise ValueError(f"--runtime must be 'torch' or 'onnx', not {runtime!r}")
    device = resolve_device(device)
    config: dict = {}
    if isinstance(model, Encoder):
        enc, name = model, model.spec.name
        thr, src = getattr(model, "threshold", None), "encoder"
        if thr is None:
            thr, src = stock_threshold(model.spec.name)
    else:
        model = str(model)
        p = Path(model).expanduser()
        if p.suffix.lower() == ".onnx" and not model.startswith("onnx:"):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no such ONNX file")
            from .onnx_runtime import OnnxRuntimeEncoder, is_fakeproof_onnx

            if not is_fakeproof_onnx(p):
                raise ValueError(f"{p}: not exported by `fakeproof infer export-onnx` (no fakeproof metadata); use --model onnx:{p} for a plain ArcFace-style ONNX recogniser")
            enc = OnnxRuntimeEncoder(p, device=device)
            return _with_override(InferModel(enc, str(p), enc.threshold, "onnx metadata" if enc.threshold_known else "generic default", "onnx"), threshold)
        if _is_checkpoint_path(p):
            from ..train.checkpoint import load_trained_encoder

            enc, config = load_trained_encoder(p, device="cpu" if runtime == "onnx" else device, models_dir=models_dir)
            name = config.get("checkpoint", str(p))
            if config.get("threshold") is not None:
                thr, src = float(config["threshold"]), "checkpoint"
            else:
                thr, src = stock_threshold(config.get("encoder", ""))
        elif p.exists():
            raise ValueError(f"{p}: not a model (expected a registry name, a train run folder, a checkpoint folder/model.safetensors/config.json, or an exported .onnx)")
        elif ("/" in model or "\\" in model) and not model.startswith("onnx:"):
            raise FileNotFoundError(f"{p}: no such run folder, checkpoint or ONNX file")
        else:
            enc = get_encoder(model, weights=weights, models_dir=models_dir, device="cpu" if runtime == "onnx" else device)
            name = model
            thr, src = stock_threshold(model)
    enc.eval()
    if runtime == "onnx" and not _on_onnx_runtime(enc):
        from .onnx_export import export_onnx
        from .onnx_runtime import OnnxRuntimeEncoder
        from ..engine.pipeline import encoder_fingerprint

        out = cache_home() / "onnx" / f"{enc.spec.name}-{encoder_fingerprint(enc)}.onnx"
        if not out.exists():
            export_onnx(enc, out, threshold=thr, source=name)
        enc = OnnxRuntimeEncoder(out, device=device)
    return _with_override(InferModel(enc, name, float(thr), src, "onnx" if _on_onnx_runtime(enc) else "torch", config), threshold)


def _on_onnx_runtime(enc: Encoder) -> bool:
    """Our exported models and the registry's ``onnx:PATH`` encoders already run on ONNX Runtime."""
    from ..engine.encoders.onnx_encoder import OnnxEncoder

    return bool(getattr(enc, "is_onnx", False)) or isinstance(enc, OnnxEncoder)


def _with_override(m: InferModel, threshold: float | None) -> InferModel:
    if threshold is not None:
        m.threshold, m.threshold_source = float(threshold), "--threshold"
    return m
