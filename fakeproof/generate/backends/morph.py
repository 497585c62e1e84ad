"""``morph``: the face-morphing attack on face verification (offline, no downloads).

Two people's photos (the SOURCE: the identity the fake is filed under; the TARGET: another
identity) become one face meant to pass as either of them. The photo that is not the background is
first moved onto the background photo's face with a similarity transform on the landmarks; the
two landmark sets are averaged with a random weight (``weight``: the source's share, 0.3-0.7, the
background face always getting the smaller one, ``background_share``); both faces are
warped triangle by triangle (Delaunay of the averaged points) onto that shape and alpha-blended
with the same weight; the morph is colour-matched to the background's skin and spliced into the
background photo inside a feathered face mask. Which photo gives the background, the mask shape,
the feathering and the JPEG quality are drawn from the seed too.

The partner is a look-alike, as a morphing attacker would choose one: of ``partner_candidates``
photos of other identities (drawn from the seed by the runner), the one whose face embedding (the
stock encoder, ``partner_encoder``) is closest to the source photo's; its cosine is recorded as
``partner_cos``. A random partner passes as both people far less often (measured on celeba-mini,
see the README). ``generate check`` reports how often a morph passes as BOTH ("as both" column).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...engine import similarity_transform
from .base import BackendError
from ...forgery.landmarks68 import with_forehead
from .classic import Landmark68Backend, delaunay, face_mask, reinhard_colour, warp_triangles


def choose_morph(rng: np.random.Generator) -> dict:
    """The variety of one morph, drawn from ``rng``."""
    return {
        # the background photo's face gets the smaller share: its hair, ears and face outline
        # (outside the mask) already pull the morph towards that person; measured with stock FaceNet
        # on celeba-mini, an even split passes as the background person about twice as often
        "background_share": round(float(rng.uniform(0.3, 0.45)), 3),
        "background": str(rng.choice(["target", "source"])),
        "mask": str(rng.choice(["forehead", "hull"], p=[0.7, 0.3])),
        "feather": round(float(rng.uniform(0.03, 0.1)), 3),
        "colour": str(rng.choice(["reinhard", "none"], p=[0.8, 0.2])),
        "jpeg_quality": int(rng.integers(75, 98)),
    }


def align_onto(rgb: np.ndarray, pts: np.ndarray, ref_pts: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` and its points moved by the similarity transform that best maps ``pts`` onto ``ref_pts``."""
    m = similarity_transform(pts, ref_pts).astype(np.float32)
    h, w = shape[:2]
    moved = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return moved, (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def morph_faces(bg: np.ndarray, bg_pts: np.ndarray, other: np.ndarray, other_pts: np.ndarray, bg_share: float, p: dict) -> np.ndarray:
    """The morph of ``bg`` and ``other`` (``bg_share`` = the background face's weight), spliced into ``bg``."""
    h, w = bg.shape[:2]
    other_al, other_pts_al = align_onto(other, other_pts, bg_pts, bg.shape)
    mean_pts = np.clip(bg_share * bg_pts + (1 - bg_share) * other_pts_al, 1, [w - 2, h - 2]).astype(np.float32)
    tris = delaunay(mean_pts, bg.shape)
    if len(tris) < 20:
        raise BackendError("landmark triangulation failed on the averaged face")
    a = warp_triangles(bg.astype(np.float32), bg_pts, bg.shape, mean_pts, tris)
    b = warp_triangles(other_al.astype(np.float32), other_pts_al, bg.shape, mean_pts, tris)
    mask = face_mask(mean_pts, bg.shape, p["mask"])
    eye_d = float(np.linalg.norm(mean_pts[36:42].mean(0) - mean_pts[42:48].mean(0)))
    k = max(3, int(eye_d * 0.12) | 1)
    mask = cv2.erode(mask, np.ones((k, k), np.uint8))  # keep the warps' ragged hull edge outside
    if mask.sum() == 0:
        raise BackendError("empty face mask")
    if p["colour"] == "reinhard":
        b = reinhard_colour(b, bg, mask)  # the other face's skin to the background's light
    face = bg_share * a + (1 - bg_share) * b
    fk = max(3, int(eye_d * p["feather"] * 4) | 1)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (fk, fk), 0)[..., None]
    return np.clip(soft * face + (1 - soft) * bg, 0, 255).astype(np.uint8)


class MorphBackend(Landmark68Backend):
    name = "morph"
    description = "face morph of two identities (averaged landmarks, Delaunay warp, alpha blend, spliced into one photo) (offline)"
    uses_target = True
    needs_weights = False

    def __init__(self, partner_candidates: int = 16, partner_encoder: str = "facenet") -> None:
        super().__init__()
        self.partner_candidates = partner_candidates
        self.partner_encoder = partner_encoder
        self._engine = None
        self._partner: dict = {}

    def pick_partner(self, images_dir: Path, source_key: str, candidates: list[str]) -> str:
        """The candidate (a key under ``images_dir``) most similar to the source photo for the
        partner encoder; the first candidate when nothing can be embedded."""
        if self.partner_candidates <= 1 or len(candidates) <= 1:
            self._partner = {}
            return candidates[0]
        if self._engine is None:
            from ...engine import FaceEngine

            self._engine = FaceEngine(self.partner_encoder, device=getattr(self, "device", "cpu"))
        emb = self._engine.embed_paths([Path(images_dir) / k for k in [source_key, *candidates]], progress=False).embeddings
        cos = emb[1:] @ emb[0]
        if np.isnan(cos).all():
            self._partner = {}
            return candidates[0]
        best = int(np.nanargmax(cos))
        self._partner = {"partner_candidates": len(candidates), "partner_cos": round(float(cos[best]), 4), "partner_encoder": self.partner_encoder}
        return candidates[best]

    def choose(self, rng: np.random.Generator) -> dict:
        return choose_morph(rng)

    def points(self, rgb: np.ndarray, what: str) -> np.ndarray:
        face = self.finder.main_face(rgb, what)
        h, w = rgb.shape[:2]
        return np.clip(with_forehead(self.landmarks(rgb, face.bbox)), 1, [w - 2, h - 2]).astype(np.float32)

    def make(self, source_rgb: np.ndarray, target_rgb: np.ndarray | None, seed: int) -> np.ndarray:
        if target_rgb is None:
            raise BackendError("morph needs a second person's photo (target)")
        p = self.choose(np.random.default_rng(seed))
        sp = self.points(source_rgb, "source photo")
        tp = self.points(target_rgb, "target photo")
        bg = p["background_share"]
        if p["background"] == "target":
            out = morph_faces(target_rgb, tp, source_rgb, sp, bg, p)
        else:
            out = morph_faces(source_rgb, sp, target_rgb, tp, bg, p)
        p["weight"] = round(bg if p["background"] == "source" else 1.0 - bg, 3)  # the source identity's share
        p.update(self._partner)
        self._partner = {}
        self.last_info = p
        return out
