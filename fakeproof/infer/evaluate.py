"""Benchmark-style evaluation of a scores CSV: EER, ROC AUC, TAR@FAR, per-group acceptance.

EER and its threshold come from :func:`fakeproof.metrics.compute_eer` (the Kryptonite baseline's
formula); TAR at FAR from :func:`fakeproof.metrics.tar_at_far`, which is ``None`` ("insufficient
data") when FAR x negatives < 1. Per group (e.g. ``genuine``, ``impostor``, ``deepfake:roop``) the
acceptance rate at the EER threshold shows which attacks get through. With a ``kind`` column
(``genuine`` / ``impostor`` for pairs of two real photos, anything else for attacks, as in
``train pairs`` output and ``deepfakes-dev``) the genuine-pair EER (real pairs only) is reported
too, and each group's acceptance at ITS threshold: how often an attack passes a system tuned on
real faces alone (e.g. ``--group-column backend``: per generator family).

With ``--ci-column`` (e.g. ``identity``) every figure also gets a 95% interval from resampling that
column's values with replacement (:func:`fakeproof.metrics.group_bootstrap`): the pairs of one
person are not independent, so the honest error bar resamples people, not pairs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FakeproofError
from ..metrics import acceptance_rate, compute_eer, group_bootstrap, roc_auc, tar_at_far

FARS = (1e-2, 1e-3, 1e-4)
INSUFFICIENT = "insufficient data"
_TRUE = {"1", "1.0", "true", "yes", "y", "t", "same", "accept"}
_FALSE = {"0", "0.0", "false", "no", "n", "f", "different", "reject"}


ERROR_COLUMN = "error"  # score-pairs: why a pair could not be scored (empty when it was)
UNSCORABLE = ("refuse", "drop", "reject")  # what evaluate does with rows whose error is set


class EvaluationError(FakeproofError, ValueError):
    pass


@dataclass
class GroupResult:
    group: str
    n: int
    positives: int  # pairs labelled "accept" in this group
    acceptance_rate: float  # share scored >= the EER threshold
    attack_acceptance: float | None = None  # share scored >= the genuine-pair EER threshold
    acceptance_ci: list[float] | None = None  # 95% interval (with --ci-column)
    attack_acceptance_ci: list[float] | None = None


@dataclass
class Evaluation:
    n: int
    positives: int
    negatives: int
    eer: float
    threshold: float
    auc: float
    tar: dict[str, float | None]  # "1e-02" -> TAR or None (insufficient data)
    groups: list[GroupResult] = field(default_factory=list)
    genuine_eer: float | None = None  # EER of the real pairs alone (kind genuine vs impostor)
    genuine_threshold: float | None = None
    eer_ci: list[float] | None = None  # 95% intervals over resampled clusters (with --ci-column)
    genuine_eer_ci: list[float] | None = None
    ci: dict | None = None  # how the intervals were made: column, clusters, resamples
    fpr: np.ndarray | None = None
    tpr: np.ndarray | None = None

    def tar_text(self, far: float) -> str:
        v = self.tar[far_key(far)]
        return INSUFFICIENT if v is None else f"{v:.4f}"

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("fpr")
        d.pop("tpr")
        d["tar"] = {k: (INSUFFICIENT if v is None else v) for k, v in self.tar.items()}
        d["eer_definition"] = "Kryptonite baseline: sklearn roc_curve, first threshold set to 1.0, argmin |FNR - FPR|, EER = FPR there"
        return d


def far_key(far: float) -> str:
    return f"{far:.0e}"


def parse_labels(values) -> np.ndarray:
    """0/1, booleans or yes/no words to an int array; anything else raises :class:`EvaluationError`."""
    out = np.empty(len(values), int)
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)):
            out[i] = int(v)
            continue
        if isinstance(v, (int, float, np.integer, np.floating)) and not (isinstance(v, float) and math.isnan(v)) and v in (0, 1):
            out[i] = int(v)
            continue
        s = str(v).strip().lower()
        if s in _TRUE:
            out[i] = 1
        elif s in _FALSE:
            out[i] = 0
        else:
            raise EvaluationError(f"row {i + 1}: label {v!r} is not 0/1, true/false or yes/no")
    return out


REAL_KINDS = ("genuine", "impostor")
BOOTSTRAP = 1000  # resamples behind the 95% intervals


def _interval(values) -> list[float] | None:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    return [float(x) for x in np.percentile(v, [2.5, 97.5])] if len(v) else None


def add_intervals(ev: "Evaluation", labels, scores, groups, real, clusters, resamples: int = BOOTSTRAP, seed: int = 0, column: str = "") -> None:
    """95% intervals of ``ev``'s EERs and group acceptances: :func:`evaluate_scores` itself on each
    resample of ``clusters`` drawn with replacement (a resample without both classes is skipped)."""
    clusters = np.asarray([str(c) for c in clusters])
    n = len(set(clusters.tolist()))
    if n < 2:
        raise EvaluationError(f"intervals need at least 2 distinct values in the {column or 'cluster'} column, found {n}")
    eers, geers, acc, att = [], [], {g.group: [] for g in ev.groups}, {g.group: [] for g in ev.groups}
    for idx in group_bootstrap(clusters, resamples, seed):
        try:
            r = evaluate_scores(labels[idx], scores[idx], groups[idx] if groups is not None else None, fars=(), real_pairs=real[idx] if real is not None else None)
        except EvaluationError:
            continue
        eers.append(r.eer)
        geers.append(r.genuine_eer)
        for g in r.groups:
            acc[g.group].append(g.acceptance_rate)
            att[g.group].append(g.attack_acceptance)
    ev.eer_ci, ev.genuine_eer_ci = _interval(eers), _interval(geers) if ev.genuine_eer is not None else None
    for g in ev.groups:
        g.acceptance_ci, g.attack_acceptance_ci = _interval(acc[g.group]), _interval(att[g.group]) if g.attack_acceptance is not None else None
    ev.ci = {"column": column, "clusters": n, "resamples": int(resamples), "level": 0.95}


def evaluate_scores(labels, scores, groups=None, fars=FARS, real_pairs=None, clusters=None, resamples: int = BOOTSTRAP, cluster_name: str = "") -> Evaluation:
    """``real_pairs``: a boolean mask of the pairs of two real photos (genuine / impostor) that set
    the genuine-pair EER threshold; groups then also get their acceptance at that threshold.
    ``clusters``: each pair's cluster (e.g. identity) for 95% intervals (:func:`add_intervals`)."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if len(labels) != len(scores):
        raise EvaluationError(f"{len(labels)} labels but {len(scores)} scores")
    bad = ~np.isfinite(scores)
    if bad.any():
        raise EvaluationError(f"{int(bad.sum())} scores are not finite (e.g. row {int(np.argmax(bad)) + 1})")
    pos, neg = int(labels.sum()), int((labels == 0).sum())
    if pos == 0 or neg == 0:
        raise EvaluationError(f"EER needs both classes: {pos} positive and {neg} negative pairs")
    e = compute_eer(labels, scores)
    ev = Evaluation(
        n=len(labels),
        positives=pos,
        negatives=neg,
        eer=e.eer,
        threshold=e.threshold,
        auc=roc_auc(labels, scores),
        tar={far_key(f): tar_at_far(labels, scores, f) for f in fars},
        fpr=e.fpr,
        tpr=e.tpr,
    )
    if real_pairs is not None:
        rp = np.asarray(real_pairs, bool)
        if labels[rp].min(initial=1) == 0 and labels[rp].max(initial=0) == 1:
            g = compute_eer(labels[rp], scores[rp])
            ev.genuine_eer, ev.genuine_threshold = float(g.eer), float(g.threshold)
    if groups is not None:
        groups = np.asarray([str(g) for g in groups])
        for g in sorted(set(groups.tolist())):
            m = groups == g
            at_real = acceptance_rate(scores[m], ev.genuine_threshold) if ev.genuine_threshold is not None else None
            ev.groups.append(GroupResult(g, int(m.sum()), int(labels[m].sum()), acceptance_rate(scores[m], e.threshold), at_real))
    if clusters is not None:
        if len(clusters) != len(labels):
            raise EvaluationError(f"{len(labels)} labels but {len(clusters)} cluster values")
        add_intervals(ev, labels, scores, groups, None if real_pairs is None else np.asarray(real_pairs, bool), clusters, resamples, column=cluster_name)
    return ev


