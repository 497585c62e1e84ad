"""The deepfake backend registry: names -> backend classes, their weight files, and ``--backends``."""
from __future__ import annotations

from pathlib import Path

from ..engine.encoders.base import WeightFile
from ..engine.paths import models_dir as default_models_dir
from ..registry import Registry
from .backends.arc2face import Arc2FaceBackend
from .backends.base import Backend, MissingWeightsError
from .backends.classic import ClassicBackend
from .backends.ghost import GhostBackend
from .backends.instantid import InstantIDBackend
from .backends.roop import RoopBackend

BACKENDS: Registry[type[Backend]] = Registry("backend")
for _cls in (RoopBackend, GhostBackend, Arc2FaceBackend, InstantIDBackend, ClassicBackend):
    BACKENDS.register(_cls.name, _cls)
SEED_BACKENDS = ("roop", "ghost", "arc2face", "instantid")  # the four the dataset was made with


def backend_class(name: str) -> type[Backend]:
    return BACKENDS.get(name)


def create_backend(name: str, **kw) -> Backend:
    return backend_class(name)(**kw)


def list_backend_weights(models_dir=None) -> list[tuple[str, WeightFile]]:
    """Every (backend, weight file) pair, for ``fakeproof models list``."""
    md = default_models_dir(models_dir)
    return [(name, w) for name, cls in BACKENDS.items() for w in cls.weight_files(md)]


def missing_weights(names, models_dir=None) -> list[tuple[str, WeightFile]]:
    md = default_models_dir(models_dir)
    return [(n, w) for n in names for w in backend_class(n).missing(md)]


def resolve_backends(spec: str, models_dir=None) -> list[str]:
    """``all`` (the four seed backends; every weight must be present), ``available`` (those whose
    weights are present, plus ``classic``) or ``NAME[,NAME]`` (each must be complete).

    Raises :class:`MissingWeightsError` listing EVERY missing file before any work starts."""
    spec = (spec or "").strip().lower()
    md = default_models_dir(models_dir)
    if spec == "available":
        names = [n for n, cls in BACKENDS.items() if not cls.missing(md)]
        return names if "classic" in names else names + ["classic"]
    names = list(SEED_BACKENDS) if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ValueError("--backends is empty: use all, available or NAME[,NAME]")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise KeyError(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    miss = missing_weights(names, md)
    if miss:
        raise MissingWeightsError(miss)
    return list(dict.fromkeys(names))
