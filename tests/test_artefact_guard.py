"""The artefact head: a guarded encoder's cosine is the base cosine scaled by both photos'
liveness, it rebuilds from a checkpoint, exports to ONNX with the flip inside, and `train run
--artefact-head` trains it on dataset fakes plus self-blends made on the fly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.engine.encoders import get_encoder
from fakeproof.engine.encoders.guard import GUARD_DIMS, GuardedEncoder, guard
from fakeproof.train.config import TrainConfig, TrainError
from fakeproof.train.loop import train

pytestmark = pytest.mark.slow


@pytest.fixture
def two_family_ds(two_family_dataset):
    """conftest's shared two-family dataset."""
    return two_family_dataset


@pytest.fixture(scope="module")
def base():
    return get_encoder("dlib_resnet").eval()


def _crops(ds, n: int) -> np.ndarray:
    """Aligned dlib chips of the first ``n`` real photos of the sample dataset."""
    from fakeproof.engine import FaceEngine

    meta = json.loads((ds / "meta.json").read_text())
    paths = [ds / "images" / k for k, v in sorted(meta.items()) if v == 0][:n]
    _, crops = FaceEngine("dlib_resnet", device="cpu", use_cache=False).crops(paths, progress=False)
    return np.stack([c for c in crops if c is not None])


def _set_logit(g: GuardedEncoder, value: float) -> None:
    with torch.no_grad():
        g.head.fc.weight.zero_()
        g.head.fc.bias.fill_(value)


def test_uncalibrated_guard_scores_exactly_like_the_flipped_base(base, two_family_ds):
    crops = _crops(two_family_ds, 4)
    g = guard(base).eval()
    e = g.embed(crops)
    assert e.shape == (len(crops), base.spec.embedding_dim + GUARD_DIMS)
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    b = base.embed(crops) + base.embed(np.ascontiguousarray(crops[:, :, ::-1]))  # the engine's flip
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    assert np.allclose(e @ e.T, b @ b.T, atol=1e-5)
    assert np.abs(e[:, -GUARD_DIMS:]).max() < 1e-5


def test_liveness_scales_the_cosine_and_fakes_match_nothing(base, two_family_ds):
    crops = _crops(two_family_ds, 4)
    g = guard(base).eval()
    ref = g.embed(crops)
    g.calibrate(np.zeros(10), false_alarm=0.1)  # tau = 0, width 1
    _set_logit(g, -3.0)  # well below tau: liveness 1, the embedding does not change
    assert np.allclose(g.embed(crops), ref, atol=1e-6)
    _set_logit(g, 0.5)  # liveness 0.5 on every photo
    half = g.embed(crops)
    cos_base, cos_half = ref @ ref.T, half @ half.T
    off = ~np.eye(len(crops), dtype=bool)
    # 0.25 * base cosine + the decoy term, which is small between different photos
    assert np.abs(cos_half[off] - 0.25 * cos_base[off]).max() < 0.75 * 0.35
    _set_logit(g, 5.0)  # liveness 0: fakes score low against real photos and against each other
    fake = g.embed(crops)
    assert np.abs(fake @ ref.T).max() < 1e-5
    assert np.abs((fake @ fake.T)[off]).max() < 0.35
    assert np.abs((fake @ fake.T)[~off] - 1).max() < 1e-5  # a photo still matches itself


def _cfg(ds, out, **kw) -> TrainConfig:
    base = dict(dataset=str(ds), out=str(out), model="dlib_resnet", batch_size=4, val_every=2, val_fraction=0.3, progress=False,
                epochs=None, max_steps=2, artefact_head=True, tune="head", head_batch=8, head_blocks=2)
    base.update(kw)
    return TrainConfig(**base)


def test_train_run_with_an_artefact_head_checkpoints_loads_and_exports(two_family_ds, tmp_path, base):
    from fakeproof.engine import FaceEngine, resolve_model
    from fakeproof.engine.onnx import ExportedOnnx
    from fakeproof.infer.onnx_export import export_onnx
    from safetensors.torch import load_file

    run = tmp_path / "run"
    s = train(_cfg(two_family_ds, run))
    assert s["steps"] == 2
    cfg = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert cfg["artefact_head"] == {"blocks": 2, "dims": GUARD_DIMS, "flip": True} and cfg["encoder"] == "dlib_resnet"
    w = load_file(str(run / "checkpoints" / "best" / "model.safetensors"))
    ref = base.state_dict()
    assert all(torch.equal(w["base." + k], v) for k, v in ref.items())  # --tune head: the encoder did not move
    m = resolve_model(str(run / "checkpoints" / "best"))  # the checkpoint as saved (RUN itself follows decision.json)
    assert isinstance(m.encoder, GuardedEncoder) and m.encoder.calibrated
    crops = _crops(two_family_ds, 3)
    e = m.encoder.embed(crops)
    eng = FaceEngine(m.encoder, device="cpu", use_cache=False)
    assert np.allclose(eng.embed_crops(list(crops)), e, atol=1e-6)  # the engine does not flip it twice
    rep = export_onnx(m.encoder, tmp_path / "g.onnx", threshold=m.threshold)
    assert rep.metadata["fakeproof.mirrors_itself"] == "1"
    ort = ExportedOnnx(tmp_path / "g.onnx")
    assert ort.mirrors_itself and np.abs(ort.embed(crops) - e).max() < 1e-3


