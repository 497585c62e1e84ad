"""Helpers shared by the benchmark scripts: where the real data lives, and timing."""
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
