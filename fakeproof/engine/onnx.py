"""ONNX Runtime in one place: sessions and providers, and the two kinds of ONNX face encoder.

- :class:`ArcFaceOnnx` (``onnx:PATH``): any ArcFace-style recogniser, e.g. insightface's
  ``buffalo_l/w600k_r50.onnx``: input ``[N|1, 3, H, W]`` float RGB, output ``[N|1, D]``. Like
  insightface's own loader it looks at the first nodes of the graph: when the graph subtracts and
  multiplies its input itself (MXNet-converted recognisers), crops go in as plain 0..255 floats;
  otherwise they are normalised ``(x - 127.5) / 127.5`` first. Input and embedding sizes come from
  the graph; graphs with a fixed batch of 1 are run one crop at a time. The generate stage runs the
  recogniser a swapper or diffusion model was trained with through this same class
  (:meth:`ArcFaceOnnx.embed_face`, the raw embedding its identity condition expects), so a recogniser
  is fed the same way when fakes are made as when pairs are scored.
- :class:`ExportedOnnx`: a model written by ``fakeproof infer export-onnx`` (uint8 RGB crops in,
  L2-normalised embeddings out, :data:`FORMAT` and the crop geometry / threshold in its metadata).

Both are inference only and plug into :class:`~fakeproof.engine.FaceEngine` like any encoder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError, NotFoundError
from ..hashing import digest_file
from .align import align_face
from .encoders.base import Encoder, EncoderSpec, WeightFile, embed_in_batches, stack_crops

FORMAT = "fakeproof-onnx/1"  # metadata "fakeproof.format" of an exported model
INPUT_NAME = "crops"
OUTPUT_NAME = "embedding"
ARCFACE_LICENCE = "that of the ONNX file (insightface recognition packs: non-commercial research use)"
ARCFACE_SOURCE = "user-supplied ONNX recogniser"


def providers(device: str = "cpu") -> list:
    """Execution providers for ``device``: CUDA (on device N of ``cuda:N``) when asked for and
    installed, always with the CPU provider behind it."""
    import onnxruntime as ort

    device = str(device)
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        idx = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(path, device: str = "cpu", threads: int | None = None, inter_threads: int | None = None, optimise: bool = False, spin: bool = True):
    """An ``InferenceSession`` of ``path`` (quiet logging); ``threads``: intra-op threads (default
    ONNX Runtime's); ``spin=False``: idle intra-op threads sleep instead of spinning (what a shared
    CPU, or one running a detection pool beside the encoder, needs). A file ONNX Runtime cannot load
    raises ``ValueError`` naming it."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    if inter_threads:
        so.inter_op_num_threads = inter_threads
    if optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), so, providers=providers(device))
    except Exception as e:  # onnxruntime raises its own exception types
        raise InputError(f"{path}: not a loadable ONNX model ({(str(e).splitlines() or [type(e).__name__])[0][:200]})") from None


def metadata(path) -> dict:
    """The ``metadata_props`` of an ONNX file (without loading external weights)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def onnx_fingerprint(path) -> str:
    """The engine's cache key of an ONNX encoder: its file's content, not its path (one digest for
    every ONNX encoder)."""
    return "onnx-" + digest_file(path, "blake2b", 16)


def is_fakeproof_onnx(path) -> bool:
    try:
        return metadata(path).get("fakeproof.format") == FORMAT
    except Exception:  # not an ONNX file at all
        return False


# -- onnx:PATH ---------------------------------------------------------------------------------
def _dims(value_info) -> list:
    """Dimensions of a graph input/output: int, or the symbolic name / None when dynamic."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value_info.type.tensor_type.shape.dim]


