"""How a fake reaches the dataset without ever being half there.

A fake is encoded into a hidden temp file beside its final name (``.<k>.jpg.tmp``: every dataset
reader skips dot-files), fsynced; then its ``fakes.csv`` row is written; then it is renamed to its
key. After a kill, :func:`recover_temps` publishes the temp files that have a row and deletes the
others, so every published fake has a provenance row and no row points at nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..data.atomic import named
from .backends.base import BackendError


def temp_path(path: Path) -> Path:
    """Where a fake waits until its journal row is written (hidden: no dataset reader sees it)."""
    return path.with_name(f".{path.name}.tmp")


def save_jpeg(path: Path, rgb: np.ndarray, quality: int) -> Path:
    """Encode ``rgb`` into the temp file of ``path`` (fsynced); :func:`publish` renames it later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise BackendError("cannot encode the fake as JPEG")
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:  # a full disk: no half fake left, the error names the fake
        tmp.unlink(missing_ok=True)
        raise named(e, path) from None
    return tmp


def publish(path: Path) -> None:
    os.replace(temp_path(path), path)


def recover_temps(root: Path, journal_rows: list[dict]) -> tuple[int, int]:
    """After a kill: fakes with a journal row are published, the others deleted. Returns (published, deleted)."""
    images = Path(root) / "images"
    journaled = {r["key"] for r in journal_rows}
    published = deleted = 0
    if not images.is_dir():
        return 0, 0
    for tmp in images.glob("*/.*.tmp"):
        key = f"{tmp.parent.name}/{tmp.name[1:-len('.tmp')]}"
        final = images / key
        if key in journaled and not os.path.lexists(final):
            os.replace(tmp, final)
            published += 1
        else:
            tmp.unlink()
            deleted += 1
    return published, deleted
