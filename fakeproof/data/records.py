"""The records a dataset keeps of what the stages did to it, read by more than one stage (each is
written by one stage only):

- ``fakes.csv``: one row per deepfake ``generate deepfakes`` made (its provenance, appended and
  fsynced row by row); ``train`` reads each fake's generator family from it, ``generate check``
  and the demo read it too.
- ``curation/history.jsonl`` and ``quarantine/``: what ``curate apply`` changed; ``generate`` reads
  them so that a new fake never takes a key a photo once had.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import InputError

FAKES_CSV = "fakes.csv"


def read_fakes_csv(root) -> list[dict]:
    """The rows of ``root/fakes.csv`` (none when there is no such file)."""
    p = Path(root) / FAKES_CSV
    if not p.exists():
        return []
    with p.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r.get("key")]


def history_path(root) -> Path:
    return Path(root) / "curation" / "history.jsonl"


def read_history(root) -> list[dict]:
    """Every event of ``curation/history.jsonl``; a partial LAST line (an append a kill interrupted)
    is skipped, any other bad line is an error naming the file and the line."""
    p = history_path(root)
    if not p.exists():
        return []
    out = []
    lines = [x for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    for n, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            if n < len(lines):  # only the tail of an append a kill interrupted may be partial
                raise InputError(f"{p}: line {n} is not valid JSON") from None
    return out


def retired_keys(root) -> set[str]:
    """Every key a photo ever had in this dataset besides the current ones: keys moved away by
    apply (history) and the names of quarantined photos. New files must never take one."""
    root = Path(root)
    out: set[str] = set()
    for h in read_history(root):
        if h.get("event") == "change":
            out.update(k for k in (h.get("key"), h.get("to_key")) if k)
    q = root / "quarantine"
    if q.is_dir():
        out |= {p.relative_to(q).as_posix() for p in q.rglob("*") if p.is_file()}
    return out
