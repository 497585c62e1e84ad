"""Writing user-visible files so that a kill never leaves half a file, and modes stay what they were.

- :func:`atomic_write_text` / :func:`atomic_write_bytes`: temp file in the same folder, fsync,
  rename over the target, fsync of the folder. An existing file keeps its permission bits; a new
  one gets what the umask gives (``0o666 & ~umask``), like any file a shell would create.
- :func:`json_text`: JSON without NaN/Infinity (they become ``null``), which strict parsers refuse.
- :func:`check_writable`: an output location is checked before any expensive work starts.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import FakeproofError


class OutputError(FakeproofError, ValueError):
    """An output location that cannot be written; the message names it and says why."""


def current_umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide and racy)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def new_file_mode() -> int:
    return 0o666 & ~current_umask()


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def named(e: OSError, path) -> OSError:
    """``e`` naming ``path`` when the system did not say which file (a full disk on ``write()``)."""
    if e.errno is None or e.filename:
        return e
    return type(e)(e.errno, e.strerror or os.strerror(e.errno), str(path))


@contextmanager
def replacing(path, suffix: str = ".tmp"):
    """``with replacing(PATH) as tmp:`` write ``tmp`` (a sibling of PATH) any way you like (np.savez,
    safetensors, savefig); on success it replaces PATH, on any error it is removed and an OSError
    names PATH. Nothing half-written is left, neither at PATH nor beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise named(e, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = new_file_mode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise named(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise named(e, path) from None
        raise
    fsync_dir(path.parent)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _no_nan(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:  # numpy scalars
        return _no_nan(obj.item())
    return obj


def json_text(obj, indent: int | None = 1, default=str) -> str:
    """``json.dumps`` that writes ``null`` for NaN and infinities (strict JSON), newline-terminated."""
    return json.dumps(_no_nan(obj), indent=indent, default=default, allow_nan=False, ensure_ascii=False) + "\n"


def _probe(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (None when it can): tries it, as ``os.access``
    is wrong for root and for read-only mounts."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fakeproof-write-test.", dir=folder)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    os.unlink(tmp)
    return None


def check_writable(path, what: str = "output", is_dir: bool = False) -> None:
    """Raise :class:`OutputError` unless ``path`` (a file, or a folder with ``is_dir``) can be written.

    Only a probe file is created (and removed): the nearest existing folder must accept new files."""
    p = Path(path)
    if p.exists():
        if is_dir and not p.is_dir():
            raise OutputError(f"{p}: {what} is not a folder")
        if not is_dir and p.is_dir():
            raise OutputError(f"{p}: {what} is a folder, expected a file")
        why = _probe(p if is_dir else p.parent)
        if why:
            raise OutputError(f"{p}: {what} is not writable ({why.lower()})")
        return
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{p}: cannot create the {what}: {parent} is not a folder")
    why = _probe(parent)
    if why:
        raise OutputError(f"{p}: cannot create the {what}: {parent} is not writable ({why.lower()})")
