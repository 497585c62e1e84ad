"""infer evaluate: EER by the Kryptonite baseline formula on hand-made scores, TAR@FAR data limits,
per-group acceptance, the CLI's table / JSON / ROC PNG."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fakeproof.infer.cli import app
from fakeproof.infer.evaluate import INSUFFICIENT, EvaluationError, evaluate_scores, parse_labels

runner = CliRunner()


def baseline_eer(labels, scores):
    """The Kryptonite baseline's compute_eer, written out independently of fakeproof.metrics."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(labels, scores, pos_label=1)
    thr[0] = 1.0
    i = np.nanargmin(np.abs((1 - tpr) - fpr))
    return fpr[i], thr[i]


def test_eer_on_hand_made_scores():
    # sorted: 0.9+ 0.8+ 0.7+ 0.6- 0.3+ 0.2- 0.1- 0.05-
    # at threshold 0.6: 3/4 genuine accepted (FNR 0.25), 1/4 impostors accepted (FPR 0.25) -> EER 0.25
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05]
    ev = evaluate_scores(labels, scores)
    assert ev.eer == pytest.approx(0.25)
    assert ev.threshold == pytest.approx(0.6)
    assert ev.auc == pytest.approx(15 / 16)  # 15 of the 16 (genuine, impostor) pairs ordered right
    assert (ev.eer, ev.threshold) == pytest.approx(baseline_eer(np.array(labels), np.array(scores)))


def test_eer_matches_the_baseline_formula_on_random_scores():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = np.clip(rng.normal(0.2 + 0.4 * labels, 0.2), -1, 1)
    ev = evaluate_scores(labels, scores)
    assert (ev.eer, ev.threshold) == pytest.approx(baseline_eer(labels, scores))
    assert 0.1 < ev.eer < 0.25  # two normals 2 sd apart: EER near 16%


def test_perfect_separation_gives_zero_eer():
    ev = evaluate_scores([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2])
    assert ev.eer == 0.0 and 0.2 < ev.threshold <= 0.8


def test_tar_at_far_reports_insufficient_data():
    rng = np.random.default_rng(0)
    # 50 negatives: FAR 1e-2 x 50 = 0.5 < 1 -> not measurable
    labels = np.r_[np.ones(30), np.zeros(50)].astype(int)
    scores = np.r_[rng.uniform(0.5, 1, 30), rng.uniform(0, 0.6, 50)]
    ev = evaluate_scores(labels, scores)
    assert ev.tar["1e-02"] is None and ev.tar_text(1e-2) == INSUFFICIENT
    # 100 negatives: 1e-2 is measurable (at most 1 accepted impostor), 1e-3 / 1e-4 are not
    labels = np.r_[np.ones(4), np.zeros(100)].astype(int)
    scores = np.r_[[0.95, 0.9, 0.5, 0.3], np.linspace(0, 0.8, 99), [0.92]]
    ev = evaluate_scores(labels, scores)
    # the threshold may accept 1 impostor (0.92); strictly above the 2nd highest (0.8): 0.95, 0.9 (and 0.92 is the impostor)
    assert ev.tar["1e-02"] == pytest.approx(2 / 4)
    assert ev.tar["1e-03"] is None and ev.tar["1e-04"] is None
    assert ev.to_json()["tar"]["1e-03"] == INSUFFICIENT


def test_groups_get_acceptance_at_the_eer_threshold():
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05, 0.75, 0.65]
    groups = ["genuine"] * 4 + ["impostor"] * 4 + ["deepfake:roop"] * 2
    ev = evaluate_scores(labels, scores, groups)
    by = {g.group: g for g in ev.groups}
    thr = ev.threshold
    for name, idx in (("genuine", range(0, 4)), ("impostor", range(4, 8)), ("deepfake:roop", range(8, 10))):
        assert by[name].n == len(idx)
        assert by[name].acceptance_rate == pytest.approx(np.mean([scores[i] >= thr for i in idx]))
    assert by["genuine"].positives == 4 and by["deepfake:roop"].positives == 0


def test_labels_parse_and_bad_labels_are_named():
    assert parse_labels(["1", "0", "True", "false", 1, 0.0, True]).tolist() == [1, 0, 1, 0, 1, 0, 1]
    with pytest.raises(EvaluationError, match="row 2"):
        parse_labels([1, "maybe"])
    with pytest.raises(EvaluationError, match="both classes"):
        evaluate_scores([1, 1], [0.2, 0.3])
    with pytest.raises(EvaluationError, match="not finite"):
        evaluate_scores([1, 0], [float("nan"), 0.3])


