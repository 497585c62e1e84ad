"""Finding the face to swap: the engine's detector (MTCNN) and its main-face rule, nothing else."""
from __future__ import annotations

import threading

import numpy as np

from ..engine import Face, get_detector, pick_main_face
from ..engine.detect import detect_downscaled
from .backends.base import BackendError


class FaceFinder:
    """The main face of a photo (bbox + 5 ArcFace-order landmarks) in full-resolution pixels.

    Detection runs on a copy of at most ``max_side`` pixels, as in :class:`fakeproof.engine.FaceEngine`.
    """

    def __init__(self, detector: str = "mtcnn", max_side: int = 1024, min_score: float = 0.9):
        self.detector_name = detector
        self.max_side = max_side
        self.min_score = min_score
        self._det = None
        self._lock = threading.Lock()

    @property
    def detector(self):
        with self._lock:
            if self._det is None:
                self._det = get_detector(self.detector_name)
        return self._det

    def faces(self, rgb: np.ndarray) -> list[Face]:
        return [fc for fc in detect_downscaled(self.detector, rgb, self.max_side) if fc.score >= self.min_score]

    def main_face(self, rgb: np.ndarray, what: str = "photo") -> Face:
        """The face the photo is of; :class:`BackendError` when there is none."""
        face = pick_main_face(self.faces(rgb), rgb.shape)
        if face is None:
            raise BackendError(f"no face found in the {what}")
        return face


_shared: FaceFinder | None = None


def shared_finder() -> FaceFinder:
    """One finder per process (backends share the detector sessions)."""
    global _shared
    if _shared is None:
        _shared = FaceFinder()
    return _shared
