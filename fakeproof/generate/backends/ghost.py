"""``ghost``: the Ghost / sber-swap generator (AEI-Net) as the ONNX exports FaceFusion ships
(``ghost_1_256.onnx``, ``ghost_2_256.onnx``, ``ghost_3_256.onnx``: 1-3 AAD blocks).

Source identity: the raw buffalo_l ArcFace embedding (``w600k_r50.onnx``) passed through
FaceFusion's embedding converter (``crossface_ghost.onnx``; older releases call it
``arcface_converter_ghost.onnx``; input ``input`` [N, 512]) into the ArcFace space Ghost was trained
with; the converted embedding is used as is (not renormalised). Target: the face aligned to the
older ("v1") ArcFace template at 256x256, RGB scaled to [-1, 1]. Output: RGB in [-1, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...engine.encoders.base import WeightFile
from ...engine.template import template_v1_for
from .base import BackendError, arcface_recogniser, ort_session
from .roop import buffalo_recogniser
from .swapper import OnnxSwapper

GHOST_VARIANTS = ("ghost_2_256.onnx", "ghost_1_256.onnx", "ghost_3_256.onnx")
CONVERTERS = ("crossface_ghost.onnx", "arcface_converter_ghost.onnx")
FF = "https://github.com/facefusion/facefusion-assets/releases/download"


def _first_present(md: Path, names) -> Path | None:
    return next((md / n for n in names if (md / n).exists()), None)


class GhostBackend(OnnxSwapper):
    name = "ghost"
    description = "Ghost / sber-swap AEI-Net (GAN swap, 256x256) + ArcFace converter"
    crop_size = 256

    @classmethod
    def weight_files(cls, models_dir: Path) -> list[WeightFile]:
        md = Path(models_dir)
        gen = _first_present(md, GHOST_VARIANTS) or md / GHOST_VARIANTS[0]
        conv = _first_present(md, CONVERTERS) or md / CONVERTERS[0]
        return [
            WeightFile(
                gen.name,
                gen,
                "Apache-2.0 (ai-forever/ghost)",
                f"{FF}/models-3.0.0/{gen.name} (any of {', '.join(GHOST_VARIANTS)})",
            ),
            WeightFile(conv.name, conv, "MIT (facefusion-labs ArcFace converter)", f"{FF}/models-3.4.0/crossface_ghost.onnx"),
            buffalo_recogniser(md),
        ]

    def load(self, models_dir: Path, device: str = "cpu") -> None:
        gen, conv, rec = self._require(models_dir)
        self.session = ort_session(gen.path, device)
        self.converter = ort_session(conv.path, device)
        names = [i.name for i in self.converter.get_inputs()]
        if names != ["input"]:
            raise BackendError(f"{conv.path}: converter inputs are {names}, expected ['input']")
        self.recogniser = arcface_recogniser(rec.path, device)
        self.variant = gen.path.name
        self._bind_io()
        self.loaded = True

    def template(self) -> np.ndarray:
        return template_v1_for(self.crop_size)

    def source_condition(self, source_rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        raw = self.recogniser.embed_face(source_rgb, landmarks5).reshape(1, -1).astype(np.float32)
        return self.converter.run(None, {"input": raw})[0].reshape(1, -1)

    def to_input(self, crop_rgb: np.ndarray) -> np.ndarray:
        return ((crop_rgb.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]

    def from_output(self, out: np.ndarray) -> np.ndarray:
        return (np.clip(out[0].transpose(1, 2, 0) * 0.5 + 0.5, 0, 1) * 255).round().astype(np.uint8)
