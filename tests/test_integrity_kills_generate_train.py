"""Fault injection for ``generate deepfakes`` and ``train run``: chains of ``kill -9`` at seeded
random points, each followed by the next run, with the invariants checked after every restart.

generate: meta.json valid and equal to the photos on disk, every fakes.csv row a published fake,
no hidden temp file left, no identity over its quota, no photo lost, no fake on a key a photo had
before (quarantine and history included); at the end exactly the quota.
train: after any number of kills, resuming reaches bit-identical weights to an uninterrupted run.
"""
from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from _fault_harness import file_digests, run_forked
from test_integrity_kills import KILLS, _cli, write_decisions
from fakeproof.data import read_meta
from fakeproof.data.records import read_fakes_csv
from fakeproof.generate.runner import generate_deepfakes

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def sample(sample_dataset) -> Path:
    """conftest's shared sample dataset (4 identities x 3 photos); each test copies it before changing it."""
    return sample_dataset


def _generate_invariants(ds: Path, reals: dict[str, str], retired: set[str], quota: int) -> Counter:
    meta = read_meta(ds / "meta.json")
    files = {p.relative_to(ds / "images").as_posix() for p in (ds / "images").rglob("*") if p.is_file()}
    assert files == set(meta), f"meta.json and images/ disagree: {sorted(files ^ set(meta))[:4]}"
    rows = read_fakes_csv(ds)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "a key twice in fakes.csv"
    assert all(meta.get(k) == 1 and (ds / "images" / k).is_file() for k in keys)
    assert set(keys) == {k for k, v in meta.items() if v == 1}
    assert not set(keys) & retired, f"a fake took a retired key: {set(keys) & retired}"
    per = Counter(r["identity"] for r in rows)
    assert max(per.values(), default=0) <= quota, f"more fakes than asked: {per}"
    now = file_digests(ds)
    assert all(now.get(k) == d for k, d in reals.items()), "a real photo was lost or changed"
    return per


def test_kill_generate_deepfakes_at_random_points(sample, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(sample, ds)
    # a curated dataset: one photo quarantined, one relabelled - their old keys are retired for good
    code, out = _cli("curate", "apply", ds, "--from", write_decisions(ds, {"person_01/0.jpg": "not_a_face", "person_02/0.jpg": "identity:person_03"}))
    assert code == 0, out
    retired = {"person_01/0.jpg", "person_02/0.jpg"}
    reals = file_digests(ds)
    ids = sorted({k.split("/")[0] for k in read_meta(ds / "meta.json")})
    rng = np.random.default_rng(11)
    quota, kills, finished = 2, 0, 0
    cmd = lambda q: lambda: _cli_ok("generate", "deepfakes", ds, "--backends", "classic", "--per-identity", q, "--device", "cpu", "--seed", 3)  # noqa: E731
    while kills < KILLS:
        done = sum(_generate_invariants(ds, reals, retired, quota).values())
        if done == quota * len(ids):
            quota += 2  # the user asks for more fakes; the kills go on
        n = int(rng.integers(1, 3 * min(quota * len(ids) - done, 2) + 1))  # within the next two fakes
        if run_forked(cmd(quota), n) == "killed":
            kills += 1
        else:
            finished += 1
        generate_deepfakes(ds, ["classic"], quota, seed=3, device="cpu", progress=False, max_fakes=0)  # the restart's resync only
    assert run_forked(cmd(quota), 0) == "finished"
    per = _generate_invariants(ds, reals, retired, quota)
    assert per == {i: quota for i in ids}, per
    print(f"\ngenerate deepfakes: {kills} kills, {finished} runs finished between them, {sum(per.values())} fakes, violations 0")


def _cli_ok(*args) -> None:
    code, out = _cli(*args)
    assert code == 0, out


# -- train run -------------------------------------------------------------------------------------
@pytest.fixture
def train_setup(sample, ir18_ckpt, tmp_path_factory):
    """The sample dataset with one deepfake per identity, hand-picked pairs, a random IR-18."""
    from train_helpers import add_deepfakes

    base = tmp_path_factory.mktemp("train_kills")
    ds = base / "ds"
    shutil.copytree(sample, ds)
    add_deepfakes(ds, per_identity=1)
    ids = sorted({k.split("/")[0] for k in read_meta(ds / "meta.json")})
    rows = []
    for n, i in enumerate(ids[:3]):
        other = ids[(n + 1) % 3]
        rows += [("train", "genuine", 1, i, f"{i}/0.jpg", f"{i}/1.jpg"), ("train", "impostor", 0, i, f"{i}/0.jpg", f"{other}/2.jpg"), ("train", "deepfake", 0, i, f"{i}/1.jpg", f"{i}/fake_0.jpg")]
    last = ids[3]
    rows += [("val", "genuine", 1, last, f"{last}/0.jpg", f"{last}/1.jpg"), ("val", "deepfake", 0, last, f"{last}/0.jpg", f"{last}/fake_0.jpg")]
    pairs = base / "pairs.csv"
    with pairs.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["split", "kind", "label", "identity", "a", "b"])
        w.writerows(rows)
    return ds, pairs, ir18_ckpt


STEPS = 3
TRAIN_KILLS = 20  # each kill costs a restart (model build, a step, a checkpoint): the minimum the issue asks


def _train(ds, pairs, ckpt, out, resume):
    from fakeproof.train.config import TrainConfig
    from fakeproof.train.loop import train

    def fn():
        torch.set_num_threads(1)
        cfg = TrainConfig(dataset=str(ds), out=str(out), model="adaface_ir18", weights=str(ckpt), pairs_csv=str(pairs), batch_size=2, val_every=1,
                          freeze_blocks=11, lr=1e-3, progress=False, epochs=None, max_steps=STEPS, flip=True)
        train(cfg, resume=resume)
    return fn


def _weights(run: Path) -> dict:
    last = json.loads((run / "checkpoints" / "last.json").read_text())
    assert last["step"] == STEPS
    return load_file(str(run / "checkpoints" / last["dir"] / "model.safetensors"))


def test_kill_train_run_at_random_points_resumes_to_the_same_weights(train_setup, tmp_path):
    ds, pairs, ckpt = train_setup
    ref = tmp_path / "ref"
    assert run_forked(_train(ds, pairs, ckpt, ref, False), 0) == "finished"
    want = _weights(ref)
    rng = np.random.default_rng(5)
    kills, chains, violations = 0, 0, []
    while kills < TRAIN_KILLS:
        run = tmp_path / f"chain{chains}"
        while True:  # kill, restart (resume when a checkpoint exists), ... until a run finishes
            resume = (run / "checkpoints" / "last.json").exists()
            if run_forked(_train(ds, pairs, ckpt, run, resume), int(rng.integers(1, 7))) == "finished":
                break
            kills += 1
        got = _weights(run)
        bad = [k for k in want if not torch.equal(want[k], got[k])]
        if bad:
            violations.append(f"chain {chains}: {len(bad)} tensors differ, e.g. {bad[0]}")
        chains += 1
        shutil.rmtree(run)
    print(f"\ntrain run: {kills} kills over {chains} resumed runs, weight mismatches {len(violations)}")
    assert not violations, violations
