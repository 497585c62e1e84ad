"""The classic backend and the runner (plan, provenance, resume, failures) on the sample dataset."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fakeproof.data import TrainingDataset, read_meta
from fakeproof.engine import load_rgb
from fakeproof.generate.backends.classic import ClassicBackend
from fakeproof.generate.runner import ERRORS_LOG, generate_deepfakes, plan_jobs


@pytest.fixture()
def ds(sample_dataset, tmp_path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(sample_dataset, root)
    return root


@pytest.fixture(scope="module")
def classic() -> ClassicBackend:
    b = ClassicBackend()
    b.load()
    return b


def test_classic_swaps_the_face_deterministically(classic, sample_dataset):
    src = load_rgb(sample_dataset / "images" / "person_01" / "0.jpg").rgb
    tgt = load_rgb(sample_dataset / "images" / "person_02" / "1.jpg").rgb
    seed = next(s for s in range(50) if classic.choose(np.random.default_rng(s))["blend"] == "alpha")
    a = classic.make(src, tgt, seed=seed)
    info = dict(classic.last_info)
    b = classic.make(src, tgt, seed=seed)
    assert a.shape == tgt.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    d = np.abs(a.astype(int) - tgt.astype(int)).sum(2)
    assert (d > 30).sum() > 500  # a face-sized region changed
    assert d[:8].max() < 30 and d[-8:].max() < 30  # the background did not
    assert set(info) == {"mask", "shape", "feather", "colour", "blend", "jpeg_quality"}
    variety = {json.dumps(classic.choose(np.random.default_rng(s)), sort_keys=True) for s in range(12)}
    assert len(variety) > 6  # fakes are not all alike


def test_plan_spreads_backends_and_is_resumable():
    jobs = plan_jobs({}, ["a", "b"], ["x", "y", "z", "w"], 4, seed=0)
    assert len(jobs) == 8
    for ident in "ab":
        assert sorted(j.backend for j in jobs if j.identity == ident) == ["w", "x", "y", "z"]
    rest = plan_jobs({"a": 3}, ["a", "b"], ["x", "y", "z", "w"], 4, seed=0)
    assert [(j.identity, j.index) for j in rest] == [("a", 3)] + [("b", k) for k in range(4)]
    assert rest[0] == [j for j in jobs if j.identity == "a"][3]  # same fake as the full plan


def test_runner_writes_fakes_meta_and_provenance_and_resumes(ds):
    before = read_meta(ds / "meta.json")
    rep = generate_deepfakes(ds, ["classic"], per_identity=2, seed=0, progress=False, max_fakes=3)
    assert rep.made == 3 and rep.failed == 0
    rep2 = generate_deepfakes(ds, ["classic"], per_identity=2, seed=0, progress=False)
    assert rep2.already == 3 and rep2.made == 8 - 3
    rep3 = generate_deepfakes(ds, ["classic"], per_identity=2, seed=0, progress=False)
    assert rep3.planned == 0 and rep3.made == 0
    meta = read_meta(ds / "meta.json")
    fakes = {k for k, v in meta.items() if v == 1}
    assert len(fakes) == 8 and all(meta[k] == 0 for k in before)
    rows = list(csv.DictReader((ds / "fakes.csv").open()))
    assert sorted(r["key"] for r in rows) == sorted(fakes)  # one row per fake, no duplicates
    t = TrainingDataset.load(ds)
    assert not t.missing_files and not t.unlisted_files
    for ident, items in t.by_identity().items():
        assert sum(it.is_deepfake for it in items) == 2
    for r in rows:
        assert r["backend"] == "classic" and float(r["seconds"]) > 0
        assert r["source_key"].startswith(r["identity"] + "/") and not r["target_key"].startswith(r["identity"] + "/")
        assert "shape_predictor_68_face_landmarks.dat:" in r["weights"]
        assert json.loads(r["params"])["mask"] in {"forehead", "hull", "ellipse"}
    assert len(list((ds / ".history").glob("meta.json.*"))) >= 2  # previous versions kept


def test_journal_rows_resync_meta_after_a_kill(ds):
    generate_deepfakes(ds, ["classic"], per_identity=1, seed=0, progress=False)
    meta = read_meta(ds / "meta.json")
    fake = next(k for k, v in meta.items() if v == 1)
    # simulate a run killed after the image and journal row were written but before meta.json
    meta.pop(fake)
    (ds / "meta.json").write_text(json.dumps(meta))
    rep = generate_deepfakes(ds, ["classic"], per_identity=1, seed=0, progress=False)
    assert rep.planned == 0
    assert read_meta(ds / "meta.json")[fake] == 1


def test_one_bad_photo_is_logged_not_fatal(ds):
    bad = ds / "images" / "person_01" / "0.jpg"
    bad.write_bytes(b"not a jpeg")
    rep = generate_deepfakes(ds, ["classic"], per_identity=2, seed=0, progress=False)
    assert rep.made == 8  # retries with other photos
    log = (ds / ERRORS_LOG).read_text()
    assert "person_01/0.jpg" in log and "not an image" in log
