"""``selfblend``: Self-Blended Images, a pseudo-fake made from ONE real photo (no other person).

The idea (Shiohara & Yamasaki, CVPR 2022): a blending boundary and a colour/frequency mismatch
inside the face are what almost every face swap leaves behind, whatever the generator. So we make
exactly that and nothing generator-specific: two copies of the same photo, one of them altered
(colour shift, brightness/contrast, blur or sharpening or a down-up scale, and a small scale and
translation jitter), blended into the other inside a face mask. The mask is the landmark hull,
deformed (each hull point pushed at random, then a random erosion or dilation) and blurred with a
random strength; the blend may be partial. The photo keeps its identity, so the encoder learns to
reject the artefacts, not a person.

Only the region around the face is processed, so a fake costs a few milliseconds plus one face
detection and one landmark fit. Every drawn value is in ``last_info`` (the ``params`` column of
``fakes.csv``); the per-point hull jitter comes from ``hull_seed``.
"""
from __future__ import annotations

import numpy as np

from ...forgery.landmarks68 import with_forehead
from ...forgery.selfblend import choose_selfblend, self_blend
from .base import BackendError
from .classic import Landmark68Backend

class SelfBlendBackend(Landmark68Backend):
    name = "selfblend"
    description = "Self-Blended Images: one real photo blended with an altered copy of itself inside a deformed face mask (offline)"
    uses_target = False
    needs_weights = False

    def choose(self, rng: np.random.Generator) -> dict:
        return choose_selfblend(rng)

    def make(self, source_rgb: np.ndarray, target_rgb: np.ndarray | None, seed: int) -> np.ndarray:
        p = self.choose(np.random.default_rng(seed))
        face = self.finder.main_face(source_rgb, "source photo")
        pts = with_forehead(self.landmarks(source_rgb, face.bbox))
        h, w = source_rgb.shape[:2]
        pts = np.clip(pts, 0, [w - 1, h - 1])
        try:
            out = self_blend(source_rgb, pts, p)
        except ValueError as e:
            raise BackendError(str(e)) from None
        self.last_info = p
        return out
