"""The one definition of the ArcFace 5-point alignment template, and its scaled variants.

Points (x, y) in a 112x112 crop, in this order: left eye, right eye, nose tip, left mouth
corner, right mouth corner ("left" = image left). Every aligner, generator and exporter in
fakeproof takes its template from here.
"""
from __future__ import annotations

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


def template_for(size: int | tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """The template mapped into a crop of ``size`` (side or (height, width)).

    ``margin`` adds context: the 112x112 template box is enlarged by ``margin`` of its side on
    every edge before being scaled to ``size`` (0.0 = the tight ArcFace crop).
    """
    h, w = (size, size) if isinstance(size, int) else size
    box = ARCFACE_TEMPLATE_SIZE * (1.0 + 2.0 * margin)
    pts = ARCFACE_TEMPLATE - ARCFACE_TEMPLATE_SIZE / 2.0
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
    name = getattr(spec, "template", "arcface")
    if name != "arcface":
        raise ValueError(f"unknown alignment template {name!r}")
    return template_for(tuple(spec.input_size), spec.align_margin)
