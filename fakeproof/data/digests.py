"""Content digests of photos and meta.json: what curation results are bound to.

``clean`` records them; ``review`` and ``apply`` recompute them and refuse results computed on a
photo or a meta.json that has changed since (see the README's Guarantees section).
"""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(data: bytes) -> str:
    """The photo digest used everywhere (engine caches, flags.csv, FiftyOne): blake2b-128 of the bytes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def path_digest(path) -> str | None:
    """Digest of the file at ``path`` (None when it cannot be read)."""
    try:
        return file_digest(Path(path).read_bytes())
    except OSError:
        return None


def meta_digest(meta_path) -> str | None:
    """sha256 of meta.json's bytes (None when absent)."""
    try:
        return hashlib.sha256(Path(meta_path).read_bytes()).hexdigest()
    except OSError:
        return None
