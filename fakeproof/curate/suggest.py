"""Cross-identity checks on top of the per-identity graphs.

Every identity is summarised by its main component's mean embedding and spread
(:func:`fakeproof.engine.cards.group_stats`), so :func:`~fakeproof.engine.cards.score_to_groups`
gives a photo's mean score to that component in the card's raw units (cosine: exactly the mean
cosine; -euclidean: minus the root-mean-square distance): the same scale as the per-photo ``score``
and as the edge threshold. "Cosine" below means that raw score. From it:

- a suggested identity for a flagged photo: the other identity whose main component it matches best;
- merge candidates: identity pairs whose main components have mean cross cosine >= threshold;
- near-duplicates across identities: identical file content anywhere, and a flagged photo whose
  cosine to some photo of its suggested identity is >= ``dup_threshold``;
- deepfake rows that do not resemble their own identity (mean cosine below ``fake_threshold``).

All products are chunked so 100k photos / 10k identities fit in a few hundred MB.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..engine.cards import raw_scores, score_rows_to_groups, score_to_groups


def main_means(ids: list[str], stats: dict[str, tuple[np.ndarray, float]], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, D) mean embedding and (K,) spread of each identity's main component, and a (K,) mask of
    identities that have one (``stats``: identity -> :func:`~fakeproof.engine.cards.group_stats`)."""
    m = np.zeros((len(ids), dim), np.float64)
    spread = np.zeros(len(ids), np.float64)
    has = np.zeros(len(ids), bool)
    for k, ident in enumerate(ids):
        st = stats.get(ident)
        if st is not None:
            m[k], spread[k] = st
            has[k] = True
    return m, spread, has


def _other_scores(emb: np.ndarray, own: np.ndarray, means: np.ndarray, spreads, has: np.ndarray, metric: str, chunk: int, dtype=np.float64):
    """Yield ``(start, scores)`` per chunk of ``emb`` rows: the ``(rows, K)`` score to every identity's
    main component (:func:`~fakeproof.engine.cards.score_to_groups`, in ``dtype``), -inf for identities
    without one (``~has``) and for each row's own identity ``own``."""
    for s in range(0, len(emb), chunk):
        sc = score_to_groups(metric, np.asarray(emb[s : s + chunk], dtype), means, spreads, dtype=dtype)
        sc[:, ~has] = -np.inf
        sc[np.arange(len(sc)), own[s : s + chunk]] = -np.inf
        yield s, sc


def best_other(emb: np.ndarray, own: np.ndarray, means: np.ndarray, spreads: np.ndarray, has: np.ndarray, metric: str = "cosine", chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``emb`` (own identity index ``own``): the best other identity index and its cosine.

    Returns (-1, NaN) where there is no other identity with a main component."""
    n = len(emb)
    idx = np.full(n, -1, int)
    cos = np.full(n, np.nan, np.float32)
    if n == 0 or not has.any():
        return idx, cos
    # the search runs in float32 (every main-component member goes through it: 97k photos x 10k
    # identities at Kryptonite scale); the winner's score is then recomputed exactly
    means32, spreads32 = means.astype(np.float32), np.asarray(spreads, np.float32)
    for s, sc in _other_scores(emb, own, means32, spreads32, has, metric, chunk, np.float32):
        b = sc.argmax(1)
        ok = np.isfinite(sc[np.arange(len(sc)), b])
        if ok.any():
            exact = score_rows_to_groups(metric, emb[s : s + chunk][ok], means[b[ok]], np.asarray(spreads)[b[ok]])
            idx[s : s + chunk][ok] = b[ok]
            cos[s : s + chunk][ok] = exact
    return idx, cos


def runner_up(emb: np.ndarray, own: np.ndarray, best: np.ndarray, means: np.ndarray, spreads: np.ndarray, has: np.ndarray, metric: str = "cosine", chunk: int = 2048) -> np.ndarray:
    """For each row of ``emb``: its score to the best other identity after ``best`` (its own identity
    ``own`` and ``best`` left out), in the units of :func:`best_other`; NaN where there is none."""
    out = np.full(len(emb), np.nan, np.float64)
    for s, sc in _other_scores(emb, own, means, spreads, has, metric, chunk):
        b = best[s : s + chunk]
        sc[np.flatnonzero(b >= 0), b[b >= 0]] = -np.inf
        m = sc.max(1) if sc.shape[1] else np.full(len(sc), -np.inf)
        out[s : s + chunk] = np.where(np.isfinite(m), m, np.nan)
    return out


def merge_candidates(ids: list[str], means: np.ndarray, spreads: np.ndarray, has: np.ndarray, threshold: float, metric: str = "cosine", chunk: int = 2048) -> list[tuple[str, str, float]]:
    """Identity pairs (a < b) whose main components' mean cross cosine is >= threshold, best first."""
    out = []
    k_idx = np.flatnonzero(has)
    m, sp = means[k_idx], spreads[k_idx]
    for s in range(0, len(m), chunk):
        sc = score_to_groups(metric, m[s : s + chunk], m, sp, x_spreads=sp[s : s + chunk])
        for r, c in zip(*np.nonzero(sc >= threshold)):
            a, b = s + r, c
            if a < b:
                out.append((ids[k_idx[a]], ids[k_idx[b]], float(sc[r, c])))
    out.sort(key=lambda t: -t[2])
    return out


def exact_duplicates(keys: list[str], identities: list[str], digests: list[str | None]) -> dict[str, list[str]]:
    """key -> other keys with identical file content in a DIFFERENT identity."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(digests):
        if d:
            groups[d].append(i)
    out: dict[str, list[str]] = {}
    for members in groups.values():
        if len(members) < 2 or len({identities[i] for i in members}) < 2:
            continue
        for i in members:
            others = [keys[j] for j in members if identities[j] != identities[i]]
            if others:
                out[keys[i]] = others
    return out


def near_duplicate_in(emb: np.ndarray, candidates: np.ndarray, cand_keys: list[str], dup_threshold: float, metric: str = "cosine") -> tuple[str | None, float]:
    """The candidate most similar to ``emb`` if its cosine is >= dup_threshold."""
    if len(candidates) == 0:
        return None, float("nan")
    sc = raw_scores(metric, candidates, np.asarray(emb)[None, :])
    j = int(sc.argmax())
    return (cand_keys[j], float(sc[j])) if sc[j] >= dup_threshold else (None, float(sc[j]))
