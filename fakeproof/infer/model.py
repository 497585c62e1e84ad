"""What ``--model`` names for the infer commands: :func:`fakeproof.engine.resolve_model` (one
resolver for every command), plus ``--runtime onnx`` and ``--threshold``.

``runtime="onnx"`` runs any model on ONNX Runtime: torch models are exported once to
``$FAKEPROOF_HOME/onnx/`` (keyed by the weights' fingerprint) and loaded from there.
"""
from __future__ import annotations

from ..errors import UsageError
from ..engine import Encoder, resolve_device
from ..engine.paths import cache_home
from ..engine.resolve import GENERIC_THRESHOLD, ResolvedModel, resolve_model, stock_threshold  # noqa: F401 - re-exported
from ..engine.encoders import DEFAULT_ENCODER

InferModel = ResolvedModel  # the name the infer stage used before the engine had the resolver


def load_model(
    model: str | Encoder = DEFAULT_ENCODER,
    device: str = "auto",
    runtime: str = "torch",
    weights: str | None = None,
    models_dir=None,
    threshold: float | None = None,
) -> ResolvedModel:
    """Resolve ``--model`` on ``device``, on ONNX Runtime when ``runtime="onnx"``, with
    ``threshold`` overriding the model's own. Errors: one-line ``FileNotFoundError`` /
    ``ValueError`` / ``KeyError``."""
    if runtime not in ("torch", "onnx"):
        raise UsageError(f"--runtime must be 'torch' or 'onnx', not {runtime!r}")
    device = resolve_device(device)
    # the infer commands print the resolved model's whole description (with `auto -> ...`) themselves
    m = resolve_model(model, device="cpu" if runtime == "onnx" else device, weights=weights, models_dir=models_dir, announce=False)
    m.encoder.eval()
    if runtime == "onnx" and m.runtime != "onnx":
        from ..engine.onnx import ExportedOnnx
        from ..engine.pipeline import encoder_fingerprint
        from .onnx_export import export_onnx

        out = cache_home() / "onnx" / f"{m.spec.name}-{encoder_fingerprint(m.encoder)}.onnx"
        if not out.exists():
            export_onnx(m.encoder, out, threshold=m.threshold, source=m.name)
        m.encoder = ExportedOnnx(out, device=device)
    if threshold is not None:
        m.threshold, m.threshold_source = float(threshold), "--threshold"
    return m
