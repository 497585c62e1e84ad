"""fakeproof.detect_fakes and benchmarks/defence_lofo.py: corpus checks, crops, gate, the protocol end to end
on faces cut from a photo an installed package ships (real MTCNN, real dlib ResNet, real training)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakeproof.detect_fakes.corpus import (
    footage_unit,
    CorpusError,
    read_images_csv,
    read_training_layout,
)
from fakeproof.detect_fakes.crops import degrade
from fakeproof.detect_fakes.gate import choose_tau, gated, realness, worst_case_rate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def _write_csv(path, rows, header=("path", "label", "family", "group", "identity_or_video")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_corpus_errors_name_the_file(tmp_path):
    with pytest.raises(CorpusError, match="images.csv: missing"):
        read_images_csv(tmp_path)
    _write_csv(tmp_path / "images.csv", [["a.jpg", "real"]], header=("path", "label"))
    with pytest.raises(CorpusError, match=r"images.csv: missing column\(s\) family"):
        read_images_csv(tmp_path)
    _write_csv(tmp_path / "images.csv", [["a.jpg", "maybe", "x", "g", "i"]])
    with pytest.raises(CorpusError, match="line 2: label 'maybe'"):
        read_images_csv(tmp_path)
    _write_csv(tmp_path / "images.csv", [["a.jpg", "real", "x", "g", "i"]])
    with pytest.raises(CorpusError, match="line 2: image a.jpg not found"):
        read_images_csv(tmp_path)
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(CorpusError, match="needs both real and fake"):
        read_images_csv(tmp_path)
    _write_csv(tmp_path / "images.csv", [["a.jpg", "real", "x", "g", "v1"], ["a.jpg", "1", "y", "g", "v1;fake:2"]])
    items = read_images_csv(tmp_path)
    assert [i.label for i in items] == [0, 1] and items[1].identity == "v1" and items[1].group == "g"


@pytest.mark.parametrize("fake,real", [
    ("ffpp_target_video:519;source_video:515", "ffpp_video:519"),
    ("celebdf_target:id13;source:id10;clip:0011", "celebdf_id:id13;clip:0011"),
    ("swapped_in:Ava;driver_clip:Ava_2", "driver_clip:Ava_2"),
    ("dfdc_original_video:aapi;fake_video:uywa", "dfdc_original_video:aapi"),
])
def test_a_fake_and_its_source_footage_are_one_unit(fake, real):
    """Splits keep a fake with the real footage it was made on (else a scene is 'fake' in training, 'real' in testing)."""
    assert footage_unit(fake, "a.png") == footage_unit(real, "b.jpg")
    assert footage_unit("celebdf_id:id13;clip:0012", "c.jpg") != footage_unit(real, "b.jpg") or "clip" not in real
    assert footage_unit("unknown (synthetic)", "x/1.png") == "x/1.png" and footage_unit("", "x/2.png") == "x/2.png"


def test_degrade_keeps_size_and_changes_pixels():
    rng = np.random.default_rng(0)
    img = (np.random.default_rng(1).random((90, 70, 3)) * 255).astype(np.uint8)
    out = degrade(img, rng)
    assert out.shape == img.shape and out.dtype == np.uint8 and np.abs(out.astype(int) - img).mean() > 1


def test_degrade_also_shows_every_source_as_a_small_photo():
    """Sizes carry no label: a large photo is sometimes brought down near MIN_SIDE (its fine detail gone),
    whatever its own size."""
    from fakeproof.detect_fakes.crops import MIN_SIDE

    img = (np.random.default_rng(1).random((512, 384, 3)) * 255).astype(np.uint8)
    lap = lambda x: float(np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())  # noqa: E731
    energy = [lap(degrade(img, np.random.default_rng([3, k]))) / lap(img) for k in range(40)]
    assert min(energy) < 0.1 and max(energy) > 0.2  # some copies from near 72 px, some barely shrunk
    small = (np.random.default_rng(2).random((60, 50, 3)) * 255).astype(np.uint8)  # already below MIN_SIDE: only re-encoded
    assert max(small.shape[:2]) < MIN_SIDE and degrade(small, np.random.default_rng(0)).shape == small.shape


def test_gate_math_and_tau_choice():
    r = realness([-1.0, 0.0, 0.5, 2.0], tau=0.0, width=1.0)
    assert np.allclose(r, [1, 1, 0.5, 0])
    assert np.allclose(gated([0.9, 0.9], [1, 0.5], [1, 1]), [0.9, 0.45])
    rng = np.random.default_rng(0)
    sim = np.r_[rng.normal(0.9, 0.03, 400), rng.normal(0.7, 0.05, 400)]
    y = np.r_[np.ones(400), np.zeros(400)].astype(int)
    la, lb = rng.normal(0, 1, 800), rng.normal(0, 1, 800)
    tau, rate, rises = choose_tau(np.r_[la, lb], [(sim, y, la, lb)], budget=0.005)
    assert rises[0] <= 0.005 and rate < 0.3  # flagging 30% of real photos costs far more than half a point
    tau0, rate0, _ = choose_tau(np.r_[la, lb], [(sim, y, la, lb)], budget=-1.0)  # no budget: gate off
    assert tau0 == float("inf") and rate0 == 0.0
    # genuine pairs with a wide margin: a measured EER sees no cost at 5% flagged; the worst-case cap
    # (train run's gate) still flags at most half the budget's share of real photos
    wide = np.r_[rng.normal(0.95, 0.01, 400), rng.normal(0.2, 0.05, 400)]
    assert choose_tau(np.r_[la, lb], [(wide, y, la, lb)], budget=0.005)[1] >= 0.05
    tau_c, rate_c, _ = choose_tau(np.r_[la, lb], [(wide, y, la, lb)], budget=0.005, max_rate=worst_case_rate(0.005))
    assert rate_c == 0.0025 and np.mean(np.r_[la, lb] > tau_c) <= 0.0025


def _textured_crops(n: int, size: int = 192, seed: int = 0) -> np.ndarray:
    """Camera-like stand-ins: smooth random shading plus fine sensor noise, in colour."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = cv2.resize(rng.random((12, 12, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC) * 160 + 40
        out.append(np.clip(base + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8))
    return np.stack(out)


