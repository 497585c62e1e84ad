"""Shared machinery of the ONNX face swappers (roop's inswapper, Ghost): align the target face,
run the generator with the source identity, paste the result back with a soft mask."""
from __future__ import annotations

import numpy as np

from ...engine import similarity_transform
from ..faces import shared_finder
from ..pasteback import paste_back, soft_box_mask
from .base import Backend, BackendError


class OnnxSwapper(Backend):
    """Subclasses set ``crop_size`` and implement :meth:`template`, :meth:`source_condition`,
    :meth:`to_input` and :meth:`from_output`; ``self.session`` is the generator."""

    crop_size = 128
    mask_blur = 0.3
    mask_padding = 0.0

    def template(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def source_condition(self, source_rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def to_input(self, crop_rgb: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def from_output(self, out: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _bind_io(self) -> None:
        names = {i.name for i in self.session.get_inputs()}
        if not {"target", "source"} <= names:
            raise BackendError(f"{self.name}: generator inputs are {sorted(names)}, expected 'target' and 'source'")
        shape = next(i.shape for i in self.session.get_inputs() if i.name == "target")
        if isinstance(shape[2], int) and shape[2] != self.crop_size:
            raise BackendError(f"{self.name}: generator takes {shape[2]}x{shape[3]} crops, expected {self.crop_size}")
        self.finder = shared_finder()

    def swap(self, source_rgb: np.ndarray, target_rgb: np.ndarray) -> np.ndarray:
        sf = self.finder.main_face(source_rgb, "source photo")
        tf = self.finder.main_face(target_rgb, "target photo")
        cond = self.source_condition(source_rgb, sf.landmarks).astype(np.float32).reshape(1, -1)
        m = similarity_transform(tf.landmarks, self.template())
        import cv2

        crop = cv2.warpAffine(target_rgb, m, (self.crop_size, self.crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = self.session.run(None, {"target": self.to_input(crop), "source": cond})[0]
        face = self.from_output(out)
        mask = soft_box_mask((self.crop_size, self.crop_size), self.mask_blur, self.mask_padding)
        return paste_back(target_rgb, face, m, mask)

    def make(self, source_rgb: np.ndarray, target_rgb: np.ndarray | None, seed: int) -> np.ndarray:
        if target_rgb is None:
            raise BackendError(f"{self.name} needs a target photo")
        out = self.swap(source_rgb, target_rgb)
        self.last_info = {"jpeg_quality": int(np.random.default_rng(seed).integers(80, 96))}
        return out