def _load_graph(path: Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends: a damaged file
        raise InputError(f"{path}: not a loadable ONNX model ({(str(e).splitlines() or [type(e).__name__])[0][:200]})") from None


def _graph_signature(model, path: Path) -> tuple[str, list, list]:
    """(input name, input dims, output dims) of the one image input and the first output."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or not model.graph.output:
        raise InputError(f"{path}: expected one image input and an embedding output, got {len(inputs)} inputs")
    return inputs[0].name, _dims(inputs[0]), _dims(model.graph.output[0])


def normalises_inside(model, first_nodes: int = 8) -> bool:
    """True when the graph's first nodes both subtract from and multiply its input (a recogniser
    converted from MXNet with its normalisation baked in), so it takes raw 0..255 pixels."""
    seen_sub = seen_mul = False
    for node in model.graph.node[:first_nodes]:
        tag = f"{node.op_type}|{node.name}".lower()
        seen_sub |= node.op_type == "Sub" or "minus" in tag or tag.startswith("sub")
        seen_mul |= node.op_type == "Mul" or "_mul" in tag or node.name.lower().startswith("mul")
    return seen_sub and seen_mul


def onnx_spec(path, models_dir=None, weights=None) -> EncoderSpec:
    """The spec of an ArcFace-style recogniser, read from its graph."""
    p = Path(path).expanduser()
    if not p.exists():
        raise NotFoundError(f"ONNX encoder not found: {p}")
    model = _load_graph(p)
    _, ins, outs = _graph_signature(model, p)
    if len(ins) != 4 or ins[1] != 3 or not all(isinstance(d, int) and d > 0 for d in ins[2:]):
        raise InputError(f"{p}: expected an NCHW image input [N, 3, H, W] with fixed H, W, got {ins}")
    if len(outs) != 2 or not (isinstance(outs[1], int) and outs[1] > 0):
        raise InputError(f"{p}: expected an embedding output [N, D] with fixed D, got {outs}")
    return EncoderSpec(
        name=f"onnx:{p}",
        input_size=(int(ins[2]), int(ins[3])),
        color_order="RGB",
        normalisation="inside the graph (raw 0..255)" if normalises_inside(model) else "(x-127.5)/127.5",
        embedding_dim=int(outs[1]),
        licence=ARCFACE_LICENCE,
        source=ARCFACE_SOURCE,
        weights=(WeightFile(p.name, p, ARCFACE_LICENCE, ARCFACE_SOURCE),),
        align_margin=0.0,
    )


class ArcFaceOnnx(Encoder):
    """An ArcFace-style ONNX recogniser behind the :class:`Encoder` interface (no gradients)."""

    is_onnx = True

    def __init__(self, path, device: str = "cpu"):
        super().__init__()
        self.path = Path(path).expanduser()
        self.spec = onnx_spec(self.path)
        model = _load_graph(self.path)
        self.input_name, ins, _ = _graph_signature(model, self.path)
        self.mean, self.std = (0.0, 1.0) if normalises_inside(model) else (127.5, 127.5)
        self.fixed_batch = ins[0] if isinstance(ins[0], int) and ins[0] > 0 else None
        self.session = session(self.path, device)
        self.output_name = self.session.get_outputs()[0].name
        self.fingerprint = onnx_fingerprint(self.path)

    def to(self, *args, **kwargs):  # the session already sits on its device
        return self

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 RGB NHWC -> float NCHW, ``(x - mean) / std``."""
        return ((crops.to(torch.float32) - self.mean) / self.std).permute(0, 3, 1, 2).contiguous()

    def to_input(self, crops: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        return self.normalise(torch.from_numpy(stack_crops(crops, self.spec)))

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch is None or self.fixed_batch == len(x):
            return self.session.run([self.output_name], {self.input_name: x})[0]
        if self.fixed_batch != 1:
            raise InputError(f"{self.path}: graph has a fixed batch of {self.fixed_batch}")
        return np.concatenate([self.session.run([self.output_name], {self.input_name: x[i : i + 1]})[0] for i in range(len(x))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw embeddings of normalised NCHW input (computed by ONNX Runtime, no autograd)."""
        out = self._run(x.detach().to("cpu", torch.float32).contiguous().numpy())
        return torch.from_numpy(np.asarray(out, np.float32).reshape(len(out), -1)).to(x.device)

    def embed(self, crops: Sequence[np.ndarray] | np.ndarray, batch_size: int = 32, normalise: bool = True) -> np.ndarray:
        """L2-normalised float32 embeddings of aligned uint8 RGB crops, shape (N, D)."""
        return embed_in_batches(crops, batch_size, lambda b: self._run(self.to_input(b).numpy()), self.spec.embedding_dim, normalise)

    def raw_embed(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embeddings as the graph outputs them (not L2-normalised), float32 (N, D)."""
        out = self._run(self.to_input(crops).numpy())
        return np.asarray(out, np.float32).reshape(len(out), -1)

    def embed_face(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """The raw (D,) embedding of the face at ``landmarks5`` in a whole RGB photo, aligned as the
        engine aligns this encoder's crops: the identity condition of a swapper or diffusion model."""
        crop = align_face(rgb, landmarks5, self.spec.input_size, self.spec.align_margin, self.spec.template)
        return self.raw_embed(crop)[0]


# -- models written by `infer export-onnx` -----------------------------------------------------
class ExportedOnnx(Encoder):
    """Embeds aligned uint8 RGB crops with an ONNX model exported by fakeproof."""

    is_onnx = True

    def __init__(self, path, device: str = "cpu", threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.threads = threads or (os.cpu_count() or 1)
        # no spinning: the engine's detection pool runs beside the encoder (infer/threads.py, same reason)
        self.session = session(self.path, device, threads=self.threads, inter_threads=1, optimise=True, spin=False)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("fakeproof.format") != FORMAT:
            raise InputError(f"{self.path}: not exported by `fakeproof infer export-onnx` (metadata format {meta.get('fakeproof.format')!r})")
        self.metadata = meta
        h, w = json.loads(meta["fakeproof.input_size"])
        self.spec = EncoderSpec(
            name=meta.get("fakeproof.encoder", self.path.stem),
            input_size=(int(h), int(w)),
            color_order="RGB",
            normalisation=meta.get("fakeproof.normalisation", "inside the graph"),
            embedding_dim=int(meta["fakeproof.embedding_dim"]),
            licence=meta.get("fakeproof.licence", "unknown"),
            source=meta.get("fakeproof.upstream", str(self.path)),
            align_margin=float(meta.get("fakeproof.align_margin", "0.0")),
            template=meta.get("fakeproof.template", "arcface"),
        )
        self.mirrors_itself = meta.get("fakeproof.mirrors_itself") == "1"  # the graph averages the mirror image in itself
        self.threshold_known = "fakeproof.threshold" in meta
        self.threshold = float(meta["fakeproof.threshold"]) if self.threshold_known else None
        # the similarity scale's calibration it was exported with (fakeproof.engine.cards); None in older exports,
        # whose threshold is a raw cosine
        cal = meta.get("fakeproof.calibration")
        if cal:
            from .cards import Calibration

            self.calibration = Calibration.from_dict(json.loads(cal))
        else:
            self.calibration = None
        # how its embeddings are compared (older exports: cosine of L2-normalised outputs)
        self.metric = meta.get("fakeproof.metric", "cosine")
        if self.calibration is not None and self.calibration.metric != self.metric:
            raise InputError(f"{self.path}: metadata metric {self.metric!r} does not match its calibration's ({self.calibration.metric!r})")
        self.fingerprint = onnx_fingerprint(self.path)

    def to(self, *args, **kwargs):  # the session already sits on its device
        return self

    def forward(self, x):  # pragma: no cover - guard
        raise NotImplementedError(f"{self.path}: ONNX Runtime encoders are inference only (use .embed on uint8 crops)")

    def embed(self, crops, batch_size: int = 32, normalise: bool = True) -> np.ndarray:
        """Embeddings of aligned crops: the graph's output (raw for a Euclidean card's export, whose
        graph does not L2-normalise), L2-normalised unless ``normalise`` is False."""

        def run(batch):
            arr = stack_crops(batch, self.spec)
            if arr.dtype != np.uint8:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(arr)})[0]

        return embed_in_batches(crops, batch_size, run, self.spec.embedding_dim, normalise)
