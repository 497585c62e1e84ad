"""Content digests of photos and meta.json: what curation results are bound to.

``clean`` records them; ``review`` and ``apply`` recompute them and refuse results computed on a
photo or a meta.json that has changed since (see the README's Guarantees section). The hashing
itself is :mod:`fakeproof.hashing`; this module fixes which digest means what.
"""
from __future__ import annotations

import hashlib

from ..hashing import digest_file

PHOTO_ALGO, PHOTO_SIZE = "blake2b", 16  # the engine caches key photos by the same digest


def file_digest(data: bytes) -> str:
    """The photo digest used everywhere (engine caches, flags.csv, FiftyOne) from bytes in memory."""
    return hashlib.blake2b(data, digest_size=PHOTO_SIZE).hexdigest()


def path_digest(path) -> str | None:
    """:func:`file_digest` of the file at ``path`` (None when it cannot be read)."""
    try:
        return digest_file(path, PHOTO_ALGO, PHOTO_SIZE)
    except OSError:
        return None


def meta_digest(meta_path) -> str | None:
    """sha256 of meta.json's bytes (None when absent)."""
    try:
        return digest_file(meta_path, "sha256")
    except OSError:
        return None
