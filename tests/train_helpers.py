"""Fixtures for the train stage's tests: a small dataset with deepfakes and a tiny random encoder."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def add_deepfakes(root: Path, per_identity: int = 2, seed: int = 0) -> str:
    """Add ``per_identity`` deepfakes of every identity (label 1) to a training layout.

    A fake of X carries X's face on another identity's photo: made by the generate stage's
    ``classic`` face swap when it is importable, otherwise by a plain blend of X's face region onto
    the other photo (still an image that is neither X nor the other person). Returns the method."""
    root = Path(root)
    meta = json.loads((root / "meta.json").read_text())
    ids = sorted({k.split("/")[0] for k in meta})
    reals = {i: sorted(k for k, v in meta.items() if v == 0 and k.startswith(i + "/")) for i in ids}
    backend, method = None, "blend"
    try:
        from fakeproof.generate.backends.classic import ClassicBackend

        backend = ClassicBackend()
        backend.load()
        method = "classic"
    except Exception:  # the generate stage is optional for these tests
        backend = None
    rng = np.random.default_rng(seed)
    read = lambda k: cv2.cvtColor(cv2.imread(str(root / "images" / k)), cv2.COLOR_BGR2RGB)  # noqa: E731
    for n, ident in enumerate(ids):
        for j in range(per_identity):
            src = read(reals[ident][j % len(reals[ident])])
            other = ids[(n + 1 + j) % len(ids)]
            tgt = read(reals[other][int(rng.integers(len(reals[other])))])
            fake = None
            if backend is not None:
                try:
                    fake = backend.make(src, tgt, seed=seed * 1000 + n * 10 + j)
                except Exception:
                    fake = None
            if fake is None:
                fake = _blend(src, tgt)
            key = f"{ident}/fake_{j}.jpg"
            cv2.imwrite(str(root / "images" / key), cv2.cvtColor(fake, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            meta[key] = 1
    from fakeproof.data import write_meta

    write_meta(root / "meta.json", meta)
    return method


def _blend(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    h, w = tgt.shape[:2]
    src = cv2.resize(src, (w, h))
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 5, h // 4), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), w / 30)[..., None]
    return np.clip(src * mask * 0.7 + tgt * (1 - mask * 0.7), 0, 255).astype(np.uint8)


def make_train_dataset(root: Path, photos: int = 4, fakes: int = 2) -> tuple[Path, str]:
    from fakeproof.sample_data import make_sample_dataset

    make_sample_dataset(root, photos_per_identity=photos, seed=0, size=192)
    return root, add_deepfakes(root, fakes)


def face_crops(photo: Path, size: int = 160) -> list[np.ndarray]:
    """Loose RGB crops (1.6x the box) of every face MTCNN finds in ``photo``, resized to ``size``."""
    from fakeproof.engine import get_detector, load_rgb

    rgb = load_rgb(photo).rgb
    crops = []
    for f in get_detector("mtcnn").detect(rgb):
        x0, y0, x1, y1 = f.bbox
        cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 1.6
        a, b = int(max(0, cx - s / 2)), int(max(0, cy - s / 2))
        crops.append(cv2.resize(rgb[b:int(cy + s / 2), a:int(cx + s / 2)], (size, size)))
    return crops


def smoothed_fake(c: np.ndarray) -> np.ndarray:
    """A stand-in fake: the face's centre blurred and re-coloured (a local change, as a blend leaves)."""
    out = c.copy()
    out[40:120, 40:120] = (cv2.GaussianBlur(c, (9, 9), 3)[40:120, 40:120] * np.array([1.0, 0.9, 1.1])).clip(0, 255)
    return out


def pasted_fake(c: np.ndarray, other: np.ndarray) -> np.ndarray:
    """A stand-in face swap: another face pasted over the centre."""
    out = c.copy()
    out[50:115, 50:110] = cv2.resize(other, (60, 65))
    return out


def make_artefact_corpus(root: Path, photo: Path, families=("stylegan2_tpdne", "inswapper_128"), synthetic=()) -> Path:
    """A tiny artefact corpus in deepfakes-train's layout from the faces of one photo an installed
    package ships: reals are the faces and their mirror images (JPEG), 'fakes' are the same faces with
    a smoothed, re-coloured centre (first family) or another face pasted in (second family; PNG).
    Fakes of the families in ``synthetic`` have no source footage (``unknown``), like GAN faces; the
    others share their real face's footage unit. Enough for every code path, not a benchmark."""
    import csv

    root = Path(root)
    crops = face_crops(photo)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, c in enumerate(crops):
        fakes = [(smoothed_fake(c), "fake", families[0]), (pasted_fake(c, crops[(i + 1) % len(crops)]), "fake", families[1])]
        for k, (im, lab, fam) in enumerate([(c, "real", "real_g"), (c[:, ::-1].copy(), "real", "real_g"), *fakes]):
            name = f"images/{i}_{k}.{'png' if lab == 'fake' else 'jpg'}"
            cv2.imwrite(str(root / name), cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2BGR))
            rows.append([name, lab, fam, "g", "unknown (synthetic)" if fam in synthetic else f"v{i}"])
    with open(root / "images.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "family", "group", "identity_or_video"])
        w.writerows(rows)
    return root
