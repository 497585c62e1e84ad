"""Validation metrics of a set of scored pairs (shared by ``train run`` and the benchmark).

- ``eer`` / ``threshold``: :func:`fakeproof.metrics.compute_eer` on all pairs (label 1 = genuine);
- ``error_real_deepfake`` / ``error_real_another_real``: the share of deepfake / impostor pairs
  accepted (cos >= threshold) at that EER threshold;
- ``accuracy``: share of pairs on the right side of that threshold;
- ``genuine_eer`` / ``genuine_threshold``: EER of genuine against impostor pairs only (plain face
  recognition quality, what fine-tuning must not hurt);
- ``attack_acceptance``: share of deepfake pairs accepted at ``genuine_threshold`` (how often a
  deepfake passes a system tuned only for genuine/impostor).
"""
from __future__ import annotations


import numpy as np

from ..metrics import acceptance_rate, compute_eer
from .pairs import KINDS

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


def pair_metrics(cos: np.ndarray, labels: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """``kinds``: strings from pairs.KINDS or their integer codes. NaN where a metric needs pairs
    of a kind that is absent."""
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
    return out

