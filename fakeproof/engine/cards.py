"""Model cards: what each model IS, declared in one place (the timm pretrained-cfg idea).

A :class:`ModelCard` states the crop a model takes (input size, colour order, normalisation,
alignment template and margin), how two of its embeddings are compared (``metric``), the
:class:`Calibration` that turns that raw score into fakeproof's ONE similarity scale, its measured
operating points, its licence and its capabilities (ONNX, flip-invariance, fixed geometry,
trainable). :func:`fakeproof.engine.resolve.resolve_model` turns any ``--model`` value into a card
plus weights; every consumer scores pairs with :meth:`ModelCard.similarity` (or
:meth:`ModelCard.scale` on raw cosines), so the similarity function lives here and nowhere else.

**The similarity scale.** Every encoder reports, and every threshold is read, on one scale:
different people near 0 (the median impostor pair maps to 0), the decision point at 0.5 (the
encoder's EER threshold on real pairs of unseen people), the same photo at 1. The map is a
monotone piecewise-linear function of the raw cosine through the knots (-1, -1), (impostor median,
0), (EER threshold, 0.5), (1, 1), so rankings, EERs and ROC curves are exactly those of the raw
cosine; only thresholds move. Each stock encoder's knots are fitted on ``celeba-pairs`` (10
identity-disjoint folds; ``benchmarks/verify_peers.py`` fits on 9 and reports the held-out fold) and
written below with the date and command; a fine-tuned checkpoint carries its own, fitted on its
validation split (``config.json`` ``calibration``). The raw cosine stays available: ``--raw`` in
the infer commands, the ``cosine`` column of their CSVs, ``ModelCard.similarity(..., raw=True)``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .encoders.base import EncoderSpec

DECISION = 0.5  # the scale's decision point: >= 0.5 means "same person"
SCALE_NAME = "fakeproof similarity (0 = typical different people, 0.5 = decision point, 1 = same photo)"


@dataclass(frozen=True)
class OperatingPoints:
    """Where an encoder's raw cosines sit on REAL pairs of unseen people."""

    eer: float  # real-pair EER
    eer_threshold: float  # raw cosine at the EER
    far1e3_threshold: float  # lowest raw cosine accepting <= 0.1% of impostor pairs
    impostor_mean: float  # mean impostor cosine
    genuine_mean: float  # mean genuine cosine
    measured: str  # what, when, command


@dataclass(frozen=True)
class Calibration:
    """Monotone piecewise-linear map from the raw cosine to the similarity scale.

    ``raw`` knots strictly increase from -1 to 1; ``scaled`` are their images (also increasing, -1
    to 1). Identity (``raw == scaled``) means "uncalibrated": the scale IS the raw cosine."""

    raw: tuple[float, ...] = (-1.0, 1.0)
    scaled: tuple[float, ...] = (-1.0, 1.0)
    fitted: str = "uncalibrated: the raw cosine"

    def __post_init__(self):
        r, s = np.asarray(self.raw, float), np.asarray(self.scaled, float)
        if len(r) != len(s) or len(r) < 2 or not (np.all(np.diff(r) > 0) and np.all(np.diff(s) > 0)):
            raise ValueError(f"calibration knots must be two strictly increasing sequences of the same length, got {self.raw} -> {self.scaled}")

    @property
    def is_identity(self) -> bool:
        return tuple(self.raw) == tuple(self.scaled)

    def __call__(self, raw):
        """The similarity of raw cosine(s) ``raw`` (NaN stays NaN; below/above the knots: clipped)."""
        x = np.asarray(raw, np.float64)
        out = np.interp(np.clip(x, self.raw[0], self.raw[-1]), self.raw, self.scaled)
        out = np.where(np.isnan(x), np.nan, out)
        return float(out) if out.ndim == 0 else out

    def inverse(self, scaled):
        """The raw cosine at similarity ``scaled`` (a threshold on the scale, in raw terms)."""
        y = np.asarray(scaled, np.float64)
        out = np.interp(np.clip(y, self.scaled[0], self.scaled[-1]), self.scaled, self.raw)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        return {"raw": [float(v) for v in self.raw], "scaled": [float(v) for v in self.scaled], "fitted": self.fitted}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Calibration":
        if not d:
            return IDENTITY
        return cls(tuple(float(v) for v in d["raw"]), tuple(float(v) for v in d["scaled"]), str(d.get("fitted", "")))

    @classmethod
    def from_points(cls, impostor_mean: float, decision: float, fitted: str) -> "Calibration":
        """Knots (-1, -1), (impostor_mean, 0), (decision, 0.5), (1, 1); degenerate points (a decision
        at or below the impostor mean, or at 1) are nudged so the map stays strictly increasing."""
        d = float(min(max(decision, -0.98), 0.999))
        lo = float(min(impostor_mean, d - 1e-3))
        lo = max(lo, -0.999)
        return cls((-1.0, lo, d, 1.0), (-1.0, 0.0, DECISION, 1.0), fitted)

    @classmethod
    def fit(cls, scores, labels, fitted: str) -> "Calibration":
        """Fit the knots on raw cosines of real pairs: the median impostor cosine -> 0, the EER
        threshold -> 0.5 (:func:`fakeproof.metrics.compute_eer`)."""
        from ..metrics import compute_eer

        scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(int)
        ok = np.isfinite(scores)
        scores, labels = scores[ok], labels[ok]
        if labels.min(initial=1) == labels.max(initial=0):
            raise ValueError("calibration needs both genuine and impostor pairs")
        e = compute_eer(labels, scores)
        return cls.from_points(float(np.median(scores[labels == 0])), float(e.threshold), fitted)


