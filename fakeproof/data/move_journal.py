"""A write-ahead journal for commands that move user files: after a kill at any point the dataset
is either the old state or the new one, never a mix.

A batch is: file moves inside the dataset, the meta.json that goes with them, and log lines
(e.g. ``curation/history.jsonl``). :func:`run_batch` does, in order:

1. write the whole batch to the journal file (atomic, fsynced): every move, the new meta.json text,
   the digests of the old and new meta.json, the log file's size and the lines to append;
2. the moves (``os.replace``: each file is always at exactly one of its two places);
3. copy the old meta.json to its backup, then replace meta.json (atomic) - the COMMIT point;
4. append the log lines; 5. delete the journal.

:func:`recover` (run by every command that could see the half-done state) finds a journal and
rolls the batch FORWARD when meta.json already is the new one (finishes the moves, writes the log
lines exactly once) or BACK when meta.json still is the old one (moves files back, drops the
unused backup). Any other meta.json means someone edited it meanwhile: nothing is touched and the
error names the journal, which lists every move.
"""
from __future__ import annotations

from ..errors import FakeproofError

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..faults import kill_point
from .atomic import atomic_write_bytes, atomic_write_text, fsync_dir

FORMAT = "fakeproof-batch-journal/1"


class JournalError(FakeproofError, ValueError):
    """An interrupted batch that cannot be recovered automatically (one-line message)."""


@dataclass
class Batch:
    label: str  # what the batch is, for messages: "apply batch 20260101T...-abc123"
    moves: list[tuple[str, str]]  # (from, to), relative to the root
    meta_text: str  # the meta.json to write
    meta_backup: str  # relative path the current meta.json is copied to first
    log: str  # relative path of the log file the lines go to
    lines: list[str] = field(default_factory=list)  # log lines (without newline)
    prune: list[str] = field(default_factory=list)  # folders removed after the batch when empty
    keep_dirs: list[str] = field(default_factory=lambda: ["images"])  # never pruned


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _meta_sha(root: Path) -> str | None:
    try:
        return sha256_bytes((root / "meta.json").read_bytes())
    except FileNotFoundError:
        return None


def _append_log(root: Path, rel: str, offset: int, lines: list[str]) -> None:
    """Make the log exactly ``first offset bytes + lines`` (idempotent: a replay writes once)."""
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a+b") as f:
        f.truncate(offset)  # a kill mid-append leaves a partial tail: drop it
        f.seek(offset)
        f.write("".join(line + "\n" for line in lines).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def _prune(root: Path, rels: set[str], keep: set[str]) -> None:
    """Remove now-empty folders the batch created (never the root or a folder in ``keep``)."""
    for rel in sorted(rels, key=len, reverse=True):
        d = root / rel
        while d != root and d.relative_to(root).as_posix() not in keep and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent


def _clean_temps(root: Path) -> None:
    for t in root.glob(".meta.json.*.tmp"):  # atomic_write's temp files, left by a kill mid-write
        t.unlink(missing_ok=True)


def run_batch(root, batch: Batch, journal_rel: str) -> None:
    """Carry out ``batch`` crash-safely (see the module doc); raises before touching anything when a
    source is missing or a destination exists."""
    root = Path(root)
    jpath = root / journal_rel
    if jpath.exists():
        raise JournalError(f"{jpath}: an interrupted batch is pending; run the command again to recover it first")
    for a, b in batch.moves:
        if not (root / a).is_file():
            raise FileNotFoundError(f"{root / a}: not found; nothing was changed")
        if os.path.lexists(root / b):
            raise FileExistsError(f"{root / b}: already exists, refusing to overwrite; nothing was changed")
    meta_path = root / "meta.json"
    before = meta_path.read_bytes()
    log = root / batch.log
    record = {
        "format": FORMAT,
        **asdict(batch),
        "meta_before_sha256": sha256_bytes(before),
        "meta_after_sha256": sha256_bytes(batch.meta_text.encode("utf-8")),
        "log_offset": log.stat().st_size if log.exists() else 0,
    }
    atomic_write_text(jpath, json.dumps(record, ensure_ascii=False) + "\n")
    kill_point("journal written")
    for a, b in batch.moves:
        dst = root / b
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(root / a, dst)
        kill_point("moved " + a)
    for d in {str(Path(b).parent) for _, b in batch.moves} | {str(Path(a).parent) for a, _ in batch.moves}:
        fsync_dir(root / d)
    atomic_write_bytes(root / batch.meta_backup, before)
    kill_point("meta backed up")
    atomic_write_text(meta_path, batch.meta_text)  # COMMIT
    kill_point("meta written")
    _append_log(root, batch.log, record["log_offset"], batch.lines)
    kill_point("log written")
    _prune(root, set(batch.prune), set(batch.keep_dirs))
    jpath.unlink()
    fsync_dir(jpath.parent)


def pending(root, journal_rel: str) -> dict | None:
    p = Path(root) / journal_rel
    if not p.exists():
        return None
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise JournalError(f"{p}: unreadable journal of an interrupted batch ({e}); inspect it and remove it by hand") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise JournalError(f"{p}: not a {FORMAT} journal; inspect it and remove it by hand")
    return rec


def recover(root, journal_rel: str) -> str | None:
    """Finish or reverse an interrupted batch; returns what was done (None when nothing was pending)."""
    root = Path(root)
    rec = pending(root, journal_rel)
    jpath = root / journal_rel
    if rec is None:
        return None
    _clean_temps(root)
    cur = _meta_sha(root)
    moves = [tuple(m) for m in rec["moves"]]
    keep = set(rec.get("keep_dirs") or [])
    lost = [f"{a} -> {b}" for a, b in moves if not (root / a).exists() and not (root / b).exists()]
    if lost:
        raise JournalError(f"{jpath}: {len(lost)} file(s) of the interrupted {rec['label']} are at neither place (e.g. {lost[0]}); nothing changed, restore them and run again")
    if cur == rec["meta_after_sha256"]:
        for a, b in moves:
            if not (root / b).exists():
                (root / b).parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / a, root / b)
        _append_log(root, rec["log"], rec["log_offset"], rec["lines"])
        _prune(root, set(rec.get("prune") or []), keep)
        how = "rolled forward (meta.json was already written: the batch is complete now)"
    elif cur == rec["meta_before_sha256"]:
        for a, b in reversed(moves):
            if (root / b).exists() and not (root / a).exists():
                (root / a).parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / b, root / a)
        backup = root / rec["meta_backup"]
        if backup.exists():
            backup.unlink()
        log = root / rec["log"]
        if log.exists() and log.stat().st_size > rec["log_offset"]:
            _append_log(root, rec["log"], rec["log_offset"], [])
        _prune(root, {str(Path(b).parent) for _, b in moves}, keep)
        how = "rolled back (meta.json was not written yet: the dataset is as before the batch)"
    else:
        raise JournalError(f"{jpath}: meta.json changed since the interrupted {rec['label']}; nothing touched - the journal lists its moves, resolve by hand")
    jpath.unlink()
    fsync_dir(jpath.parent)
    return f"found the interrupted {rec['label']} ({len(moves)} moves): {how}"
