"""The detector's input: a face crop larger and less processed than the identity chip.

Artefacts live in the blending boundary, the hair line and the high frequencies, so the crop is the
ArcFace-template similarity alignment with a generous margin (:data:`CROP_MARGIN`), cut from the
photo itself. Detection and the 5 landmarks come from :class:`fakeproof.engine.FaceEngine` (no second
detector). Before cropping, every photo is re-encoded at a random JPEG quality and resized down (as far
as :data:`MIN_SIDE` px) and up again by a random factor (:func:`degrade`): the corpora's sources differ
in format (PNG fakes, JPEG reals) and size, and a detector that learns "PNG" or "small source" learns nothing.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..engine.align import align_face
from ..engine.images import ImageLoadError, decode_rgb, jpeg_roundtrip

CROP_SIZE = 192  # stored crop side (px); models resample it to their own input
CROP_MARGIN = 0.25  # context around the ArcFace template on every edge (share of its side)
TEMPLATE = "arcface"
JPEG_QUALITY = (50, 96)  # random re-encoding quality, [low, high)
MIN_SIDE = 72  # the longer side of the smallest copy degrade makes (celeba-pairs' photos are 89x109)


def degrade(rgb: np.ndarray, rng: np.random.Generator, quality=JPEG_QUALITY, min_side: int = MIN_SIDE, scale: tuple[float, float] | None = None) -> np.ndarray:
    """``rgb`` resized down by a random factor, re-encoded at a random JPEG quality, resized back. The
    factor is log-uniform between the one that brings the longer side to ``min_side`` px and 1: every
    source, real or fake, large or small, is also seen as a small photo (with a factor relative to the
    source alone, 0.35-1 until 2026-12-05, a small real photo still looked unlike anything real the
    head had seen: a head trained that way flagged 5.3% of celeba-pairs' 89x109 photos at a gate that
    flagged 0.25% of the validation reals; 1.3% with this). ``scale``: a uniform factor range instead
    (the detector's extra variants of already degraded crops)."""
    h, w = rgb.shape[:2]
    if scale is not None:
        f = float(rng.uniform(*scale))
    else:
        lo = min(1.0, min_side / max(h, w))
        f = float(np.exp(rng.uniform(np.log(lo), 0.0))) if lo < 1.0 else 1.0
    small = cv2.resize(rgb, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA) if f < 0.999 else rgb
    small = jpeg_roundtrip(small, int(rng.integers(*quality)))
    if small.shape[:2] != (h, w):
        interp = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))]
        small = cv2.resize(small, (w, h), interpolation=interp)
    return small


def landmarks_of(paths, engine) -> list[tuple[np.ndarray | None, str | None]]:
    """(5 landmarks in original-image pixels, error) per path, via the engine (its crop cache
    included); a photo without a detected face falls back as the engine does (pre-aligned crop or
    central square)."""
    records, _ = engine.crops(paths, desc="finding faces")
    out = []
    for rec in records:
        out.append((np.asarray(rec.landmarks, np.float64), None) if rec.ok else (None, rec.error or "no face"))
    return out


def artefact_crop(path, landmarks: np.ndarray, rng: np.random.Generator | None, size: int = CROP_SIZE, margin: float = CROP_MARGIN) -> np.ndarray:
    """The detector crop of one photo; ``rng`` None = no degradation (deployment)."""
    img = decode_rgb(Path(path).read_bytes(), path)
    rgb = img.rgb if rng is None else degrade(img.rgb, rng)
    return align_face(rgb, np.asarray(landmarks) * img.scale, size, margin, TEMPLATE)


def artefact_crops(paths, engine, seed: int = 0, size: int = CROP_SIZE, degraded: bool = True, workers: int = 2):
    """(crops uint8 (N, size, size, 3), errors list[str|None]); each photo gets its own seeded degradation."""
    lms = landmarks_of(paths, engine)
    crops = np.zeros((len(paths), size, size, 3), np.uint8)
    errors: list[str | None] = [e for _, e in lms]

    def one(i):
        lm, err = lms[i]
        if err is not None:
            return
        rng = np.random.default_rng([seed, i]) if degraded else None
        try:
            crops[i] = artefact_crop(paths[i], lm, rng, size)
        except ImageLoadError as e:
            errors[i] = e.reason

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(paths))))
    return crops, errors
