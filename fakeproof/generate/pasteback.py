"""Soft-mask paste-back shared by the swappers: put a generated aligned crop back into the photo."""
from __future__ import annotations

import cv2
import numpy as np


def soft_box_mask(size: tuple[int, int], blur: float = 0.3, padding: float = 0.0) -> np.ndarray:
    """A float mask (h, w) in [0, 1]: 1 inside, fading to 0 at the crop border.

    ``blur`` is the width of the fade as a fraction of the crop side; ``padding`` removes that
    fraction of the side on every edge first (useful when the generator's borders are poor).
    """
    h, w = size
    k = max(1, int(min(h, w) * blur * 0.5))
    m = np.zeros((h, w), np.float32)
    p = max(k, int(round(min(h, w) * padding)))
    m[p : h - p, p : w - p] = 1.0
    if k > 1:
        m = cv2.GaussianBlur(m, (0, 0), k / 2.0)
    return np.clip(m, 0.0, 1.0)


def paste_back(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend ``crop`` (made in the aligned frame given by the 2x3 ``matrix``: frame -> crop) into ``frame``.

    The crop and its soft ``mask`` are warped back with the inverse similarity; only the face's
    bounding region is touched, so large photos stay fast.
    """
    h, w = frame.shape[:2]
    inv = cv2.invertAffineTransform(matrix)
    ch, cw = crop.shape[:2]
    corners = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float64)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    x1, y1 = np.floor(pts.min(0)).astype(int)
    x2, y2 = np.ceil(pts.max(0)).astype(int)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2 + 1), min(h, y2 + 1)
    if x2 <= x1 or y2 <= y1:
        return frame.copy()
    shift = inv.copy()
    shift[:, 2] -= (x1, y1)
    size = (x2 - x1, y2 - y1)
    warped = cv2.warpAffine(crop, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    m = cv2.warpAffine(mask.astype(np.float32), shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)[..., None]
    out = frame.copy()
    region = out[y1:y2, x1:x2].astype(np.float32)
    out[y1:y2, x1:x2] = np.clip(m * warped.astype(np.float32) + (1.0 - m) * region, 0, 255).astype(np.uint8)
    return out
