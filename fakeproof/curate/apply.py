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

Crash safety: a batch (apply or undo) goes through :mod:`fakeproof.data.move_journal`, so a kill at
any point leaves a journal that the next ``apply``, ``--undo``, ``clean`` or ``review`` rolls
forward or back (:func:`recover_pending`). Decisions carry the digest of the photo they were made
on; :func:`plan` sets aside those whose photo changed since ``curate clean`` (``stale``).
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

from ..errors import InputError
from ..data import read_meta
from ..data.digests import path_digest
from ..data.move_journal import Batch, recover, run_batch
from ..data.meta import backup_path, check_meta, meta_text
from ..data.pending import PENDING_BATCH as JOURNAL  # relative to the dataset root
from ..data.records import history_path, read_history
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


def recover_pending(root) -> str | None:
    """Roll an interrupted apply/undo forward or back; returns what was done (None: nothing pending)."""
    return recover(root, JOURNAL)


def _free_name(taken: set[str], rel_dir: str, name: str, old_identity: str) -> str:
    stem, ext = os.path.splitext(name)
    cand = f"{rel_dir}/{name}"
    n = 1
    while cand in taken:
        tail = f"__from_{old_identity}" + (f"_{n}" if n > 1 else "")
        cand = f"{rel_dir}/{stem}{tail}{ext}"
        n += 1
    return cand


def plan(root, decisions: list[Decision]) -> tuple[list[Change], list[str], list[str]]:
    """The changes the decisions imply; one line per decision that cannot be applied; one line per
    decision whose photo changed since ``curate clean`` saw it (stale: not in the changes)."""
    root = Path(root)
    meta = read_meta(root / "meta.json")
    taken = {f"images/{k}" for k in meta}
    for base in ("images", "quarantine"):
        d = root / base
        if d.is_dir():
            taken |= {p.relative_to(root).as_posix() for p in d.rglob("*") if p.is_file()}
    changes, skipped, stale = [], [], []
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
        why = _changed(d, meta[d.key], src)
        if why:
            stale.append(f"{d.key}: {why}")
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
    return changes, skipped, stale


def _changed(d: Decision, label: int, path: Path) -> str | None:
    """Why the photo behind decision ``d`` is not the one curate clean saw (None when it is)."""
    if not d.digest:
        return "the decision carries no photo digest (made by an older fakeproof?)"
    if d.is_deepfake is not None and int(d.is_deepfake) != int(label):
        return f"now labelled {'deepfake' if label else 'real'}, was {'deepfake' if d.is_deepfake else 'real'}"
    if path_digest(path) != d.digest:
        return "the file changed (digest differs)"
    return None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_line(rec: dict) -> str:
    return json.dumps(rec, ensure_ascii=False)


def _run(root: Path, label: str, moves: list[tuple[str, str]], new_meta: dict[str, int], lines: list[dict], prune: set[str], text: str | None = None) -> str:
    """One crash-safe batch (journal, moves, meta.json, history); returns the meta.json text written."""
    meta_path = root / "meta.json"
    check_meta(meta_path, new_meta)
    text = meta_text(new_meta) if text is None else text
    backup = backup_path(meta_path).relative_to(root).as_posix()
    for rec in lines:
        if rec.get("event") in ("apply", "undo"):
            rec["meta_backup"] = backup
            rec["meta_sha256"] = _sha(text)
    run_batch(root, Batch(label, moves, text, backup, history_path(root).relative_to(root).as_posix(), [_json_line(r) for r in lines], sorted(prune)), JOURNAL)
    return text


def execute(root, changes: list[Change], source: str, user: str | None = None) -> str | None:
    """Apply ``changes`` crash-safely; returns the batch id (None when there is nothing to do)."""
    root = Path(root)
    if not changes:
        return None
    meta_path = root / "meta.json"
    meta = read_meta(meta_path)
    for c in changes:
        if c.key not in meta:
            raise InputError(f"{meta_path}: {c.key} is not in meta.json any more; plan again")
    new = dict(meta)
    for c in changes:
        v = new.pop(c.key)
        if c.to_key:
            new[c.to_key] = v
    batch = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    who, when = user or getpass.getuser(), _now()
    lines = [{"event": "change", "batch": batch, "time": when, "user": who, "source": source, **asdict(c)} for c in changes]
    lines.append({"event": "apply", "batch": batch, "time": when, "user": who, "source": source, "changes": len(changes)})
    _run(root, f"apply batch {batch}", [(c.path_from, c.path_to) for c in changes], new, lines, set())
    return batch


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
            raise InputError(f"{meta_path}: {c.to_key} (from batch {head['batch']}) is gone; cannot undo safely")
        if c.key in meta:
            raise InputError(f"{meta_path}: {c.key} exists again; cannot undo batch {head['batch']} safely")
    backup = root / head["meta_backup"] if head.get("meta_backup") else None
    if backup and backup.exists() and _sha(current_text) == head["meta_sha256"]:
        text = backup.read_text(encoding="utf-8")
        new = read_meta(backup)
        how = "restored byte for byte from " + head["meta_backup"]
    else:
        text = None
        new = dict(meta)
        for c in changes:
            if c.to_key:
                new.pop(c.to_key, None)
            new[c.key] = c.is_deepfake
        how = "meta.json changed since the batch: changes reversed key by key"
    line = {"event": "undo", "batch": head["batch"], "time": _now(), "user": user or getpass.getuser(), "changes": len(changes), "meta": how}
    moves = [(c.path_to, c.path_from) for c in reversed(changes)]
    _run(root, f"undo of batch {head['batch']}", moves, new, [line], {str(PurePosixPath(c.path_to).parent) for c in changes}, text)
    return head, changes, how
