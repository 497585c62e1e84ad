"""Running a command in a forked child that SIGKILLs itself at the N-th kill point (fakeproof.faults).

A fork is a real process death (no finally blocks, no atexit, no flush) at a chosen point, without
paying Python's start-up for each of the dozens of kills a test makes.
"""
from __future__ import annotations

import hashlib
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from fakeproof import faults


def _child(fn, kill_at: int, count_file: str | None) -> None:
    os.environ[faults.ENV] = str(kill_at)
    faults.reset()
    code = 0
    try:
        fn()
    except BaseException as e:  # noqa: BLE001 - report anything to the parent through the exit code
        if not (isinstance(e, SystemExit) and e.code in (0, None)):
            traceback.print_exc(file=sys.stderr)
            code = 3
    if count_file:
        Path(count_file).write_text(str(faults.reached()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_forked(fn, kill_at: int) -> str:
    """Run ``fn`` in a child killed at kill point ``kill_at``; returns "killed" or "finished"
    (a child that raised fails the test)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(fn, kill_at, None)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL, f"child died of signal {os.WTERMSIG(status)}"
        return "killed"
    assert os.WEXITSTATUS(status) == 0, f"child failed (exit {os.WEXITSTATUS(status)}); see stderr"
    return "finished"


def count_points(fn) -> int:
    """How many kill points a complete run of ``fn`` passes (run in a child, nothing killed)."""
    with tempfile.NamedTemporaryFile(suffix=".count", delete=False) as f:
        path = f.name
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(fn, 0, path)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the counting run failed"
    n = int(Path(path).read_text())
    os.unlink(path)
    return n


def kill_points(total: int, n: int, seed: int) -> list[int]:
    """``n`` distinct points in 1..total drawn with ``seed`` (all of them when there are fewer)."""
    rng = np.random.default_rng(seed)
    return sorted(int(x) + 1 for x in rng.choice(total, size=min(n, total), replace=False))


def file_digests(root: Path, parts=("images", "quarantine")) -> dict[str, str]:
    """sha256 of every file under the given sub-folders (relative path -> digest)."""
    out = {}
    for part in parts:
        base = Path(root) / part
        if base.is_dir():
            for p in sorted(base.rglob("*")):
                if p.is_file():
                    out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def state(root: Path) -> tuple:
    """What a dataset holds for the user: meta.json's bytes and every photo (images + quarantine)."""
    return (Path(root, "meta.json").read_bytes(), tuple(sorted(file_digests(root).items())))
