"""meta.json: reading with validation, and atomic writes that always keep the previous version.

``meta.json`` maps ``"<identity>/<k>.jpg"`` to 0 (real) or 1 (deepfake). fakeproof never edits it
in place: :func:`write_meta` writes a temp file in the same folder, fsyncs it and renames it over
the old one, after copying the old one to ``.history/meta.json.<UTC timestamp>`` beside it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath


class MetaError(ValueError):
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


def read_meta(path: Path) -> dict[str, int]:
    """Load and validate a meta.json; raises :class:`MetaError` with a one-line reason."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetaError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise MetaError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise MetaError(f"{path}: not UTF-8 text") from None
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
    hist = history_dir(meta_path)
    hist.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
    dst = hist / f"{meta_path.name}.{stamp}"
    shutil.copy2(meta_path, dst)
    return dst


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_meta(meta_path: Path, meta: dict[str, int]) -> Path | None:
    """Atomically replace ``meta_path`` with ``meta`` (keys sorted); returns the backup of the old file."""
    for k, v in meta.items():
        why = validate_key(k)
        if why:
            raise MetaError(f"{meta_path}: refusing to write key {k!r}: {why}")
        if v not in (0, 1):
            raise MetaError(f"{meta_path}: refusing to write key {k!r}: value {v!r} is not 0 or 1")
    backup = backup_meta(meta_path)
    text = json.dumps({k: int(meta[k]) for k in sorted(meta)}, indent=1, ensure_ascii=False) + "\n"
    atomic_write_text(meta_path, text)
    return backup
