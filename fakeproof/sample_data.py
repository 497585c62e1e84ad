"""A small face dataset in the training layout, made from photos that installed packages ship.

No download and no ``../shared``: the faces come from photos that installed dependencies ship:
insightface's sample images (``t1.jpg``, a group photo of six people, and ``Tom_Hanks_54745.png``,
an aligned 112x112 crop as in the Kryptonite data), matplotlib's ``grace_hopper.jpg`` and
scikit-image's ``astronaut.png`` (Eileen Collins; both public-domain US government photos). Each identity gets several photos made
by realistic variation of ONE real photo: in-plane rotation, a small perspective (pose) change,
scale and crop, lighting (gain, gamma, colour cast), blur, sensor noise and JPEG compression,
with the real background around the face. It is honest test and demo data: real faces, real
identities, but not independent photos, so similarities within an identity run higher than on
real datasets.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .engine.detect import get_detector
from .engine.images import jpeg_roundtrip, load_rgb


@dataclass
class SourceFace:
    identity: str
    rgb: np.ndarray  # the whole source photo
    bbox: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray


def _insightface_image(name: str) -> Path:
    import insightface

    return Path(insightface.__file__).parent / "data" / "images" / name


def _portraits() -> list[tuple[str, Path]]:
    """Single-person photos shipped by installed packages (each one is skipped where absent)."""
    out = [("tom_hanks", _insightface_image("Tom_Hanks_54745.png"))]
    try:
        import matplotlib.cbook

        out.append(("grace_hopper", Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))))
    except Exception:  # noqa: BLE001 - an optional extra face
        pass
    try:
        import skimage

        out.append(("eileen_collins", Path(skimage.__file__).parent / "data" / "astronaut.png"))
    except Exception:  # noqa: BLE001
        pass
    return [(n, p) for n, p in out if p.exists()]


def source_faces(min_score: float = 0.95, min_side: int = 60) -> list[SourceFace]:
    """The real faces the sample dataset is made of: the people in t1.jpg (left to right), then the
    single portraits of :func:`_portraits`."""
    det = get_detector("mtcnn")
    out: list[SourceFace] = []
    group = load_rgb(_insightface_image("t1.jpg")).rgb
    faces = [f for f in det.detect(group) if f.score >= min_score and min(f.bbox[2] - f.bbox[0], f.bbox[3] - f.bbox[1]) >= min_side]
    faces.sort(key=lambda f: f.bbox[0])
    for i, f in enumerate(faces):
        out.append(SourceFace(f"person_{i + 1:02d}", group, f.bbox, f.landmarks))
    for name, path in _portraits():
        rgb = load_rgb(path).rgb
        best = max(det.detect(rgb), key=lambda f: f.area, default=None)
        if best is not None:
            out.append(SourceFace(name, rgb, best.bbox, best.landmarks))
    return out


def vary(face: SourceFace, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """One new 'photo' of ``face``: geometric + photometric variation, returned as RGB uint8."""
    x1, y1, x2, y2 = face.bbox
    h0, w0 = face.rgb.shape[:2]
    if max(h0, w0) <= 160:
        # an already aligned crop (as in the Kryptonite data): stay an aligned crop of the same size
        size = max(h0, w0)
        cx, cy, s, ang = w0 / 2, h0 / 2, rng.uniform(0.95, 1.05), rng.uniform(-5, 5)
    else:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        side = max(x2 - x1, y2 - y1)
        s = size * rng.uniform(0.38, 0.55) / side  # face size in the output: crop / zoom variation
        ang = rng.uniform(-14, 14)
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), ang, s)
    m[:, 2] += np.array([size / 2 - cx, size / 2 - cy]) + rng.normal(0, size * 0.025, 2)
    img = cv2.warpAffine(face.rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # a small perspective change stands in for head pose
    d = size * (0.06 if size > 160 else 0.02)
    src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    dst = src + rng.uniform(-d, d, (4, 2)).astype(np.float32)
    img = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (size, size), borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    f = img.astype(np.float32) / 255.0
    f = f ** rng.uniform(0.75, 1.35)  # exposure curve
    f = f * rng.uniform(0.75, 1.2) * rng.uniform(0.92, 1.08, 3)  # gain and colour cast
    # directional light: a soft gradient across the face
    gx = np.linspace(-1, 1, size)[None, :, None] * rng.uniform(-0.18, 0.18)
    f = f * (1 + gx)
    img = np.clip(f * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < 0.4:
        img = np.clip(img.astype(np.int16) + rng.normal(0, rng.uniform(2, 7), img.shape).astype(np.int16), 0, 255).astype(np.uint8)
    q = int(rng.integers(45, 96))
    return jpeg_roundtrip(img, q)


def make_sample_dataset(out_dir, photos_per_identity: int = 5, seed: int = 0, size: int = 256, identities: int | None = None) -> Path:
    """Write ``out_dir/images/<identity>/<k>.jpg`` and ``out_dir/meta.json`` (all 0 = real)."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    faces = source_faces()
    if identities is not None:
        faces = faces[:identities]
    meta: dict[str, int] = {}
    for face in faces:
        d = out / "images" / face.identity
        d.mkdir(parents=True, exist_ok=True)
        for k in range(photos_per_identity):
            img = vary(face, rng, size)
            cv2.imwrite(str(d / f"{k}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            meta[f"{face.identity}/{k}.jpg"] = 0
    from .data.meta import write_meta

    write_meta(out / "meta.json", meta)
    return out
