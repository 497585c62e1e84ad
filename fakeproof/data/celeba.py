"""CelebA's own layout: ``img_celeba/`` or ``img_align_celeba/`` + ``identity_CelebA.txt``."""
from __future__ import annotations

from ..errors import InputError, NotFoundError

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


def identity_order(identity: str) -> tuple:
    """Sort key of CelebA identity ids: numeric ids by value (2 before 10), then any others by name."""
    return (0, int(identity), "") if identity.isdigit() else (1, 0, identity)


@dataclass
class CelebA:
    root: Path
    image_dir: Path
    identities: dict[str, list[str]]  # identity id -> file names (sorted)
    missing: list[str]  # listed in identity_CelebA.txt but not on disk

    @classmethod
    def load(cls, root) -> "CelebA":
        root = Path(root)
        ident_file = next((p for p in (root / "identity_CelebA.txt", root / "Anno" / "identity_CelebA.txt") if p.exists()), None)
        if ident_file is None:
            raise NotFoundError(f"{root}: identity_CelebA.txt not found (expected CelebA's layout)")
        image_dir = next((root / d for d in ("img_celeba", "img_align_celeba", "Img/img_celeba", "Img/img_align_celeba") if (root / d).is_dir()), None)
        if image_dir is None:
            raise NotFoundError(f"{root}: neither img_celeba/ nor img_align_celeba/ found")
        ids: dict[str, list[str]] = defaultdict(list)
        missing = []
        for n, line in enumerate(ident_file.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise InputError(f"{ident_file}:{n}: expected '<file> <identity>', got {line!r}")
            fname, ident = parts
            if (image_dir / fname).exists():
                ids[ident].append(fname)
            else:
                missing.append(fname)
        return cls(root, image_dir, {k: sorted(ids[k]) for k in sorted(ids, key=identity_order)}, missing)
