"""Shared fixtures for the curate tests: a sample dataset with one known mislabel."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from fakeproof.data import read_meta, write_meta

WRONG_KEY = "person_02/from_person_01.jpg"  # a photo of person_01 filed under person_02
TRUE_IDENTITY = "person_01"


def build_mislabelled(root: Path, cache: Path) -> Path:
    """A sample dataset (made once per session in ``cache``) copied to ``root`` with one photo of
    person_01 moved into person_02's folder and meta."""
    from fakeproof.sample_data import make_sample_dataset

    if not (cache / "meta.json").exists():
        make_sample_dataset(cache, photos_per_identity=5, seed=0)
    shutil.copytree(cache, root)
    shutil.rmtree(root / ".history", ignore_errors=True)
    meta = read_meta(root / "meta.json")
    src = root / "images" / "person_01" / "4.jpg"
    os.replace(src, root / "images" / WRONG_KEY)
    meta.pop("person_01/4.jpg")
    meta[WRONG_KEY] = 0
    write_meta(root / "meta.json", meta)
    shutil.rmtree(root / ".history", ignore_errors=True)
    return root


def tree_digest(root: Path, exclude=("curation", ".history")) -> dict[str, str]:
    """sha256 of every file under root (paths relative), curation output excluded."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] not in exclude:
            out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