def test_local_features_see_a_blurred_centre():
    """A face whose centre was re-rendered smoother than the photo around it (a blended swap) lowers the
    inner-minus-ring noise and sharpness differences; blurring the WHOLE crop moves them far less."""
    from fakeproof.detect_fakes.features import local_consistency_features, local_feature_names, local_region_masks

    crops = _textured_crops(6)
    inner = local_region_masks(192)[0] > 0
    pasted = crops.copy()
    for c in pasted:
        c[inner] = cv2.GaussianBlur(c, (0, 0), 1.2)[inner]
    everywhere = np.stack([cv2.GaussianBlur(c, (0, 0), 1.2) for c in crops])
    f0, f1, f2 = (local_consistency_features(x) for x in (crops, pasted, everywhere))
    names = local_feature_names()
    assert f0.shape == (6, len(names)) == (6, 8 * (64 + 6)) and f0.dtype == np.float32 and np.isfinite(f0).all()
    for ch in ("lapY", "srmY", "lapCb", "lapCr"):
        j = names.index(f"{ch}:inner-ring")
        assert (f1[:, j] < f0[:, j] - 1.0).all(), ch  # log energy ratio falls by > 1 (the centre lost its noise)
        assert np.abs(f2[:, j] - f0[:, j]).max() < 0.5 * np.abs(f1[:, j] - f0[:, j]).min(), ch  # global: about unchanged
    assert np.allclose(f1[:, names.index("Y:inner-ring")], f0[:, names.index("Y:inner-ring")], atol=0.01)  # blur keeps the colour
    assert np.allclose(local_consistency_features(crops[:0]).shape, (0, len(names)))
    # the 144-px crops of a repacked (GPU) pack: the same columns, the face regions scaled
    assert local_consistency_features(cv2.resize(crops[0], (144, 144))[None]).shape == (1, len(names))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, group_photo):
    """An artefact corpus and a generate layout from the faces of one shipped group photo: reals are the
    faces (and mirrored, re-lit copies); 'fakes' are the same faces with a smoothed, re-coloured centre
    (family A) or a pasted other face (family B) - enough for every code path, not a benchmark."""
    from train_helpers import face_crops, make_artefact_corpus, pasted_fake, smoothed_fake

    root = tmp_path_factory.mktemp("corpora")
    crops = face_crops(group_photo)
    assert len(crops) >= 4
    corpus = make_artefact_corpus(root / "corpus", group_photo, synthetic=("stylegan2_tpdne",))
    save = lambda p, im: cv2.imwrite(str(p), cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2BGR))  # noqa: E731
    ds = root / "ds"
    meta, fakes = {}, []
    for i, c in enumerate(crops):
        (ds / "images" / f"p{i}").mkdir(parents=True)
        for k, im in enumerate([c, np.clip(c[:, ::-1] * 1.1, 0, 255).astype(np.uint8), c]):
            save(ds / "images" / f"p{i}" / f"{k}.jpg", im if k < 2 else smoothed_fake(c) if i % 2 else pasted_fake(c, crops[(i + 1) % len(crops)]))
            meta[f"p{i}/{k}.jpg"] = int(k == 2)
        fakes.append([f"p{i}/2.jpg", f"p{i}", "selfblend" if i % 2 else "classic"])
    (ds / "meta.json").write_text(json.dumps(meta))
    _write_csv(ds / "fakes.csv", fakes, header=("key", "identity", "backend"))
    return corpus, ds


def test_training_layout_reads_backends(corpora):
    _, ds = corpora
    items = read_training_layout(ds)
    assert {i.family for i in items if i.label} <= {"classic", "selfblend"} and {i.family for i in items if not i.label} == {"real_celeba"}


