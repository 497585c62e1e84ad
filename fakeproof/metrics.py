"""Verification metrics shared by train (validation) and infer (evaluate): one EER definition.

EER follows the Kryptonite ML Challenge baseline: ``sklearn.metrics.roc_curve`` on (label, score),
the first threshold (sklearn's +inf sentinel) replaced by 1.0 (the largest cosine), then the point
``argmin |fnr - fpr|``; the EER is the FPR there and the threshold is the one at that point.
"""
from __future__ import annotations

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
        raise ValueError("EER needs both positive (1) and negative (0) labels")
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


def acceptance_rate(scores, threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean(s >= threshold)) if len(s) else float("nan")
