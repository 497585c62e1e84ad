"""Pair-folder layout of the Kryptonite test sets: ``TEST_DIR/<pair_id>/0.jpg, 1.jpg``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .training import IMAGE_EXTS


@dataclass(frozen=True)
class PairFolder:
    pair_id: str
    a: Path | None
    b: Path | None
    problem: str | None = None  # why the folder is not a clean pair (missing side, extra files)


def _side(folder: Path, stem: str) -> Path | None:
    for p in sorted(folder.iterdir()):
        if p.stem == stem and p.suffix.lower() in IMAGE_EXTS:
            return p
    return None


def read_pair_folders(test_dir) -> list[PairFolder]:
    """Every sub-folder of ``test_dir`` in sorted order (numeric ids sort numerically)."""
    test_dir = Path(test_dir)
    if not test_dir.is_dir():
        raise FileNotFoundError(f"{test_dir}: not a folder")
    dirs = [d for d in test_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
    dirs.sort(key=lambda d: (0, int(d.name), "") if d.name.isdigit() else (1, 0, d.name))
    out = []
    for d in dirs:
        a, b = _side(d, "0"), _side(d, "1")
        problem = None
        if a is None or b is None:
            problem = "missing " + " and ".join(n for n, p in (("0.jpg", a), ("1.jpg", b)) if p is None)
        out.append(PairFolder(d.name, a, b, problem))
    return out
