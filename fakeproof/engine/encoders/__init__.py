"""Registry of face encoders (modelled on timm's registry: a name maps to a factory and a spec).

``get_encoder("facenet")``, ``get_encoder("adaface_ir101", weights=PATH)``,
``get_encoder("onnx:/path/w600k_r50.onnx")``. ``list_encoders()`` feeds ``fakeproof models list``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...registry import Registry
from .base import Encoder, EncoderSpec, WeightFile


@dataclass(frozen=True)
class EncoderEntry:
    factory: Callable[..., Encoder]  # factory(weights=None, models_dir=None) -> Encoder
    spec: Callable[..., EncoderSpec]  # spec(models_dir=None, weights=None) -> EncoderSpec, without building


def _load_all() -> None:
    # importing the modules registers them
    from . import adaface, facenet  # noqa: F401


ENCODERS: Registry[EncoderEntry] = Registry("encoder", load=_load_all)


def register_encoder(name: str, spec: Callable[..., EncoderSpec]):
    """Decorator: register ``factory(weights=None, models_dir=None) -> Encoder`` under ``name``.

    ``spec(models_dir=None)`` returns the spec without building the model (cheap; used by listings)."""

    def deco(factory):
        ENCODERS.register(name, EncoderEntry(factory, spec))
        return factory

    return deco


def encoder_names() -> list[str]:
    return sorted(ENCODERS.names())


def _unknown(name: str) -> KeyError:
    return KeyError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}, onnx:PATH")


def encoder_spec(name: str, models_dir=None, weights=None) -> EncoderSpec:
    if name.startswith("onnx:"):
        from ..onnx import onnx_spec

        return onnx_spec(name[5:])
    if name not in ENCODERS:
        raise _unknown(name)
    return ENCODERS.get(name).spec(models_dir=models_dir, weights=weights)


def get_encoder(name: str = "facenet", weights=None, models_dir=None, device: str = "cpu") -> Encoder:
    """Build an encoder by registry name, ready for ``.embed(crops)`` on ``device``."""
    if name.startswith("onnx:"):
        from ..onnx import ArcFaceOnnx

        return ArcFaceOnnx(name[5:], device=device)
    if name not in ENCODERS:
        raise _unknown(name)
    enc = ENCODERS.get(name).factory(weights=weights, models_dir=models_dir)
    return enc.to(device).eval()


def list_encoders(models_dir=None) -> list[EncoderSpec]:
    return [ENCODERS.get(n).spec(models_dir=models_dir, weights=None) for n in encoder_names()]


__all__ = [
    "ENCODERS",
    "Encoder",
    "EncoderSpec",
    "WeightFile",
    "register_encoder",
    "get_encoder",
    "encoder_spec",
    "encoder_names",
    "list_encoders",
]
