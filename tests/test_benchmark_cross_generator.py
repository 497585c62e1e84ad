"""benchmarks/train_cross_generator.py --fast: the leave-one-family-out protocol end to end on
package-shipped faces (a random AdaFace IR-18 stands in for the stock encoder so it stays quick)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.fixture
def ckpt(ir18_ckpt):
    """conftest's random AdaFace IR-18: the quick stand-in for the stock encoder."""
    return ir18_ckpt


def test_cross_generator_fast_mode(tmp_path, ckpt):
    import train_cross_generator as bench

    out = bench.main(["--fast", "--work", str(tmp_path / "w"), "--families", "classic,selfblend", "--runs", "all,selfblend",
                      "--encoder", "adaface_ir18", "--weights", str(ckpt), "--train-args", "--freeze-blocks 11 --lr 1e-4",
                      "--val-fraction", "0.3", "--test-fraction", "0.3"])
    res = out["results"]
    assert set(res) == {"stock", "all", "without selfblend"}
    for name, m in res.items():
        assert 0.0 <= m["genuine_eer"] <= 1.0 and m["pairs"] > 0
        for f in ("classic", "selfblend"):  # the test split holds every family, held out or not
            assert 0.0 <= m[f"attack_acceptance:{f}"] <= 1.0
    assert res["all"]["summary"]["steps"] == 2
    assert set(res["without selfblend"]["summary"]["attack_acceptance_by_family"]) == {"classic"}  # chosen without it
    assert not np.isnan(res["stock"]["attack_acceptance"])
    cmp = bench.main(["--work", str(tmp_path / "w"), "--compare", "default"])  # the recipe table over saved runs
    assert [r["recipe"] for r in cmp["rows"]] == ["stock (no training)", "default"]
    row = cmp["rows"][1]
    assert set(row["held_out"]) == {"selfblend"} and row["held_out"]["selfblend"] == res["without selfblend"]["attack_acceptance:selfblend"]
    lo, hi = row["delta_ci"]  # paired identity bootstrap of the change in held-out acceptance vs stock
    assert -1.0 <= lo <= hi <= 1.0 and row["rise_ci"][0] <= row["rise_ci"][1]
    assert cmp["winner"] in ("stock (no training)", "default")
    assert (cmp["winner"] == "default") == (row["max_eer_rise"] <= bench.EER_BUDGET and row["mean_held_out"] < cmp["rows"][0]["mean_held_out"] and hi < 0)


def test_the_recipe_rule_wants_a_gain_beyond_the_bootstrap_interval():
    import train_cross_generator as bench

    stock = {"mean_held_out": 0.8}
    row = {"max_eer_rise": 0.0, "mean_held_out": 0.7, "delta_ci": [-0.2, -0.01]}
    assert bench.beats_stock(row, stock)
    assert not bench.beats_stock({**row, "delta_ci": [-0.2, 0.03]}, stock)  # within the noise of who is tested
    assert not bench.beats_stock({**row, "max_eer_rise": 0.006}, stock)  # over the EER budget
    assert not bench.beats_stock({**row, "delta_ci": None}, stock)  # no per-pair scores: no claim


def test_group_bootstrap_resamples_whole_groups():
    from fakeproof.metrics import group_bootstrap

    groups = np.array(["a", "a", "b", "c", "c", "c"])
    draws = list(group_bootstrap(groups, n=50, seed=1))
    assert len(draws) == 50
    for idx in draws:
        picked = groups[idx]
        for g in set(picked):  # a group comes whole, as often as it was drawn
            assert (picked == g).sum() % (groups == g).sum() == 0
        assert len({tuple(sorted(idx)) for idx in draws}) > 1


def test_cross_generator_fast_mode_with_an_artefact_head_and_its_trade_off_rows(tmp_path, ckpt):
    import train_cross_generator as bench

    out = bench.main(["--fast", "--work", str(tmp_path / "w"), "--families", "classic,selfblend", "--runs", "selfblend",
                      "--encoder", "adaface_ir18", "--weights", str(ckpt), "--train-args", "--artefact-head --tune head --head-blocks 2 --head-batch 8",
                      "--val-fraction", "0.3", "--test-fraction", "0.3", "--false-alarms", "0.2,0.5"])
    res = out["results"]
    assert set(res) == {"stock", "without selfblend", "without selfblend @ 20% flagged", "without selfblend @ 50% flagged"}
    for m in res.values():
        assert 0.0 <= m["attack_acceptance:selfblend"] <= 1.0
    assert res["without selfblend"]["summary"]["steps"] == 2
    assert 0.0 <= res["without selfblend"]["head_auc:selfblend"] <= 1.0  # the head judged as a detector
    assert "head_auc:selfblend" not in res["stock"]
