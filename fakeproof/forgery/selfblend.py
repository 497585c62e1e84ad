"""Self-Blended Images' operations (Shiohara & Yamasaki, CVPR 2022): two copies of one real photo,
one altered (colour, brightness/contrast, blur / sharpening / down-up scale, scale and shift jitter),
blended into the other inside a deformed, blurred face mask. Used by the ``selfblend`` backend and by
the artefact head's on-the-fly self-blends."""
from __future__ import annotations

import cv2
import numpy as np

from .landmarks68 import BROWS, JAW, NOSE_BRIDGE

COLOUR_MODES = ("rgb_shift", "hsv_shift", "none")
FREQ_MODES = ("blur", "sharpen", "downscale", "none")


def choose_selfblend(rng: np.random.Generator) -> dict:
    """The variety of one self-blended fake, drawn from ``rng``."""
    colour = str(rng.choice(COLOUR_MODES, p=[0.45, 0.45, 0.1]))
    freq = str(rng.choice(FREQ_MODES, p=[0.3, 0.2, 0.3, 0.2]))
    return {
        "altered": str(rng.choice(["source", "target"])),  # which copy gets the alterations
        "colour": colour,
        "shift": [round(float(v), 1) for v in rng.uniform(-20, 20, 3)] if colour != "none" else [0.0, 0.0, 0.0],
        "brightness": round(float(rng.uniform(-0.1, 0.1)), 3),  # added, as a share of 255
        "contrast": round(float(rng.uniform(0.9, 1.1)), 3),
        "freq": freq,
        "freq_amount": round(float(rng.uniform(0.3, 1.0)), 3),
        "scale": [round(float(v), 4) for v in rng.uniform(0.95, 1.05, 2)],  # x, y
        "shift_xy": [round(float(v), 4) for v in rng.uniform(-0.03, 0.03, 2)],  # share of the face width
        "mask": str(rng.choice(["hull", "forehead", "inner"], p=[0.4, 0.4, 0.2])),
        "hull_jitter": round(float(rng.uniform(0.0, 0.06)), 4),  # per-point push, share of the face width
        "hull_seed": int(rng.integers(2**31)),
        "morph": round(float(rng.uniform(-0.08, 0.08)), 4),  # >0 dilate, <0 erode; share of the face width
        "mask_blur": round(float(rng.uniform(0.02, 0.15)), 4),  # Gaussian sigma, share of the face width
        "blend_ratio": float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])),
        "jpeg_quality": int(rng.integers(60, 100)),
    }


def alter_colour(img: np.ndarray, p: dict) -> np.ndarray:
    """Colour, brightness and contrast alterations (float32 RGB in, float32 RGB out)."""
    out = img
    if p["colour"] == "rgb_shift":
        out = out + np.asarray(p["shift"], np.float32)
    elif p["colour"] == "hsv_shift":
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        dh, ds, dv = p["shift"]
        hsv[..., 0] = (hsv[..., 0] + dh * 0.5) % 180  # OpenCV hue runs 0..179
        hsv[..., 1] = np.clip(hsv[..., 1] + ds, 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + dv, 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    mean = out.mean()
    return (out - mean) * p["contrast"] + mean + p["brightness"] * 255.0


def alter_frequency(img: np.ndarray, p: dict, face_w: float) -> np.ndarray:
    """Blur, sharpening or a down-up scale (float32 RGB), strength ``freq_amount``."""
    a = p["freq_amount"]
    if p["freq"] == "blur":
        return cv2.GaussianBlur(img, (0, 0), max(0.3, a * face_w * 0.012))
    if p["freq"] == "sharpen":
        soft = cv2.GaussianBlur(img, (0, 0), max(0.5, face_w * 0.01))
        return img + a * (img - soft)
    if p["freq"] == "downscale":
        h, w = img.shape[:2]
        f = 1.0 - 0.7 * a  # down to 30% of the size at the strongest
        small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return img


def blend_mask(pts: np.ndarray, shape, p: dict, face_w: float) -> np.ndarray:
    """Float mask in [0, 1]: the landmark hull, deformed, eroded/dilated and blurred as ``p`` says."""
    if p["mask"] == "forehead":
        sel = pts
    elif p["mask"] == "inner":
        sel = np.vstack([pts[BROWS], pts[JAW[3:14]], pts[NOSE_BRIDGE]])
    else:
        sel = pts[:68]
    hull = cv2.convexHull(sel.astype(np.float32)).reshape(-1, 2)
    g = np.random.default_rng(p["hull_seed"])
    hull = hull + g.normal(0.0, p["hull_jitter"] * face_w, hull.shape).astype(np.float32)
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(hull).astype(np.int32)], 255)
    k = int(round(abs(p["morph"]) * face_w)) | 1
    if k > 1:
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        m = cv2.dilate(m, ker) if p["morph"] > 0 else cv2.erode(m, ker)
    mf = m.astype(np.float32) / 255.0
    return cv2.GaussianBlur(mf, (0, 0), max(0.5, p["mask_blur"] * face_w))


def self_blend(rgb: np.ndarray, pts: np.ndarray, p: dict) -> np.ndarray:
    """Blend an altered copy of ``rgb`` into ``rgb`` (or the reverse) inside the face mask.

    ``pts``: the 78 points of :func:`.landmarks68.with_forehead` in ``rgb``'s pixels; ValueError when
    the face region is too small."""
    h, w = rgb.shape[:2]
    face_w = float(np.ptp(pts[:17, 0])) or float(w) / 3
    # work on the face region only (the mask never reaches beyond its margin)
    x0, y0 = np.floor(pts.min(0) - 0.35 * face_w).astype(int)
    x1, y1 = np.ceil(pts.max(0) + 0.35 * face_w).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 16 or y1 - y0 < 16:
        raise ValueError("face region too small to self-blend")
    region = rgb[y0:y1, x0:x1].astype(np.float32)
    local = pts - [x0, y0]
    altered = alter_frequency(alter_colour(region, p), p, face_w)
    source, target = (altered, region) if p["altered"] == "source" else (region, altered)
    # small scale / translation jitter of the source about the face centre
    cx, cy = local[:68].mean(0)
    sx, sy = p["scale"]
    tx, ty = p["shift_xy"][0] * face_w, p["shift_xy"][1] * face_w
    m = np.array([[sx, 0, (1 - sx) * cx + tx], [0, sy, (1 - sy) * cy + ty]], np.float32)
    source = cv2.warpAffine(source, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    mask = blend_mask(local, region.shape, p, face_w)[..., None] * p["blend_ratio"]
    out = rgb.copy()
    out[y0:y1, x0:x1] = np.clip(mask * source + (1 - mask) * target, 0, 255).astype(np.uint8)
    return out
