"""Content hashes, written once: of a file (read in 4 MiB blocks) and of a torch module's weights
(every state-dict key and tensor, in key order)."""
from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 22


def _hasher(algo: str, digest_size: int | None):
    if algo == "blake2b":
        return hashlib.blake2b(digest_size=digest_size or 12)
    return hashlib.new(algo)


def digest_file(path: str | Path, algo: str = "sha256", digest_size: int | None = None) -> str:
    """Hex digest of a file's bytes (``algo``: any hashlib name; blake2b takes ``digest_size``)."""
    h = _hasher(algo, digest_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def digest_weights(module, algo: str = "sha256", digest_size: int | None = None, prefix: bytes = b"", sort_keys: bool = True) -> str:
    """Hex digest of a module's state dict: ``prefix``, then each key and its tensor's bytes."""
    h = _hasher(algo, digest_size)
    h.update(prefix)
    items = module.state_dict().items()
    for k, v in sorted(items) if sort_keys else items:
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()
