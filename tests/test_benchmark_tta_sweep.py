"""The TTA sweep (benchmarks/tta_sweep.py) in its fast mode, on a tiny fixture this test builds from
photos that installed packages ship (fakeproof.sample_data): a celeba-pairs-style folder (pairs.csv +
pairs_meta.csv, 2 folds) and a five-celebrities-style folder (the wild protocol), pointed to by
FAKEPROOF_SHARED_DATA, so it never reads ../shared. Plus the jitter geometry itself."""
from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def _fixture(root: Path) -> Path:
    from fakeproof.sample_data import make_sample_dataset

    five = make_sample_dataset(root / "five-celebrities", photos_per_identity=3, seed=0, size=160, identities=4)
    ids = sorted(p.name for p in (five / "images").iterdir())
    cp = root / "celeba-pairs"
    photos = {}
    for n, i in enumerate(ids):
        d = cp / "images" / f"celeba_{n:05d}"
        d.mkdir(parents=True)
        photos[n] = []
        for k, f in enumerate(sorted((five / "images" / i).glob("*.jpg"))):
            shutil.copy(f, d / f"{n:03d}{k:03d}.jpg")
            photos[n].append(f"images/celeba_{n:05d}/{n:03d}{k:03d}.jpg")
    pairs, meta = [], []
    for fold, people in ((1, (0, 1)), (2, (2, 3))):
        for g, (p, (a, b)) in enumerate((p, ab) for p in people for ab in itertools.combinations(photos[p], 2)):
            pairs.append((f"celeba_f{fold:02d}_g{g:03d}", a, b, 1, "genuine"))
            meta.append((pairs[-1][0], fold, p, p, 0))
        for i, (a, b) in enumerate(itertools.product(photos[people[0]], photos[people[1]])):
            pairs.append((f"celeba_f{fold:02d}_i{i:03d}", a, b, 0, "impostor"))
            meta.append((pairs[-1][0], fold, people[0], people[1], 0))
    for name, header, rows in (("pairs.csv", ("pair_id", "path_a", "path_b", "expected_accept", "group"), pairs),
                               ("pairs_meta.csv", ("pair_id", "fold", "identity_a", "identity_b", "dhash_distance"), meta)):
        with open(cp / name, "w", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])
    return root


@pytest.mark.slow
def test_tta_sweep_fast(tmp_path):
    data = _fixture(tmp_path / "shared")
    out = tmp_path / "tta.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", "FAKEPROOF_SHARED_DATA": str(data)}
    cmd = [sys.executable, "benchmarks/tta_sweep.py", "--fast", "--bootstrap", "30", "--time-chips", "8", "--time-repeats", "1", "--batch", "4",
           "--threads", "1", "--cache", str(tmp_path / "cache"), "--json", str(out)]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["parity_max_abs_diff"] < 1e-3  # the flip row is the engine's own flip
    assert set(res["chips_per_s"]) == {"flip", "flip + 2 jitters"} and all(v > 0 for v in res["chips_per_s"].values())
    for protocol in ("celeba-pairs", "wild"):
        rows = {r["variant"]: r for r in res[protocol]["rows"]}
        assert set(rows) == {"flip", "flip + 2 jitters"} and rows["flip"]["EER - ref. (pt) [95%]"] == "reference"
        assert rows["flip + 2 jitters"]["copies"] == 6 and "[" in rows["flip + 2 jitters"]["EER - ref. (pt) [95%]"]
        assert 0 <= rows["flip"]["EER % (pooled)"] <= 50
    assert "+-" in {r["variant"]: r for r in res["celeba-pairs"]["rows"]}["flip"]["accuracy %"]
    # a rerun reads every descriptor from the store (nothing embedded again)
    p2 = subprocess.run(cmd + ["--time-chips", "0"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p2.returncode == 0 and "chips embedded" not in p2.stdout, p2.stdout[-2000:] + p2.stderr[-2000:]


def test_jitter_geometry():
    """Shifts move content by whole pixels, mirrors flip, the identity leaves the chip alone, and
    dlib-style jitters stay within dlib's ranges."""
    import torch

    from tta_sweep import Jitter, apply_jitter, dlib_random_jitters, variants

    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    assert torch.equal(apply_jitter(x, Jitter("id")), x)
    y = apply_jitter(x, Jitter("s", dx=3, dy=-2))
    assert tuple(np.argwhere(y[0, 0].numpy() > 0.99)[0]) == (8, 13)  # row - 2, column + 3
    m = apply_jitter(x, Jitter("m", dx=3, mirror=True))
    assert tuple(np.argwhere(m[0, 0].numpy() > 0.99)[0]) == (10, 7)
    r = apply_jitter(torch.rand(2, 3, 32, 32), Jitter("r", deg=3, scale=1.05))
    assert r.shape == (2, 3, 32, 32) and torch.isfinite(r).all()
    vs = variants(dlib_random=5)
    assert [len(v) for v in vs.values()] == [1, 2, 6, 10, 18, 5]
    for j in dlib_random_jitters(50):
        assert abs(j.deg) <= 3 and 1.01 <= j.scale <= 1.042 and abs(j.dx) <= 3.2 and abs(j.dy) <= 3.2
