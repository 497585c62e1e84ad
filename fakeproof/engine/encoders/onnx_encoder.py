"""``onnx:PATH`` encoders: any ArcFace-style ONNX recogniser run with ONNX Runtime (not trainable).

Made for insightface's recognisers (``w600k_r50.onnx`` of ``buffalo_l``, ``glintr100.onnx``):
input ``[N|1, 3, H, W]`` float, RGB, ``(x - 127.5) / 127.5`` (insightface's ``ArcFaceONNX`` feeds
``cv2.dnn.blobFromImages(..., 1/127.5, (W, H), (127.5,)*3, swapRB=True)``), output ``[N|1, D]``.
Input size and embedding size come from the graph; graphs with a fixed batch of 1 are run one
crop at a time.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .base import Encoder, EncoderSpec, WeightFile, stack_crops

LICENCE = "that of the ONNX file (insightface recognition packs: non-commercial research use)"
SOURCE = "user-supplied ONNX recogniser"


def _dims(value_info) -> list:
    """Dimensions of a graph input/output: int, or the symbolic name / None when dynamic."""
    out = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def _graph_signature(path: Path) -> tuple[str, list, list]:
    """(input name, input dims, output dims) of the first real graph input and the first output."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or not model.graph.output:
        raise ValueError(f"{path}: expected one image input and an embedding output, got {len(inputs)} inputs")
    return inputs[0].name, _dims(inputs[0]), _dims(model.graph.output[0])


def onnx_spec(path, models_dir=None, weights=None) -> EncoderSpec:
    """The spec of an ONNX recogniser, read from its graph (input ``[N, 3, H, W]``, output ``[N, D]``)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"ONNX encoder not found: {p}")
    _, ins, outs = _graph_signature(p)
    if len(ins) != 4 or ins[1] != 3 or not all(isinstance(d, int) and d > 0 for d in ins[2:]):
        raise ValueError(f"{p}: expected an NCHW image input [N, 3, H, W] with fixed H, W, got {ins}")
    if len(outs) != 2 or not (isinstance(outs[1], int) and outs[1] > 0):
        raise ValueError(f"{p}: expected an embedding output [N, D] with fixed D, got {outs}")
    return EncoderSpec(
        name=f"onnx:{p}",
        input_size=(int(ins[2]), int(ins[3])),
        color_order="RGB",
        normalisation="(x-127.5)/127.5",
        embedding_dim=int(outs[1]),
        licence=LICENCE,
        source=SOURCE,
        weights=(WeightFile(p.name, p, LICENCE, SOURCE),),
        align_margin=0.0,
    )


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class OnnxEncoder(Encoder):
    """An ONNX Runtime session behind the :class:`Encoder` interface (``embed`` only, no gradients).

    ``device`` ``cuda``/``cuda:N`` uses the CUDA execution provider when ONNX Runtime has it."""

    def __init__(self, path, device: str = "cpu"):
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path).expanduser()
        self.spec = onnx_spec(self.path)
        self.input_name, ins, _ = _graph_signature(self.path)
        self.fixed_batch = ins[0] if isinstance(ins[0], int) and ins[0] > 0 else None
        providers: list = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            idx = int(str(device).split(":")[1]) if ":" in str(device) else 0
            providers = [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        self.output_name = self.session.get_outputs()[0].name
        # the engine's embedding cache keys on this: the file's content, not its path
        self.fingerprint = f"onnx-{_file_digest(self.path)}"

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 RGB NHWC -> float NCHW, ``(x - 127.5) / 127.5``."""
        return ((crops.to(torch.float32) - 127.5) / 127.5).permute(0, 3, 1, 2).contiguous()

    def to_input(self, crops: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        return self.normalise(torch.from_numpy(stack_crops(crops, self.spec)))

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch is None or self.fixed_batch == len(x):
            return self.session.run([self.output_name], {self.input_name: x})[0]
        if self.fixed_batch != 1:
            raise ValueError(f"{self.path}: graph has a fixed batch of {self.fixed_batch}")
        return np.concatenate([self.session.run([self.output_name], {self.input_name: x[i : i + 1]})[0]
                               for i in range(len(x))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw embeddings of normalised NCHW input (computed by ONNX Runtime, no autograd)."""
        out = self._run(x.detach().to("cpu", torch.float32).contiguous().numpy())
        return torch.from_numpy(np.asarray(out, np.float32).reshape(len(out), -1)).to(x.device)

    @torch.no_grad()
    def embed(self, crops: Sequence[np.ndarray] | np.ndarray, batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 embeddings of aligned uint8 RGB crops, shape (N, D)."""
        arr = list(crops) if not isinstance(crops, np.ndarray) else crops
        out = []
        for i in range(0, len(arr), batch_size):
            x = self.to_input(arr[i : i + batch_size]).numpy()
            e = np.asarray(self._run(x), np.float32).reshape(len(x), -1)
            out.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12))
        if not out:
            return np.zeros((0, self.spec.embedding_dim), np.float32)
        return np.concatenate(out).astype(np.float32)
