"""An encoder exported by ``infer export-onnx``, run with ONNX Runtime behind the Encoder interface.

It plugs into :class:`fakeproof.engine.FaceEngine` like any registered encoder (``.spec``,
``.embed(crops)``, a ``fingerprint`` for the caches), so ``--runtime onnx`` reuses the scoring code.
It is inference only: ``forward`` is not available.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..engine import Encoder, EncoderSpec
from ..engine.cache import file_digest
from .onnx_export import FORMAT, INPUT_NAME, OUTPUT_NAME


def _metadata(path) -> dict:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def is_fakeproof_onnx(path) -> bool:
    try:
        return _metadata(path).get("fakeproof.format") == FORMAT
    except Exception:  # not an ONNX file at all
        return False


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRuntimeEncoder(Encoder):
    """Embeds aligned uint8 RGB crops with an ONNX model exported by fakeproof."""

    is_onnx = True

    def __init__(self, path, device: str = "cpu", threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or (os.cpu_count() or 1)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=_providers(device))
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("fakeproof.format") != FORMAT:
            raise ValueError(f"{self.path}: not exported by `fakeproof infer export-onnx` (metadata format {meta.get('fakeproof.format')!r})")
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
        )
        self.threshold_known = "fakeproof.threshold" in meta
        self.threshold = float(meta["fakeproof.threshold"]) if self.threshold_known else None
        # same weights file = same embeddings: the engine's cache key
        self.fingerprint = "onnx-" + file_digest(self.path.read_bytes())

    def to(self, *args, **kwargs):  # the session already sits on its device
        return self

    def forward(self, x):  # pragma: no cover - guard
        raise NotImplementedError(f"{self.path}: ONNX Runtime encoders are inference only (use .embed on uint8 crops)")

    def embed(self, crops, batch_size: int = 32) -> np.ndarray:
        arr = np.asarray(crops if isinstance(crops, np.ndarray) else np.stack(list(crops)) if len(crops) else np.zeros((0, *self.spec.input_size, 3), np.uint8))
        if arr.ndim == 3:
            arr = arr[None]
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        h, w = self.spec.input_size
        if len(arr) and arr.shape[1:3] != (h, w):
            raise ValueError(f"{self.path}: expects {h}x{w} crops, got {arr.shape[1]}x{arr.shape[2]}")
        out = [self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(arr[i : i + batch_size])})[0] for i in range(0, len(arr), batch_size)]
        if not out:
            return np.zeros((0, self.spec.embedding_dim), np.float32)
        e = np.concatenate(out).astype(np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
