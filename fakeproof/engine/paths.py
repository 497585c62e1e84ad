"""Where fakeproof keeps what it derives (caches, converted weights) and where it looks for user weights.

- ``FAKEPROOF_HOME`` (default ``~/.cache/fakeproof``): converted state dicts, embedding caches.
- ``FAKEPROOF_MODELS`` (default ``~/.fakeproof/models``): weight files the user supplies
  (AdaFace checkpoints, buffalo_l, inswapper_128, Ghost, Arc2Face, InstantID, Stable Diffusion).
  Every command that needs such files also takes ``--models-dir``.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    p = Path(os.environ.get("FAKEPROOF_HOME", Path.home() / ".cache" / "fakeproof")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def models_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get("FAKEPROOF_MODELS", Path.home() / ".fakeproof" / "models")).expanduser()
