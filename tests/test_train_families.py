"""Leave-one-family-out: pairs know their fake's generator family, `--holdout-backend` keeps a
family out of training and validation, and every run reports acceptance per family."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.data import TrainingDataset
from fakeproof.train.families import fake_families
from fakeproof.train.config import TrainConfig, TrainError
from fakeproof.train.loop import train
from fakeproof.train.pairs import build_pairs, read_pairs_csv
from fakeproof.metrics import pair_metrics

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def two_family_ds(two_family_dataset) -> Path:
    """conftest's shared two-family dataset (ir18_ckpt: conftest's random IR-18)."""
    return two_family_dataset


def test_pairs_carry_the_family_and_holdout_removes_it(two_family_ds):
    ds = TrainingDataset.load(two_family_ds)
    fams = fake_families(two_family_ds)
    assert set(fams.values()) == {"classic", "selfblend"}
    every, _ = build_pairs(ds, seed=0, val_fraction=0.3, families=fams)
    held, _ = build_pairs(ds, seed=0, val_fraction=0.3, families=fams, holdout=("selfblend",))
    assert {p.backend for p in every if p.kind == "deepfake"} == {"classic", "selfblend"}
    assert all(p.backend == fams[p.b] for p in every if p.kind == "deepfake")
    assert {p.backend for p in held if p.kind == "deepfake"} == {"classic"}
    assert all(fams[p.b] == "classic" for p in held if p.kind == "deepfake")
    real = lambda ps: [p for p in ps if p.kind != "deepfake"]  # noqa: E731
    assert real(every) == real(held)  # the real pairs do not move
    assert {p.split for p in held if p.kind == "deepfake"} == {"train", "val"}


def test_acceptance_per_family_at_the_genuine_threshold():
    # genuine 0.9 0.8 0.7 / impostor 0.1 0.2 0.3 -> genuine EER 0, threshold in (0.3, 0.7]
    cos = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.95, 0.75, 0.1, 0.2, 0.85])
    kinds = np.array(["genuine"] * 3 + ["impostor"] * 3 + ["deepfake"] * 5)
    labels = (kinds == "genuine").astype(int)
    fams = np.array([""] * 6 + ["a", "a", "a", "b", "b"], dtype=object)
    m = pair_metrics(cos, labels, kinds, fams)
    assert m["genuine_eer"] == 0.0 and 0.3 < m["genuine_threshold"] <= 0.7
    assert m["attack_acceptance:a"] == pytest.approx(2 / 3)
    assert m["attack_acceptance:b"] == pytest.approx(1 / 2)
    assert m["attack_acceptance"] == pytest.approx(3 / 5)
    assert not any(k.startswith("attack_acceptance:") for k in pair_metrics(cos, labels, kinds))


def _cfg(ds, ckpt, out, **kw) -> TrainConfig:
    base = dict(dataset=str(ds), out=str(out), model="adaface_ir18", weights=str(ckpt), batch_size=4, val_every=2,
                freeze_blocks=11, val_fraction=0.3, lr=1e-4, progress=False, epochs=None, max_steps=2)
    base.update(kw)
    return TrainConfig(**base)


def test_train_run_holds_a_family_out_and_reports_per_family(two_family_ds, ir18_ckpt, tmp_path):
    run = tmp_path / "held"
    s = train(_cfg(two_family_ds, ir18_ckpt, run, holdout_backend="selfblend"))
    pairs = read_pairs_csv(run / "pairs.csv")
    assert {p.backend for p in pairs if p.kind == "deepfake"} == {"classic"}
    assert s["holdout_backend"] == "selfblend"
    assert set(s["attack_acceptance_by_family"]) == {"classic"} and 0.0 <= s["attack_acceptance_by_family"]["classic"] <= 1.0
    assert s["best_genuine_eer"] is not None
    saved = json.loads((run / "summary.json").read_text())
    assert saved["attack_acceptance_by_family"] == s["attack_acceptance_by_family"]
    cfg = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert cfg["holdout_backend"] == "selfblend" and "attack_acceptance:classic" in cfg["validation"]
    s2 = train(_cfg(two_family_ds, ir18_ckpt, tmp_path / "all"))  # no holdout: both families reported
    assert set(s2["attack_acceptance_by_family"]) == {"classic", "selfblend"}
    with pytest.raises(TrainError, match="fakes.csv.*morph"):
        train(_cfg(two_family_ds, ir18_ckpt, tmp_path / "bad", holdout_backend="morph"))


def test_cli_holdout_errors_in_one_line(two_family_ds, tmp_path):
    r = CliRunner().invoke(app, ["train", "pairs", str(two_family_ds), "--out", str(tmp_path / "p.csv"), "--holdout-backend", "roop"])
    assert r.exit_code == 1 and "roop" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["train", "pairs", str(two_family_ds), "--out", str(tmp_path / "p.csv"), "--holdout-backend", "classic"])
    assert r.exit_code == 0, r.output
    assert {p.backend for p in read_pairs_csv(tmp_path / "p.csv") if p.kind == "deepfake"} == {"selfblend"}
    r = CliRunner().invoke(app, ["train", "run", str(two_family_ds), "--out", str(tmp_path / "r"), "--holdout-backend", "nope", "--max-steps", "1"])
    assert r.exit_code == 1 and "nope" in r.output and "Traceback" not in r.output


def test_tune_norm_moves_only_normalisation_parameters(two_family_ds, ir18_ckpt, tmp_path):
    from safetensors.torch import load_file

    run = tmp_path / "norm"
    train(_cfg(two_family_ds, ir18_ckpt, run, tune="norm", freeze_blocks=0, lr=1e-2))
    start = {k[len("model."):]: v for k, v in torch.load(ir18_ckpt, weights_only=True)["state_dict"].items()}
    w = {k[len("net."):]: v for k, v in load_file(str(run / "checkpoints" / "step-000002" / "model.safetensors")).items()}
    from fakeproof.engine.encoders.adaface import IRBackbone
    from fakeproof.train.blocks import NORM_LAYERS

    net = IRBackbone(18)
    norm_params = {f"{n}.{p}" for n, m in net.named_modules() if isinstance(m, NORM_LAYERS) for p, _ in m.named_parameters(recurse=False)}
    moved = {k for k in norm_params if not torch.equal(w[k], start[k])}
    assert moved  # the norm layers learnt
    others = [k for k, _ in net.named_parameters() if k not in norm_params]
    assert others and all(torch.equal(w[k], start[k]) for k in others)  # nothing else did
    with pytest.raises(TrainError, match="--tune"):
        train(_cfg(two_family_ds, ir18_ckpt, tmp_path / "bad", tune="bias"))
