"""Registry of face encoders (modelled on timm's registry: a name maps to a factory and a spec).

``get_encoder("facenet")``, ``get_encoder("adaface_ir101", weights=PATH)``,
``get_encoder("onnx:/path/w600k_r50.onnx")``, ``get_encoder("fusion:0.3*facenet+0.7*dlib_resnet")``,
``get_encoder("auto")``. ``list_encoders()`` feeds ``fakeproof models list``.

``auto`` (the default everywhere) is resolved by :func:`resolve_encoder_name`: AdaFace IR-101 when
the user's weights are present, else :data:`BEST_OFFLINE`, the most accurate encoder whose weights
ship in registry packages (chosen by ``benchmarks/verify_peers.py``).
"""
from __future__ import annotations

from typing import Callable

from .base import Encoder, EncoderSpec, WeightFile

AUTO = "auto"
DEFAULT_ENCODER = AUTO
# The most accurate offline encoder on real pairs at >= 8 img/s on 2 CPU cores (benchmarks/verify_peers.py).
BEST_OFFLINE = "facenet"
PREFERRED_WITH_WEIGHTS = "adaface_ir101"

_FACTORIES: dict[str, Callable[..., Encoder]] = {}
_SPECS: dict[str, Callable[..., EncoderSpec]] = {}


def register_encoder(name: str, spec: Callable[..., EncoderSpec]):
    """Decorator: register ``factory(weights=None, models_dir=None) -> Encoder`` under ``name``.

    ``spec(models_dir=None)`` returns the spec without building the model (cheap; used by listings)."""

    def deco(factory):
        _FACTORIES[name] = factory
        _SPECS[name] = spec
        return factory

    return deco


def _ensure_loaded() -> None:
    # importing the modules registers them
    from . import adaface, facenet, onnx_encoder  # noqa: F401


def encoder_names() -> list[str]:
    _ensure_loaded()
    return sorted(_FACTORIES)


def resolve_encoder_name(name: str, models_dir=None) -> str:
    """``auto`` -> the encoder it stands for on this machine; any other name unchanged."""
    if name != AUTO:
        return name
    _ensure_loaded()
    try:
        if all(w.present for w in _SPECS[PREFERRED_WITH_WEIGHTS](models_dir=models_dir, weights=None).weights):
            return PREFERRED_WITH_WEIGHTS
    except Exception:  # noqa: BLE001 - a missing or odd models folder means "not present"
        pass
    return BEST_OFFLINE


def encoder_spec(name: str, models_dir=None, weights=None) -> EncoderSpec:
    _ensure_loaded()
    name = resolve_encoder_name(name, models_dir)
    if name.startswith("fusion:"):
        return get_encoder(name, models_dir=models_dir).spec
    if name.startswith("onnx:"):
        from .onnx_encoder import onnx_spec

        return onnx_spec(name[5:])
    if name not in _SPECS:
        raise KeyError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}, auto, onnx:PATH, fusion:W*A+W*B")
    return _SPECS[name](models_dir=models_dir, weights=weights)


def get_encoder(name: str = DEFAULT_ENCODER, weights=None, models_dir=None, device: str = "cpu") -> Encoder:
    """Build an encoder by registry name, ready for ``.embed(crops)`` on ``device``."""
    _ensure_loaded()
    name = resolve_encoder_name(name, models_dir)
    if name.startswith("fusion:"):
        from .fusion import FusionEncoder, parse_fusion

        if weights:
            raise ValueError(f"{name}: --weights does not apply to a fusion (give each part its own weights file in the models folder)")
        parts = [(get_encoder(n, models_dir=models_dir, device=device), w) for n, w in parse_fusion(name)]
        return FusionEncoder(parts).to(device).eval()
    if name.startswith("onnx:"):
        from .onnx_encoder import OnnxEncoder

        return OnnxEncoder(name[5:], device=device)
    if name not in _FACTORIES:
        raise KeyError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}, auto, onnx:PATH, fusion:W*A+W*B")
    enc = _FACTORIES[name](weights=weights, models_dir=models_dir)
    return enc.to(device).eval()


def list_encoders(models_dir=None) -> list[EncoderSpec]:
    _ensure_loaded()
    return [_SPECS[n](models_dir=models_dir, weights=None) for n in sorted(_SPECS)]


__all__ = [
    "AUTO",
    "BEST_OFFLINE",
    "DEFAULT_ENCODER",
    "resolve_encoder_name",
    "Encoder",
    "EncoderSpec",
    "WeightFile",
    "register_encoder",
    "get_encoder",
    "encoder_spec",
    "encoder_names",
    "list_encoders",
]
