"""Fault injection: ``kill -9`` at seeded random points of ``curate apply`` / ``--undo``,
``generate deepfakes`` and ``train run``, then the invariants after the next command.

Kill points are the :func:`fakeproof.faults.kill_point` calls between the steps that write user
files; the child process sends itself SIGKILL at the N-th one (see ``_fault_harness``). One test
also kills ``curate apply`` from outside, by timing, as a user would.
"""
from __future__ import annotations

import csv
import os
import shutil
import stat
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from _fault_harness import count_points, file_digests, kill_points, run_forked, state
from fakeproof.cli import app
from fakeproof.data import read_meta, write_meta
from fakeproof.data.digests import path_digest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
KILLS = 24  # per command; the issue asks for at least 20


def _cli(*args) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r.exit_code, r.output


# -- curate apply ------------------------------------------------------------------------------
def make_photo_dataset(root: Path, identities: int = 6, photos: int = 4, size: int = 24, seed: int = 0) -> Path:
    """Tiny distinct JPEGs (apply never looks inside them) and their meta.json."""
    rng = np.random.default_rng(seed)
    meta = {}
    for i in range(identities):
        for k in range(photos):
            key = f"id{i}/{k}.jpg"
            p = root / "images" / key
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
            meta[key] = 0
    write_meta(root / "meta.json", meta)
    shutil.rmtree(root / ".history", ignore_errors=True)
    return root


def write_decisions(root: Path, decisions: dict[str, str]) -> Path:
    """A flags.csv as `curate clean` writes it (digests included) with a filled decision column."""
    meta = read_meta(root / "meta.json")
    path = root / "curation" / "flags.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "identity", "is_deepfake", "flagged", "decision", "digest"])
        for key, dec in decisions.items():
            w.writerow([key, key.split("/")[0], meta[key], True, dec, path_digest(root / "images" / key)])
    return path


DECISIONS = {
    **{f"id{i}/0.jpg": f"identity:id{(i + 1) % 6}" for i in range(6)},  # relabels; 0.jpg is taken: __from_ names
    **{f"id{i}/1.jpg": "not_a_face" for i in range(5)},  # quarantine
    "id0/2.jpg": "identity:newcomer",  # a new identity folder
    "id5/3.jpg": "keep",
}


def _consistent(root: Path) -> None:
    meta = read_meta(root / "meta.json")  # valid
    files = {p.relative_to(root / "images").as_posix() for p in (root / "images").rglob("*") if p.is_file()}
    assert files == set(meta), f"meta.json and images/ disagree: {sorted(files ^ set(meta))[:5]}"
    assert not (root / "curation" / "pending_batch.json").exists()
    assert not list(root.glob(".meta.json.*.tmp"))


def _apply_then_undo(ds: Path, flags: Path):
    def fn():
        code, out = _cli("curate", "apply", ds, "--from", flags)
        assert code == 0, out
        code, out = _cli("curate", "apply", ds, "--undo")
        assert code == 0, out
    return fn


def test_kill_curate_apply_and_undo_at_random_points(tmp_path):
    src = make_photo_dataset(tmp_path / "src")
    write_decisions(src, DECISIONS)
    s0 = state(src)
    ref = tmp_path / "ref"
    shutil.copytree(src, ref)
    os.chmod(ref / "meta.json", 0o640)
    code, out = _cli("curate", "apply", ref, "--from", ref / "curation" / "flags.csv")
    assert code == 0, out
    assert stat.S_IMODE((ref / "meta.json").stat().st_mode) == 0o640  # a rewrite keeps the file's mode
    s1 = state(ref)
    assert s1 != s0
    probe = tmp_path / "probe"
    shutil.copytree(src, probe)
    total = count_points(_apply_then_undo(probe, probe / "curation" / "flags.csv"))
    assert total >= 2 * (1 + 12 + 3)  # journal, 12 moves, backup, meta, log - for apply and for undo
    points = kill_points(total, KILLS, seed=12)
    outcomes, violations = Counter(), []
    for n in points:
        ds = tmp_path / f"k{n}"
        shutil.copytree(src, ds)
        fl = ds / "curation" / "flags.csv"
        assert run_forked(_apply_then_undo(ds, fl), n) == "killed"
        code, out = _cli("curate", "apply", ds, "--from", fl, "--dry-run")  # recovers first
        assert code == 0, out
        outcomes["rolled forward" if "rolled forward" in out else "rolled back" if "rolled back" in out else "no journal"] += 1
        try:
            _consistent(ds)
            now = state(ds)
            assert now in (s0, s1), f"kill point {n}: a mix of the old and the new state"
            assert sorted(file_digests(ds).values()) == sorted(file_digests(src).values()), f"kill point {n}: a photo was lost"
            if now == s1:  # the batch is complete: undo must work and restore meta.json byte for byte
                code, out = _cli("curate", "apply", ds, "--undo")
                assert code == 0, out
                assert state(ds) == s0
            else:
                code, out = _cli("curate", "apply", ds, "--undo")
                assert code == 1 and "no applied batch" in out, out
            # and the decisions can be applied again, to the same result
            code, out = _cli("curate", "apply", ds, "--from", fl)
            assert code == 0, out
            assert state(ds)[1] == s1[1] and read_meta(ds / "meta.json") == read_meta(ref / "meta.json")
            _consistent(ds)
        except AssertionError as e:
            violations.append(f"point {n}: {e}")
        shutil.rmtree(ds)
    print(f"\ncurate apply/undo: {total} kill points, {len(points)} tried, outcomes {dict(outcomes)}, violations {len(violations)}")
    assert not violations, violations
    assert outcomes["rolled forward"] and outcomes["rolled back"]


def test_kill_curate_apply_from_outside():
    """The issue's repro in the fast mode of benchmarks/apply_kill_scale.py: SIGKILL a separate
    `curate apply` process as soon as quarantine/ appears; `--undo` then recovers the batch and the
    dataset is the old state again (rolled back, or rolled forward and undone), no photo lost."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from apply_kill_scale import run

    rows = run(photos=2000, decisions=1200, delays=[0.0])
    assert rows[0]["killed"] and rows[0]["outcome"] in ("rolled back", "rolled forward"), rows
    assert all(r["invariants_ok"] for r in rows), rows
