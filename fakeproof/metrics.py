"""Verification metrics shared by train (validation), infer (evaluate) and the demo: one EER
definition, one set of pair metrics.

EER follows the Kryptonite ML Challenge baseline: ``sklearn.metrics.roc_curve`` on (label, score),
the first threshold (sklearn's +inf sentinel) replaced by 1.0 (the largest cosine), then the point
``argmin |fnr - fpr|``; the EER is the FPR there and the threshold is the one at that point.
"""
from __future__ import annotations

from .errors import InputError

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


@dataclass
class EER:
    eer: float
    threshold: float
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def compute_eer(labels, scores) -> EER:
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.min(initial=1) == labels.max(initial=0):
        raise InputError("EER needs both positive (1) and negative (0) labels")
    fpr, tpr, thr = roc_curve(labels, scores, pos_label=1)
    thr = thr.copy()
    thr[0] = 1.0
    fnr = 1.0 - tpr
    idx = int(np.nanargmin(np.abs(fnr - fpr)))
    return EER(float(fpr[idx]), float(thr[idx]), fpr, tpr, thr)


def tar_at_far(labels, scores, far: float) -> float | None:
    """True accept rate at the largest threshold whose FAR <= ``far``; None when there are too few
    negatives for that FAR to be measured (far * negatives < 1)."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    neg = scores[labels == 0]
    pos = scores[labels == 1]
    if far * len(neg) < 1 or len(pos) == 0:
        return None
    k = int(np.floor(far * len(neg)))  # at most k negatives may be accepted
    neg_sorted = np.sort(neg)[::-1]
    thr = neg_sorted[k] if k < len(neg_sorted) else -np.inf  # accept scores strictly above
    return float(np.mean(pos > thr))


def roc_auc(labels, scores) -> float:
    return float(roc_auc_score(np.asarray(labels).astype(int), np.asarray(scores, dtype=np.float64)))


def group_bootstrap(groups, n: int = 1000, seed: int = 0):
    """``n`` resamples (index arrays) that draw whole groups with replacement, e.g. identities:
    the pairs of one person are not independent, so a confidence interval over a pair protocol
    resamples people, not pairs."""
    _, inv = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inv == i) for i in range(inv.max(initial=-1) + 1)]
    g = np.random.default_rng(seed)
    for _ in range(n):
        yield np.concatenate([members[i] for i in g.integers(len(members), size=len(members))])


def acceptance_rate(scores, threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean(s >= threshold)) if len(s) else float("nan")


# -- metrics of genuine / impostor / deepfake pairs ----------------------------------------------
KINDS = ("genuine", "impostor", "deepfake")  # the kinds of pair `train pairs` builds (label 1, 0, 0)
KIND_CODE = {k: i for i, k in enumerate(KINDS)}  # a kind as the int8 code the training arrays hold
# Metrics of a set of scored pairs (train run's validation, the demo, the train benchmark):
#
# - ``eer`` / ``threshold``: :func:`fakeproof.metrics.compute_eer` on all pairs (label 1 = genuine);
# - ``error_real_deepfake`` / ``error_real_another_real``: the share of deepfake / impostor pairs
#   accepted (cos >= threshold) at that EER threshold;
# - ``accuracy``: share of pairs on the right side of that threshold;
# - ``genuine_eer`` / ``genuine_threshold``: EER of genuine against impostor pairs only (plain face
#   recognition quality, what fine-tuning must not hurt);
# - ``attack_acceptance``: share of deepfake pairs accepted at ``genuine_threshold`` (how often a
#   deepfake passes a system tuned only for genuine/impostor);
# - ``attack_acceptance:<family>``: the same for the fakes of one generator family, when the pairs'
#   families are given (see :mod:`fakeproof.train.families`).
FAMILY_PREFIX = "attack_acceptance:"
METRIC_FIELDS = (
    "eer",
    "threshold",
    "error_real_deepfake",
    "error_real_another_real",
    "accuracy",
    "genuine_eer",
    "genuine_threshold",
    "attack_acceptance",
)


def pair_metrics(cos: np.ndarray, labels: np.ndarray, kinds: np.ndarray, families=None) -> dict[str, float]:
    """``kinds``: strings from :data:`KINDS` or their integer codes. NaN where a metric needs pairs
    of a kind that is absent. ``families``: each pair's generator family ("" for real pairs)."""
    cos = np.asarray(cos, np.float64)
    labels = np.asarray(labels).astype(int)
    kinds = np.asarray(kinds)
    if kinds.dtype.kind in "iu":
        kinds = np.array(KINDS, dtype=object)[kinds.astype(int)]
    nan = float("nan")
    out = dict.fromkeys(METRIC_FIELDS, nan)
    if labels.min(initial=1) == labels.max(initial=0):
        return out
    e = compute_eer(labels, cos)
    out["eer"], out["threshold"] = e.eer, e.threshold
    df, imp = cos[kinds == "deepfake"], cos[kinds == "impostor"]
    out["error_real_deepfake"] = acceptance_rate(df, e.threshold) if len(df) else nan
    out["error_real_another_real"] = acceptance_rate(imp, e.threshold) if len(imp) else nan
    out["accuracy"] = float(np.mean((cos >= e.threshold) == (labels == 1)))
    gen = (kinds == "genuine") | (kinds == "impostor")
    if len(imp) and (kinds == "genuine").any():
        g = compute_eer(labels[gen], cos[gen])
        out["genuine_eer"], out["genuine_threshold"] = g.eer, g.threshold
        out["attack_acceptance"] = acceptance_rate(df, g.threshold) if len(df) else nan
        if families is not None:
            fam = np.asarray(families, dtype=object)
            for f in sorted({str(x) for x in fam[kinds == "deepfake"] if x}):
                out[FAMILY_PREFIX + f] = acceptance_rate(cos[(kinds == "deepfake") & (fam == f)], g.threshold)
    return out
