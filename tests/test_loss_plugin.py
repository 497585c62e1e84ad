"""A new pair loss is one class: registered here, in the test, its constructor's options reach
``train run`` (command line and ``--config FILE``, ranges checked) and it trains through the real CLI."""
from __future__ import annotations

import csv
import json
import math
from typing import Annotated

import pytest
import torch
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.cli_options import Opt
from fakeproof.train.losses import LOSSES

pytestmark = pytest.mark.slow


class TinyHingeLoss(torch.nn.Module):
    """Genuine pairs below ``1 - gap`` and negative pairs above 0 cost linearly."""

    def __init__(self, gap: Annotated[float, Opt("how far below 1 a genuine pair may sit", min=0.0, max=1.0)] = 0.2):
        super().__init__()
        self.gap = gap

    def forward(self, cos, y, reduction="mean"):
        y = y.to(cos.dtype)
        per = y * torch.relu(1 - self.gap - cos) + (1 - y) * torch.relu(cos)
        return per.mean() if reduction == "mean" else per


@pytest.fixture
def tiny_loss(monkeypatch):
    LOSSES.names()  # the stock losses first, then this one; the registry is put back after the test
    monkeypatch.setattr(LOSSES, "_entries", dict(LOSSES._entries))
    LOSSES.register("tiny_hinge", TinyHingeLoss)
    return "tiny_hinge"


def _run(args):
    res = CliRunner().invoke(app, ["train", "run", *map(str, args)])
    return res.exit_code, res.output


def test_a_loss_registered_in_a_test_trains_two_steps_through_the_cli(tiny_loss, tmp_path, train_dataset, ir18_ckpt):
    code, out = _run(["--help"])
    assert code == 0 and "--gap" in out and "tiny_hinge" in out
    ds, ckpt = train_dataset, ir18_ckpt
    base = [ds, "--model", "adaface_ir18", "--weights", ckpt, "--batch-size", "4", "--val-every", "2", "--freeze-blocks", "11",
            "--val-fraction", "0.3", "--device", "cpu", "--no-progress", "--max-steps", "2"]

    # out of range, or an option another loss declares: one line, exit 2, before any work
    code, out = _run([*base, "--out", tmp_path / "bad", "--loss", tiny_loss, "--gap", "1.5"])
    assert code == 2 and "--gap must be >= 0 and <= 1" in out and not (tmp_path / "bad").exists()
    code, out = _run([*base, "--out", tmp_path / "bad", "--loss", tiny_loss, "--scale", "8"])
    assert code == 2 and "--scale does not apply to --loss tiny_hinge" in out
    (tmp_path / "bad.json").write_text(json.dumps({"loss": tiny_loss, "gap": -1}))
    code, out = _run([*base, "--out", tmp_path / "bad", "--config", tmp_path / "bad.json"])
    assert code == 2 and "--gap must be >= 0" in out

    # the loss and its option from a config file, trained for 2 steps
    (tmp_path / "cfg.json").write_text(json.dumps({"loss": tiny_loss, "gap": 0.3}))
    run = tmp_path / "run"
    code, out = _run([*base, "--out", run, "--config", tmp_path / "cfg.json"])
    assert code == 0, out
    cfg = json.loads((run / "run.json").read_text())["config"]
    assert cfg["loss"] == tiny_loss and cfg["loss_options"] == {"gap": 0.3}
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert int(rows[-1]["step"]) == 2 and math.isfinite(float(rows[-1]["train_loss"]))
    # the command line's value beats the file's (the file's 0.3 would pass; the command line's 5 is refused)
    code, out = _run([*base, "--out", tmp_path / "run2", "--config", tmp_path / "cfg.json", "--gap", "5"])
    assert code == 2 and "--gap must be >= 0 and <= 1, got 5" in out and not (tmp_path / "run2").exists()


def test_stock_losses_keep_their_option_names_and_old_configs_still_load(tmp_path):
    from fakeproof.train.losses import loss_option_names, make_loss, resolve_loss_options

    assert {"scale", "margin_base", "margin_alpha"} <= loss_option_names()
    # a run.json written before loss_options: the values were top-level fields
    opts, left_out = resolve_loss_options("contrastive", {}, {"scale": 16.0, "margin_base": 0.2, "margin_alpha": 0.1})
    assert opts == {"margin_base": 0.2} and left_out == ["margin_alpha", "scale"]
    assert make_loss("contrastive", opts).margin == 0.2
    assert make_loss("adaptive_margin").scale == 16.0
