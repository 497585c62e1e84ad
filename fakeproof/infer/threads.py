"""CPU threading settings for inference, applied before torch is imported.

With OpenMP's default active waiting, torch's intra-op threads spin at every barrier; when the
CPU is shared (other jobs, our own detection pool, a busy CI runner) a descheduled thread stalls
the others and batch embedding on 2 cores dropped from ~20 to 2-8 images/s in our measurements
(``benchmarks/infer_throughput.py``). Passive waiting keeps it at the single-core rate or better.
An explicit ``OMP_WAIT_POLICY`` in the environment always wins.
"""
from __future__ import annotations

import os
import sys


def configure_cpu_threads() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy. Returns True when it took
    effect (OpenMP reads it once, when torch is first imported)."""
    if "OMP_WAIT_POLICY" in os.environ:
        return False
    if "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
