"""Registry of face encoders (modelled on timm's registry: a name maps to a factory and a spec).

``get_encoder("facenet")``, ``get_encoder("adaface_ir101", weights=PATH)``,
``get_encoder("onnx:/path/w600k_r50.onnx")``. ``list_encoders()`` feeds ``fakeproof models list``.
"""
from __future__ import annotations

from typing import Callable

from .base import Encoder, EncoderSpec, WeightFile

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
    from . import adaface, dlib_resnet, facenet, onnx_encoder  # noqa: F401


def encoder_names() -> list[str]:
    _ensure_loaded()
    return sorted(_FACTORIES)


def encoder_spec(name: str, models_dir=None, weights=None) -> EncoderSpec:
    _ensure_loaded()
    if name.startswith("onnx:"):
        from .onnx_encoder import onnx_spec

        return onnx_spec(name[5:])
    if name not in _SPECS:
        raise KeyError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}, onnx:PATH")
    return _SPECS[name](models_dir=models_dir, weights=weights)


def get_encoder(name: str = "facenet", weights=None, models_dir=None, device: str = "cpu") -> Encoder:
    """Build an encoder by registry name, ready for ``.embed(crops)`` on ``device``."""
    _ensure_loaded()
    if name.startswith("onnx:"):
        from .onnx_encoder import OnnxEncoder

        return OnnxEncoder(name[5:], device=device)
    if name not in _FACTORIES:
        raise KeyError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}, onnx:PATH")
    enc = _FACTORIES[name](weights=weights, models_dir=models_dir)
    return enc.to(device).eval()


def list_encoders(models_dir=None) -> list[EncoderSpec]:
    _ensure_loaded()
    return [_SPECS[n](models_dir=models_dir, weights=None) for n in sorted(_SPECS)]


__all__ = [
    "Encoder",
    "EncoderSpec",
    "WeightFile",
    "register_encoder",
    "get_encoder",
    "encoder_spec",
    "encoder_names",
    "list_encoders",
]