def evaluate_csv(path, label_column: str = "expected_accept", score_column: str = "similarity", group_column: str | None = "group", kind_column: str | None = "kind",
                 ci_column: str | None = None, resamples: int = BOOTSTRAP, unscorable: str = "refuse") -> Evaluation:
    """Read a scores CSV (``infer score-pairs`` output or any CSV with a label and a score column).
    ``group_column`` is used when present; naming one that is absent is an error only if it is not
    the default ``group``. ``kind_column`` (used when present) marks the real pairs that set the
    genuine-pair threshold; a pair with an empty group is grouped by its kind. ``ci_column``
    (e.g. ``identity``): 95% intervals from ``resamples`` resamples of that column's values."""
    import pandas as pd

    if resamples < 1:
        raise EvaluationError(f"--bootstrap must be at least 1, not {resamples}")
    path = Path(path)
    try:
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as e:
        raise EvaluationError(f"{path}: cannot read as CSV ({e})") from None
    for col in (label_column, score_column) + ((ci_column,) if ci_column else ()):
        if col not in df.columns:
            raise EvaluationError(f"{path}: no column {col!r} (columns: {', '.join(map(str, df.columns))})")
    n_bad = 0
    if ERROR_COLUMN in df.columns:  # score-pairs' rows with an unusable side: their 0.0 is not a measurement
        bad = df[ERROR_COLUMN].fillna("").astype(str).str.strip() != ""
        n_bad = int(bad.sum())
        if n_bad and unscorable not in UNSCORABLE:
            raise EvaluationError(f"--unscorable must be one of {', '.join(UNSCORABLE)}, not {unscorable!r}")
        if n_bad and unscorable == "refuse":
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise EvaluationError(
                f"{path}: {n_bad} row(s) have an {ERROR_COLUMN!r} (e.g. line {first + 2}: {str(df[ERROR_COLUMN].iloc[first])[:120]}); "
                "their score is not a measurement: add --unscorable drop (leave them out) or --unscorable reject (count them as rejected pairs)")
        if n_bad and unscorable == "drop":
            df = df[~bad].reset_index(drop=True)
    groups = None
    kinds = df[kind_column].fillna("").astype(str).str.strip().str.lower() if kind_column and kind_column in df.columns else None
    if group_column:
        if group_column in df.columns:
            groups = df[group_column].fillna("").astype(str)
            if kinds is not None:
                groups = groups.where(groups.str.strip() != "", kinds)
            groups = groups.tolist()
        elif group_column != "group":
            raise EvaluationError(f"{path}: no group column {group_column!r} (columns: {', '.join(map(str, df.columns))})")
    try:
        labels = parse_labels(df[label_column].tolist())
    except EvaluationError as e:
        raise EvaluationError(f"{path}: {e}") from None
    scores = pd.to_numeric(df[score_column], errors="coerce").to_numpy(np.float64)
    try:
        clusters = df[ci_column].fillna("").astype(str).tolist() if ci_column else None
        real = None if kinds is None else kinds.isin(REAL_KINDS).to_numpy()
        ev = evaluate_scores(labels, scores, groups, real_pairs=real, clusters=clusters, resamples=resamples, cluster_name=ci_column or "")
    except EvaluationError as e:
        raise EvaluationError(f"{path}: {e}") from None
    ev.unscorable = {"rows": n_bad, "policy": unscorable if n_bad else None}
    return ev


