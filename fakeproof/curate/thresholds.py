"""``curate clean``'s thresholds, read on the similarity scale (:mod:`fakeproof.engine.cards`) and
turned into the raw cosines the graph works on through the model's card.

On the scale, 0.5 is every calibrated model's decision point, so ``--threshold 0.5`` means the same
thing whichever encoder is behind it."""
from __future__ import annotations


from ..engine.cards import DECISION, ModelCard

FAKE_SCALE = DECISION / 2  # deepfake rows below this mean similarity to their identity: "not like it"
DUP_SCALE = 0.97  # near-duplicates: similarity at or above this to a photo of another identity
# closer_to_other_identity: another identity's main component must beat the photo's own (both scored as
# cards.score_to_groups, itself left out) by this much on the scale. Chosen with benchmarks/curate_noise.py
# seeds 0-9, confirmed on seeds 10-29 (its figures: README, "Curation")
CLOSER_MARGIN_SCALE = 0.07
# ... and the other identity's mean similarity must reach the threshold plus this: a photo with edges to its
# own identity is not moved out on a near-tie with the decision point (benchmarks/curate_noise.py seeds 0-9;
# README, "Curation")
CLOSER_FLOOR_MARGIN_SCALE = 0.02
# a photo cut off from its identity's graph but more like it than a typical stranger (similarity >= 0, the
# median impostor pair) and with no better home among the other identities is a hard photo, not a mislabel
# (benchmarks/curate_noise.py; its figures: README, "Curation")
KEEP_FLOOR = 0.0
# ... unless its best other identity stands out: a mean similarity of at least the threshold minus
# DISTINCT_BELOW_SCALE and ahead of every further identity by DISTINCT_MARGIN_SCALE (a hard photo of the
# right person looks vaguely like several strangers, a photo of someone else like one of them; chosen and
# confirmed like CLOSER_MARGIN_SCALE)
DISTINCT_BELOW_SCALE = 0.1
DISTINCT_MARGIN_SCALE = 0.1


def curation_thresholds(card: ModelCard, threshold: float | None = None, fake_threshold: float | None = None, dup_threshold: float | None = None) -> tuple[float, float, float]:
    """(edge, deepfake, near-duplicate) thresholds as RAW cosines for ``card``'s encoder, each given on
    the similarity scale (``None``: the defaults: 0.5, 0.25, 0.97)."""
    t = DECISION if threshold is None else threshold
    f = FAKE_SCALE * t / DECISION if fake_threshold is None else fake_threshold
    d = DUP_SCALE if dup_threshold is None else dup_threshold
    return card.raw_threshold(t), card.raw_threshold(f), card.raw_threshold(d)
