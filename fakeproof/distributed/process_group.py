"""torchrun / DDP plumbing: one process per device, NCCL on GPU, gloo on CPU, rank 0 writes.

Run the same command under ``torchrun --nproc_per_node=N -m fakeproof.cli train run ...``;
without torchrun (no ``WORLD_SIZE`` in the environment) everything here is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..engine import resolve_device


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto", backend: str | None = None, timeout: timedelta | None = None) -> DistInfo:
    """Join the process group torchrun describes (if any) and pick this process's device.

    ``backend`` overrides the choice (NCCL on GPU, gloo on CPU): the stages that only exchange
    Python objects (generate, embedding) use gloo everywhere. ``timeout``: how long a collective
    waits for the slowest rank (torch's default, 30 minutes, when None)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if world <= 1:
        return DistInfo(0, 1, 0, None, dev)
    on_gpu = dev.startswith("cuda")
    if on_gpu:
        torch.cuda.set_device(local)
        dev = f"cuda:{local}"
    backend = backend or ("nccl" if on_gpu else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, **({"timeout": timeout} if timeout else {}))
    return DistInfo(rank, world, local, backend, dev)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def any_flag(info: DistInfo, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (keeps stop decisions in lockstep)."""
    if not info.enabled:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_across(info: DistInfo, value: float, count: int = 1) -> float:
    """Mean of per-rank averages weighted by ``count``."""
    if not info.enabled:
        return value
    t = torch.tensor([value * count, float(count)], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return float(t[0] / max(t[1], 1.0))


def gather_objects(info: DistInfo, obj):
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out

