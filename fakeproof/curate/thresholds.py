"""``curate clean``'s thresholds, read on the similarity scale (:mod:`fakeproof.engine.cards`) and
turned into the raw cosines the graph works on through the model's card.

On the scale, 0.5 is every calibrated model's decision point, so ``--threshold 0.5`` means the same
thing whichever encoder is behind it."""
from __future__ import annotations

import math

from ..engine.cards import DECISION, ModelCard

FAKE_SCALE = DECISION / 2  # deepfake rows below this mean similarity to their identity: "not like it"
DUP_SCALE = 0.97  # near-duplicates: similarity at or above this to a photo of another identity
CLOSER_MARGIN_SCALE = 0.2  # another identity must be closer than the own by this much (on the scale)
# a photo cut off from its identity's graph but more like it than a typical stranger (similarity >= 0, the
# median impostor pair) and with no better home among the other identities is a hard photo, not a mislabel
# (benchmarks/curate_noise.py: precision on celeba-mini at 10% noise 0.90 -> 0.97, recall unchanged; see README)
KEEP_FLOOR = 0.0


def curation_thresholds(card: ModelCard, threshold: float | None = None, fake_threshold: float | None = None, dup_threshold: float | None = None) -> tuple[float, float, float]:
    """(edge, deepfake, near-duplicate) thresholds as RAW cosines for ``card``'s encoder, each given on
    the similarity scale (``None``: the defaults: 0.5, 0.25, 0.97)."""
    t = DECISION if threshold is None else threshold
    f = FAKE_SCALE * t / DECISION if fake_threshold is None else fake_threshold
    d = DUP_SCALE if dup_threshold is None else dup_threshold
    return card.raw_threshold(t), card.raw_threshold(f), card.raw_threshold(d)


def closer_margin(card: ModelCard, threshold_raw: float) -> float:
    """:data:`CLOSER_MARGIN_SCALE` around the edge threshold, as a raw-cosine difference."""
    s = float(card.scale(threshold_raw))
    return card.raw_threshold(min(s + CLOSER_MARGIN_SCALE / 2, 1.0)) - card.raw_threshold(max(s - CLOSER_MARGIN_SCALE / 2, -1.0))


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
