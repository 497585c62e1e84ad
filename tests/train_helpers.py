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
