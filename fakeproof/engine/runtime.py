"""Which runtime runs an encoder at inference: the one default, read by every command that embeds
through :func:`fakeproof.infer.model.load_model` (and by any resolver that wants to honour it).

``auto`` = ONNX Runtime on CPU, where it is faster than torch for the same weights (exported once,
max |diff| ~1e-7; ``benchmarks/infer_throughput.py`` measures both in one run), and torch on CUDA
(the CPU build of ONNX Runtime cannot use the GPU). Training always runs on torch.
"""
from __future__ import annotations

from ..errors import UsageError

RUNTIMES = ("auto", "torch", "onnx")
DEFAULT_RUNTIME = "auto"


def pick_runtime(runtime: str, device: str) -> str:
    """``torch`` or ``onnx`` for ``runtime`` (one of :data:`RUNTIMES`) on ``device``."""
    if runtime not in RUNTIMES:
        raise UsageError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime == "auto":
        return "torch" if str(device).startswith("cuda") else "onnx"
    return runtime