def test_evaluate_cli_writes_table_json_and_roc(tmp_path):
    df = pd.DataFrame(
        {
            "path_a": [f"a{i}.jpg" for i in range(10)],
            "path_b": [f"b{i}.jpg" for i in range(10)],
            "expected_accept": ["True"] * 4 + ["False"] * 6,
            "group": ["genuine"] * 4 + ["impostor"] * 4 + ["deepfake:roop"] * 2,
            "similarity": [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05, 0.75, 0.65],
        }
    )
    csv = tmp_path / "scores.csv"
    df.to_csv(csv, index=False)
    r = runner.invoke(app, ["evaluate", str(csv)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "insufficient data" in r.output and "deepfake:roop" in r.output
    js = json.loads((tmp_path / "scores.eval.json").read_text())
    assert js["n"] == 10 and js["tar"]["1e-02"] == INSUFFICIENT
    assert js["eer"] == pytest.approx(baseline_eer(np.r_[np.ones(4), np.zeros(6)].astype(int), df.similarity.to_numpy())[0])
    png = (tmp_path / "scores.roc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # a missing label column is a one-line error naming the file
    r = runner.invoke(app, ["evaluate", str(csv), "--label-column", "nope"])
    assert r.exit_code == 1 and "scores.csv" in r.output and "nope" in r.output


def test_evaluate_by_backend_at_the_genuine_pair_threshold(tmp_path):
    # `train pairs` columns + scores: real pairs set the genuine-pair threshold, fakes are grouped by family
    sim = [0.9, 0.8, 0.7, 0.5, 0.1, 0.2, 0.6, 0.3, 0.95, 0.4, 0.85, 0.65, 0.2]
    kind = ["genuine"] * 4 + ["impostor"] * 4 + ["deepfake"] * 5
    backend = [""] * 8 + ["classic", "classic", "morph", "morph", "morph"]
    df = pd.DataFrame({"split": "test", "kind": kind, "label": [1] * 4 + [0] * 9, "identity": "x", "a": "a", "b": "b", "backend": backend, "similarity": sim})
    csv = tmp_path / "scores.csv"
    df.to_csv(csv, index=False)
    r = runner.invoke(app, ["evaluate", str(csv), "--label-column", "label", "--group-column", "backend"], terminal_width=250)
    assert r.exit_code == 0, r.output
    js = json.loads((tmp_path / "scores.eval.json").read_text())
    real = np.array(kind) != "deepfake"
    g_eer, g_thr = baseline_eer(df.label[real].to_numpy(), df.similarity[real].to_numpy())
    assert js["genuine_eer"] == pytest.approx(g_eer) and js["genuine_threshold"] == pytest.approx(g_thr)
    by = {g["group"]: g for g in js["groups"]}
    assert set(by) == {"genuine", "impostor", "classic", "morph"}  # empty family -> the pair's kind
    sims = np.array(sim)
    assert by["classic"]["attack_acceptance"] == pytest.approx(np.mean(sims[8:10] >= g_thr))
    assert by["morph"]["attack_acceptance"] == pytest.approx(np.mean(sims[10:] >= g_thr))
    assert by["morph"]["acceptance_rate"] == pytest.approx(np.mean(sims[10:] >= js["threshold"]))
    assert "genuine-pair EER" in r.output


def test_evaluate_intervals_resample_whole_identities(tmp_path):
    # 12 people, each with genuine, impostor and deepfake pairs; intervals by --ci-column identity
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        for kind, label, mu in (("genuine", 1, 0.8), ("genuine", 1, 0.75), ("impostor", 0, 0.3), ("deepfake", 0, 0.6)):
            rows.append({"kind": kind, "label": label, "identity": f"p{i}", "backend": "classic" if kind == "deepfake" else "", "similarity": float(np.clip(mu + rng.normal(0, 0.15), -1, 1))})
    df = pd.DataFrame(rows)
    csv = tmp_path / "scores.csv"
    df.to_csv(csv, index=False)
    r = runner.invoke(app, ["evaluate", str(csv), "--label-column", "label", "--group-column", "backend", "--ci-column", "identity", "--bootstrap", "300"], terminal_width=250)
    assert r.exit_code == 0, r.output
    assert "12 identity values resampled 300 times" in r.output
    js = json.loads((tmp_path / "scores.eval.json").read_text())
    assert js["ci"] == {"column": "identity", "clusters": 12, "resamples": 300, "level": 0.95}
    lo, hi = js["genuine_eer_ci"]
    assert lo <= js["genuine_eer"] <= hi and hi > lo  # a real spread, around the point estimate
    classic = {g["group"]: g for g in js["groups"]}["classic"]
    lo, hi = classic["attack_acceptance_ci"]
    assert 0.0 <= lo <= classic["attack_acceptance"] <= hi <= 1.0 and hi > lo
    # the same people, the same scores: the same intervals (seeded)
    runner.invoke(app, ["evaluate", str(csv), "--label-column", "label", "--group-column", "backend", "--ci-column", "identity", "--bootstrap", "300", "--out-dir", str(tmp_path / "again")])
    assert json.loads((tmp_path / "again" / "scores.eval.json").read_text())["genuine_eer_ci"] == js["genuine_eer_ci"]
    # bad input: a column that is not there, one identity only, no resamples: one-line errors naming the file
    r = runner.invoke(app, ["evaluate", str(csv), "--label-column", "label", "--ci-column", "person"])
    assert r.exit_code == 1 and "scores.csv" in r.output and "person" in r.output
    df.assign(identity="same").to_csv(tmp_path / "one.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "one.csv"), "--label-column", "label", "--ci-column", "identity"])
    assert r.exit_code == 1 and "one.csv" in r.output and "at least 2" in r.output
    r = runner.invoke(app, ["evaluate", str(csv), "--label-column", "label", "--ci-column", "identity", "--bootstrap", "0"])
    assert r.exit_code == 1 and "--bootstrap" in r.output
