"""infer score-folders (and its old name pairs) / score-pairs / compare with the stock FaceNet encoder on real faces (the sample
dataset made from insightface's photos), plus a non-face photo, a corrupt file and a missing side."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fakeproof.infer.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from fakeproof.sample_data import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("sample"), photos_per_identity=2, seed=1)


def _non_face(path, w=300, h=200):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 128)], -1).astype(np.uint8)
    cv2.imwrite(str(path), img)


@pytest.fixture(scope="module")
def test_dir(sample, tmp_path_factory):
    """Kryptonite test layout: <pair_id>/0.jpg, 1.jpg; ids 0..N so that '10' must sort after '9'."""
    ids = sorted(p.name for p in (sample / "images").iterdir())
    photo = lambda i, k: sample / "images" / ids[i % len(ids)] / f"{k}.jpg"  # noqa: E731
    root = tmp_path_factory.mktemp("kryptonite_test")
    pairs = []
    for i in range(len(ids)):
        pairs.append(("genuine", photo(i, 0), photo(i, 1)))
        pairs.append(("impostor", photo(i, 0), photo(i + 1, 1)))
    kinds = {}
    for n, (kind, a, b) in enumerate(pairs):
        d = root / str(n)
        d.mkdir()
        shutil.copy(a, d / "0.jpg")
        shutil.copy(b, d / "1.jpg")
        kinds[str(n)] = kind
    n = len(pairs)
    (root / str(n)).mkdir()  # a face and a photo without any face
    shutil.copy(photo(0, 0), root / str(n) / "0.jpg")
    _non_face(root / str(n) / "1.jpg")
    kinds[str(n)] = "no_face"
    (root / str(n + 1)).mkdir()  # a corrupt file
    (root / str(n + 1) / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    shutil.copy(photo(1, 0), root / str(n + 1) / "1.jpg")
    kinds[str(n + 1)] = "corrupt"
    (root / str(n + 2)).mkdir()  # a missing side
    shutil.copy(photo(2, 0), root / str(n + 2) / "0.jpg")
    kinds[str(n + 2)] = "missing"
    return root, kinds


def test_pairs_gives_one_finite_similarity_per_folder_in_sorted_order(test_dir, tmp_path):
    root, kinds = test_dir
    out = tmp_path / "submission.csv"
    r = runner.invoke(app, ["score-folders", str(root), "--out", str(out), "--no-progress"], terminal_width=200)
    assert r.exit_code == 0, r.output
    sub = pd.read_csv(out, dtype={"pair_id": str})
    assert list(sub.columns) == ["pair_id", "similarity"]
    assert sub.pair_id.tolist() == [str(i) for i in range(len(kinds))]  # numeric order, none dropped
    assert np.isfinite(sub.similarity).all() and sub.similarity.between(-1, 1).all()
    side = pd.read_csv(tmp_path / "submission.faces.csv", dtype={"pair_id": str}, keep_default_na=False).set_index("pair_id")
    kind = pd.Series(kinds)
    n = len(kinds) - 3
    assert side.loc[str(n), "face_b"] == "whole_image"  # the non-face photo fell back, still scored
    assert side.loc[str(n + 1), "face_a"] == "unreadable" and "0.jpg" in side.loc[str(n + 1), "error"]
    assert side.loc[str(n + 2), "face_b"] == "missing" and "missing 1.jpg" in side.loc[str(n + 2), "error"]
    assert sub.similarity[n + 1] == 0.0 and sub.similarity[n + 2] == 0.0
    sims = sub.set_index("pair_id").similarity
    genuine, impostor = sims[kind[kind == "genuine"].index], sims[kind[kind == "impostor"].index]
    assert (side.loc[kind[kind.isin(["genuine", "impostor"])].index, ["face_a", "face_b"]] == "detected").all().all()
    assert genuine.min() > impostor.max(), (genuine.tolist(), impostor.tolist())  # scale-free: any encoder
    assert "whole_image" in r.output and "unreadable" in r.output


def test_runtime_onnx_gives_the_same_similarities(test_dir, tmp_path):
    root, kinds = test_dir
    outs = {}
    for rt in ("torch", "onnx"):
        out = tmp_path / f"{rt}.csv"
        r = runner.invoke(app, ["pairs", str(root), "--out", str(out), "--runtime", rt, "--no-progress"], terminal_width=200)
        assert r.exit_code == 0, r.output
        outs[rt] = pd.read_csv(out).similarity.to_numpy()
    assert "[onnx]" in r.output
    assert np.abs(outs["torch"] - outs["onnx"]).max() < 1e-4


def test_score_pairs_keeps_every_input_column(sample, tmp_path):
    ids = sorted(p.name for p in (sample / "images").iterdir())
    rows = [
        {"path_a": f"images/{ids[0]}/0.jpg", "path_b": f"images/{ids[0]}/1.jpg", "expected_accept": True, "group": "genuine", "note": 'has, a "comma"'},
        {"path_a": f"images/{ids[0]}/0.jpg", "path_b": f"images/{ids[1]}/0.jpg", "expected_accept": False, "group": "impostor", "note": ""},
        {"path_a": f"images/{ids[1]}/1.jpg", "path_b": "images/nobody/404.jpg", "expected_accept": False, "group": "impostor", "note": "missing file"},
        {"path_a": f"images/{ids[2]}/1.jpg", "path_b": "", "expected_accept": False, "group": "impostor", "note": "empty path"},
    ]
    src = pd.DataFrame(rows)
    src.insert(0, "id", ["007", "008", "009", "010"])  # leading zeros must survive
    pairs_csv = tmp_path / "pairs.csv"
    src.to_csv(pairs_csv, index=False)
    out = tmp_path / "scores.csv"
    r = runner.invoke(app, ["score-pairs", str(pairs_csv), "--root", str(sample), "--out", str(out), "--no-progress"], terminal_width=200)
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    inp = pd.read_csv(pairs_csv, dtype=str, keep_default_na=False)
    # the raw-score column is named after the default encoder's metric (stock dlib: -euclidean distance)
    assert list(got.columns) == list(inp.columns) + ["similarity", "neg_euclidean", "face_a", "face_b", "error"]
    pd.testing.assert_frame_equal(got[inp.columns], inp)
    sim = got.similarity.astype(float)
    assert np.isfinite(sim).all() and sim[0] > sim[1]
    assert got.face_a.tolist()[:2] == ["detected", "detected"]
    assert got.face_b[2] == "unreadable" and "file not found" in got.error[2]
    assert got.face_b[3] == "missing" and sim[2] == 0.0 and sim[3] == 0.0
    # similarity is the calibrated scale of the raw score beside it (monotone: same order)
    from fakeproof.engine.cards import STOCK_CALIBRATIONS

    cos = got.neg_euclidean.astype(float)
    assert (cos[:2] < 0).all() and cos[0] > cos[1]
    assert np.allclose(sim[:2], STOCK_CALIBRATIONS["dlib_resnet"](cos[:2]), atol=2e-5) and (sim[:2] != cos[:2]).all()
    # and it evaluates straight away, on the scale or (--raw) on the raw score
    r = runner.invoke(app, ["evaluate", str(out), "--unscorable", "reject"], terminal_width=200)  # 2 rows could not be scored
    assert r.exit_code == 0, r.output and "EER" in r.output
    r = runner.invoke(app, ["evaluate", str(out), "--raw", "--unscorable", "reject", "--out-dir", str(tmp_path / "raw")], terminal_width=200)
    assert r.exit_code == 0 and "EER" in r.output, r.output
    raw_out = tmp_path / "raw_scores.csv"
    r = runner.invoke(app, ["score-pairs", str(pairs_csv), "--root", str(sample), "--out", str(raw_out), "--no-progress", "--raw"], terminal_width=200)
    assert r.exit_code == 0, r.output
    raw = pd.read_csv(raw_out, keep_default_na=False)
    assert np.allclose(raw.similarity[:2], raw.neg_euclidean[:2]) and np.allclose(raw.neg_euclidean[:2], cos[:2], atol=1e-5)


def test_compare_writes_the_matrix_and_png(sample, tmp_path):
    ids = sorted(p.name for p in (sample / "images").iterdir())
    photos = [sample / "images" / ids[0] / "0.jpg", sample / "images" / ids[0] / "1.jpg", sample / "images" / ids[1] / "0.jpg"]
    out = tmp_path / "cmp.png"
    r = runner.invoke(app, ["compare", *map(str, photos), "--out", str(out)], terminal_width=220)  # the stock EER threshold
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 300 and img.shape[1] > 300
    assert "verdicts" in r.output and "same person" in r.output and "different" in r.output
    assert "[/]" not in r.output and "[green]" not in r.output  # piped: the text, not rich markup
    assert "similarity (threshold 0.500" in r.output  # the calibrated scale, its decision point
    r = runner.invoke(app, ["compare", *map(str, photos), "--out", str(out), "--raw"], terminal_width=220)
    assert r.exit_code == 0 and "-euclidean distance (threshold -0.6" in r.output, r.output  # dlib's raw decision point
    r = runner.invoke(app, ["compare", str(photos[0])])
    assert r.exit_code == 1 and "2 to 10" in r.output


def test_model_from_a_training_checkpoint_carries_its_threshold(tmp_path):
    from fakeproof.engine import get_encoder
    from fakeproof.engine.cards import STOCK_CALIBRATIONS
    from fakeproof.infer.model import load_model
    from fakeproof.train.checkpoint_writer import encoder_config, save_best

    enc = get_encoder("facenet")
    save_best(tmp_path / "run", enc, {**encoder_config(enc, "facenet", None, "mtcnn", enc.spec.align_margin), "threshold": 0.4242})
    m = load_model(str(tmp_path / "run"), device="cpu")
    # an older checkpoint (raw threshold only): its threshold becomes the decision point 0.5 of its scale
    assert m.threshold == 0.5 and m.raw_threshold == pytest.approx(0.4242) and m.threshold_source == "checkpoint calibration"
    x = np.random.default_rng(0).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    assert np.abs(m.encoder.embed(x) - enc.embed(x)).max() < 1e-5
    stock = load_model("facenet", device="cpu")
    assert stock.threshold == 0.5 and stock.threshold_source == "stock calibration"
    assert stock.raw_threshold == pytest.approx(STOCK_CALIBRATIONS["facenet"].raw[2])
    with pytest.raises(FileNotFoundError, match="no such"):
        load_model(str(tmp_path / "nowhere" / "run"))
