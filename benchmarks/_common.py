"""Helpers shared by the benchmark scripts: where the real data lives, and their result tables."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; FAKEPROOF_SHARED_DATA points elsewhere (e.g. from a git worktree)
SHARED_DATA = Path(os.environ.get("FAKEPROOF_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO))


def shared_or_skip(sub: str) -> Path:
    """``../shared/data/<sub>``, or print a skip line and exit 0 where it is absent."""
    p = SHARED_DATA / sub
    if not p.exists():
        print(f"SKIP: {p} not found (benchmarks read ../shared/data beside the checkout)")
        raise SystemExit(0)
    return p


def print_table(rows: list[dict]) -> None:
    """A markdown table of ``rows``: every key any row has, in order of first use, except those starting
    with ``_`` (machine-readable extras); a missing cell is left empty."""
    cols = list(dict.fromkeys(c for r in rows for c in r if not c.startswith("_")))
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("| " + " | ".join(c.ljust(width[c]) for c in cols) + " |")
    print("|" + "|".join("-" * (width[c] + 2) for c in cols) + "|")
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")).ljust(width[c]) for c in cols) + " |")