def test_head_batches_are_half_fake_with_self_blends_and_repeatable(two_family_ds, tmp_path):
    from fakeproof.train.artefact import HeadBatches, fake_rows, real_rows
    from fakeproof.train.data import CropStore, PairTable
    from fakeproof.train.pairs import read_pairs_csv

    run = tmp_path / "r"
    train(_cfg(two_family_ds, run, max_steps=1, val_every=1, tune="all", hard_fakes=0.5))  # the pair loss with hard fakes too
    store = CropStore.open(run / "data")
    table = PairTable.from_pairs([p for p in read_pairs_csv(run / "pairs.csv") if p.split == "train"], store)
    assert len(fake_rows(table)) and not set(fake_rows(table)) & set(real_rows(table))
    spec = get_encoder("dlib_resnet").spec
    only_sb = HeadBatches(store, table, spec, 8, selfblend_share=1.0, seed=0)
    crops, labels = only_sb(0)
    assert crops.shape == (8, 150, 150, 3) and labels.tolist() == [0.0] * 4 + [1.0] * 4
    c2, _ = only_sb(0)
    assert np.array_equal(crops, c2)  # a pure function of (seed, step)
    originals = np.asarray(store.crops)[real_rows(table)].astype(np.int16)
    # a self-blend is not any stored crop (nor its mirror)
    for fake in crops[4:].astype(np.int16):
        assert min(min(np.abs(o - fake).mean(), np.abs(o[:, ::-1] - fake).mean()) for o in originals) > 0.5
    with pytest.raises(ValueError, match="fakes"):
        HeadBatches(store, PairTable.from_pairs([p for p in read_pairs_csv(run / "pairs.csv") if p.split == "train" and p.kind != "deepfake"], store), spec, 8, 0.0, 0)


def test_the_head_learns_to_flag_fakes(two_family_ds, tmp_path):
    """A few dozen steps on the training crops: fakes' logits end above the real photos'."""
    from fakeproof.engine import resolve_model
    from fakeproof.train.artefact import fake_rows, real_rows
    from fakeproof.train.data import CropStore, PairTable
    from fakeproof.train.pairs import read_pairs_csv

    run = tmp_path / "learn"
    train(_cfg(two_family_ds, run, max_steps=40, val_every=40, head_lr=3e-4, head_batch=16, head_selfblend=0.0, seed=1))
    g = resolve_model(str(run / "checkpoints" / "best")).encoder
    store = CropStore.open(run / "data")
    table = PairTable.from_pairs([p for p in read_pairs_csv(run / "pairs.csv") if p.split == "train"], store)
    with torch.no_grad():
        logit = lambda rows: g.artefact_logit(g.to_input(np.asarray(store.crops)[rows])).numpy()  # noqa: E731
        fake, real = logit(fake_rows(table)), logit(real_rows(table))
    from sklearn.metrics import roc_auc_score

    assert fake.mean() > real.mean() + 0.25
    assert roc_auc_score([1] * len(fake) + [0] * len(real), np.r_[fake, real]) > 0.7


def test_cli_tune_head_needs_the_head(two_family_ds, tmp_path):
    r = CliRunner().invoke(app, ["train", "run", str(two_family_ds), "--out", str(tmp_path / "x"), "--tune", "head", "--max-steps", "1", "--model", "dlib_resnet"])
    assert r.exit_code == 1 and "--artefact-head" in r.output and "Traceback" not in r.output
    with pytest.raises(TrainError, match="artefact"):
        train(_cfg(two_family_ds, tmp_path / "y", artefact_head=False))


def test_artefact_head_trains_under_torchrun_on_two_cpu_processes(two_family_ds, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2", "-m", "fakeproof.train.cli", "run",
           str(two_family_ds), "--out", str(run), "--model", "dlib_resnet", "--artefact-head", "--head-blocks", "2", "--head-batch", "8",
           "--batch-size", "4", "--max-steps", "2", "--val-every", "2", "--val-fraction", "0.3", "--freeze-blocks", "12", "--no-progress"]
    p = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["world_size"] == 2 and s["steps"] == 2
    d0, d1 = s["weight_digests"]
    assert d0 == d1, "the two ranks ended with different weights (head and encoder are both synchronised)"
