"""``curate clean``, ``infer pairs`` and ``infer score-pairs`` under torchrun (2 gloo ranks, CPU,
FaceNet): the same result as one process (cosines within 1e-6), and a run whose rank 1 is killed is
finished by running the command again, rank 0's slice coming from the embedding cache.

Rank 1 is held at a known point without any hook in fakeproof: its last photo is a named pipe, so it
blocks reading it while rank 0 embeds its slice; then rank 1 is killed and the pipe replaced by the
photo. Each command gets fresh caches (its own FAKEPROOF_HOME) so nothing is read from an earlier run.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _torchrun import Launched, fresh_home, torchrun
from fakeproof.cli import app
from fakeproof.distributed.ranks import shard_bounds
from fakeproof.engine.paths import cache_home

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TOL = 1e-6


@pytest.fixture(scope="module", autouse=True)
def facenet_converted():
    from fakeproof.engine import FaceEngine

    FaceEngine("facenet", device="cpu", use_cache=False)  # converted weights in the shared home, before ranks start


def _cached(home: Path) -> int:
    db = home / "engine" / "embeddings.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    except sqlite3.OperationalError:  # the table is being created
        return 0


def _one_process(monkeypatch, home: Path, args: list) -> None:
    monkeypatch.setenv("FAKEPROOF_HOME", str(home))
    res = CliRunner().invoke(app, [str(a) for a in args])
    monkeypatch.undo()
    assert res.exit_code == 0, res.output


def _killed_then_resumed(tmp_path: Path, args: list, home: Path, hold: Path) -> tuple[int, str]:
    """Run ``args`` under torchrun with ``hold`` (rank 1's last photo) as a named pipe; kill rank 1
    once rank 0's slice is in the cache; put the photo back; run again. Returns (embeddings cached by
    the killed run, the second run's output)."""
    photo = hold.read_bytes()
    hold.unlink()
    os.mkfifo(hold)
    run = Launched(args, home, tmp_path / "killed.log")
    try:
        rank1 = run.rank_pid(1)
        run.wait_until(lambda: _cached(home) > 0, what="rank 0's embeddings in the cache")
        status = run.kill_rank(rank1)
    finally:
        run.stop()
        hold.unlink()
        hold.write_bytes(photo)
    assert status != 0
    before = _cached(home)
    out = torchrun(args, home).stdout
    return before, out


def test_torchrun_curate_clean(sample_dataset, tmp_path, monkeypatch):
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset, ds)
    keys = sorted(json.loads((ds / "meta.json").read_text()))
    args = ["curate", "clean", ds, "--device", "cpu", "--max-heatmaps", "1"]
    _one_process(monkeypatch, fresh_home(cache_home(), tmp_path / "home1"), [*args, "--out", tmp_path / "one"])
    home = fresh_home(cache_home(), tmp_path / "home2")
    before, out = _killed_then_resumed(tmp_path, [*args, "--out", tmp_path / "two"], home, ds / "images" / keys[-1])
    lo, hi = shard_bounds(len(keys), 1, 2)
    assert before == lo  # exactly rank 0's slice was embedded before the kill
    a, b = np.load(tmp_path / "one" / "embeddings.npz"), np.load(tmp_path / "two" / "embeddings.npz")
    assert list(a["keys"]) == list(b["keys"]) == keys
    assert np.abs(a["embeddings"] @ a["embeddings"].T - b["embeddings"] @ b["embeddings"].T).max() <= TOL
    fa, fb = (pd.read_csv(tmp_path / d / "flags.csv", keep_default_na=False) for d in ("one", "two"))
    assert list(fa.columns) == list(fb.columns) and list(fa.key) == list(fb.key)
    assert (fa.flagged == fb.flagged).all() and (fa.reason == fb.reason).all()
    s = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s["engine_cache"]["emb_hits"] == lo and s["engine_cache"]["emb_misses"] == hi - lo  # summed over ranks
    assert "curate clean" in out


def _pairs_dir(sample_dataset: Path, root: Path) -> Path:
    photos = sorted((sample_dataset / "images").rglob("*.jpg"))
    for n in range(6):  # 12 different photos: rank 0 embeds the first 6 (pairs 0-2), rank 1 the rest
        d = root / str(n)
        d.mkdir(parents=True)
        shutil.copy(photos[n], d / "0.jpg")
        shutil.copy(photos[6 + n], d / "1.jpg")
    return root


def test_torchrun_infer_pairs(sample_dataset, tmp_path, monkeypatch):
    pairs = _pairs_dir(sample_dataset, tmp_path / "test")
    _one_process(monkeypatch, fresh_home(cache_home(), tmp_path / "home1"), ["infer", "pairs", pairs, "--out", tmp_path / "one.csv", "--device", "cpu", "--no-progress"])
    home = fresh_home(cache_home(), tmp_path / "home2")
    args = ["infer", "pairs", pairs, "--out", tmp_path / "two.csv", "--device", "cpu", "--no-progress"]
    before, out = _killed_then_resumed(tmp_path, args, home, pairs / "5" / "1.jpg")
    assert before == shard_bounds(12, 1, 2)[0]
    a, b = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    assert list(a.pair_id) == list(b.pair_id) == list(range(6))
    assert np.abs(a.similarity - b.similarity).max() <= TOL + 1e-9  # written with 6 decimals
    assert pd.read_csv(tmp_path / "two.faces.csv").face_b.tolist() == pd.read_csv(tmp_path / "one.faces.csv").face_b.tolist()
    assert "6 pairs" in out


def test_torchrun_infer_score_pairs(sample_dataset, tmp_path, monkeypatch):
    photos = sorted(p.relative_to(sample_dataset).as_posix() for p in (sample_dataset / "images").rglob("*.jpg"))
    df = pd.DataFrame({"path_a": photos[:6], "path_b": photos[6:], "group": list("abcdef")})
    df.loc[2, "path_b"] = ""  # a side without a file still gets a row
    csv_in = tmp_path / "pairs.csv"
    df.to_csv(csv_in, index=False)
    root = tmp_path / "root"
    shutil.copytree(sample_dataset, root)
    common = ["infer", "score-pairs", csv_in, "--root", root, "--device", "cpu", "--no-progress"]
    _one_process(monkeypatch, fresh_home(cache_home(), tmp_path / "home1"), [*common, "--out", tmp_path / "one.csv"])
    home = fresh_home(cache_home(), tmp_path / "home2")
    before, out = _killed_then_resumed(tmp_path, [*common, "--out", tmp_path / "two.csv"], home, root / photos[-1])
    assert before == shard_bounds(11, 1, 2)[0]
    a, b = pd.read_csv(tmp_path / "one.csv", keep_default_na=False), pd.read_csv(tmp_path / "two.csv", keep_default_na=False)
    raw = "neg_euclidean"  # the default encoder's raw score (stock dlib: -euclidean distance of raw descriptors)
    assert list(a.columns) == list(b.columns) and (a.drop(columns=["similarity", raw]) == b.drop(columns=["similarity", raw])).all().all()
    assert np.abs(a[raw] - b[raw]).max() <= 2 * TOL + 1e-9  # descriptors of norm ~1.5: distances move ~1.5x more than cosines
    assert np.abs(a.similarity - b.similarity).max() <= 20 * TOL + 1e-9  # the calibrated scale stretches cosines (dlib: ~8x)
    assert "6 pairs" in out
