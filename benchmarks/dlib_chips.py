"""dlib's own 150 px face chips around the engine's detections, and where the engine's 5 points
land in them: shared by ``fit_dlib_chip_template.py`` and ``dlib_alignment.py``.

For a photo: the engine decodes it and finds the main face with its detector (MTCNN: box and
5 points); dlib's 5-point shape predictor runs inside that box and ``dlib.get_face_chip_details``
(size 150, padding 0.25, what dlib's face ResNet was trained on) places the chip. The chip's
pixel -> photo mapping is read off dlib itself: the chip of a coordinate image (each pixel holding
its own x or y) is extracted with the same chip details, and an affine map is fitted to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import _common  # noqa: F401 - puts the repository on sys.path

CHIP_SIZE = 150
CHIP_PADDING = 0.25


@dataclass
class EngineFace:
    rgb: np.ndarray
    bbox: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2) engine order: eyes, nose, mouth corners


def engine_face(engine, path) -> EngineFace | None:
    """The engine's main face of ``path`` (None when the engine detects none)."""
    from fakeproof.engine.detect import pick_main_face
    from fakeproof.engine.images import ImageLoadError, decode_rgb

    try:
        img = decode_rgb(Path(path).read_bytes(), path)
    except ImageLoadError:
        return None
    face = pick_main_face(engine.detect(img.rgb), img.rgb.shape)
    if face is None:
        return None
    return EngineFace(img.rgb, np.asarray(face.bbox, np.float64), np.asarray(face.landmarks, np.float64))


class DlibChipper:
    def __init__(self):
        import dlib

        from fakeproof.engine.encoders.dlib_resnet import installed_dat

        self.dlib = dlib
        self.predictor = dlib.shape_predictor(str(installed_dat().parent / "shape_predictor_5_face_landmarks.dat"))

    def details(self, face: EngineFace):
        x1, y1, x2, y2 = (int(round(v)) for v in face.bbox)
        shape = self.predictor(face.rgb, self.dlib.rectangle(x1, y1, x2, y2))
        return self.dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)

    def chip(self, face: EngineFace, details=None) -> np.ndarray:
        return np.ascontiguousarray(self.dlib.extract_image_chip(face.rgb, details or self.details(face)))

    def chip_to_photo(self, face: EngineFace, details) -> np.ndarray:
        """2x3 affine map from chip pixels (x, y) to photo pixels, measured on dlib's own warp."""
        h, w = face.rgb.shape[:2]
        pad = max(h, w)  # a canvas large enough that the chip never leaves it
        ys, xs = np.mgrid[-pad : h + pad, -pad : w + pad].astype(np.float32)
        shifted = self.dlib.chip_details(
            self.dlib.drectangle(details.rect.left() + pad, details.rect.top() + pad, details.rect.right() + pad, details.rect.bottom() + pad),
            self.dlib.chip_dims(details.rows, details.cols), details.angle)
        cx = self.dlib.extract_image_chip(np.ascontiguousarray(xs), shifted)
        cy = self.dlib.extract_image_chip(np.ascontiguousarray(ys), shifted)
        m = 10  # ignore the border, where resampling filters reach past the chip
        gy, gx = np.mgrid[m : CHIP_SIZE - m, m : CHIP_SIZE - m]
        design = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], 1).astype(np.float64)
        ax, *_ = np.linalg.lstsq(design, cx[m:-m, m:-m].ravel().astype(np.float64), rcond=None)
        ay, *_ = np.linalg.lstsq(design, cy[m:-m, m:-m].ravel().astype(np.float64), rcond=None)
        return np.stack([ax, ay])

    def points_in_chip(self, face: EngineFace, details) -> np.ndarray:
        """The engine's 5 landmarks in chip pixel coordinates."""
        a = self.chip_to_photo(face, details)
        full = np.vstack([a, [0.0, 0.0, 1.0]])
        inv = np.linalg.inv(full)
        pts = np.hstack([face.landmarks, np.ones((5, 1))])
        return (inv @ pts.T).T[:, :2]
