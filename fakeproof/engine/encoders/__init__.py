"""Registry of face encoders (modelled on timm's registry: a name maps to a factory and a spec).

``get_encoder("facenet")``, ``get_encoder("adaface_ir101", weights=PATH)``,
``get_encoder("onnx:/path/w600k_r50.onnx")``, ``get_encoder("fusion:0.3*facenet+0.7*dlib_resnet")``,
``get_encoder("auto")``. ``list_encoders()`` feeds ``fakeproof models list``.

``auto`` (the default everywhere) is resolved by :func:`resolve_encoder_name`: AdaFace IR-101 when
the user's weights are present, else :data:`BEST_OFFLINE`, the most accurate encoder whose weights
ship in registry packages (chosen by ``benchmarks/verify_peers.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...errors import UsageError
from ...registry import Registry, UnknownNameError
from .base import Encoder, EncoderSpec, WeightFile

AUTO = "auto"
DEFAULT_ENCODER = AUTO
# The most accurate offline encoder on real pairs at >= 8 img/s on 2 CPU cores (benchmarks/verify_peers.py; the README's
# Results give the figures on celeba-pairs' 6,000 pairs and on the in-the-wild pairs, with the peer in the same run).
BEST_OFFLINE = "dlib_resnet"
PREFERRED_WITH_WEIGHTS = "adaface_ir101"


@dataclass(frozen=True)
class EncoderEntry:
    factory: Callable[..., Encoder]  # factory(weights=None, models_dir=None) -> Encoder
    spec: Callable[..., EncoderSpec]  # spec(models_dir=None, weights=None) -> EncoderSpec, without building


def _load_all() -> None:
    """Import every module of this package: an encoder module registers itself (``@register_encoder``),
    so a new encoder is its own file here and nothing else in the package."""
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")


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


def _unknown(name: str) -> UnknownNameError:
    return UnknownNameError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}, auto, onnx:PATH, fusion:W*A+W*B")


def resolve_encoder_name(name: str, models_dir=None) -> str:
    """``auto`` -> the encoder it stands for on this machine; any other name unchanged."""
    if name != AUTO:
        return name
    try:
        if all(w.present for w in ENCODERS.get(PREFERRED_WITH_WEIGHTS).spec(models_dir=models_dir, weights=None).weights):
            return PREFERRED_WITH_WEIGHTS
    except Exception:  # noqa: BLE001 - a missing or odd models folder means "not present"
        pass
    return BEST_OFFLINE


def encoder_spec(name: str, models_dir=None, weights=None) -> EncoderSpec:
    name = resolve_encoder_name(name, models_dir)
    if name.startswith("fusion:"):
        return get_encoder(name, models_dir=models_dir).spec
    if name.startswith("onnx:"):
        from ..onnx import onnx_spec

        return onnx_spec(name[5:])
    if name not in ENCODERS:
        raise _unknown(name)
    return ENCODERS.get(name).spec(models_dir=models_dir, weights=weights)


def get_encoder(name: str = DEFAULT_ENCODER, weights=None, models_dir=None, device: str = "cpu") -> Encoder:
    """Build an encoder by registry name, ready for ``.embed(crops)`` on ``device``."""
    name = resolve_encoder_name(name, models_dir)
    if name.startswith("fusion:"):
        from .fusion import FusionEncoder, parse_fusion

        if weights:
            raise UsageError(f"{name}: --weights does not apply to a fusion (give each part its own weights file in the models folder)")
        parts = [(get_encoder(n, models_dir=models_dir, device=device), w) for n, w in parse_fusion(name)]
        return FusionEncoder(parts).to(device).eval()
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
    "AUTO",
    "BEST_OFFLINE",
    "DEFAULT_ENCODER",
    "ENCODERS",
    "Encoder",
    "EncoderSpec",
    "WeightFile",
    "register_encoder",
    "resolve_encoder_name",
    "get_encoder",
    "encoder_spec",
    "encoder_names",
    "list_encoders",
]
