"""``generate deepfakes`` under torchrun (2 ranks, gloo, CPU, the classic backend): the same fakes,
provenance and meta.json as one process, and a killed rank resumed by running the command again."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _torchrun import Launched, torchrun
from fakeproof.cli import app
from fakeproof.generate.distributed import RANKS_DIR, fold_rank_journals, rank_journal_path, split_by_identity
from fakeproof.engine.paths import cache_home
from fakeproof.data.records import FAKES_CSV, read_fakes_csv
from fakeproof.generate.runner import plan_jobs

ARGS = ["--backends", "classic", "--per-identity", "2", "--seed", "3", "--device", "cpu"]
TIMED = ("seconds", "created")  # the only columns that may differ between runs


def _rows(root: Path) -> dict[str, dict]:
    rows = read_fakes_csv(root)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "duplicate keys in fakes.csv"
    return {r["key"]: {k: v for k, v in r.items() if k not in TIMED} for r in rows}


def _journal_len(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        return sum(1 for r in csv.DictReader(f) if r.get("key"))


def test_split_by_identity_keeps_identities_whole_and_balances():
    jobs = plan_jobs({"b": 1}, ["a", "b", "c", "d", "e"], ["x", "y"], 4, seed=0)
    parts = split_by_identity(jobs, 3)
    assert sorted((j.identity, j.index) for p in parts for j in p) == sorted((j.identity, j.index) for j in jobs)
    owners = {j.identity: r for r, p in enumerate(parts) for j in p}
    assert all(owners[j.identity] == r for r, p in enumerate(parts) for j in p)  # one rank per identity
    assert max(map(len, parts)) - min(map(len, parts)) <= 4
    assert split_by_identity(jobs, 3) == parts  # deterministic


def test_fold_is_idempotent_and_keeps_the_first_row_of_a_key(sample_dataset, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(sample_dataset, root)
    img = root / "images" / "person_01" / "7.jpg"
    shutil.copy(root / "images" / "person_01" / "0.jpg", img)
    row = "person_01/7.jpg,person_01,classic,person_01/0.jpg,,1,,0.1,{},2026-01-01T00:00:00Z\n"
    header = "key,identity,backend,source_key,target_key,seed,weights,seconds,params,created\n"
    for r in (0, 1):  # the same key in two journals (a rank killed after its row, re-run elsewhere)
        p = rank_journal_path(root, r)
        p.parent.mkdir(exist_ok=True)
        p.write_text(header + row + ("person_0" if r else ""))  # rank 1's last row was cut by a kill
    rep = fold_rank_journals(root)
    assert (rep.journals, rep.rows, rep.duplicates, rep.meta_added) == (2, 1, 1, 1)
    assert not (root / RANKS_DIR).exists()
    assert json.loads((root / "meta.json").read_text())["person_01/7.jpg"] == 1
    again = fold_rank_journals(root)
    assert (again.journals, again.rows, again.meta_added) == (0, 0, 0)
    assert [r["key"] for r in read_fakes_csv(root)] == ["person_01/7.jpg"]


@pytest.mark.slow
@pytest.mark.integration
def test_torchrun_generate_equals_one_process_and_resumes_a_killed_rank(sample_dataset, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(sample_dataset, one)
    shutil.copytree(sample_dataset, two)
    res = CliRunner().invoke(app, ["generate", "deepfakes", str(one), *ARGS])
    assert res.exit_code == 0, res.output
    expected = _rows(one)
    assert len(expected) == 8

    run = Launched(["generate", "deepfakes", two, *ARGS], cache_home(), tmp_path / "killed.log")
    try:
        rank1 = run.rank_pid(1)
        j1 = rank_journal_path(two, 1)
        run.wait_until(lambda: _journal_len(j1) >= 1, what="rank 1's first fake")
        status = run.kill_rank(rank1)
    finally:
        run.stop()
    assert status != 0
    made_before = _journal_len(j1) + _journal_len(rank_journal_path(two, 0))
    assert 1 <= _journal_len(j1) < 4, "rank 1 was to be killed in the middle of its 4 fakes"
    assert not (two / FAKES_CSV).exists()  # nobody merged: the journals wait for the next run

    p = torchrun(["generate", "deepfakes", two, *ARGS], cache_home())
    assert "ranks: 2" in p.stdout
    assert not (two / RANKS_DIR).exists()
    assert _rows(two) == expected  # same keys, sources, targets, seeds, weights and params
    assert json.loads((two / "meta.json").read_text()) == json.loads((one / "meta.json").read_text())
    for key in expected:
        assert (two / "images" / key).read_bytes() == (one / "images" / key).read_bytes(), key
    # the second run made only what was missing: the killed run's fakes came from its journals
    assert _count(p.stdout, "made") == 8 - made_before and _count(p.stdout, "already made by earlier runs") == made_before


def _count(table: str, row: str) -> int:
    m = re.search(rf"^\W*{re.escape(row)}\W+(\d+)", table, re.M)  # a boxed table in a terminal, plain columns in a pipe
    assert m, table
    return int(m.group(1))
