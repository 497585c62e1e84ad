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


# How two embeddings are compared (``ModelCard.metric``): the raw score of two embeddings of the
# SAME photo (the scale's top knot, similarity 1) and the raw score at the bottom of the scale
# (similarity -1; None: twice the impostor knot, for a metric without a natural floor).
#   cosine    - dot product of L2-normalised embeddings: 1 for the same photo, -1 opposite;
#   euclidean - minus the Euclidean distance of the RAW (un-normalised) descriptors, the metric
#               dlib's network was trained with: 0 for the same photo, negative otherwise.
METRICS: dict[str, tuple[float, float | None]] = {"cosine": (1.0, -1.0), "euclidean": (0.0, None)}
RAW_SCORE_NAME = {"cosine": "cosine", "euclidean": "-euclidean distance"}
# the CSV column that holds the raw score (infer score-pairs / score-folders): named after the metric,
# so a column called ``cosine`` always holds a cosine
RAW_COLUMN = {"cosine": "cosine", "euclidean": "neg_euclidean"}


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown similarity metric {metric!r} (known: {', '.join(METRICS)})")
    return metric


@dataclass(frozen=True)
class Calibration:
    """Monotone piecewise-linear map from the metric's raw score to the similarity scale.

    ``raw`` knots strictly increase up to the metric's same-photo score (1 for cosine, 0 for
    -euclidean), which maps to 1; ``scaled`` are their images (also increasing, -1 to 1). ``metric``
    says which raw score the knots are in, so a cosine calibration can never be applied to
    Euclidean scores (:class:`ModelCard` checks). Identity (``raw == scaled``, cosine) means
    "uncalibrated": the scale IS the raw cosine."""

    raw: tuple[float, ...] = (-1.0, 1.0)
    scaled: tuple[float, ...] = (-1.0, 1.0)
    fitted: str = "uncalibrated: the raw cosine"
    metric: str = "cosine"

    def __post_init__(self):
        check_metric(self.metric)
        r, s = np.asarray(self.raw, float), np.asarray(self.scaled, float)
        if len(r) != len(s) or len(r) < 2 or not (np.all(np.diff(r) > 0) and np.all(np.diff(s) > 0)):
            raise ValueError(f"calibration knots must be two strictly increasing sequences of the same length, got {self.raw} -> {self.scaled}")

    @property
    def is_identity(self) -> bool:
        return self.metric == "cosine" and tuple(self.raw) == tuple(self.scaled)

    def __call__(self, raw):
        """The similarity of raw score(s) ``raw`` (NaN stays NaN; below/above the knots: clipped)."""
        x = np.asarray(raw, np.float64)
        out = np.interp(np.clip(x, self.raw[0], self.raw[-1]), self.raw, self.scaled)
        out = np.where(np.isnan(x), np.nan, out)
        return float(out) if out.ndim == 0 else out

    def inverse(self, scaled):
        """The raw score at similarity ``scaled`` (a threshold on the scale, in raw terms)."""
        y = np.asarray(scaled, np.float64)
        out = np.interp(np.clip(y, self.scaled[0], self.scaled[-1]), self.scaled, self.raw)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        return {"raw": [float(v) for v in self.raw], "scaled": [float(v) for v in self.scaled], "fitted": self.fitted, "metric": self.metric}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Calibration":
        """The calibration ``to_dict`` wrote (one stored before metrics existed is a cosine one)."""
        if not d:
            return IDENTITY
        return cls(tuple(float(v) for v in d["raw"]), tuple(float(v) for v in d["scaled"]), str(d.get("fitted", "")), str(d.get("metric", "cosine")))

    @classmethod
    def from_points(cls, impostor_mean: float, decision: float, fitted: str, metric: str = "cosine") -> "Calibration":
        """Knots (bottom, -1), (impostor_mean, 0), (decision, 0.5), (same photo, 1) in ``metric``'s
        raw score (:data:`METRICS`); degenerate points (a decision at or below the impostor knot, or
        at the same-photo score) are nudged so the map stays strictly increasing."""
        top, bottom = METRICS[check_metric(metric)]
        if bottom is None:  # no natural floor (-euclidean): twice the impostor knot
            bottom = 2.0 * min(float(impostor_mean), float(decision) - 1e-3, top - 2e-3)
        span = top - bottom
        d = float(min(max(decision, bottom + 0.01 * span), top - 5e-4 * span))
        lo = float(min(impostor_mean, d - 5e-4 * span))
        lo = max(lo, bottom + 5e-4 * span)
        return cls((float(bottom), lo, d, float(top)), (-1.0, 0.0, DECISION, 1.0), fitted, metric)

    @classmethod
    def fit(cls, scores, labels, fitted: str, metric: str = "cosine") -> "Calibration":
        """Fit the knots on raw scores (``metric``) of real pairs: the median impostor score -> 0,
        the EER threshold -> 0.5 (:func:`fakeproof.metrics.compute_eer`)."""
        from ..metrics import compute_eer

        scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(int)
        ok = np.isfinite(scores)
        scores, labels = scores[ok], labels[ok]
        if labels.min(initial=1) == labels.max(initial=0):
            raise ValueError("calibration needs both genuine and impostor pairs")
        e = compute_eer(labels, scores)
        return cls.from_points(float(np.median(scores[labels == 0])), float(e.threshold), fitted, metric)