def write_json(ev: Evaluation, out, extra: dict | None = None) -> Path:
    from ..data import atomic_write_text, json_text

    out = Path(out)
    atomic_write_text(out, json_text({**ev.to_json(), **(extra or {})}))
    return out


def plot_roc(ev: Evaluation, out, title: str = "ROC") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.5))
    for a, logx in zip(ax, (False, True)):
        fpr = np.clip(ev.fpr, 1e-6, 1) if logx else ev.fpr
        a.plot(fpr, ev.tpr, lw=1.6, label=f"AUC {ev.auc:.4f}")
        a.plot([ev.eer], [1 - ev.eer], "o", color="C3", label=f"EER {ev.eer:.2%} @ {ev.threshold:.3f}")
        for f in FARS:
            v = ev.tar[far_key(f)]
            if v is not None and logx:
                a.plot([f], [v], "s", ms=4, color="C2")
        if logx:
            a.set_xscale("log")
            a.set_xlim(max(1e-4, 1.0 / max(ev.negatives, 1)) / 2, 1)
        else:
            a.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
            a.plot([0, 1], [1, 0], ":", color="grey", lw=0.8)
        a.set_xlabel("false accept rate (FAR)" + (" [log]" if logx else ""))
        a.set_ylabel("true accept rate (TAR)")
        a.grid(alpha=0.3)
        a.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{title}: {ev.positives} genuine-accept / {ev.negatives} reject pairs")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
