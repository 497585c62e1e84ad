"""Every path fakeproof reads or writes stays inside its root (dataset, ``--root``, ``--out``).

A relative path from user data (a meta.json key, a CSV cell) must not be absolute or climb out
with ``..``; a symlink is followed only when its target is inside the root too. Users who really
keep photos elsewhere behind symlinks opt in with ``fakeproof --allow-outside-links ...`` (or
``FAKEPROOF_ALLOW_OUTSIDE_LINKS=1``), which lifts the symlink rule only: ``..`` and absolute paths
in data stay refused.
"""
from __future__ import annotations

from ..errors import FakeproofError

import os
from pathlib import Path, PurePosixPath

ENV_ALLOW = "FAKEPROOF_ALLOW_OUTSIDE_LINKS"
HOW_TO_ALLOW = "pass `fakeproof --allow-outside-links` to follow it"


class PathEscapeError(FakeproofError, ValueError):
    """A path that leaves its root; the message names the file and says why."""


def outside_links_allowed() -> bool:
    return os.environ.get(ENV_ALLOW, "").strip().lower() in ("1", "true", "yes")


def is_inside(path, root) -> bool:
    """Whether the real location of ``path`` is ``root``'s real location or under it."""
    rp, rr = os.path.realpath(path), os.path.realpath(root)
    return rp == rr or rp.startswith(rr.rstrip(os.sep) + os.sep)


def check_link(path, root) -> None:
    """Raise unless ``path`` (which exists) really lies inside ``root`` or outside links are allowed."""
    if outside_links_allowed() or is_inside(path, root):
        return
    raise PathEscapeError(f"{path}: links to {os.path.realpath(path)}, outside {root}; refused ({HOW_TO_ALLOW})")


def why_unsafe(rel: str) -> str | None:
    """Why a relative path from user data is unsafe (None when fine): absolute, ``..``, backslash, NUL."""
    if "\x00" in rel:
        return "NUL byte in path"
    p = PurePosixPath(rel.replace("\\", "/"))
    if p.is_absolute() or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        return "absolute path"
    if ".." in p.parts:
        return "'..' climbs out of the root"
    return None


def resolve_inside(root, rel: str, what: str = "path") -> Path:
    """``root / rel`` after checking that it stays inside ``root`` (symlinks included when it exists)."""
    root = Path(root)
    why = why_unsafe(rel)
    if why:
        raise PathEscapeError(f"{what} {rel!r}: {why}; paths must stay inside {root}")
    p = root / rel
    if os.path.lexists(p) and not (outside_links_allowed() or is_inside(p, root)):
        raise PathEscapeError(f"{what} {rel!r}: {p} links to {os.path.realpath(p)}, outside {root}; refused ({HOW_TO_ALLOW})")
    return p


def walk_inside(top, root):
    """``os.walk(top)`` that follows symlinked folders only inside ``root`` (raising for one that
    leaves it), visits each real folder once, and checks symlinked files the same way.

    Yields ``(dirpath, filenames)``."""
    seen: set[str] = set()
    for dirpath, dirs, files in os.walk(top, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        for d in list(dirs):
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                check_link(full, root)
        for f in files:
            full = os.path.join(dirpath, f)
            if os.path.islink(full):
                check_link(full, root)
        yield dirpath, files