IDENTITY = Calibration()


# -- the metric's arithmetic: every comparison of two embeddings is one of these ---------------
def raw_scores(metric: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise raw scores of ``metric`` (:data:`METRICS`) between ``a`` and ``b`` (NaN rows -> NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if check_metric(metric) == "euclidean":
        return -np.sqrt(((a - b) ** 2).sum(-1))
    return (a * b).sum(-1)


def raw_score_matrix(metric: str, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """``(n, m)`` raw scores of every row of ``x`` against every row of ``y`` (default ``x``; then
    the diagonal is exactly the same-photo score)."""
    x = np.asarray(x, np.float64)
    same = y is None
    y = x if same else np.asarray(y, np.float64)
    dots = x @ y.T
    if check_metric(metric) == "cosine":
        return dots
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * dots
    d = -np.sqrt(np.maximum(sq, 0.0))
    if same and len(d):
        np.fill_diagonal(d, np.where(np.isnan(np.diag(d)), np.nan, 0.0))
    return d


def group_stats(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """(mean row, spread) of a group of embeddings: spread = the mean squared distance of the rows
    to their mean. With :func:`score_to_groups` they give a photo's score to the group without
    keeping the rows (curation's identity summaries)."""
    r = np.asarray(rows, np.float64)
    m = r.mean(0)
    return m, float(((r - m) ** 2).sum(1).mean())


def score_to_groups(metric: str, x: np.ndarray, means: np.ndarray, spreads, x_spreads=None, dtype=np.float64) -> np.ndarray:
    """``(n, K)`` score of each row of ``x`` to each group (its :func:`group_stats`), in ``metric``'s
    raw units. cosine: ``x @ mean``, exactly the mean cosine to the group's members. euclidean:
    minus the root-mean-square distance to the members, ``-sqrt(|x - mean|^2 + spread)`` (exact:
    the mean squared distance is that sum), the Euclidean counterpart of a mean score. Rows of
    ``x`` that are themselves group means pass their spreads as ``x_spreads`` (group to group:
    the mean cross cosine, or minus the RMS distance between the two groups' members). ``dtype``:
    float32 where the scores only rank (curation's best-other search at scale)."""
    x, means = np.asarray(x, dtype), np.asarray(means, dtype)
    dots = x @ means.T
    if check_metric(metric) == "cosine":
        return dots
    sq = (x * x).sum(1)[:, None] + (means * means).sum(1)[None, :] - 2.0 * dots + np.asarray(spreads, dtype)[None, :]
    if x_spreads is not None:
        sq = sq + np.asarray(x_spreads, dtype)[:, None]
    return -np.sqrt(np.maximum(sq, 0.0))


def score_rows_to_groups(metric: str, x: np.ndarray, means: np.ndarray, spreads) -> np.ndarray:
    """Row ``i`` of ``x`` to group ``i`` (``means[i]``, ``spreads[i]``): the diagonal of
    :func:`score_to_groups`, without the full matrix."""
    x, means = np.asarray(x, np.float64), np.asarray(means, np.float64)
    if check_metric(metric) == "cosine":
        return (x * means).sum(-1)
    return -np.sqrt(((x - means) ** 2).sum(-1) + np.asarray(spreads, np.float64))


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

    def __post_init__(self):
        check_metric(self.metric)
        if self.calibration.metric != self.metric:
            raise ValueError(f"{self.name}: a {self.calibration.metric} calibration cannot read {self.metric} scores")

    # -- the one similarity function --------------------------------------------------------------
    @property
    def normalised(self) -> bool:
        """Whether this model's embeddings are L2-normalised (cosine) or kept raw (euclidean)."""
        return self.metric == "cosine"

    @property
    def raw_score_name(self) -> str:
        """What the raw score is called in tables and CSVs (``cosine`` / ``-euclidean distance``)."""
        return RAW_SCORE_NAME[self.metric]

    @property
    def raw_column(self) -> str:
        """The CSV column of the raw score: ``cosine`` or ``neg_euclidean`` (:data:`RAW_COLUMN`)."""
        return RAW_COLUMN[self.metric]

    def clip_raw(self, raw):
        """Raw score(s) clipped to the metric's range (rounding can push a cosine past 1 or a
        distance below 0)."""
        top, bottom = METRICS[self.metric]
        return np.clip(raw, -np.inf if bottom is None else bottom, top)

    @property
    def same_photo_score(self) -> float:
        """The raw score of two identical embeddings (the scale's 1)."""
        return METRICS[self.metric][0]

    def raw_similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The raw score of ``card.metric`` between rows of embeddings (NaN rows -> NaN): the cosine
        of L2-normalised rows, or minus the Euclidean distance of raw rows."""
        return raw_scores(self.metric, a, b)

    def raw_similarity_matrix(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Raw scores of every row of ``x`` against every row of ``y`` (default ``x``): ``(n, m)``,
        the same numbers as :meth:`raw_similarity` pair by pair."""
        return raw_score_matrix(self.metric, x, y)

    def scale(self, raw):
        """Raw score(s) of ``card.metric`` -> the similarity scale (this card's calibration)."""
        return self.calibration(raw)

    def similarity(self, a: np.ndarray, b: np.ndarray, raw: bool = False):
        """Similarity of embedding rows ``a`` and ``b`` on the scale (``raw=True``: the metric's raw score)."""
        s = self.raw_similarity(a, b)
        return s if raw else self.scale(s)

    def similarity_matrix(self, emb: np.ndarray, raw: bool = False) -> np.ndarray:
        s = self.raw_similarity_matrix(emb)
        return s if raw else self.scale(s)

    def raw_threshold(self, threshold: float) -> float:
        """A threshold on the scale as a raw score (what an edge of the curation graph needs)."""
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

# the metric each stock encoder was trained with (the rest: cosine). dlib's ResNet was trained with a
# Euclidean metric loss on its raw 128-d descriptor (dlib compares them by distance, threshold 0.6);
# on celeba-pairs (10 folds, 6,000 pairs) -euclidean beats the cosine of the L2-normalised
# descriptor by an identity-bootstrap interval that excludes 0 (README, "celeba-pairs protocol").
STOCK_METRICS: dict[str, str] = {"dlib_resnet": "euclidean"}

STOCK_OPERATING_POINTS: dict[str, OperatingPoints] = {
    # raw score -euclidean distance of the raw descriptors (test-time flip: the mean of the crop's and its mirror's)
    "dlib_resnet": OperatingPoints(eer=0.0427, eer_threshold=-0.6558, far1e3_threshold=-0.5642, impostor_mean=-0.8184, genuine_mean=-0.4776, measured=_CELEBA_PAIRS),
    "facenet": OperatingPoints(eer=0.0603, eer_threshold=0.311, far1e3_threshold=0.571, impostor_mean=0.085, genuine_mean=0.628, measured=_IN_THE_WILD),
}

STOCK_CALIBRATIONS: dict[str, Calibration] = {
    # knots: median impostor score -> 0, EER threshold -> 0.5 (Calibration.fit on all 10 folds), same photo (distance 0) -> 1;
    # fitted on 9 folds and read on the 10th, 0.5 accepts 4.07% of impostors and rejects 4.17% of genuine pairs
    "dlib_resnet": Calibration.from_points(-0.8209, -0.6558, _CELEBA_PAIRS, metric="euclidean"),
    # median impostor cosine -> 0, EER threshold -> 0.5 on celeba-pairs (all 10 folds); fitted on 9 folds and read on
    # the 10th, 0.5 accepts 7.37% of impostors and rejects 7.33% of genuine pairs
    "facenet": Calibration.from_points(0.1037, 0.3257, _CELEBA_PAIRS.replace("--encoders dlib_resnet", "--encoders facenet")),
}

# A stock encoder whose metric is not cosine, read with the cosine of its L2-normalised embedding:
# what a fine-tuned checkpoint of it (trained with a cosine loss) that stored no calibration of its
# own falls back to, and what a fusion (a cosine of L2-normalised parts) is derived from.
COSINE_OPERATING_POINTS: dict[str, OperatingPoints] = {
    # dlib's descriptors share a cone: impostor cosines sit near 0.85, so its raw thresholds are high
    "dlib_resnet": OperatingPoints(eer=0.0460, eer_threshold=0.9043, far1e3_threshold=0.9320, impostor_mean=0.8471, genuine_mean=0.9469, measured=_CELEBA_PAIRS),
}
COSINE_CALIBRATIONS: dict[str, Calibration] = {
    "dlib_resnet": Calibration.from_points(0.8485, 0.9043, _CELEBA_PAIRS),
}


def stock_metric(name: str) -> str:
    """The metric a stock encoder's card declares (``cosine`` unless :data:`STOCK_METRICS` says otherwise)."""
    return STOCK_METRICS.get(name, "cosine")


def stock_operating_points(name: str, metric: str | None = None) -> OperatingPoints | None:
    """A stock encoder's measured operating points in ``metric``'s raw score (default: its own metric)."""
    metric = metric or stock_metric(name)
    if metric == stock_metric(name):
        return STOCK_OPERATING_POINTS.get(name)
    return COSINE_OPERATING_POINTS.get(name) if metric == "cosine" else None


# declared capabilities of registry families (not probed)
_CAPABILITIES: dict[str, dict] = {
    "facenet": {"trainable": True},
    "dlib_resnet": {"trainable": True},
    "adaface_ir18": {"trainable": True},
    "adaface_ir50": {"trainable": True},
    "adaface_ir101": {"trainable": True},
}


def stock_calibration(name: str, metric: str | None = None) -> Calibration:
    """The stored calibration of a stock encoder in ``metric``'s raw score (default: the metric its
    card declares); a fusion's is the weighted mean of its parts' cosine knots (its cosine is the
    weighted mean of theirs); anything else: identity (the raw cosine)."""
    metric = metric or stock_metric(name)
    if name in STOCK_CALIBRATIONS and metric == stock_metric(name):
        return STOCK_CALIBRATIONS[name]
    if metric == "cosine" and name in COSINE_CALIBRATIONS:
        return COSINE_CALIBRATIONS[name]
    if name.startswith("fusion:") and metric == "cosine":
        from .encoders.fusion import parse_fusion

        parts = parse_fusion(name)
        cals = [stock_calibration(n, "cosine") for n, _ in parts]
        if all(len(c.raw) == 4 for c in cals):
            imp = sum(w * c.raw[1] for (_, w), c in zip(parts, cals))
            dec = sum(w * c.raw[2] for (_, w), c in zip(parts, cals))
            return Calibration.from_points(imp, dec, "derived from the parts' calibrations (weighted mean of their knots), not fitted")
    return IDENTITY


def card_from_spec(spec: EncoderSpec, name: str | None = None, calibration: Calibration | None = None, operating_points: OperatingPoints | None = None, **capabilities) -> ModelCard:
    """The card of ``spec``: its calibration decides the metric (a stock encoder's own by default;
    a fine-tuned checkpoint passes the cosine calibration fitted on its validation split)."""
    base = spec.name
    caps = {**_CAPABILITIES.get(base, {}), **capabilities}
    cal = calibration if calibration is not None else stock_calibration(base)
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
        metric=cal.metric,
        calibration=cal,
        operating_points=operating_points if operating_points is not None else stock_operating_points(base, cal.metric),
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
    the similarity scale (``raw=True``: a raw score of the card's metric). Warns when it lies outside the band between
    the mean impostor and mean genuine pair (it would accept nearly everything or nearly nothing)."""
    if threshold is None or not math.isfinite(threshold):
        return f"threshold {threshold} is not a finite number", True
    t_raw = float(threshold) if raw else card.raw_threshold(threshold)
    t_scale = float(card.scale(t_raw))
    if not card.calibrated:
        return f"{card.name}: uncalibrated (the scale is its raw cosine); threshold {threshold:g} is not measured", False
    op = card.operating_points
    where = "at" if abs(t_scale - DECISION) < 0.02 else ("above" if t_scale > DECISION else "below")
    line = f"{card.name}: threshold {t_scale:.3g} on the similarity scale (raw {card.raw_score_name} {t_raw:.3f}) is {where} its decision point 0.5 (raw {card.raw_threshold(DECISION):.3f})"
    warn = not (0.0 < t_scale < 1.0)
    if op is not None:
        line += f"; EER {100 * op.eer:.2f}% on real pairs; mean similarity impostor {float(card.scale(op.impostor_mean)):.2f} / genuine {float(card.scale(op.genuine_mean)):.2f}"
        warn = warn or not (op.impostor_mean < t_raw < op.genuine_mean)
    if warn:
        line += " - far from this model's genuine/impostor boundary: results will be mostly wrong"
    return line, warn