def test_lofo_fast_mode_end_to_end(corpora, tmp_path):
    import defence_lofo as bench

    from fakeproof.detect_fakes.pack import build_pack, load_pack

    corpus, ds = corpora
    pack_path = tmp_path / "p.npz"
    build_pack(pack_path, corpus=corpus, offline=ds, size=96)
    p = load_pack(pack_path)
    assert p.ok.all() and p.crops([0]).shape == (1, 96, 96, 3) and set(p.pair_kind) == {"genuine", "impostor", "attack"}
    small = tmp_path / "small.npz"
    assert bench.main(["--pack", str(pack_path), "--repack", str(small), "--repack-to", "80,80"]) == 0
    assert load_pack(small).crops([0]).shape == (1, 80, 80, 3)
    out = tmp_path / "res.json"
    # the GPU machine's way to the dlib weights: a folder holding the converted .safetensors (no dlib package)
    from fakeproof.engine.paths import cache_home

    weights = cache_home() / "weights"
    assert (weights / "dlib_face_recognition_resnet_model_v1.safetensors").exists()  # converted when the pack was built
    from fakeproof.engine.encoders.facenet import CACHE_NAME, converted_state_dict

    converted_state_dict()  # FaceNet's graph converted into the same folder (once per test home)
    assert (weights / CACHE_NAME).exists()
    dets = ("spectrum", "dlib", "facenet", "cnn", "dlib_ft", "local", "stack")
    assert bench.main(["--pack", str(pack_path), "--fast", "--crop-size", "80", "--cnn-size", "64", "--out", str(out), "--dlib-weights", str(weights),
                       "--facenet-weights", str(weights), "--workers", "2", "--detectors", ",".join(dets)]) == 0
    md = bench.markdown(json.loads(out.read_text()))
    assert "| **mean held-out** |" in md and "| spectrum | dlib | facenet | cnn | dlib_ft | local | stack |" in md
    res = json.loads(out.read_text())
    # facenet: 4 taps (256, 256, 896, 1792 channels), mean and std each, on the crops resized to 160 px
    (fn_feats,) = tmp_path.glob("feat_*.facenet80.npy")
    assert np.load(fn_feats).shape == (len(p.crops_jpeg), 2 * (256 + 256 + 896 + 1792))
    (local_feats,) = tmp_path.glob("feat_*.local96.npy")  # the stored 96-px crops, not --crop-size's 80
    assert np.load(local_feats).shape == (len(p.crops_jpeg), 8 * (64 + 6))
    assert set(res["auc_pairs"]) == {f"{a} - {b}" for a in dets for b in dets if a != b}
    lo, hi = res["auc_pairs"]["facenet - spectrum"][1:]
    assert -1 <= lo <= hi <= 1 and np.isclose(res["auc_pairs"]["facenet - dlib"][0], -res["auc_pairs"]["dlib - facenet"][0])
    assert set(res["families"]) == {"stylegan2_tpdne", "inswapper_128", "classic", "selfblend"}
    for f in res["families"]:
        for d in dets:
            auc, lo, hi = res["auc"][f][d]
            assert 0 <= lo <= hi <= 1 and 0 <= auc <= 1
    assert res["auc_seen"] and set(res["auc_seen"]) <= set(res["families"]) and all(0 <= v["cnn"][0] <= 1 for v in res["auc_seen"].values())
    best = res["best"]
    assert set(res["acceptance"][best]) >= {"classic", "selfblend", "stylegan2_tpdne"}
    for a in res["acceptance"][best].values():
        assert 0 <= a["gated"][0] <= 1


def test_lofo_refuses_an_unknown_detector(capsys):
    import defence_lofo as bench

    with pytest.raises(SystemExit):
        bench.main(["--pack", "x.npz", "--detectors", "spectrum,facenett"])
    assert "unknown facenett" in capsys.readouterr().err


def test_train_run_checks_artefact_corpus_first(tmp_path, corpora):
    """`train run --artefact-corpus DIR` refuses a bad corpus in one line naming the file, before any work."""
    from typer.testing import CliRunner

    from fakeproof.cli import app

    _, ds = corpora
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "images.csv").write_text("path,label\nx.jpg,real\n")
    r = CliRunner().invoke(app, ["train", "run", str(ds), "--out", str(tmp_path / "run"), "--max-steps", "1", "--artefact-corpus", str(bad)])
    assert r.exit_code == 1, r.output
    line = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "images.csv: missing column(s) family" in line[0]
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_stock_comparison_says_when_training_accepts_more():
    from fakeproof.train.families import stock_comparison

    stock = {"attack_acceptance:classic": 0.5, "attack_acceptance:morph": 0.7, "attack_acceptance": 0.6, "genuine_eer": 0.05}
    out = stock_comparison(stock, {"attack_acceptance_by_family": {"classic": 0.6, "morph": 0.4}})
    assert out["worse_than_stock"] == ["classic"] and out["stock_attack_acceptance_by_family"] == {"classic": 0.5, "morph": 0.7}
    assert stock_comparison(None, {}) == {}
