"""train stage: the pair recipe (50/25/25, identity-disjoint split, deterministic) and the loss."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fakeproof.data import TrainingDataset
from fakeproof.metrics import compute_eer
from fakeproof.train.losses.adaptive_margin import AdaptiveMarginLoss
from fakeproof.train.pairs import build_pairs, read_pairs_csv, split_identities, write_pairs_csv
from fakeproof.metrics import pair_metrics


def _layout(root: Path, reals: dict[str, int], fakes: dict[str, int]) -> Path:
    """A training layout of empty image files (pairs only look at keys and labels)."""
    meta = {}
    for ident, n in reals.items():
        d = root / "images" / ident
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            (d / f"{k}.jpg").write_bytes(b"x")
            meta[f"{ident}/{k}.jpg"] = 0
        for k in range(fakes.get(ident, 0)):
            (d / f"f{k}.jpg").write_bytes(b"x")
            meta[f"{ident}/f{k}.jpg"] = 1
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def generated(tmp_path):
    # 20 identities with 5 real photos (C(5,2) = 10 genuine pairs each) and 4 deepfakes, 2 without fakes
    reals = {f"id{i:02d}": 5 for i in range(20)}
    fakes = {f"id{i:02d}": 4 for i in range(18)}
    return TrainingDataset.load(_layout(tmp_path, reals, fakes))


def test_pairs_follow_the_recipe_and_split_by_identity(generated):
    pairs, summary = build_pairs(generated, seed=3, val_fraction=0.25)
    by_ident: dict[str, Counter] = {}
    for p in pairs:
        by_ident.setdefault(p.identity, Counter())[p.kind] += 1
    for ident, c in by_ident.items():
        assert c["genuine"] == 10
        assert c["impostor"] == 5
        assert c["deepfake"] == (5 if ident < "id18" else 0)
    # identities with fakes: exactly 50 / 25 / 25
    with_fakes = [p for p in pairs if p.identity < "id18"]
    kinds = Counter(p.kind for p in with_fakes)
    assert kinds["genuine"] / len(with_fakes) == 0.5
    assert kinds["impostor"] / len(with_fakes) == 0.25 and kinds["deepfake"] / len(with_fakes) == 0.25
    assert summary.without_fakes == ["id18", "id19"]
    # labels and contents of each kind
    key_ident = lambda k: k.split("/")[0]  # noqa: E731
    for p in pairs:
        assert p.label == (1 if p.kind == "genuine" else 0)
        assert key_ident(p.a) == p.identity and "/f" not in p.a  # the anchor is a real photo of the identity
        if p.kind == "genuine":
            assert key_ident(p.b) == p.identity and "/f" not in p.b and p.a != p.b
        elif p.kind == "impostor":
            assert key_ident(p.b) != p.identity and "/f" not in p.b
        else:
            assert key_ident(p.b) == p.identity and "/f" in p.b
    # identity-disjoint split: no identity (anchor or partner) on both sides
    side = {}
    for p in pairs:
        for k in (p.a, p.b):
            assert side.setdefault(key_ident(k), p.split) == p.split, f"{key_ident(k)} in both splits"
    assert summary.identities == {"train": 15, "val": 5}
    assert len({p for p in pairs}) == len(pairs), "no duplicate pairs"


def test_pairs_are_deterministic_under_a_seed(generated, tmp_path):
    a, _ = build_pairs(generated, seed=7)
    b, _ = build_pairs(generated, seed=7)
    c, _ = build_pairs(generated, seed=8)
    assert a == b
    assert a != c
    path = write_pairs_csv(a, tmp_path / "p.csv")
    assert read_pairs_csv(path) == a


def test_test_split_is_held_apart_from_train_and_val(generated, tmp_path):
    pairs, summary = build_pairs(generated, seed=1, val_fraction=0.25, test_fraction=0.25)
    assert summary.identities == {"train": 11, "val": 4, "test": 5}
    side = {}
    for p in pairs:
        for k in (p.a, p.b):
            assert side.setdefault(k.split("/")[0], p.split) == p.split
    assert [r[0] for r in summary.rows()] == ["train", "val", "test"]
    assert read_pairs_csv(write_pairs_csv(pairs, tmp_path / "p.csv")) == pairs
    # without a test split the train/val pairs are exactly the default ones
    assert build_pairs(generated, seed=1, val_fraction=0.25)[0] == build_pairs(generated, seed=1, val_fraction=0.25, test_fraction=0.0)[0]


def test_cap_per_identity(generated):
    pairs, _ = build_pairs(generated, seed=0, max_pairs_per_identity=8)
    c = Counter((p.identity, p.kind) for p in pairs)
    assert c[("id00", "genuine")] == 4 and c[("id00", "impostor")] == 2 and c[("id00", "deepfake")] == 2


def test_split_keeps_two_identities_on_each_side():
    train, val = split_identities([f"i{k}" for k in range(5)], 0.1, seed=0)
    assert len(val) == 2 and len(train) == 3 and not set(train) & set(val)


def test_adaptive_margin_loss_matches_a_hand_computation():
    s, mb, alpha = 16.0, 0.35, 0.1
    loss = AdaptiveMarginLoss(s, mb, alpha)
    cos = torch.tensor([0.8, 0.2, 0.5, -0.1])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    expected = []
    for c, t in zip(cos.tolist(), y.tolist()):
        m = mb + alpha * (1 - c)
        z = s * (c - m * t)
        p = 1 / (1 + math.exp(-z))
        expected.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
    got = loss(cos, y, reduction="none")
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)
    assert math.isclose(float(loss(cos, y)), sum(expected) / 4, rel_tol=1e-5)
    # gradient: a genuine pair is pulled up, a negative pushed down
    c = cos.clone().requires_grad_(True)
    loss(c, y).backward()
    assert c.grad[0] < 0 and c.grad[1] < 0 and c.grad[2] > 0 and c.grad[3] > 0
    assert torch.allclose(F.binary_cross_entropy_with_logits(loss.logits(cos, y), y), loss(cos, y))


def test_pair_metrics_error_rates_at_the_eer_threshold():
    cos = [0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.75, 0.3]
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    kinds = ["genuine"] * 4 + ["impostor", "impostor", "deepfake", "deepfake"]
    m = pair_metrics(cos, labels, kinds)
    ref = compute_eer(labels, cos)  # the one EER definition (Kryptonite baseline, sklearn roc_curve)
    assert m["eer"] == ref.eer and m["threshold"] == ref.threshold
    thr = ref.threshold
    assert m["error_real_deepfake"] == pytest.approx(sum(c >= thr for c in (0.75, 0.3)) / 2)
    assert m["error_real_another_real"] == pytest.approx(sum(c >= thr for c in (0.1, 0.2)) / 2)
    assert m["accuracy"] == pytest.approx(sum((c >= thr) == (y == 1) for c, y in zip(cos, labels)) / 8)
    assert m["genuine_eer"] == 0.0  # genuine 0.6..0.9 vs impostor 0.1, 0.2: separable
    g = compute_eer(labels[:6], cos[:6]).threshold
    assert m["genuine_threshold"] == g and g > 0.2
    assert m["attack_acceptance"] == pytest.approx(sum(c >= g for c in (0.75, 0.3)) / 2)
    assert 0 < m["attack_acceptance"] <= 1  # the 0.75 deepfake passes a genuine-only threshold


def test_pairs_cli_and_clear_errors(generated, tmp_path):
    from typer.testing import CliRunner

    from fakeproof.train.cli import app

    out = tmp_path / "pairs.csv"
    r = CliRunner().invoke(app, ["pairs", str(generated.root), "--out", str(out), "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "identities have no deepfakes" in r.output
    assert read_pairs_csv(out) == build_pairs(generated, seed=1)[0]
    missing = tmp_path / "nowhere"
    r = CliRunner().invoke(app, ["run", str(missing), "--out", str(tmp_path / "run"), "--max-steps", "1"])
    assert r.exit_code == 1 and "meta.json: file not found" in r.output.replace("\n", "")
    r = CliRunner().invoke(app, ["run", str(generated.root), "--out", str(tmp_path / "run2"), "--resume"])
    assert r.exit_code == 1 and "nothing to resume" in r.output.replace("\n", "")


def test_run_config_file_and_command_line_override(generated, tmp_path):
    """--config FILE sets TrainConfig fields, options given on the command line win, and the
    resolved config is what RUN_DIR/run.json records (written before any model work)."""
    import json

    from typer.testing import CliRunner

    from fakeproof.train.cli import app

    cfg = tmp_path / "train.json"
    cfg.write_text(json.dumps({"model": "no_such_encoder", "lr": 0.125, "batch_size": 2, "max_steps": 1}))
    r = CliRunner().invoke(app, ["run", str(generated.root), "--out", str(tmp_path / "run"), "--config", str(cfg), "--batch-size", "4"])
    assert r.exit_code == 1 and "unknown encoder 'no_such_encoder'" in r.output
    saved = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert saved["lr"] == 0.125 and saved["batch_size"] == 4 and saved["max_steps"] == 1 and saved["model"] == "no_such_encoder"
    r = CliRunner().invoke(app, ["run", str(generated.root), "--out", str(tmp_path / "run2"), "--config", str(cfg), "--model", "also_missing"])
    assert r.exit_code == 1 and "unknown encoder 'also_missing'" in r.output
    cfg.write_text(json.dumps({"lr": 0.1, "learning_rate": 3}))
    r = CliRunner().invoke(app, ["run", str(generated.root), "--out", str(tmp_path / "run3"), "--config", str(cfg)])
    assert r.exit_code == 1 and "unknown field(s) learning_rate" in r.output and str(cfg) in r.output.replace("\n", "")


def test_hard_fakes_repeats_the_deepfake_pairs_the_encoder_finds_most_similar():
    from fakeproof.train.data import CropStore, PairTable
    from fakeproof.train.hard_fakes import oversample_hard_fakes
    from fakeproof.metrics import KINDS

    # crop r is a 1x1 "photo" whose pixel is the embedding direction the fake encoder returns
    vecs = np.array([[1, 0, 0], [1, 0, 0], [0.9, 0.4, 0], [0.2, 1, 0], [0.99, 0.1, 0], [0, 1, 0]], np.float32)
    store = CropStore(crops=(vecs[:, None, None, :] * 100).astype(np.uint8), index={}, ok=np.ones(6, bool), errors={})
    df, gen = KINDS.index("deepfake"), KINDS.index("genuine")
    table = PairTable(a=np.array([0, 0, 0, 0, 1]), b=np.array([2, 3, 4, 5, 0]), label=np.array([0, 0, 0, 0, 1], np.float32), kind=np.array([df, df, df, df, gen], np.int8))

    def embed(crops):
        e = crops.reshape(len(crops), -1).astype(np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    out, n = oversample_hard_fakes(table, store, embed, share=0.5)
    assert n == 2 and len(out) == 7
    assert sorted(out.b[5:].tolist()) == [2, 4]  # the two fakes closest to their real photo (cos 0.91, 0.995)
    assert (out.kind[5:] == df).all() and (out.label[5:] == 0).all()
    same, n0 = oversample_hard_fakes(table, store, embed, share=0.0)
    assert n0 == 0 and same is table
