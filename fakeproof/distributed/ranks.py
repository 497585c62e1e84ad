"""Ranks for the stages that are not training: join torchrun's process group, split work, gather.

These stages exchange Python objects only (journals, reports, embeddings), so they always use gloo,
also between GPUs and machines; each rank still runs its models on its own device (``cuda:LOCAL_RANK``).
A collective waits up to :data:`WAIT` for the slowest rank: generation shards take hours.
"""
from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import torch.distributed as dist

from ..engine.paths import cache_home
from .process_group import DistInfo, barrier, init_distributed

WAIT = timedelta(hours=int(os.environ.get("FAKEPROOF_RANK_WAIT_HOURS", "48")))


def join_ranks(device: str = "auto") -> DistInfo:
    """This process's rank and device; a no-op ``DistInfo(world_size=1)`` outside torchrun."""
    return init_distributed(device, backend="gloo", timeout=WAIT)


@contextmanager
def torchrun_ranks(device: str = "auto"):
    """``with torchrun_ranks(device) as info:`` joins the ranks and leaves them cleanly at the end."""
    info = join_ranks(device)
    ok = False
    try:
        yield info
        ok = True
    finally:
        if info.enabled and dist.is_initialized():
            if ok:  # a rank that failed must not wait for the others: torchrun stops them all
                barrier(info)
            dist.destroy_process_group()


@contextmanager
def main_first(info: DistInfo):
    """Rank 0 runs the block first, then the others: one rank fills a shared cache (converted
    weights, an ONNX export) and the others find it there instead of writing it at the same time."""
    if info.enabled and not info.is_main:
        barrier(info)
    yield
    if info.enabled and info.is_main:
        barrier(info)


def current() -> tuple[int, int]:
    """``(rank, world_size)`` of the joined process group; ``(0, 1)`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous slice ``[lo, hi)`` of ``n`` items for ``rank``; sizes differ by at most one."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def gather_to_main(obj):
    """``[obj of rank 0, obj of rank 1, ...]`` on rank 0, ``None`` elsewhere (world 1: ``[obj]``)."""
    rank, world = current()
    if world == 1:
        return [obj]
    out = [None] * world if rank == 0 else None
    collect = gc.isenabled()
    gc.disable()  # unpickling 100,000 records with the collector on costs 3-8x more (benchmarks/scale_sim.py)
    try:
        dist.gather_object(obj, out, dst=0)
    finally:
        if collect:
            gc.enable()
    return out


def engine_cache_dir(info: DistInfo) -> Path | None:
    """Where this rank's engine keeps its crop and embedding caches.

    Ranks on one machine share the usual cache (SQLite in WAL mode serialises their writers). Ranks
    on several machines get one cache per machine (``engine/node-<GROUP_RANK>``): SQLite's WAL mode
    must not be shared between hosts, and a home folder on NFS would do exactly that."""
    if not info.enabled:
        return None
    local = int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size))
    if local >= info.world_size:
        return None
    return cache_home() / "engine" / f"node-{int(os.environ.get('GROUP_RANK', '0')):03d}"
