"""Pair-folder layout of the Kryptonite test sets: ``TEST_DIR/<pair_id>/0.jpg, 1.jpg``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError
from .safe_paths import check_link
from .training import IMAGE_EXTS


@dataclass(frozen=True)
class PairFolder:
    pair_id: str
    a: Path | None
    b: Path | None
    problem: str | None = None  # why the folder is not a clean pair (missing side, extra files)


def _side(folder: Path, stem: str, root: Path) -> Path | None:
    for p in sorted(folder.iterdir()):
        if p.stem == stem and p.suffix.lower() in IMAGE_EXTS:
            if p.is_symlink():
                check_link(p, root)
            return p
    return None


def read_pair_folders(test_dir) -> list[PairFolder]:
    """Every sub-folder of ``test_dir`` in sorted order (numeric ids sort numerically).

    A symlinked pair folder or photo that leads outside ``test_dir`` raises
    :class:`~fakeproof.data.safe_paths.PathEscapeError`."""
    test_dir = Path(test_dir)
    if not test_dir.is_dir():
        raise NotFoundError(f"{test_dir}: not a folder")
    dirs = [d for d in test_dir.iterdir() if d.is_dir() and not d.name.startswith(".")]
    dirs.sort(key=lambda d: (0, int(d.name), "") if d.name.isdigit() else (1, 0, d.name))
    out = []
    for d in dirs:
        if d.is_symlink():
            check_link(d, test_dir)
        a, b = _side(d, "0", test_dir), _side(d, "1", test_dir)
        problem = None
        if a is None or b is None:
            problem = "missing " + " and ".join(n for n, p in (("0.jpg", a), ("1.jpg", b)) if p is None)
        out.append(PairFolder(d.name, a, b, problem))
    return out
