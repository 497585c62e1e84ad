"""The training layout of the mission: ``ROOT/images/<identity>/<file>`` + ``ROOT/meta.json``."""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .meta import read_meta
from .safe_paths import check_link, walk_inside

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Item:
    key: str  # "<identity>/<file>", as in meta.json
    identity: str
    path: Path
    is_deepfake: bool


@dataclass
class TrainingDataset:
    root: Path
    items: list[Item]
    missing_files: list[str] = field(default_factory=list)  # keys in meta.json without a file
    unlisted_files: list[str] = field(default_factory=list)  # files under images/ without a key

    @property
    def meta_path(self) -> Path:
        return self.root / "meta.json"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @classmethod
    def load(cls, root, check_files: bool = True) -> "TrainingDataset":
        """Load and validate; keys without files and files without keys are reported, not fatal.

        A symlink (file or folder) under images/ that leads outside ``root`` raises
        :class:`~fakeproof.data.safe_paths.PathEscapeError` (see that module for the opt-in)."""
        root = Path(root)
        meta = read_meta(root / "meta.json")
        images = root / "images"
        on_disk: set[str] = set()
        if check_files and images.is_dir():
            if os.path.islink(images):
                check_link(images, root)
            for dirpath, files in walk_inside(images, root):
                rel = Path(dirpath).relative_to(images).as_posix()
                if rel == ".":
                    continue
                for f in files:
                    if Path(f).suffix.lower() in IMAGE_EXTS and not f.startswith("."):
                        on_disk.add(f"{rel}/{f}")
        items, missing = [], []
        for key, v in meta.items():
            if check_files and key not in on_disk:
                missing.append(key)
                continue
            ident = key.split("/", 1)[0]
            items.append(Item(key, ident, images / key, bool(v)))
        unlisted = sorted(on_disk - meta.keys()) if check_files else []
        return cls(root, items, sorted(missing), unlisted)

    def meta(self) -> dict[str, int]:
        return {it.key: int(it.is_deepfake) for it in self.items}

    def by_identity(self) -> dict[str, list[Item]]:
        out: dict[str, list[Item]] = defaultdict(list)
        for it in self.items:
            out[it.identity].append(it)
        return dict(sorted(out.items()))

    def identities(self) -> list[str]:
        return sorted({it.identity for it in self.items})

    def reals(self) -> list[Item]:
        return [it for it in self.items if not it.is_deepfake]

    def fakes(self) -> list[Item]:
        return [it for it in self.items if it.is_deepfake]
