"""Contracts over every registry (as timm's tests run over ``list_models()``): every registered
encoder, detector, deepfake backend and loss loads from a stand-in made here, does its job, and an
encoder round-trips through the model resolver (registry name -> checkpoint -> ``--model RUN``).

A new registry entry without a stand-in below fails ``test_every_entry_has_a_stand_in``: add one.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fakeproof.engine import DETECTORS, FaceEngine, Face, load_rgb, resolve_model
from fakeproof.engine.encoders import ENCODERS
from fakeproof.generate.registry import BACKENDS
from fakeproof.registry import DuplicateNameError, Registry, UnknownNameError
from fakeproof.train.losses import LOSSES


# -- stand-ins ---------------------------------------------------------------------------------
def _adaface_ckpt(depth: int):
    def build(tmp: Path) -> str:
        from fakeproof.engine.encoders.adaface import IRBackbone

        torch.manual_seed(0)
        net = IRBackbone(depth)
        path = tmp / f"adaface_ir{depth}_random.ckpt"
        torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, path)
        return str(path)

    return build


ENCODER_STANDINS = {  # name -> build(tmp) -> weights for get_encoder (None: the weights ship)
    "facenet": lambda tmp: None,
    "dlib_resnet": lambda tmp: None,
    "adaface_ir18": _adaface_ckpt(18),
    "adaface_ir50": _adaface_ckpt(50),
    "adaface_ir101": _adaface_ckpt(101),
}


def _scrfd_pack(tmp: Path) -> tuple[str, np.ndarray]:
    from test_engine_scrfd import make_scrfd

    make_scrfd(tmp / "pack" / "det_10g.onnx")
    photo = np.zeros((320, 320, 3), np.uint8)
    photo[..., 0] = 220  # the stand-in fires on red
    return f"scrfd:{tmp / 'pack'}", photo


def _mtcnn(tmp: Path) -> tuple[str, np.ndarray]:
    from conftest import package_image

    rgb = load_rgb(package_image("t1.jpg")).rgb  # six people, 1280x886
    return "mtcnn", cv2.resize(rgb, (800, 554), interpolation=cv2.INTER_AREA)  # under the engine's detection size


DETECTOR_STANDINS = {"mtcnn": _mtcnn, "scrfd": _scrfd_pack}  # name -> build(tmp) -> (spec, photo)


def _swapper_models(tmp: Path) -> Path:
    from test_generate_swappers import make_converter, make_recogniser, make_swapper

    make_recogniser(tmp / "buffalo_l" / "w600k_r50.onnx")
    make_swapper(tmp / "inswapper_128.onnx", 128, with_emap=True)
    make_swapper(tmp / "ghost_2_256.onnx", 256, with_emap=False)
    make_converter(tmp / "crossface_ghost.onnx")
    return tmp


def _arc2face_models(tmp: Path) -> Path:
    from test_generate_diffusion import build_arc2face_models

    return build_arc2face_models(tmp)


def _instantid_models(tmp: Path) -> Path:
    from test_generate_instantid import build_instantid_models

    build_instantid_models(tmp)
    return tmp


BACKEND_STANDINS = {  # name -> (build(tmp) -> models dir, constructor kwargs)
    "roop": (_swapper_models, {}),
    "ghost": (_swapper_models, {}),
    "arc2face": (_arc2face_models, {"steps": 2}),
    "instantid": (_instantid_models, {"steps": 2}),
    "classic": (lambda tmp: tmp, {}),
    "selfblend": (lambda tmp: tmp, {}),  # ships with the package (dlib landmarks), like classic
    "morph": (lambda tmp: tmp, {}),
}


def test_every_entry_has_a_stand_in():
    assert set(ENCODERS.names()) == set(ENCODER_STANDINS)
    assert set(DETECTORS.names()) == set(DETECTOR_STANDINS)
    assert set(BACKENDS.names()) == set(BACKEND_STANDINS)
    assert {"adaptive_margin", "contrastive"} <= set(LOSSES.names())  # a loss needs no stand-in: the contract runs it as it is


@pytest.mark.parametrize("name", sorted(LOSSES.names()))
def test_every_loss_option_says_what_it_is(name):
    """Each constructor option of a loss is a `train run` option: it needs a help text and a default."""
    from fakeproof.train.losses import options_of

    for s in options_of(name):
        assert s.opt.help and s.default is not None, f"{name}: option {s.name} needs Annotated[T, Opt(help)] and a default"


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def aligned_face() -> np.ndarray:
    from conftest import package_image

    return load_rgb(package_image("Tom_Hanks_54745.png")).rgb  # a 112x112 ArcFace-aligned crop


# -- the registry helper itself ----------------------------------------------------------------
def test_registry_refuses_duplicates_and_names_the_known_forms():
    r: Registry = Registry("thing")
    r.register("a", 1)
    r.register("b", 2, arg="DIR")
    with pytest.raises(DuplicateNameError, match="'a' is already registered"):
        r.register("a", 3)
    assert r.names() == ["a", "b"] and r.forms() == ["a", "b:DIR"]
    assert r.split("b:/x/y") == ("b", "/x/y") and r.split("a") == ("a", None)
    with pytest.raises(UnknownNameError) as e:
        r.get("c")
    assert str(e.value) == "unknown thing 'c'; known: a, b:DIR"
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)


# -- encoders ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ENCODER_STANDINS))
def test_encoder_embeds_and_round_trips_through_the_resolver(name, tmp_path, aligned_face, one_thread):
    from fakeproof.engine.checkpoint_reader import load_trained_encoder
    from fakeproof.train.checkpoint_writer import encoder_config, save_step

    weights = ENCODER_STANDINS[name](tmp_path)
    m = resolve_model(name, device="cpu", weights=weights)
    assert m.kind == "registry" and m.architecture == name and m.spec.name == name
    h, w = m.spec.input_size
    crops = np.stack([cv2.resize(aligned_face, (w, h)), cv2.resize(aligned_face[:, ::-1], (w, h))])
    e = m.encoder.embed(crops)
    assert e.shape == (2, m.spec.embedding_dim) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # a checkpoint of it, named by its run folder, gives the same network and embeddings
    run = tmp_path / "run"
    save_step(run, m.encoder, {**encoder_config(m.encoder, name, weights, "mtcnn", m.spec.align_margin), "threshold": 0.3}, {"step": 1}, 1)
    back = resolve_model(str(run), device="cpu")
    # its raw threshold is the decision point (0.5) of its similarity scale, carried by its card
    assert back.kind == "checkpoint" and back.architecture == name and back.threshold == 0.5 and back.raw_threshold == pytest.approx(0.3)
    assert back.card is back.encoder.card and back.card.input_size == m.card.input_size
    np.testing.assert_allclose(back.encoder.embed(crops), e, atol=1e-5)
    assert load_trained_encoder(run)[1]["encoder"] == name


def test_onnx_recogniser_through_the_resolver(tmp_path, aligned_face):
    from test_generate_swappers import make_recogniser

    path = tmp_path / "w600k_r50.onnx"
    make_recogniser(path)
    m = resolve_model(f"onnx:{path}", device="cpu")
    assert m.kind == "registry" and m.runtime == "onnx" and m.spec.input_size == (112, 112)
    e = m.encoder.embed(np.stack([aligned_face, aligned_face[:, ::-1]]))
    assert e.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        resolve_model(str(tmp_path / "missing" / "run"))
    with pytest.raises(KeyError, match="unknown encoder 'no_such_encoder'"):
        resolve_model("no_such_encoder")


# -- detectors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(DETECTOR_STANDINS))
def test_detector_finds_a_face_and_plugs_into_the_engine(name, tmp_path, one_thread):
    from fakeproof.engine import get_detector
    from fakeproof.engine.detect import Detector

    spec, photo = DETECTOR_STANDINS[name](tmp_path)
    det = get_detector(spec)
    assert isinstance(det, Detector)
    faces = det.detect(photo)
    assert faces and all(isinstance(f, Face) and f.landmarks.shape == (5, 2) for f in faces)
    # FaceEngine takes the component objects (no cache: the objects' output is the point)
    enc = resolve_model("facenet", device="cpu").encoder
    eng = FaceEngine(enc, det, device="cpu", use_cache=False)
    # the engine looks for large faces first, so it may report fewer than the detector's exhaustive pass
    n = len(eng.detect(photo))
    assert eng.detector is det and 1 <= n <= len(faces)
    by_name = FaceEngine.from_names("facenet", spec, device="cpu", use_cache=False)
    assert by_name.detector_name == spec and len(by_name.detect(photo)) == n


def test_unknown_detector_names_the_known_ones():
    from fakeproof.engine import get_detector

    with pytest.raises(ValueError, match="known: mtcnn, scrfd:DIR"):
        get_detector("retinaface")
    with pytest.raises(ValueError, match="scrfd:DIR"):
        get_detector("scrfd")


# -- deepfake backends -------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BACKEND_STANDINS))
def test_backend_loads_and_generates(name, tmp_path, one_thread):
    from fakeproof.sample_data import make_sample_dataset

    build, kw = BACKEND_STANDINS[name]
    md = build(tmp_path / "models")
    root = make_sample_dataset(tmp_path / "sample", photos_per_identity=1, identities=2)
    src, tgt = (load_rgb(p).rgb for p in sorted((root / "images").glob("*/0.jpg"))[:2])
    b = BACKENDS.get(name)(**kw)
    assert b.name == name and not b.missing(md)
    b.load(md, "cpu")
    out = b.make(src, tgt, seed=1)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.std() > 1


# -- losses ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LOSSES.names()))
def test_loss_rewards_the_right_side(name):
    from fakeproof.train.losses import make_loss

    loss = make_loss(name)
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    good = torch.tensor([0.9, 0.8, -0.1, 0.0], requires_grad=True)
    bad = torch.tensor([0.0, -0.1, 0.8, 0.9])
    lg = loss(good, y)
    assert lg.ndim == 0 and torch.isfinite(lg) and float(lg.detach()) < float(loss(bad, y))
    lg.backward()
    assert good.grad is not None and torch.isfinite(good.grad).all()
