"""train run: a short CPU run writes checkpoints and metrics, resumes exactly, and runs under torchrun.

The encoder is AdaFace IR-18 from the registry with a random checkpoint built here in the AdaFace
Lightning format ({"state_dict": {"model.<key>": tensor}}); its first 11 blocks are frozen so a step
takes well under a second on two cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fakeproof.engine.checkpoint_reader import load_trained_encoder
from fakeproof.train.config import TrainConfig, TrainError
from fakeproof.train.loop import train

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FREEZE = 11  # of IR-18's 13 blocks: the output BatchNorm and the embedding Linear still learn


@pytest.fixture
def dataset(train_dataset):
    """conftest's shared training dataset (ir18_ckpt: conftest's random IR-18)."""
    return train_dataset


def _cfg(dataset, ckpt, out, **kw) -> TrainConfig:
    base = dict(
        dataset=str(dataset), out=str(out), model="adaface_ir18", weights=str(ckpt), batch_size=4, val_every=2,
        freeze_blocks=FREEZE, val_fraction=0.3, lr=1e-4, progress=False, epochs=None,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_short_run_writes_checkpoints_and_metrics(dataset, ir18_ckpt, tmp_path):
    run = tmp_path / "run"
    summary = train(_cfg(dataset, ir18_ckpt, run, max_steps=4))
    assert summary["steps"] == 4 and summary["world_size"] == 1
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    for col in ("step", "train_loss", "val_loss", "eer", "threshold", "error_real_deepfake", "error_real_another_real", "accuracy", "lr"):
        assert col in header
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    assert (run / "metrics.png").stat().st_size > 5000
    assert json.loads((run / "checkpoints" / "last.json").read_text())["step"] == 4
    best = run / "checkpoints" / "best"
    cfg = json.loads((best / "config.json").read_text())
    assert cfg["encoder"] == "adaface_ir18" and cfg["input_size"] == [112, 112]
    assert cfg["normalisation"] == "(x/255-0.5)/0.5" and cfg["color_order"] == "BGR"
    assert isinstance(cfg["threshold"], float) and cfg["threshold"] == pytest.approx(cfg["validation"]["threshold"])
    # the checkpoint carries its own similarity scale, fitted on its validation split: --model RUN reports on it
    from fakeproof.engine import resolve_model
    from fakeproof.engine.cards import Calibration

    cal = Calibration.from_dict(cfg["calibration"])
    assert "validation split" in cal.fitted and cal(cal.raw[2]) == pytest.approx(0.5)
    assert resolve_model(str(best)).card.calibration == cal
    # the closing check compared it with the stock encoder and recorded what --model RUN loads
    assert json.loads((run / "decision.json").read_text())["recommended"] in ("stock", "trained")
    assert set(summary["closing"]["models"]) == {"stock", "trained"}
    assert summary["best_step"] == cfg["step"]
    # training moved the trainable weights and left the frozen ones alone
    start = {k[len("model."):]: v for k, v in torch.load(ir18_ckpt, weights_only=True)["state_dict"].items()}
    w = load_file(str(run / "checkpoints" / "step-000004" / "model.safetensors"))
    assert torch.equal(w["net.input_layer.0.weight"], start["input_layer.0.weight"])
    assert torch.equal(w["net.body.0.res_layer.1.weight"], start["body.0.res_layer.1.weight"])
    assert not torch.equal(w["net.output_layer.3.weight"], start["output_layer.3.weight"])
    # infer's loader: the registry rebuilds IR-18 and the best weights go in
    enc, conf = load_trained_encoder(run, device="cpu")
    assert conf["threshold"] == cfg["threshold"]
    wb = load_file(str(best / "model.safetensors"))
    for k, v in enc.state_dict().items():
        assert torch.equal(v, wb[k]), k
    crops = np.random.default_rng(0).integers(0, 255, (2, 112, 112, 3), dtype=np.uint8)
    e = enc.embed(crops)
    assert e.shape == (2, 512) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    # a second run into the same folder without --resume is refused
    with pytest.raises(TrainError, match="already holds a run"):
        train(_cfg(dataset, ir18_ckpt, run, max_steps=6))


def test_resume_continues_exactly(dataset, ir18_ckpt, tmp_path):
    """Stop at step 3 (between validations), resume to step 4: the same weights, optimizer moments,
    scheduler and validation numbers as one uninterrupted 4-step run."""
    cut = tmp_path / "cut"
    train(_cfg(dataset, ir18_ckpt, cut, max_steps=3))
    resumed = train(_cfg(dataset, ir18_ckpt, cut, max_steps=4), resume=True)
    whole = tmp_path / "whole"
    full = train(_cfg(dataset, ir18_ckpt, whole, max_steps=4))
    assert resumed["steps"] == full["steps"] == 4 and resumed["steps_this_run"] == 1
    wa = load_file(str(cut / "checkpoints" / "step-000004" / "model.safetensors"))
    wb = load_file(str(whole / "checkpoints" / "step-000004" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs after resume"
    sa = torch.load(cut / "checkpoints" / "step-000004" / "train_state.pt", weights_only=True)
    sb = torch.load(whole / "checkpoints" / "step-000004" / "train_state.pt", weights_only=True)
    assert sa["optimizer"]["state"].keys() == sb["optimizer"]["state"].keys()
    for pid, st in sa["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg"], sb["optimizer"]["state"][pid]["exp_avg"])
        assert torch.equal(st["exp_avg_sq"], sb["optimizer"]["state"][pid]["exp_avg_sq"])
    assert sa["scheduler"] == sb["scheduler"]
    assert torch.equal(sa["rng"][0], sb["rng"][0])
    assert resumed["last"]["val_loss"] == full["last"]["val_loss"]
    # the unscheduled validation at the cut (step 3) is logged; the scheduled ones are the same
    steps_cut = [int(r.split(",")[0]) for r in (cut / "metrics.csv").read_text().splitlines()[1:]]
    assert steps_cut == [2, 3, 4]
    # runs after the first on the same photos do no detection: the engine's crop cache answers
    assert full["engine_stats"]["crop_misses"] == 0 and full["engine_stats"]["crop_hits"] > 0


@pytest.mark.integration
def test_torchrun_two_processes_on_cpu(dataset, ir18_ckpt, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [
        str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2", "-m", "fakeproof.train.cli", "run",
        str(dataset), "--out", str(run), "--encoder", "adaface_ir18", "--weights", str(ir18_ckpt), "--batch-size", "4",
        "--max-steps", "3", "--val-every", "2", "--freeze-blocks", str(FREEZE), "--val-fraction", "0.3", "--lr", "1e-4", "--no-progress",
    ]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    d0, d1 = summary["weight_digests"]
    assert d0 == d1, "the two ranks ended with different weights"
    # only rank 0 wrote: one set of checkpoint folders, each saying so, no leftovers of a second writer
    ck = run / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["best", "last.json", "step-000002", "step-000003"]
    for folder in ("best", "step-000002", "step-000003"):
        conf = json.loads((ck / folder / "config.json").read_text())
        assert conf["world_size"] == 2 and conf["written_by_rank"] == 0
    state = torch.load(ck / "step-000003" / "train_state.pt", weights_only=True)
    assert len(state["rng"]) == 2  # both ranks' RNG states travel to rank 0 for --resume
    start = {k[len("model."):]: v for k, v in torch.load(ir18_ckpt, weights_only=True)["state_dict"].items()}
    w = load_file(str(ck / "step-000003" / "model.safetensors"))
    assert not torch.equal(w["net.output_layer.3.weight"], start["output_layer.3.weight"])
    assert len((run / "metrics.csv").read_text().splitlines()) == 3  # header + steps 2 and 3, written once


def test_keep_real_distillation_holds_real_descriptors_and_ignores_fakes(dataset, ir18_ckpt, tmp_path):
    from fakeproof.distributed.process_group import DistInfo
    from fakeproof.engine import resolve_model
    from fakeproof.train.task import PairTask

    cfg = _cfg(dataset, ir18_ckpt, tmp_path / "unused", keep_real=5.0)
    enc = resolve_model("adaface_ir18", device="cpu", weights=str(ir18_ckpt)).encoder
    task = PairTask(enc, cfg, DistInfo())
    enc.eval()  # (IR-18's dropout would make two passes differ)
    crops = np.random.default_rng(0).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    x = enc.to_input(crops)
    real = np.array([True, True, False, False])
    with torch.no_grad():
        assert float(task.keep_real_penalty(x, task.model(x), real)) == pytest.approx(0.0, abs=1e-9)  # the teacher is the start
    with torch.no_grad():
        enc.net.output_layer[3].weight.mul_(1.5)  # the student drifts
    with torch.no_grad():
        drift = float(task.keep_real_penalty(x, task.model(x), real))
    assert drift > 0.01
    # only the real rows count: other crops in the fake rows (2, 3) leave the penalty as it was
    x2 = enc.to_input(np.concatenate([crops[:2], 255 - crops[2:]]))
    with torch.no_grad():
        assert float(task.keep_real_penalty(x2, task.model(x2), real)) == pytest.approx(drift, rel=1e-5)
        assert float(task.keep_real_penalty(x, task.model(x), np.zeros(4, bool))) == 0.0
    off = PairTask(enc, _cfg(dataset, ir18_ckpt, tmp_path / "unused", keep_real=0.0), DistInfo())
    assert off.teacher is None and off.keep_real_penalty(x, off.model(x), real) == 0.0


def test_l2sp_keeps_the_weights_near_the_pretrained_ones(dataset, ir18_ckpt, tmp_path):
    start = {k[len("model."):]: v for k, v in torch.load(ir18_ckpt, weights_only=True)["state_dict"].items()}
    moved = {}
    for l2sp in (0.0, 1e4):
        run = tmp_path / f"l2sp-{l2sp:g}"
        train(_cfg(dataset, ir18_ckpt, run, max_steps=3, lr=1e-3, l2sp=l2sp))
        w = load_file(str(run / "checkpoints" / "step-000003" / "model.safetensors"))
        moved[l2sp] = float(((w["net.output_layer.3.weight"] - start["output_layer.3.weight"]) ** 2).sum())
        assert json.loads((run / "checkpoints" / "step-000003" / "config.json").read_text())["train"]["l2sp"] == l2sp
    assert 0 < moved[1e4] < 0.5 * moved[0.0]
