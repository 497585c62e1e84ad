"""5-point similarity alignment onto a template (ArcFace by default; see :mod:`fakeproof.engine.template`)."""
from __future__ import annotations

import cv2
import numpy as np

from .template import template_for


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst (Umeyama).

    Returns the 2x3 affine matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    var_s = (s**2).sum() / len(src)
    scale = (sig * np.diag(fix)).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def alignment_matrix(landmarks: np.ndarray, size: int | tuple[int, int], margin: float = 0.0, template: str = "arcface") -> np.ndarray:
    return similarity_transform(landmarks, template_for(size, margin, template))


def align_face(
    rgb: np.ndarray, landmarks: np.ndarray, size: int | tuple[int, int] = 112, margin: float = 0.0, template: str = "arcface"
) -> np.ndarray:
    """Warp ``rgb`` so that the 5 ``landmarks`` land on the (scaled) named template."""
    h, w = (size, size) if isinstance(size, int) else size
    m = alignment_matrix(landmarks, (h, w), margin, template)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
