"""What ``--model`` names for the infer commands: :func:`fakeproof.engine.resolve_model` (one
resolver for every command), plus ``--runtime onnx`` and ``--threshold``.

``runtime="onnx"`` runs any model on ONNX Runtime: torch models are exported once to
``$FAKEPROOF_HOME/onnx/`` (keyed by the weights' fingerprint) and loaded from there. The default,
``auto`` (:data:`fakeproof.engine.runtime.DEFAULT_RUNTIME`), is ONNX Runtime on CPU and torch on
CUDA; under ``auto`` a model that cannot be exported stays on torch.
"""
from __future__ import annotations

from ..errors import InputError
from ..engine import Encoder, resolve_device
from ..engine.paths import cache_home
from ..engine.resolve import ResolvedModel, resolve_model
from ..engine.encoders import DEFAULT_ENCODER
from ..engine.runtime import DEFAULT_RUNTIME, pick_runtime


def load_model(
    model: str | Encoder = DEFAULT_ENCODER,
    device: str = "auto",
    runtime: str = DEFAULT_RUNTIME,
    weights: str | None = None,
    models_dir=None,
    threshold: float | None = None,
) -> ResolvedModel:
    """Resolve ``--model`` on ``device``, on ONNX Runtime when ``runtime`` picks it
    (:func:`~fakeproof.engine.runtime.pick_runtime`), with ``threshold`` overriding the model's own.
    Errors: one-line ``FileNotFoundError`` / ``ValueError`` / ``KeyError``."""
    asked = runtime
    # the infer commands print the resolved model's whole description (with `auto -> ...`) themselves
    device = resolve_device(device)
    runtime = pick_runtime(runtime, device)
    m = resolve_model(model, device="cpu" if runtime == "onnx" else device, weights=weights, models_dir=models_dir, announce=False)
    m.encoder.eval()
    if runtime == "onnx" and m.runtime != "onnx":
        try:
            m.encoder = _exported(m, device)
        except Exception as e:  # noqa: BLE001 - under "auto" any export failure means: stay on torch
            if asked != "auto":
                raise InputError(f"{m.name}: cannot run on ONNX Runtime ({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from None
            m.encoder.to(device)
    if threshold is not None:
        m.threshold, m.threshold_source = float(threshold), "--threshold"
    return m


def _exported(m: ResolvedModel, device: str) -> Encoder:
    """``m``'s encoder on ONNX Runtime: exported once to ``$FAKEPROOF_HOME/onnx/`` (keyed by the
    weights' fingerprint; written to a temp name and renamed) and loaded from there."""
    from ..engine.onnx import ExportedOnnx
    from ..engine.pipeline import encoder_fingerprint
    from .onnx_export import export_onnx

    # the metric decides the graph's output (L2-normalised or the raw descriptor): part of the key, so an
    # export made for another metric (e.g. dlib before its card said euclidean) is never reused
    metric = m.card.metric if m.card is not None else "cosine"
    out = cache_home() / "onnx" / (f"{m.spec.name}-{encoder_fingerprint(m.encoder)}" + ("" if metric == "cosine" else f"-{metric}") + ".onnx")
    if not out.exists():
        try:
            export_onnx(m.encoder, out, threshold=m.threshold, source=m.name)
        except RuntimeError:  # not faithful to torch: never leave it where the next run would load it
            out.unlink(missing_ok=True)
            raise
    enc = ExportedOnnx(out, device=device)
    if m.card is not None:  # the same card (metric, calibration, operating points) on its ONNX runtime
        from ..engine.cards import card_for_encoder

        enc.card = card_for_encoder(enc, calibration=m.card.calibration, name=m.card.name)
    return enc
