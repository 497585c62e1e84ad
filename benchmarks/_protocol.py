"""The LFW View-2 style protocol on ../shared/data/celeba-pairs (10 identity-disjoint folds of 600
pairs): per-fold figures, thresholds chosen on the other 9 folds, calibration fitted on 9 folds and
checked on the 10th, and paired identity bootstrap intervals of differences between methods."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fakeproof.engine.cards import DECISION, Calibration
from fakeproof.metrics import compute_eer, group_bootstrap, tar_at_far


def load_pairs(root: Path, fast: bool = False) -> pd.DataFrame:
    """pairs.csv joined with pairs_meta.csv (fold, identities), paths made absolute. ``fast``: 4
    pairs per fold (2 genuine + 2 impostor)."""
    pairs = pd.read_csv(root / "pairs.csv").merge(pd.read_csv(root / "pairs_meta.csv"), on="pair_id")
    pairs["path_a"] = [str(root / p) for p in pairs.path_a]
    pairs["path_b"] = [str(root / p) for p in pairs.path_b]
    if fast:
        pairs = pairs.groupby(["fold", "expected_accept"], group_keys=False).head(2).reset_index(drop=True)
    return pairs


def best_accuracy_threshold(labels, scores) -> float:
    """The threshold with the highest accuracy on these pairs (LFW: chosen on the 9 training folds)."""
    order = np.argsort(-scores)
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)  # accept the first k+1
    fp = np.cumsum(1 - y)
    acc = (tp + (len(y) - y.sum()) - fp) / len(y)
    k = int(np.argmax(acc))
    return float(s[k])


def fold_figures(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> dict:
    """Per fold: EER, accuracy at the best-accuracy threshold of the other folds; pooled TAR@FAR 1e-3."""
    eers, accs = [], []
    for f in np.unique(folds):
        te, tr = folds == f, folds != f
        eers.append(compute_eer(labels[te], scores[te]).eer)
        t = best_accuracy_threshold(labels[tr], scores[tr])
        accs.append(float(np.mean((scores[te] >= t) == (labels[te] == 1))))
    tar = tar_at_far(labels, scores, 1e-3)
    return {
        "accuracy %": f"{100 * np.mean(accs):.2f} +- {100 * np.std(accs):.2f}",
        "EER % (folds)": f"{100 * np.mean(eers):.2f} +- {100 * np.std(eers):.2f}",
        "EER % (pooled)": round(100 * compute_eer(labels, scores).eer, 2),
        "TAR@FAR1e-3 %": None if tar is None else round(100 * tar, 2),
        "_eer_mean": float(np.mean(eers)),
    }


def calibration_check(labels: np.ndarray, raw: np.ndarray, folds: np.ndarray, metric: str = "cosine") -> dict:
    """Fit the similarity scale's calibration on 9 folds, read the 10th at the decision point 0.5:
    FAR and FRR there (pooled over the 10 held-out folds), mean similarity of impostor and genuine
    pairs; and the knots fitted on all 10 folds (what the card stores)."""
    scaled = np.full(len(raw), np.nan)
    for f in np.unique(folds):
        te, tr = folds == f, folds != f
        cal = Calibration.fit(raw[tr], labels[tr], "9 folds", metric)
        scaled[te] = cal(raw[te])
    full = Calibration.fit(raw, labels, "10 folds", metric)
    g, i = labels == 1, labels == 0
    return {
        "FAR @0.5 % (held out)": round(100 * float(np.mean(scaled[i] >= DECISION)), 2),
        "FRR @0.5 % (held out)": round(100 * float(np.mean(scaled[g] < DECISION)), 2),
        "mean sim. impostor": round(float(np.mean(scaled[i])), 3),
        "mean sim. genuine": round(float(np.mean(scaled[g])), 3),
        "knots (raw score at 0 / 0.5)": f"{full.raw[1]:.4f} / {full.raw[2]:.4f}",
        "raw mean impostor / genuine": f"{float(np.mean(raw[i])):.4f} / {float(np.mean(raw[g])):.4f}",
        "raw thr. @FAR1e-3": None if (t := _far_threshold(labels, raw, 1e-3)) is None else round(t, 4),
        "_knots": [full.raw[1], full.raw[2]],
        "_genuine_mean": float(np.mean(raw[g])),
    }


def _far_threshold(labels, scores, far: float) -> float | None:
    """The lowest raw score accepting at most ``far`` of the impostor pairs (as fakeproof.metrics.tar_at_far)."""
    neg = np.sort(np.asarray(scores, np.float64)[np.asarray(labels) == 0])[::-1]
    k = int(np.floor(far * len(neg)))
    return None if far * len(neg) < 1 or k >= len(neg) else float(neg[k])


def paired_eer_interval(labels, a, b, groups, n: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """EER(a) - EER(b) in points and its 95% interval, resampling identities (the same resample for both)."""
    d = []
    for idx in group_bootstrap(groups, n, seed):
        y = labels[idx]
        if y.min() == y.max():
            continue
        d.append(compute_eer(y, a[idx]).eer - compute_eer(y, b[idx]).eer)
    point = compute_eer(labels, a).eer - compute_eer(labels, b).eer
    lo, hi = np.percentile(d, [2.5, 97.5])
    return 100 * point, 100 * lo, 100 * hi
