"""The deepfake backend registry: names -> backend classes, their weight files, and ``--backends``."""
from __future__ import annotations


from ..errors import UsageError
from ..engine.encoders.base import WeightFile
from ..engine.paths import models_dir as default_models_dir
from ..registry import Registry, UnknownNameError
from .backends.arc2face import Arc2FaceBackend
from .backends.base import Backend, MissingWeightsError
from .backends.classic import ClassicBackend
from .backends.ghost import GhostBackend
from .backends.instantid import InstantIDBackend
from .backends.morph import MorphBackend
from .backends.roop import RoopBackend
from .backends.selfblend import SelfBlendBackend

BACKENDS: Registry[type[Backend]] = Registry("backend")
for _cls in (RoopBackend, GhostBackend, Arc2FaceBackend, InstantIDBackend, ClassicBackend, SelfBlendBackend, MorphBackend):
    BACKENDS.register(_cls.name, _cls)
SEED_BACKENDS = ("roop", "ghost", "arc2face", "instantid")  # the seed recipe's four generators: what `--backends all` means


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


# the offline families and their shares when --backends is ``available`` (chosen by the
# leave-one-family-out protocol: benchmarks/train_cross_generator.py, README "Generalisation")
OFFLINE_MIX = {"classic": 1, "selfblend": 1, "morph": 1}


def parse_mix(spec: str) -> dict[str, int]:
    """``NAME[:WEIGHT][,NAME[:WEIGHT]]`` -> {name: weight} (weight: a positive integer, default 1;
    a name given twice adds up)."""
    mix: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, w = part.partition(":")
        name = name.strip()
        try:
            weight = int(w) if w.strip() else 1
        except ValueError:
            raise UsageError(f"--backends {spec!r}: weight {w!r} of {name!r} is not a whole number") from None
        if weight < 1:
            raise UsageError(f"--backends {spec!r}: weight of {name!r} must be >= 1")
        mix[name] = mix.get(name, 0) + weight
    return mix


def mix_cycle(mix: dict[str, int]) -> list[str]:
    """One cycle of backend names in which each name appears ``weight`` times, interleaved (smooth
    weighted round robin), so that a few fakes per identity already follow the mix:
    ``{"classic": 2, "selfblend": 1, "morph": 1}`` -> classic, selfblend, morph, classic."""
    total = sum(mix.values())
    current = dict.fromkeys(mix, 0)
    out = []
    for _ in range(total):
        for n, w in mix.items():
            current[n] += w
        best = max(current, key=lambda n: current[n])  # first of equals: the order given
        current[best] -= total
        out.append(best)
    return out


def resolve_backends(spec: str, models_dir=None) -> list[str]:
    """The backend cycle the runner spreads each identity's fakes over (a name repeats as often as
    its weight). ``spec``: ``all`` (the four seed backends; every weight must be present),
    ``available`` (those whose weights are present, plus the offline mix :data:`OFFLINE_MIX`) or
    ``NAME[:WEIGHT][,NAME[:WEIGHT]]`` (each must be complete), e.g. ``classic:2,selfblend:1,morph:1``.

    Raises :class:`MissingWeightsError` listing EVERY missing file before any work starts."""
    spec = (spec or "").strip().lower()
    md = default_models_dir(models_dir)
    if spec == "available":
        mix = {n: 1 for n, cls in BACKENDS.items() if n not in OFFLINE_MIX and not cls.missing(md)}
        mix.update({n: w for n, w in OFFLINE_MIX.items() if not BACKENDS.get(n).missing(md)})
        if not mix:
            raise MissingWeightsError(missing_weights(list(OFFLINE_MIX), md))
        return mix_cycle(mix)
    mix = {n: 1 for n in SEED_BACKENDS} if spec == "all" else parse_mix(spec)
    if not mix:
        raise UsageError("--backends is empty: use all, available or NAME[:WEIGHT][,NAME[:WEIGHT]]")
    unknown = [n for n in mix if n not in BACKENDS]
    if unknown:
        raise UnknownNameError(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    miss = missing_weights(list(mix), md)
    if miss:
        raise MissingWeightsError(miss)
    return mix_cycle(mix)