IDENTITY = Calibration()


@dataclass(frozen=True)
class ModelCard:
    """Everything the engine and the commands need to know about a model, declared."""

    name: str  # registry name or what --model named
    input_size: tuple[int, int]
    color_order: str
    normalisation: str
    template: str
    align_margin: float
    embedding_dim: int
    licence: str
    source: str
    metric: str = "cosine"  # how two embeddings are compared before calibration
    calibration: Calibration = IDENTITY
    operating_points: OperatingPoints | None = None
    is_onnx: bool = False
    flip_invariant: bool = False  # the model averages the mirror image itself (the engine does not flip)
    fixed_geometry: bool = False  # the alignment margin cannot be changed
    trainable: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    # -- the one similarity function --------------------------------------------------------------
    def raw_similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The raw score of ``card.metric`` between rows of L2-normalised embeddings (NaN rows -> NaN)."""
        if self.metric != "cosine":
            raise ValueError(f"{self.name}: unknown metric {self.metric!r}")
        return (np.asarray(a, np.float64) * np.asarray(b, np.float64)).sum(-1)

    def scale(self, raw):
        """Raw cosine(s) -> the similarity scale (this card's calibration)."""
        return self.calibration(raw)

    def similarity(self, a: np.ndarray, b: np.ndarray, raw: bool = False):
        """Similarity of embedding rows ``a`` and ``b`` on the scale (``raw=True``: the raw cosine)."""
        s = self.raw_similarity(a, b)
        return s if raw else self.scale(s)

    def similarity_matrix(self, emb: np.ndarray, raw: bool = False) -> np.ndarray:
        e = np.asarray(emb, np.float64)
        s = e @ e.T
        return s if raw else self.scale(s)

    def raw_threshold(self, threshold: float) -> float:
        """A threshold on the scale as a raw cosine (what an edge of the curation graph needs)."""
        return float(self.calibration.inverse(threshold))

    @property
    def calibrated(self) -> bool:
        return not self.calibration.is_identity

    def to_dict(self) -> dict:
        d = asdict(self)
        d["calibration"] = self.calibration.to_dict()
        return d

    def with_(self, **kw) -> "ModelCard":
        return replace(self, **kw)


# -- the stock encoders' measured facts ---------------------------------------------------------
_CELEBA_PAIRS = (
    "`.venv/bin/python benchmarks/verify_peers.py --encoders dlib_resnet --flip on` (its calibration table) on "
    "../shared/data/celeba-pairs (6,000 real pairs of 3,674 unseen people, all 10 folds), engine defaults "
    "(MTCNN, own alignment, test-time flip), 2026-12-04"
)
_IN_THE_WILD = "benchmarks/verify_peers.py, ../shared/data celeba-mini + five-celebrities (2,254 genuine + 2,254 impostor real pairs), flip on, 2026-11-25"

STOCK_OPERATING_POINTS: dict[str, OperatingPoints] = {
    # dlib's descriptors share a cone: impostor cosines sit near 0.85, so its raw thresholds are high
    "dlib_resnet": OperatingPoints(eer=0.0460, eer_threshold=0.9043, far1e3_threshold=0.9320, impostor_mean=0.8471, genuine_mean=0.9469, measured=_CELEBA_PAIRS),
    "facenet": OperatingPoints(eer=0.0603, eer_threshold=0.311, far1e3_threshold=0.571, impostor_mean=0.085, genuine_mean=0.628, measured=_IN_THE_WILD),
}

STOCK_CALIBRATIONS: dict[str, Calibration] = {
    # knots: median impostor cosine -> 0, EER threshold -> 0.5 (Calibration.fit on all 10 folds); fitted on 9
    # folds and read on the 10th, 0.5 accepts 4.57% of impostors and rejects 4.60% of genuine pairs
    "dlib_resnet": Calibration.from_points(0.8485, 0.9043, _CELEBA_PAIRS),
    # not yet re-fitted on celeba-pairs: the mean impostor cosine and the EER threshold of the in-the-wild pairs
    "facenet": Calibration.from_points(0.085, 0.311, _IN_THE_WILD),
}

# declared capabilities of registry families (not probed)
_CAPABILITIES: dict[str, dict] = {
    "facenet": {"trainable": True},
    "dlib_resnet": {"trainable": True},
    "adaface_ir18": {"trainable": True},
    "adaface_ir50": {"trainable": True},
    "adaface_ir101": {"trainable": True},
}


def stock_calibration(name: str) -> Calibration:
    """The stored calibration of a stock encoder; a fusion's is the weighted mean of its parts'
    knots' raw cosines (its cosine is the weighted mean of theirs); anything else: identity."""
    if name in STOCK_CALIBRATIONS:
        return STOCK_CALIBRATIONS[name]
    if name.startswith("fusion:"):
        from .encoders.fusion import parse_fusion

        parts = parse_fusion(name)
        cals = [STOCK_CALIBRATIONS.get(n) for n, _ in parts]
        if all(c is not None and len(c.raw) == 4 for c in cals):
            imp = sum(w * c.raw[1] for (_, w), c in zip(parts, cals))
            dec = sum(w * c.raw[2] for (_, w), c in zip(parts, cals))
            return Calibration.from_points(imp, dec, "derived from the parts' calibrations (weighted mean of their knots), not fitted")
    return IDENTITY


def card_from_spec(spec: EncoderSpec, name: str | None = None, calibration: Calibration | None = None, operating_points: OperatingPoints | None = None, **capabilities) -> ModelCard:
    base = spec.name
    caps = {**_CAPABILITIES.get(base, {}), **capabilities}
    return ModelCard(
        name=name or base,
        input_size=tuple(spec.input_size),
        color_order=spec.color_order,
        normalisation=spec.normalisation,
        template=spec.template,
        align_margin=float(spec.align_margin),
        embedding_dim=int(spec.embedding_dim),
        licence=spec.licence,
        source=spec.source,
        calibration=calibration if calibration is not None else stock_calibration(base),
        operating_points=operating_points if operating_points is not None else STOCK_OPERATING_POINTS.get(base),
        **caps,
    )


def card_for_encoder(encoder, calibration: Calibration | None = None, name: str | None = None) -> ModelCard:
    """The card of a built encoder: its spec plus the capabilities its class declares (:class:`~fakeproof.engine.encoders.base.Encoder`)."""
    return card_from_spec(
        encoder.spec,
        name=name,
        calibration=calibration,
        is_onnx=bool(encoder.is_onnx),
        flip_invariant=bool(encoder.mirrors_itself),
        fixed_geometry=bool(encoder.fixed_geometry),
        trainable=not encoder.is_onnx,
    )


def threshold_finite(threshold: float) -> bool:
    return threshold is not None and math.isfinite(threshold)


def describe_threshold(card: ModelCard, threshold: float, raw: bool = False) -> tuple[str, bool]:
    """(one line saying what ``threshold`` means for the model, whether to warn). ``threshold`` is on
    the similarity scale (``raw=True``: a raw cosine). Warns when it lies outside the band between
    the mean impostor and mean genuine pair (it would accept nearly everything or nearly nothing)."""
    if threshold is None or not math.isfinite(threshold):
        return f"threshold {threshold} is not a finite number", True
    t_raw = float(threshold) if raw else card.raw_threshold(threshold)
    t_scale = float(card.scale(t_raw))
    if not card.calibrated:
        return f"{card.name}: uncalibrated (the scale is its raw cosine); threshold {threshold:g} is not measured", False
    op = card.operating_points
    where = "at" if abs(t_scale - DECISION) < 0.02 else ("above" if t_scale > DECISION else "below")
    line = f"{card.name}: threshold {t_scale:.3g} on the similarity scale (raw cosine {t_raw:.3f}) is {where} its decision point 0.5 (raw {card.raw_threshold(DECISION):.3f})"
    warn = not (0.0 < t_scale < 1.0)
    if op is not None:
        line += f"; EER {100 * op.eer:.2f}% on real pairs; mean similarity impostor {float(card.scale(op.impostor_mean)):.2f} / genuine {float(card.scale(op.genuine_mean)):.2f}"
        warn = warn or not (op.impostor_mean < t_raw < op.genuine_mean)
    if warn:
        line += " - far from this model's genuine/impostor boundary: results will be mostly wrong"
    return line, warn
