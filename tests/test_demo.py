"""The demo pipeline end to end on a reduced size: sample data with injected label noise -> curate
clean/review/apply (real FiftyOne) -> offline deepfakes -> pairs -> a 2-step train run -> infer
score-pairs/evaluate of the stock and the trained encoder on held-apart identities; then resume."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.demo import STATE, DemoConfig, run_demo

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_demo_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--identities", "4", "--photos", "4", "--noise", "2", "--fakes", "2",
                                   "--train-steps", "2", "--train-minutes", "5", "--batch-size", "8", "--no-export-onnx"])
    assert res.exit_code == 0, res.output
    r = json.loads((out / "demo_result.json").read_text())
    cfg = DemoConfig(out=out, identities=4, photos=4, noise=2, fakes=2, train_steps=2, train_minutes=5, batch_size=8, export_onnx=False)

    injected = json.loads((out / "injected_noise.json").read_text())
    assert len(injected) == 2
    assert r["curation"]["injected"] == 2 and r["curation"]["found"] == 2
    flags = pd.read_csv(out / "dataset" / "curation" / "flags.csv")
    assert len(flags) == 4 * 4  # one row for every photo
    # the scripted reviewer's decisions were applied: the moved photos are back with their identity
    hist = (out / "dataset" / "curation" / "history.jsonl").read_text().splitlines()
    assert len(hist) >= 2
    meta = json.loads((out / "dataset" / "meta.json").read_text())
    assert sum(v == 1 for v in meta.values()) == 4 * 2  # two fakes per identity (the offline mix)
    moves = {c["key"]: c for c in map(json.loads, hist) if c.get("event") == "change"}
    for k, truth in injected.items():  # every injected error went back to its true identity
        assert moves[k]["action"] == "relabel" and moves[k]["to_identity"] == truth["true_identity"]
        assert moves[k]["to_key"] in meta and (out / "dataset" / "images" / moves[k]["to_key"]).exists()

    held = r["held_apart"]
    assert len(held["identities"]) == 2 and held["pairs"] > 0
    for side in ("before", "after"):
        assert 0.0 <= r[side]["eer"] <= 1.0 and 0.0 <= r[side]["attack_acceptance"] <= 1.0
        gens = set(r[side]["per_generator"])  # the offline mix of `--backends available`
        assert gens and gens <= {"deepfake:classic", "deepfake:selfblend", "deepfake:morph"}, gens
    scores = pd.read_csv(out / "eval" / "trained.csv")
    assert len(scores) == held["pairs"] and scores["similarity"].map(math.isfinite).all()
    assert (out / "eval" / "stock.roc.png").stat().st_size > 5000
    assert (out / "run" / "checkpoints" / "best" / "model.safetensors").exists()
    assert json.loads((out / "run" / "summary.json").read_text())["steps"] == 2

    # a second invocation finds every step done and only prints the result again
    state = json.loads((out / STATE).read_text())
    r2 = run_demo(cfg)
    assert json.loads((out / STATE).read_text())["times"] == state["times"]
    assert r2["after"] == r["after"] and r2["seconds"] < 30
