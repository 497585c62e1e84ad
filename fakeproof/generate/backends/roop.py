"""``roop``: insightface's ``inswapper_128.onnx`` (the model roop, FaceFusion and Deep-Live-Cam use).

Source identity: the buffalo_l ArcFace embedding (``w600k_r50.onnx``), L2-normalised, multiplied by
the ``emap`` matrix stored as the ONNX graph's last initializer and normalised again. Target: the
face aligned to the ArcFace template at 128x128, RGB in [0, 1]. Output: RGB in [0, 1], pasted back
with a soft mask.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...engine import template_for
from ...engine.encoders.base import WeightFile
from .base import BackendError, arcface_recogniser, ort_session
from .swapper import OnnxSwapper

INSWAPPER_SHA256 = "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af"
W600K_SHA256 = "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43"
NONCOMMERCIAL = "insightface model zoo: non-commercial research only"


def buffalo_recogniser(models_dir: Path) -> WeightFile:
    return WeightFile(
        "buffalo_l/w600k_r50.onnx",
        Path(models_dir) / "buffalo_l" / "w600k_r50.onnx",
        NONCOMMERCIAL,
        "buffalo_l.zip from https://github.com/deepinsight/insightface/releases (unzip into MODELS/buffalo_l/)",
        W600K_SHA256,
    )


def read_emap(model_path: Path) -> np.ndarray:
    """The 512x512 embedding map inswapper keeps as its last graph initializer."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    if not model.graph.initializer:
        raise BackendError(f"{model_path}: no initializers (not an inswapper model)")
    emap = numpy_helper.to_array(model.graph.initializer[-1]).astype(np.float32)
    if emap.ndim != 2 or emap.shape[0] != emap.shape[1]:
        raise BackendError(f"{model_path}: last initializer has shape {emap.shape}, expected the square emap")
    return emap


class RoopBackend(OnnxSwapper):
    name = "roop"
    description = "insightface inswapper_128 (GAN swap, 128x128) + buffalo_l ArcFace"
    crop_size = 128

    @classmethod
    def weight_files(cls, models_dir: Path) -> list[WeightFile]:
        md = Path(models_dir)
        return [
            WeightFile(
                "inswapper_128.onnx",
                md / "inswapper_128.onnx",
                NONCOMMERCIAL,
                "https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0/inswapper_128.onnx "
                "(or the insightface inswapper release)",
                INSWAPPER_SHA256,
            ),
            buffalo_recogniser(md),
        ]

    def load(self, models_dir: Path, device: str = "cpu") -> None:
        swapper, rec = self._require(models_dir)
        self.session = ort_session(swapper.path, device)
        self.emap = read_emap(swapper.path)
        self.recogniser = arcface_recogniser(rec.path, device)
        self._bind_io()
        self.loaded = True

    def template(self) -> np.ndarray:
        return template_for(self.crop_size, 0.0)

    def source_condition(self, source_rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        e = self.recogniser.embed_face(source_rgb, landmarks5)
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        latent = e.reshape(1, -1) @ self.emap
        return latent / max(float(np.linalg.norm(latent)), 1e-12)

    def to_input(self, crop_rgb: np.ndarray) -> np.ndarray:
        return (crop_rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]

    def from_output(self, out: np.ndarray) -> np.ndarray:
        return (np.clip(out[0].transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)
