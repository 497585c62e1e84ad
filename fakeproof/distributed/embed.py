"""Embedding across ranks: each rank embeds a contiguous slice, rank 0 gets everything back in order.

Each rank goes through its own :class:`~fakeproof.engine.FaceEngine` (its device, its worker pool,
the shared or per-machine caches), so a re-run after a killed rank finds the finished slices in the
caches and only embeds what is missing. The slices are contiguous and fixed by (number of photos,
world size), so a re-run with the same world size gives every rank the same photos again.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..engine import EmbedResult, FaceEngine
from .ranks import current, gather_to_main, shard_bounds


def embed_paths_across_ranks(engine: FaceEngine, paths: Sequence, progress: bool = True, batch_size: int = 32) -> EmbedResult | None:
    """``engine.embed_paths(paths)`` split over the ranks; the full result on rank 0, ``None`` on the others.

    Outside torchrun this is exactly ``engine.embed_paths``. On rank 0 ``engine.stats`` becomes the
    cache statistics summed over all ranks."""
    rank, world = current()
    if world == 1:
        return engine.embed_paths(paths, progress=progress, batch_size=batch_size)
    paths = [str(p) for p in paths]
    lo, hi = shard_bounds(len(paths), rank, world)
    part = engine.embed_paths(paths[lo:hi], progress=progress and rank == 0, batch_size=batch_size)
    parts = gather_to_main((lo, hi, part.embeddings, part.records, dict(engine.stats)))
    if parts is None:
        return None
    return merge_parts(parts, len(paths), engine.spec.embedding_dim, engine.stats)


def merge_parts(parts, n: int, dim: int, stats: dict | None = None) -> EmbedResult:
    """One :class:`EmbedResult` from ``[(lo, hi, embeddings, records, stats), ...]`` covering ``[0, n)``."""
    emb = np.full((n, dim), np.nan, np.float32)
    records = [None] * n
    covered = 0
    for lo, hi, e, recs, _ in parts:
        if len(recs) != hi - lo or e.shape[0] != hi - lo:
            raise RuntimeError(f"rank slice [{lo}, {hi}) came back with {len(recs)} records")
        emb[lo:hi] = e
        records[lo:hi] = recs
        covered += hi - lo
    if covered != n or any(r is None for r in records):
        raise RuntimeError(f"the ranks' slices cover {covered} of {n} photos")
    if stats is not None:
        for k in stats:
            stats[k] = sum(p[4].get(k, 0) for p in parts)
    return EmbedResult(emb, records)
