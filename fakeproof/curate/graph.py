"""Per-identity similarity graph: which real photos of an identity belong together.

For one identity, the matrix of raw scores between its real photos' embeddings (the model card's
metric: cosine, or -euclidean distance for stock dlib; :mod:`fakeproof.engine.cards`) defines a graph
with an edge wherever score >= threshold (a raw score; ``curate clean`` reads it off the similarity
scale). "Cosine" below means that raw score. Isolated nodes are dropped, the rest splits into connected
components, and the largest component is taken as "the identity". Everything else is flagged.

Choices for the corner cases (also written to ``flags.csv`` as the ``reason``):

- 1 photo: nothing to compare with; not flagged (``single_photo``). The cross-identity check in
  :mod:`fakeproof.curate.suggest` still reports it when it matches another identity better.
- 2 photos without an edge: no way to tell which one is wrong, so both are flagged
  (``pair_disagrees``).
- 3+ photos and no edge at all: no consensus; every photo is flagged (``no_consensus``).
- Two or more components of the same, largest size: the one with the highest mean cosine to
  all other photos of the identity is the main component (a deterministic, central choice); the
  other tied ones are flagged as ``tied_component`` so the reviewer knows the call was close.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ..engine.cards import check_metric, group_stats, raw_score_matrix

# component ids written to flags.csv
ISOLATED = -1
MAIN = 0


@dataclass
class IdentityGraph:
    """The result for one identity. Arrays are aligned with the identity's usable real photos."""

    identity: str
    keys: list[str]
    sim: np.ndarray  # (n, n) cosine
    component: np.ndarray  # (n,) int: 0 main, 1.. other components by size, -1 isolated
    flagged: np.ndarray  # (n,) bool
    reason: list[str]  # "" when in the main component
    score: np.ndarray  # (n,) mean cosine to the main component (excluding self); NaN if none
    n_components: int = 0
    tie: bool = False
    main_stats: tuple[np.ndarray, float] | None = field(default=None, repr=False)  # main members' (mean embedding, spread): cards.group_stats
    group_score: np.ndarray | None = field(default=None, repr=False)  # (n,) score to the main component (self excluded) in the units of cards.score_to_groups: mean cosine, or minus the RMS distance

    @property
    def main_size(self) -> int:
        return int((self.component == MAIN).sum())

    def order(self) -> np.ndarray:
        """Photo order for heatmaps: by component (main first, isolated last), then by score."""
        comp = np.where(self.component == ISOLATED, 10**9, self.component)
        return np.lexsort((-np.nan_to_num(self.score, nan=-2.0), comp))


def identity_graph(identity: str, keys: list[str], emb: np.ndarray, threshold: float, metric: str = "cosine") -> IdentityGraph:
    """Graph, components and flags for one identity's usable real photos (``emb`` as the engine
    gives them for ``metric``: L2-normalised for cosine, raw for euclidean)."""
    n = len(keys)
    emb = np.asarray(emb, np.float32)
    sim = raw_score_matrix(metric, emb).astype(np.float32) if n else np.zeros((0, 0), np.float32)
    comp = np.full(n, ISOLATED, int)
    flagged = np.zeros(n, bool)
    reason = [""] * n
    score = np.full(n, np.nan, np.float32)
    if n == 0:
        return IdentityGraph(identity, keys, sim, comp, flagged, reason, score)
    if n == 1:
        comp[0] = MAIN
        reason[0] = "single_photo"
        return IdentityGraph(identity, keys, sim, comp, flagged, reason, score, 1, False, group_stats(emb[:1]))

    g = nx.Graph()
    g.add_nodes_from(range(n))
    iu, ju = np.nonzero(np.triu(sim >= threshold, k=1))
    g.add_edges_from(zip(iu.tolist(), ju.tolist()))
    g.remove_nodes_from([v for v in list(g.nodes) if g.degree(v) == 0])
    comps = [sorted(c) for c in nx.connected_components(g)]
    if not comps:
        reason = ["pair_disagrees" if n == 2 else "no_consensus"] * n
        flagged[:] = True
        # score: mean cosine to all other photos, so the least typical come first in review
        score = ((sim.sum(1) - np.diag(sim)) / (n - 1)).astype(np.float32)
        return IdentityGraph(identity, keys, sim, comp, flagged, reason, score, 0, False, None)

    mean_to_rest = (sim.sum(1) - np.diag(sim)) / (n - 1)
    # largest first; among equal sizes the most central (highest mean cosine to the rest) first
    comps.sort(key=lambda c: (-len(c), -float(mean_to_rest[c].mean()), c[0]))
    tie = len(comps) > 1 and len(comps[1]) == len(comps[0])
    for cid, members in enumerate(comps):
        comp[members] = cid
    main = np.flatnonzero(comp == MAIN)
    for i in range(n):
        if comp[i] == MAIN:
            continue
        flagged[i] = True
        if comp[i] == ISOLATED:
            reason[i] = "isolated"
        elif tie and len(comps[comp[i]]) == len(comps[0]):
            reason[i] = "tied_component"
        else:
            reason[i] = "outlier_component"
    # score: mean cosine to the main component, self excluded
    s_main = sim[:, main].sum(1)
    cnt = np.full(n, len(main), np.float32)
    cnt[main] -= 1
    s_main[main] -= np.diag(sim)[main]
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(cnt > 0, s_main / np.maximum(cnt, 1), np.nan).astype(np.float32)
    g = IdentityGraph(identity, keys, sim, comp, flagged, reason, score, len(comps), tie, group_stats(emb[main]))
    g.group_score = main_group_score(sim, main, metric)
    return g


def main_group_score(sim: np.ndarray, main: np.ndarray, metric: str) -> np.ndarray:
    """Each photo's score to the main component, self excluded, in the units
    :func:`~fakeproof.engine.cards.score_to_groups` gives for another identity's main component (cosine:
    the mean cosine; euclidean: minus the root-mean-square distance), so the two compare like for like.
    NaN where the main component has no other member."""
    n = len(sim)
    member = np.zeros(n, bool)
    member[main] = True
    cnt = len(main) - member.astype(int)
    vals = sim[:, main].astype(np.float64)
    euclid = check_metric(metric) == "euclidean"
    if euclid:
        vals = vals**2  # sim = -distance; the diagonal is 0, so self adds nothing
    else:
        vals[member, np.searchsorted(main, np.flatnonzero(member))] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(cnt > 0, vals.sum(1) / np.maximum(cnt, 1), np.nan)
    return (-np.sqrt(m) if euclid else m).astype(np.float32)
