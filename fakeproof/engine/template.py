"""The one definition of the 5-point alignment templates, and their scaled variants.

Points (x, y) in this order: left eye, right eye, nose tip, left mouth corner, right mouth corner
("left" = image left). ``arcface``: the ArcFace template in a 112x112 crop; ``dlib_chip``: where
those points fall in dlib's 150x150 face chips. Every aligner, generator and exporter in fakeproof
takes its template from here; an encoder names its template in ``EncoderSpec.template``.
"""
from __future__ import annotations

from ..errors import InputError

import numpy as np

ARCFACE_TEMPLATE_SIZE = 112
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


# dlib's face ResNet was trained on dlib's chips: get_face_chip(img, shape, size=150, padding=0.25)
# placed by dlib's own 5-point predictor (eye corners and the base of the nose). These are the mean
# positions of the engine's MTCNN points (eye centres, nose tip, mouth corners) inside such chips,
# measured on the 478 real photos of ../shared/data/five-celebrities and celeba-mini (dlib's
# predictor run inside the MTCNN box; per-point spread 3-9 px) with
#   FAKEPROOF_SHARED_DATA=../shared/data python benchmarks/fit_dlib_chip_template.py
DLIB_CHIP_SIZE = 150
DLIB_CHIP_TEMPLATE = np.array(
    [
        [45.98, 43.29],
        [100.39, 43.09],
        [73.54, 76.43],
        [48.19, 101.94],
        [97.22, 101.62],
    ],
    dtype=np.float32,
)

# name -> (points, the side of the square crop they are given in)
TEMPLATES: dict[str, tuple[np.ndarray, int]] = {
    "arcface": (ARCFACE_TEMPLATE, ARCFACE_TEMPLATE_SIZE),
    "dlib_chip": (DLIB_CHIP_TEMPLATE, DLIB_CHIP_SIZE),
}


def template_for(size: int | tuple[int, int], margin: float = 0.0, template: str = "arcface") -> np.ndarray:
    """The named template mapped into a crop of ``size`` (side or (height, width)).

    ``margin`` adds context: the template's square crop is enlarged by ``margin`` of its side on
    every edge before being scaled to ``size`` (0.0 = the template's own crop).
    """
    if template not in TEMPLATES:
        raise InputError(f"unknown alignment template {template!r}; known: {', '.join(TEMPLATES)}")
    ref, ref_size = TEMPLATES[template]
    h, w = (size, size) if isinstance(size, int) else size
    box = ref_size * (1.0 + 2.0 * margin)
    pts = ref - ref_size / 2.0
    out = np.empty_like(pts)
    out[:, 0] = pts[:, 0] / box * w + w / 2.0
    out[:, 1] = pts[:, 1] / box * h + h / 2.0
    return out


# The older ("v1") ArcFace template, in the same 112x112 coordinates and point order. Some face
# swappers (Ghost / sber-swap, SimSwap) were trained on crops aligned to it, so their adapters must
# align with it too; everything else uses ARCFACE_TEMPLATE.
ARCFACE_V1_TEMPLATE = np.array(
    [
        [39.7300, 51.1380],
        [72.2700, 51.1380],
        [56.0000, 68.4930],
        [42.4630, 87.0100],
        [69.5370, 87.0100],
    ],
    dtype=np.float32,
)


def template_v1_for(size: int | tuple[int, int]) -> np.ndarray:
    """:data:`ARCFACE_V1_TEMPLATE` scaled to a crop of ``size`` (no margin)."""
    h, w = (size, size) if isinstance(size, int) else size
    return ARCFACE_V1_TEMPLATE * np.array([w / ARCFACE_TEMPLATE_SIZE, h / ARCFACE_TEMPLATE_SIZE], np.float32)


def encoder_template(spec) -> "np.ndarray":
    """Where the 5 landmarks land in the aligned crop an encoder takes: its template (``spec.template``,
    default the ArcFace one) scaled to ``spec.input_size`` with ``spec.align_margin``."""
    return template_for(tuple(spec.input_size), spec.align_margin, getattr(spec, "template", "arcface"))
