"""From embeddings to flags: the whole ``clean`` decision logic, independent of how embeddings were made.

:func:`analyse` takes one row per image (key, identity, deepfake or not, embedding, what the face
engine saw) and returns the per-image table written as ``flags.csv``, the per-identity table, the
per-identity graphs (for the similarity file and heatmaps) and the merge candidates. The benchmarks
call it directly with stand-in embeddings; ``clean`` calls it with the face engine's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engine.cards import score_rows_to_groups
from ..ui import progress_task
from .graph import IdentityGraph, identity_graph
from .suggest import best_other, exact_duplicates, main_means, merge_candidates, near_duplicate_in, runner_up

FLAG_COLUMNS = [
    "key", "identity", "is_deepfake", "flagged", "reason", "component", "score",
    "suggested_identity", "suggested_cosine", "notes", "n_faces", "decision",
    "digest",  # of the photo's bytes when clean saw it: review and apply refuse a changed photo
]


@dataclass
class PhotoInfo:
    """What the face engine reported for one image (all optional for stand-in embeddings)."""

    ok: bool = True
    error: str | None = None
    n_faces: int | None = None
    fallback: str | None = None
    digest: str | None = None


@dataclass
class Analysis:
    flags: pd.DataFrame
    identities: pd.DataFrame
    graphs: dict[str, IdentityGraph]
    merges: list[tuple[str, str, float]]
    threshold: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        return self.flags[self.flags.flagged]


def analyse(
    keys: list[str],
    identities: list[str],
    is_deepfake: np.ndarray,
    emb: np.ndarray,
    threshold: float = 0.5,
    info: list[PhotoInfo] | None = None,
    fake_threshold: float | None = None,
    dup_threshold: float = 0.95,
    closer_margin: float = 0.1,
    progress: bool = True,
    keep_floor: float | None = None,
    metric: str = "cosine",
    scale=None,
    closer_floor: float | None = None,
    distinct_floor: float | None = None,
    distinct_margin: float = 0.1,
) -> Analysis:
    """Flags for every image. ``emb`` rows are the engine's embeddings (NaN rows = no embedding),
    compared by ``metric`` (the model card's: cosine of L2-normalised rows, or -euclidean distance
    of raw descriptors); every threshold and every "cosine" below is a raw score of that metric.

    Beyond the graph rule, a main-component photo is flagged (``closer_to_other_identity``) when
    another identity's main component is similar to it on average (mean cosine >= threshold) and
    more similar than its own main component (self excluded, scored the same way) by more than
    ``closer_margin``: edges to a few look-alike photos must not hide a photo of someone else who is
    in the dataset. Its own score may be above ``threshold`` (on in-the-wild photos a stranger's
    mean can be; benchmarks/curate_noise.py measures it). ``scale`` (the
    card's raw -> similarity-scale map; ``curate clean`` passes it) makes ``closer_margin`` a
    difference on the scale, the same size whatever the two scores (the calibration is piecewise
    linear); without it the margin is in raw units. ``closer_floor`` (a raw score; ``None``: ``threshold``) is
    the mean the other identity must reach for this rule: ``curate clean`` passes the one a little
    above the decision point, so a photo that has edges to its own identity is not moved out on a
    near-tie with the decision point.

    ``keep_floor`` (a raw cosine; ``curate clean`` passes the one at similarity 0, the median
    impostor pair): an ``isolated`` / ``outlier_component`` photo is NOT flagged when it has no
    better home (no other identity's main component reaches ``threshold`` on average) and its mean
    cosine to its own main component is at least ``keep_floor`` (more like its identity than a
    typical stranger): a hard photo of the right person, not a mislabel. It keeps the reason
    ``weak_match`` (unflagged) so a reviewer can still find it.

    ``distinct_floor`` (a raw score; ``None``: off) limits that: a would-be ``weak_match`` photo stays
    flagged (its graph reason, note ``distinct_other_identity``) when its best other identity reaches
    ``distinct_floor`` on average, though below ``threshold``, and beats every further identity by at
    least ``distinct_margin`` (on the scale when ``scale`` is given): a hard photo of the right
    person looks vaguely like several strangers, a photo filed under the wrong person looks like one
    of them."""
    import time

    t0 = time.perf_counter()
    n = len(keys)
    emb = np.asarray(emb, np.float32)
    is_deepfake = np.asarray(is_deepfake, bool)
    info = info or [PhotoInfo() for _ in range(n)]
    fake_threshold = threshold / 2 if fake_threshold is None else fake_threshold
    usable = np.isfinite(emb).all(1) & np.array([p.ok for p in info], bool)
    no_face = np.array([p.fallback == "whole_image" for p in info], bool)

    flagged = np.zeros(n, bool)
    reason = np.full(n, "", object)
    component = np.full(n, np.nan)
    score = np.full(n, np.nan, np.float32)
    own_score = np.full(n, np.nan, np.float32)  # to the own main component in score_to_groups' units
    notes: list[list[str]] = [[] for _ in range(n)]
    for i, p in enumerate(info):
        if not p.ok or not np.isfinite(emb[i]).all():
            flagged[i], reason[i] = True, "unreadable"
            notes[i].append(p.error or "no embedding")
        elif no_face[i]:
            flagged[i], reason[i] = True, "no_face"
        if p.fallback == "pre_aligned":
            notes[i].append("pre_aligned")
        if p.n_faces is not None and p.n_faces > 1:
            notes[i].append(f"several_faces({p.n_faces})")

    # group rows by identity (stable order)
    id_names = sorted(set(identities))
    id_index = {k: j for j, k in enumerate(id_names)}
    own = np.array([id_index[x] for x in identities], int)
    order = np.argsort(own, kind="stable")
    bounds = np.searchsorted(own[order], np.arange(len(id_names) + 1))

    graphs: dict[str, IdentityGraph] = {}
    stats: dict[str, tuple[np.ndarray, float]] = {}
    real_rows: dict[str, np.ndarray] = {}
    with progress_task("similarity graphs", len(id_names), progress) as advance:
        for j, ident in enumerate(id_names):
            rows = order[bounds[j] : bounds[j + 1]]
            rr = rows[~is_deepfake[rows] & usable[rows] & ~no_face[rows]]
            real_rows[ident] = rr
            g = identity_graph(ident, [keys[i] for i in rr], emb[rr], threshold, metric)
            graphs[ident] = g
            if g.main_stats is not None:
                stats[ident] = g.main_stats
            component[rr] = g.component
            score[rr] = g.score
            if g.group_score is not None:
                own_score[rr] = g.group_score
            for r, f, why in zip(rr, g.flagged, g.reason):
                if f:
                    flagged[r] = True
                if why:
                    reason[r] = why
            advance()
    t_graph = time.perf_counter()

    dim = emb.shape[1] if emb.ndim == 2 else 0
    means, spreads, has = main_means(id_names, stats, dim)

    # deepfakes: mean cosine to their own identity's main component
    fk = np.flatnonzero(is_deepfake & usable)
    if len(fk):
        with np.errstate(invalid="ignore"):
            s = score_rows_to_groups(metric, emb[fk], means[own[fk]], spreads[own[fk]])
        s = np.where(has[own[fk]], s, np.nan)
        score[fk] = s
        bad = fk[np.isfinite(s) & (s < fake_threshold)]
        flagged[bad] = True
        reason[bad] = "fake_unlike_identity"

    # suggestions for flagged photos with an embedding, and single-photo identities
    single = np.array([r == "single_photo" for r in reason], bool)
    want = np.flatnonzero((flagged | single) & usable & ~no_face)
    sug_idx, sug_cos = best_other(emb[want], own[want], means, spreads, has, metric)
    suggested = np.full(n, "", object)
    suggested_cos = np.full(n, np.nan, np.float32)
    for r, k, c in zip(want, sug_idx, sug_cos):
        if k >= 0:
            suggested[r] = id_names[k]
            suggested_cos[r] = c

    def _gap(other, mine):
        return scale(other) - scale(mine) if scale is not None else np.asarray(other) - np.asarray(mine)

    if keep_floor is not None:
        kept = np.array([i for i, r in enumerate(want) if reason[r] in ("isolated", "outlier_component")
                         and not (np.isfinite(suggested_cos[r]) and suggested_cos[r] >= threshold)
                         and np.isfinite(score[r]) and score[r] >= keep_floor], int)  # positions in want
        rows, kept_best, kept_reason = want[kept], sug_idx[kept], reason[want[kept]].copy()
        flagged[rows], reason[rows] = False, "weak_match"
        if distinct_floor is not None and len(rows):
            # ... unless its best other identity stands out from all the rest
            ru = runner_up(emb[rows], own[rows], kept_best, means, spreads, has, metric)
            for r, k, why, c2 in zip(rows, kept_best, kept_reason, ru):
                c = suggested_cos[r]
                if k >= 0 and np.isfinite(c) and c >= distinct_floor and np.isfinite(c2) and _gap(c, c2) >= distinct_margin:
                    flagged[r], reason[r] = True, why
                    notes[r].append("distinct_other_identity")
    for r in np.flatnonzero(single):
        if np.isfinite(suggested_cos[r]) and suggested_cos[r] >= threshold:
            flagged[r], reason[r] = True, "matches_other_identity"
    # members of a main component that look more like another identity's main component than like
    # their own (joined through edges to a few look-alike photos)
    weak = np.flatnonzero((component == 0) & ~flagged & ~is_deepfake & usable & np.isfinite(own_score))
    w_idx, w_cos = best_other(emb[weak], own[weak], means, spreads, has, metric)
    floor = threshold if closer_floor is None else max(threshold, closer_floor)
    for r, k, c in zip(weak, w_idx, w_cos):
        if k >= 0 and c >= floor and _gap(c, own_score[r]) > closer_margin:
            flagged[r], reason[r] = True, "closer_to_other_identity"
            suggested[r], suggested_cos[r] = id_names[k], c
            want = np.append(want, r)
    t_suggest = time.perf_counter()

    # near-duplicates across identities
    dups = exact_duplicates(keys, identities, [p.digest for p in info])
    pos = {k: i for i, k in enumerate(keys)} if dups else {}
    for key, others in dups.items():
        i = pos[key]
        notes[i].append("same_file_as:" + "|".join(others[:3]))
        if not flagged[i]:
            flagged[i], reason[i] = True, "duplicate_across_identities"
    for r in want:
        if not suggested[r]:
            continue
        rr = real_rows[suggested[r]]
        dk, dc = near_duplicate_in(emb[r], emb[rr], [keys[i] for i in rr], dup_threshold, metric)
        if dk:
            notes[r].append(f"near_duplicate_of:{dk}({dc:.3f})")
    t_dup = time.perf_counter()

    merges = merge_candidates(id_names, means, spreads, has, threshold, metric)
    t_merge = time.perf_counter()

    flags = pd.DataFrame(
        {
            "key": keys,
            "identity": identities,
            "is_deepfake": is_deepfake.astype(int),
            "flagged": flagged,
            "reason": reason.astype(str),
            "component": pd.array(np.where(np.isfinite(component), component, np.nan), dtype="Int64") if n else [],
            "score": np.round(score, 4),
            "suggested_identity": suggested.astype(str),
            "suggested_cosine": np.round(suggested_cos, 4),
            "notes": [";".join(x) for x in notes],
            "n_faces": pd.array([p.n_faces for p in info], dtype="Int64"),
            "decision": "",
            "digest": [p.digest or "" for p in info],
        },
        columns=FLAG_COLUMNS,
    )
    merge_of: dict[str, list[str]] = {}
    for a, b, c in merges:
        merge_of.setdefault(a, []).append(f"{b}({c:.3f})")
        merge_of.setdefault(b, []).append(f"{a}({c:.3f})")
    per_id = flags.groupby("identity", sort=True).agg(images=("key", "size"), deepfakes=("is_deepfake", "sum"), flagged=("flagged", "sum"))
    idents = pd.DataFrame(
        {
            "identity": id_names,
            "photos": [len(graphs[i].keys) for i in id_names],
            "deepfakes": [int(per_id.loc[i, "deepfakes"]) for i in id_names],
            "components": [graphs[i].n_components for i in id_names],
            "main_size": [graphs[i].main_size if graphs[i].main_stats is not None else 0 for i in id_names],
            "isolated": [int((graphs[i].component == -1).sum()) for i in id_names],
            "tie": [graphs[i].tie for i in id_names],
            "flagged": [int(per_id.loc[i, "flagged"]) for i in id_names],
            "merge_candidate": [";".join(merge_of.get(i, [])) for i in id_names],
        }
    )
    timings = {
        "graphs_s": t_graph - t0,
        "suggestions_s": t_suggest - t_graph,
        "duplicates_s": t_dup - t_suggest,
        "merge_s": t_merge - t_dup,
        "total_s": time.perf_counter() - t0,
    }
    return Analysis(flags, idents, graphs, merges, threshold, timings)

