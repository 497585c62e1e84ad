"""``curate apply``: turn review decisions into file moves and a new meta.json, with undo.

- relabel: ``images/A/3.jpg`` moves to ``images/B/3.jpg`` (``3__from_A.jpg`` if taken) and the key
  follows; the real/deepfake value is kept.
- quarantine: the file moves to ``DATASET/quarantine/<identity>/<file>`` and its key leaves
  meta.json. Nothing is ever deleted.
- meta.json is rewritten atomically by :func:`fakeproof.data.write_meta`, which keeps the previous
  version in ``.history/``.
- ``curation/history.jsonl`` gets one ``change`` line per change and one ``apply`` line per batch
  (who, when, source, the meta backup and the hash of the meta written). ``--undo`` reverses the
  latest batch not yet undone: files move back and meta.json gets the backup's exact bytes when
  nobody changed it since (else the changes are reversed key by key), then an ``undo`` line.

A failure while moving files moves back the ones already moved; meta.json is written only after
every move succeeded.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from ..data import atomic_write_text, backup_meta, read_meta, write_meta
from .decisions import Decision


@dataclass(frozen=True)
class Change:
    action: str  # "relabel" | "quarantine"
    key: str  # key before
    to_key: str | None  # key after (relabel) or None (quarantine: leaves meta.json)
    path_from: str  # relative to the dataset root
    path_to: str
    from_identity: str
    to_identity: str | None
    is_deepfake: int
    decision: str


def history_path(root: Path) -> Path:
    return Path(root) / "curation" / "history.jsonl"


def _free_name(taken: set[str], rel_dir: str, name: str, old_identity: str) -> str:
    stem, ext = os.path.splitext(name)
    cand = f"{rel_dir}/{name}"
    n = 1
    while cand in taken:
        tail = f"__from_{old_identity}" + (f"_{n}" if n > 1 else "")
        cand = f"{rel_dir}/{stem}{tail}{ext}"
        n += 1
    return cand


def plan(root, decisions: list[Decision]) -> tuple[list[Change], list[str]]:
    """The changes the decisions imply, and one line per decision that cannot be applied."""
    root = Path(root)
    meta = read_meta(root / "meta.json")
    taken = {f"images/{k}" for k in meta}
    for base in ("images", "quarantine"):
        d = root / base
        if d.is_dir():
            taken |= {p.relative_to(root).as_posix() for p in d.rglob("*") if p.is_file()}
    changes, skipped = [], []
    seen = set()
    for d in decisions:
        if d.action == "keep":
            continue
        if d.key in seen:
            skipped.append(f"{d.key}: two decisions for one photo")
            continue
        seen.add(d.key)
        if d.key not in meta:
            skipped.append(f"{d.key}: not in meta.json (already applied?)")
            continue
        src = root / "images" / d.key
        if not src.is_file():
            skipped.append(f"{src}: file not found")
            continue
        ident, name = d.key.split("/", 1)[0], PurePosixPath(d.key).name
        if d.action == "relabel":
            dst = _free_name(taken, f"images/{d.target}", name, ident)
            taken.add(dst)
            changes.append(Change("relabel", d.key, dst[len("images/"):], f"images/{d.key}", dst, ident, d.target, meta[d.key], d.why))
        elif d.action == "quarantine":
            dst = _free_name(taken, f"quarantine/{ident}", name, ident)
            taken.add(dst)
            changes.append(Change("quarantine", d.key, None, f"images/{d.key}", dst, ident, None, meta[d.key], d.why))
        else:
            skipped.append(f"{d.key}: unknown action {d.action!r}")
    return changes, skipped


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _append_history(root: Path, lines: list[dict]) -> None:
    p = history_path(root)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as f:
        for rec in lines:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _move_all(root: Path, moves: list[tuple[str, str]]) -> None:
    """Move files (relative paths); on any failure move the done ones back and re-raise."""
    done = []
    try:
        for a, b in moves:
            src, dst = root / a, root / b
            if dst.exists():
                raise FileExistsError(f"{dst}: already exists, refusing to overwrite")
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            done.append((a, b))
    except BaseException:
        for a, b in reversed(done):
            os.replace(root / b, root / a)
        raise


def execute(root, changes: list[Change], source: str, user: str | None = None) -> str | None:
    """Apply ``changes``; returns the batch id (None when there is nothing to do)."""
    root = Path(root)
    if not changes:
        return None
    meta_path = root / "meta.json"
    meta = read_meta(meta_path)
    for c in changes:
        if c.key not in meta:
            raise ValueError(f"{meta_path}: {c.key} is not in meta.json any more; plan again")
    new = dict(meta)
    for c in changes:
        v = new.pop(c.key)
        if c.to_key:
            new[c.to_key] = v
    _move_all(root, [(c.path_from, c.path_to) for c in changes])
    try:
        backup = write_meta(meta_path, new)
    except BaseException:
        _move_all(root, [(c.path_to, c.path_from) for c in changes])
        raise
    batch = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    who, when = user or getpass.getuser(), _now()
    lines = [{"event": "change", "batch": batch, "time": when, "user": who, "source": source, **asdict(c)} for c in changes]
    lines.append(
        {
            "event": "apply",
            "batch": batch,
            "time": when,
            "user": who,
            "source": source,
            "changes": len(changes),
            "meta_backup": backup.relative_to(root).as_posix() if backup else None,
            "meta_sha256": _sha(meta_path.read_text(encoding="utf-8")),
        }
    )
    _append_history(root, lines)
    return batch


def read_history(root) -> list[dict]:
    p = history_path(root)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def last_batch(root) -> tuple[dict, list[Change]] | None:
    """The latest applied batch that was not undone, with its changes."""
    hist = read_history(root)
    undone = {h["batch"] for h in hist if h.get("event") == "undo"}
    applies = [h for h in hist if h.get("event") == "apply" and h["batch"] not in undone]
    if not applies:
        return None
    head = applies[-1]
    fields = Change.__dataclass_fields__
    ch = [Change(**{k: h[k] for k in fields}) for h in hist if h.get("event") == "change" and h["batch"] == head["batch"]]
    return head, ch


def _prune_empty_dirs(root: Path, rel_dirs: set[str]) -> None:
    """Remove folders a batch created and that are empty again (never images/ itself)."""
    for rel in sorted(rel_dirs, key=len, reverse=True):
        d = root / rel
        while d != root and d != root / "images" and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent


def undo(root, user: str | None = None) -> tuple[dict, list[Change], str] | None:
    """Reverse the latest batch; returns (batch line, changes, how meta was restored) or None."""
    root = Path(root)
    lb = last_batch(root)
    if lb is None:
        return None
    head, changes = lb
    meta_path = root / "meta.json"
    current_text = meta_path.read_text(encoding="utf-8")
    meta = read_meta(meta_path)
    for c in changes:
        if c.to_key and c.to_key not in meta:
            raise ValueError(f"{meta_path}: {c.to_key} (from batch {head['batch']}) is gone; cannot undo safely")
        if c.key in meta:
            raise ValueError(f"{meta_path}: {c.key} exists again; cannot undo batch {head['batch']} safely")
    _move_all(root, [(c.path_to, c.path_from) for c in reversed(changes)])
    _prune_empty_dirs(root, {str(PurePosixPath(c.path_to).parent) for c in changes})
    backup = root / head["meta_backup"] if head.get("meta_backup") else None
    if backup and backup.exists() and _sha(current_text) == head["meta_sha256"]:
        backup_meta(meta_path)  # keep what we replace, as write_meta would
        atomic_write_text(meta_path, backup.read_text(encoding="utf-8"))
        how = "restored byte for byte from " + head["meta_backup"]
    else:
        new = dict(meta)
        for c in changes:
            if c.to_key:
                new.pop(c.to_key, None)
            new[c.key] = c.is_deepfake
        write_meta(meta_path, new)
        how = "meta.json changed since the batch: changes reversed key by key"
    _append_history(root, [{"event": "undo", "batch": head["batch"], "time": _now(), "user": user or getpass.getuser(), "changes": len(changes), "meta": how}])
    return head, changes, how
