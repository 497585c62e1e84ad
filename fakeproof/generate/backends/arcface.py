"""The ArcFace recogniser a swapper or diffusion model was trained with (buffalo_l ``w600k_r50.onnx``,
antelopev2 ``glintr100.onnx``, Arc2Face's ``arcface.onnx``), run as the swap condition.

Unlike the encoders in :mod:`fakeproof.engine` (which produce the embeddings fakeproof compares),
this gives the RAW embedding that a generator's conditioning expects (Ghost's converter takes it
unnormalised). Crops come from the engine's aligner on the ArcFace template.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...engine import align_face
from .base import ort_session


def _bakes_in_normalisation(model_path: Path) -> bool:
    """Old MXNet exports subtract/scale inside the graph (first nodes Sub + Mul): feed raw pixels."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    names = [(n.name or n.op_type) for n in graph.node[:8]]
    sub = any(n.startswith("Sub") or n.startswith("_minus") for n in names)
    mul = any(n.startswith("Mul") or n.startswith("_mul") for n in names)
    return sub and mul


class ArcFaceRecogniser:
    """``embed(rgb, landmarks5) -> (512,)`` raw embedding of the face at ``landmarks5``."""

    def __init__(self, path: Path, device: str = "cpu"):
        self.path = Path(path)
        self.session = ort_session(self.path, device)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.size = int(shape[2]) if isinstance(shape[2], int) else 112
        baked = _bakes_in_normalisation(self.path)
        self.mean, self.std = (0.0, 1.0) if baked else (127.5, 127.5)

    def embed_crop(self, crop_rgb: np.ndarray) -> np.ndarray:
        x = (crop_rgb.astype(np.float32) - self.mean) / self.std
        x = x.transpose(2, 0, 1)[None]
        return self.session.run(None, {self.input_name: x})[0][0].astype(np.float32)

    def embed(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        return self.embed_crop(align_face(rgb, landmarks5, self.size, 0.0))
