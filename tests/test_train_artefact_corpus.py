"""`train run --artefact-corpus DIR`: the corpus trains the guard's head, the gate is set under the
0.5-point EER budget, the closing check compares stock / trained / trained+guard on a held-out
family, and `--model RUN` follows the recommendation it writes (decision.json)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import package_image
from fakeproof.cli import app
from fakeproof.train.closing import Scored, add_check, closing_check, more_deepfakes_lines
from fakeproof.metrics import KIND_CODE
from train_helpers import add_deepfakes, make_artefact_corpus


@pytest.fixture(scope="module")
def ds_and_corpus(tmp_path_factory):
    from fakeproof.sample_data import make_sample_dataset

    root = tmp_path_factory.mktemp("corpus_run")
    ds = make_sample_dataset(root / "ds", photos_per_identity=3, seed=0, size=192)
    add_deepfakes(ds, per_identity=2)
    return ds, make_artefact_corpus(root / "corpus", package_image("t1.jpg"))


@pytest.mark.slow
def test_train_run_uses_the_corpus_and_closes_with_a_decision(ds_and_corpus, tmp_path):
    from fakeproof.engine import resolve_model
    from fakeproof.engine.encoders.guard import GuardedEncoder

    ds, corpus = ds_and_corpus
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "run", str(ds), "--out", str(run), "--artefact-corpus", str(corpus), "--max-steps", "3", "--val-every", "3",
                                 "--batch-size", "4", "--head-batch", "8", "--tune", "head", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "check_pairs" not in json.loads((run / "summary.json").read_text())["closing"]
    # a finished run checked again on real pairs of many people: --resume with nothing left to train re-runs the closing check only
    check = _check_pairs_csv(ds, tmp_path / "check")
    weights = (run / "checkpoints" / "best" / "model.safetensors").read_bytes()
    r = CliRunner().invoke(app, ["train", "run", str(ds), "--out", str(run), "--resume", "--max-steps", "3", "--check-pairs", str(check), "--no-progress"])
    assert (run / "checkpoints" / "best" / "model.safetensors").read_bytes() == weights
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "corpus family inswapper_128 (7 fakes) is held out of training (automatic" in out  # the family the dataset lacks, said at the start
    assert "corpus:stylegan2_tpdne" in out and "corpus:inswapper_128" not in out  # the head learns from the corpus, not the held-out family
    assert "closing check: stock vs trained" in out and "held-out family inswapper_128" in out and "recommended:" in out
    run_cfg = json.loads((run / "run.json").read_text())["config"]
    assert run_cfg["artefact_head"] is True  # implied by --artefact-corpus
    assert (run / "corpus" / "crops.npy").exists()  # the corpus chips, built once
    s = json.loads((run / "summary.json").read_text())["closing"]
    assert set(s["models"]) == {"stock", "trained", "trained+guard"} and s["holdout_family"] == "inswapper_128"
    assert s["pairs"]["heldout_fakes"] == 7 and s["n_boot"] == 1000
    for m in s["models"].values():
        for k in ("genuine_eer", "val_attack", "heldout_attack"):
            lo, hi = m[k]["ci"]
            assert lo <= m[k]["value"] + 1e-9 and m[k]["value"] <= hi + 1e-9
    # --tune head: the encoder did not move, so stock and trained score every real pair alike
    assert s["models"]["trained"]["genuine_eer"]["value"] == s["models"]["stock"]["genuine_eer"]["value"]
    # --check-pairs: every model also measured on the real pairs of many people (here 27 + 27 of the sample people)
    assert s["check_pairs"]["pairs"] == 54 and s["check_pairs"]["genuine"] == 27 and "genuine-pair EER (--check-pairs), 54 pairs" in out
    assert s["models"]["trained"]["check_eer"]["value"] == s["models"]["stock"]["check_eer"]["value"]
    assert s["vs_stock"]["trained"]["check_eer"]["diff"] == 0.0 and "check_eer" in s["models"]["trained+guard"]
    best = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert 0 <= best["gate"]["flag_rate"] <= 0.0025 and best["gate"]["eer_rise"] <= 0.005 + 1e-12  # under the 0.5-point budget, at most 0.25% flagged
    decision = json.loads((run / "decision.json").read_text())
    assert decision["recommended"] == s["recommended"] in ("stock", "trained", "trained+guard") and decision["stock_model"] == "auto"

    # --model RUN follows the decision; RUN/checkpoints/best forces the trained checkpoint
    for rec, guard_on in (("stock", False), ("trained", False), ("trained+guard", True)):
        (run / "decision.json").write_text(json.dumps({**decision, "recommended": rec, "guard": guard_on}))
        m = resolve_model(str(run))
        if rec == "stock":
            assert not isinstance(m.encoder, GuardedEncoder) and m.architecture == "dlib_resnet" and m.kind == "registry"
        else:
            assert isinstance(m.encoder, GuardedEncoder) and m.encoder.calibrated == guard_on
    forced = resolve_model(str(run / "checkpoints" / "best"))
    assert isinstance(forced.encoder, GuardedEncoder) and forced.encoder.calibrated
    # an infer command as a user types it: `--model RUN` says on stderr that it loads the stock encoder
    (run / "decision.json").write_text(json.dumps({**decision, "recommended": "stock", "guard": False}))
    ident = sorted(p for p in (ds / "images").iterdir())[0]
    r = CliRunner().invoke(app, ["infer", "compare", str(ident / "0.jpg"), str(ident / "1.jpg"), "--model", str(run), "--runtime", "torch", "--device", "cpu",
                                 "--out", str(tmp_path / "c.png")])
    said = r.output + (getattr(r, "stderr", "") if getattr(r, "stderr_bytes", None) is not None else "")
    assert r.exit_code == 0, said
    assert "the stock encoder auto" in " ".join(said.split()) and "dlib_resnet" in said


def test_bad_corpus_fails_in_one_line_before_any_work(ds_and_corpus, tmp_path):
    import shutil

    ds, corpus = ds_and_corpus
    bad = tmp_path / "bad"
    shutil.copytree(corpus, bad)
    rows = (bad / "images.csv").read_text().splitlines()
    (bad / rows[3].split(",")[0]).write_bytes(b"not an image at all")  # line 4 of images.csv
    cases = [
        (["--artefact-corpus", str(bad)], f"{bad / 'images.csv'}: line 4: "),
        (["--artefact-corpus", str(corpus), "--holdout-family", "nosuch"], "--holdout-family nosuch: no fakes of that family"),
    ]
    (tmp_path / "nocol").mkdir()
    (tmp_path / "nocol" / "images.csv").write_text("path,label\nx.jpg,real\n")
    cases.append((["--artefact-corpus", str(tmp_path / "nocol")], "images.csv: missing column(s) family"))
    for extra, msg in cases:
        run = tmp_path / "run"
        r = CliRunner().invoke(app, ["train", "run", str(ds), "--out", str(run), "--max-steps", "1", *extra])
        assert r.exit_code != 0, r.output
        errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and msg in " ".join(r.output.split()), r.output
        assert "unreadable image" in r.output or "line 4" not in msg
        assert not run.exists()  # refused before the run folder was made


def _check_pairs_csv(ds, out):
    """A --check-pairs CSV beside copies of the dataset's real photos: every same-person pair and as many
    pairs of different people (paths relative to the CSV's folder, people = the photos' folders)."""
    import itertools
    import shutil

    shutil.copytree(ds / "images", out / "images")
    people = sorted(p.name for p in (out / "images").iterdir())
    photos = {p: sorted(f"images/{p}/{f.name}" for f in (out / "images" / p).glob("[0-9].jpg")) for p in people}
    rows = [(a, b, 1) for p in people for a, b in itertools.combinations(photos[p], 2)]
    rows += [(photos[p][k % 3], photos[q][(k + 1) % 3], 0) for k, (p, q) in enumerate(itertools.islice(itertools.cycle(zip(people, people[1:] + people[:1])), len(rows)))]
    (out / "pairs.csv").write_text("path_a,path_b,expected_accept\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows))
    return out / "pairs.csv"


def test_check_pairs_file_is_checked_before_any_work(ds_and_corpus, tmp_path):
    from fakeproof.train.check_pairs import CheckPairsError, read_check_pairs

    ds, _ = ds_and_corpus
    good = _check_pairs_csv(ds, tmp_path / "check")
    pairs = read_check_pairs(good)
    assert len(pairs) == 54 and pairs.label.sum() == 27 and len(pairs.paths) == 27 and pairs.person[0].startswith("images/")
    lines = good.read_text().splitlines()
    cases = {
        "nocol.csv": ("path_a,path_b\nx,y\n", "no column 'expected_accept'"),
        "badlabel.csv": ("\n".join([lines[0], lines[1].rsplit(",", 1)[0] + ",yes", *lines[2:]]), "line 2: expected_accept 'yes' is not 0/1"),
        "missing.csv": ("\n".join([lines[0], "images/nobody/0.jpg," + lines[1].split(",", 1)[1], *lines[2:]]), "line 2: path_a 'images/nobody/0.jpg': no such file"),
        "escape.csv": ("\n".join([lines[0], "../" + lines[1], *lines[2:]]), "leaves the CSV's folder"),
        "few.csv": ("\n".join(lines[:11]), "10 genuine and 0 impostor pairs; needs 20 of each"),
    }
    for name, (text, msg) in cases.items():
        (tmp_path / "check" / name).write_text(text)
        with pytest.raises(CheckPairsError, match=None) as e:
            read_check_pairs(tmp_path / "check" / name)
        assert msg in str(e.value) and str(tmp_path / "check" / name) in str(e.value)
    # on the command line: one line naming the file, before the run folder exists
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "run", str(ds), "--out", str(run), "--max-steps", "1", "--check-pairs", str(tmp_path / "check" / "few.csv")])
    assert r.exit_code != 0 and [ln for ln in r.output.splitlines() if ln.startswith("error:")] and not run.exists(), r.output
    assert "needs 20 of each" in " ".join(r.output.split())


def test_check_pairs_catch_an_eer_rise_the_validation_split_cannot_see():
    """Seen on the issue's run: 150 steps left the validation genuine-pair EER at 1.0% (12 people) while
    celeba-pairs (6,000 pairs, 3,674 people) went from 4.27% to 7.03%. With --check-pairs the rise counts."""
    from fakeproof.train.closing import add_check

    vs = {"trained": {"genuine_eer": {"diff": 0.0, "ci": [-0.01, 0.03]}, "val_attack": {"diff": -0.2, "ci": [-0.3, -0.1]},
                      "heldout_attack": {"diff": 0.0, "ci": [0.0, 0.0]}}}
    res = {"models": {"stock": {}, "trained": {}}, "vs_stock": vs}
    from fakeproof.train.closing import recommend

    assert recommend(res, 0.005)["recommended"] == "trained"  # the validation split alone sees nothing
    check = {"source": "pairs.csv", "pairs": 6000, "left_out": 3, "genuine": 3000,
             "models": {"stock": {"value": 0.0460, "ci": [0.04, 0.05]}, "trained": {"value": 0.0703, "ci": [0.06, 0.08]}},
             "vs_stock": {"trained": {"diff": 0.0243, "ci": [0.018, 0.031]}}}
    res = add_check(res, check, 0.005)
    assert res["recommended"] == "stock" and "genuine-pair EER on --check-pairs +2.43 pt" in res["reasons"][-1]
    assert res["check_pairs"]["pairs"] == 6000 and res["models"]["trained"]["check_eer"]["value"] == 0.0703


def _pairs(n_id=40, seed=0):
    """Synthetic validation pairs: per identity 3 genuine, 3 impostor, 2 deepfake pairs."""
    g = np.random.default_rng(seed)
    kinds, ident = [], []
    for i in range(n_id):
        kinds += [KIND_CODE["genuine"]] * 3 + [KIND_CODE["impostor"]] * 3 + [KIND_CODE["deepfake"]] * 2
        ident += [f"id{i}"] * 8
    kinds = np.array(kinds, np.int8)
    label = (kinds == KIND_CODE["genuine"]).astype(np.float32)
    n = len(kinds)
    ia, ib = np.arange(n), np.arange(n, 2 * n)
    return g, kinds, label, np.array(ident, dtype=object), ia, ib


def _emb(cos: np.ndarray) -> np.ndarray:
    """Unit vectors whose pairs (i, n + i) have exactly cosine ``cos[i]``."""
    n = len(cos)
    a = np.zeros((n, 2))
    a[:, 0] = 1
    b = np.stack([cos, np.sqrt(1 - cos**2)], 1)
    return np.concatenate([a, b])


def test_closing_check_recommends_stock_when_training_accepts_more_deepfakes():
    g, kinds, label, ident, ia, ib = _pairs()
    base = np.where(kinds == KIND_CODE["genuine"], 0.8, np.where(kinds == KIND_CODE["impostor"], 0.2, 0.5)) + g.normal(0, 0.05, len(kinds))
    worse = base.copy()
    worse[kinds == KIND_CODE["deepfake"]] += 0.4  # the trained encoder now likes the fakes
    units = np.array([f"v{i // 3}" for i in range(60)], dtype=object)
    res = closing_check({"stock": Scored(_emb(np.clip(base, -1, 1)), ia, ib), "trained": Scored(_emb(np.clip(worse, -1, 1)), ia, ib)}, kinds, label, ident, units, n_boot=200)
    assert res["recommended"] == "stock" and "worse than stock" in res["reasons"][-1]
    assert res["vs_stock"]["trained"]["val_attack"]["ci"][0] > 0
    assert any("trained model accepts MORE deepfakes than stock" in ln and "beyond noise" in ln for ln in more_deepfakes_lines(res, "fam"))


def test_closing_check_turns_the_guard_on_only_when_it_beats_stock():
    g, kinds, label, ident, ia, ib = _pairs(seed=1)
    cos = np.where(kinds == KIND_CODE["genuine"], 0.8, np.where(kinds == KIND_CODE["impostor"], 0.2, 0.75)) + g.normal(0, 0.05, len(kinds))
    E = _emb(np.clip(cos, -1, 1))
    n = len(kinds)
    logits = np.full(2 * n, -3.0)
    logits[ib[kinds == KIND_CODE["deepfake"]]] = 3.0  # the head flags the dataset's fakes
    units = np.array([f"v{i // 3}" for i in range(60)], dtype=object)
    flagged, missed = np.full(60, 3.0), np.full(60, -3.0)
    checked = {"source": "c.csv", "pairs": 6000, "left_out": 0, "genuine": 3000, "models": {k: {"value": 0.04, "ci": [0.03, 0.05]} for k in ("stock", "trained", "trained+guard")},
               "vs_stock": {k: {"diff": 0.001, "ci": [-0.002, 0.004]} for k in ("trained", "trained+guard")}}
    for hl, expect in ((flagged, "trained+guard"), (missed, None)):
        models = {"stock": Scored(E, ia, ib), "trained": Scored(E, ia, ib), "trained+guard": Scored(E, ia, ib, logits, 0.0, hl)}
        res = closing_check(models, kinds, label, ident, units, n_boot=200)
        # not checked on real pairs of many people: the guard stays off whatever validation says
        assert res["recommended"] == "stock" and not res["guard"] and "--check-pairs CSV" in res["reasons"][0]
        res = add_check(res, checked, 0.005)
        assert res["models"]["trained+guard"]["genuine_eer"]["value"] == res["models"]["stock"]["genuine_eer"]["value"]
        if expect:
            assert res["recommended"] == "trained+guard" and res["guard"] and res["models"]["trained+guard"]["heldout_attack"]["value"] == 0
        else:  # flags the dataset's fakes but not the held-out family: still beats stock on the validation fakes
            assert res["models"]["trained+guard"]["heldout_attack"]["value"] > 0.9
            assert res["recommended"] == "trained+guard"
    models = {"stock": Scored(E, ia, ib), "trained": Scored(E, ia, ib), "trained+guard": Scored(E, ia, ib, np.full(2 * n, -3.0), 0.0, missed)}
    res = add_check(closing_check(models, kinds, label, ident, units, n_boot=200), checked, 0.005)
    # a guard that flags nothing is off; the trained encoder IS stock here, so it is not better: stock is kept
    assert res["recommended"] == "stock" and not res["guard"] and "switched off" in res["reasons"][0] and "stock is kept" in res["reasons"][-1]


def test_a_guard_blind_to_the_held_out_family_stays_off():
    """Flagging photos at random lowers the acceptance of a perfect impersonation too: without a head
    AUC above 0.5 beyond noise on the held-out family, the guard is not turned on."""
    from fakeproof.train.closing import recommend

    vs = {"trained": {k: {"diff": 0.0, "ci": [-0.01, 0.01]} for k in ("genuine_eer", "val_attack", "heldout_attack")},
          "trained+guard": {"genuine_eer": {"diff": 0.0, "ci": [-0.01, 0.02]}, "val_attack": {"diff": -0.06, "ci": [-0.2, 0.0]},
                            "heldout_attack": {"diff": -0.025, "ci": [-0.06, -0.001]}, "check_eer": {"diff": 0.002, "ci": [-0.001, 0.005]}}}
    assert recommend({"vs_stock": vs}, 0.005)["recommended"] == "trained+guard"
    blind = recommend({"vs_stock": vs}, 0.005, {"value": 0.508, "ci": [0.46, 0.558]})
    assert blind["recommended"] == "stock" and not blind["guard"] and "at random" in blind["reasons"][0]
    seeing = recommend({"vs_stock": vs}, 0.005, {"value": 0.8, "ci": [0.7, 0.9]})
    assert seeing["recommended"] == "trained+guard" and seeing["guard"]


def test_an_eer_rise_beyond_the_budget_is_not_excused_by_a_wide_interval():
    """Seen in a 20-minute `train run` on celeba-mini: genuine-pair EER 1.0% -> 6.2% on 96 impostor
    pairs, the paired interval [0.0, +10.4] pt touching 0; the trained encoder accepted fewer of the
    dataset's fakes beyond noise, and its held-out 'perfect impersonation' acceptance fell from 100% to
    93% only because its EER threshold rejects more genuine pairs. It must not be recommended."""
    from fakeproof.train.closing import recommend

    vs = {"trained": {"genuine_eer": {"diff": 0.052, "ci": [0.0, 0.104]}, "val_attack": {"diff": -0.167, "ci": [-0.24, -0.094]},
                      "heldout_attack": {"diff": -0.067, "ci": [-0.117, -0.022]}}}
    res = recommend({"vs_stock": vs}, 0.005)
    assert res["recommended"] == "stock" and "genuine-pair EER +5.20 pt" in res["reasons"][-1]
    # within the budget and better on the dataset's fakes beyond noise: trained
    vs["trained"]["genuine_eer"] = {"diff": 0.004, "ci": [-0.01, 0.02]}
    assert recommend({"vs_stock": vs}, 0.005)["recommended"] == "trained"
    # the held-out stand-ins alone (an encoder's 1 - EER) never make an unguarded encoder "better"
    vs["trained"]["val_attack"] = {"diff": -0.02, "ci": [-0.08, 0.03]}
    assert recommend({"vs_stock": vs}, 0.005)["recommended"] == "stock"
