"""meta.json: reading with validation, and atomic writes that always keep the previous version.

``meta.json`` maps ``"<identity>/<k>.jpg"`` to 0 (real) or 1 (deepfake). fakeproof never edits it
in place: :func:`write_meta` writes a temp file in the same folder, fsyncs it and renames it over
the old one, after copying the old one to ``.history/meta.json.<UTC timestamp>`` beside it.
"""
from __future__ import annotations

from ..errors import FakeproofError

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from .atomic import atomic_write_text, replacing


class MetaError(FakeproofError, ValueError):
    """A meta.json that cannot be used; the message names the file and the reason."""


def validate_key(key: str) -> str | None:
    """Why ``key`` is not a safe relative path inside images/ (None when it is fine)."""
    if not isinstance(key, str) or not key:
        return "empty key"
    if "\\" in key:
        return "backslash in key"
    p = PurePosixPath(key)
    if p.is_absolute() or key.startswith("/"):
        return "absolute path"
    if any(part in ("..", ".") for part in p.parts):
        return "path escapes images/ ('..' or '.')"
    if len(p.parts) < 2:
        return "key must be <identity>/<file>"
    return None


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def read_meta(path: Path) -> dict[str, int]:
    """Load and validate a meta.json; raises :class:`MetaError` with a one-line reason."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
    except FileNotFoundError:
        raise MetaError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise MetaError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise MetaError(f"{path}: not UTF-8 text") from None
    except _DuplicateKey as e:
        raise MetaError(f"{path}: key {e.args[0]!r} appears more than once (which label is right?)") from None
    except IsADirectoryError:
        raise MetaError(f"{path}: is a folder, expected a JSON file") from None
    except OSError as e:
        raise MetaError(f"{path}: cannot read ({e.strerror or e})") from None
    if not isinstance(raw, dict):
        raise MetaError(f"{path}: top level must be an object mapping '<identity>/<file>' to 0 or 1")
    out: dict[str, int] = {}
    for k, v in raw.items():
        why = validate_key(k)
        if why:
            raise MetaError(f"{path}: key {k!r}: {why}")
        if v is True or v is False or v not in (0, 1):
            raise MetaError(f"{path}: key {k!r}: value must be 0 (real) or 1 (deepfake), got {v!r}")
        out[k] = int(v)
    return out


def history_dir(meta_path: Path) -> Path:
    return Path(meta_path).parent / ".history"


def backup_meta(meta_path: Path) -> Path | None:
    """Copy the current meta.json into the history folder; returns the copy (None if no file)."""
    meta_path = Path(meta_path)
    if not meta_path.exists():
        return None
    dst = backup_path(meta_path)
    with replacing(dst) as tmp:  # a full disk leaves no empty backup behind
        shutil.copy2(meta_path, tmp)
    return dst


def backup_path(meta_path: Path) -> Path:
    """A new, unused name in the history folder for a copy of ``meta_path``."""
    meta_path = Path(meta_path)
    hist = history_dir(meta_path)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
    dst, n = hist / f"{meta_path.name}.{stamp}", 1
    while dst.exists():
        dst, n = hist / f"{meta_path.name}.{stamp}-{n}", n + 1
    return dst


def write_meta(meta_path: Path, meta: dict[str, int]) -> Path | None:
    """Atomically replace ``meta_path`` with ``meta`` (keys sorted); returns the backup of the old file."""
    check_meta(meta_path, meta)
    backup = backup_meta(meta_path)
    atomic_write_text(meta_path, meta_text(meta))
    return backup


def check_meta(meta_path: Path, meta: dict[str, int]) -> None:
    """Raise :class:`MetaError` if ``meta`` must not be written to ``meta_path``."""
    for k, v in meta.items():
        why = validate_key(k)
        if why:
            raise MetaError(f"{meta_path}: refusing to write key {k!r}: {why}")
        if v not in (0, 1):
            raise MetaError(f"{meta_path}: refusing to write key {k!r}: value {v!r} is not 0 or 1")


def meta_text(meta: dict[str, int]) -> str:
    """The exact bytes fakeproof writes for ``meta`` (keys sorted, one per line)."""
    return json.dumps({k: int(meta[k]) for k in sorted(meta)}, indent=1, ensure_ascii=False) + "\n"
