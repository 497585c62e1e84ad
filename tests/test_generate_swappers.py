"""roop and ghost adapters on tiny stand-in ONNX models with the real input/output signatures."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fakeproof.engine import load_rgb
from fakeproof.generate.backends.ghost import GhostBackend
from fakeproof.generate.backends.roop import RoopBackend, read_emap
from fakeproof.generate.faces import shared_finder
from fakeproof.generate.runner import generate_deepfakes


def _save(graph, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def make_recogniser(path: Path, seed: int = 1) -> None:
    """ArcFace-like: 'input.1' [1,3,112,112] -> 'embedding' [1,512] (pooled 8x8 colour grid x W)."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(192, 512)).astype(np.float32), "W")
    shape = numpy_helper.from_array(np.array([1, 192], np.int64), "shape")
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["embedding"]),
    ]
    g = helper.make_graph(
        nodes, "arcface_standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 512])],
        [w, shape],
    )
    _save(g, path)


def make_swapper(path: Path, size: int, with_emap: bool, seed: int = 2) -> np.ndarray | None:
    """inswapper/ghost-like: 'target' [1,3,S,S] + 'source' [1,512] -> 'output' [1,3,S,S].

    output = target * 0.5 + tanh(source . v) * 0.25 (the identity visibly changes the face);
    with_emap: a 512x512 'emap' as the LAST initializer, as in inswapper_128.onnx."""
    rng = np.random.default_rng(seed)
    v = numpy_helper.from_array(rng.normal(size=(512, 3)).astype(np.float32) * 0.1, "V")
    shape = numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "shape")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    quarter = numpy_helper.from_array(np.array(0.25, np.float32), "quarter")
    nodes = [
        helper.make_node("MatMul", ["source", "V"], ["c"]),
        helper.make_node("Tanh", ["c"], ["t"]),
        helper.make_node("Reshape", ["t", "shape"], ["t4"]),
        helper.make_node("Mul", ["t4", "quarter"], ["shift"]),
        helper.make_node("Mul", ["target", "half"], ["base"]),
        helper.make_node("Add", ["base", "shift"], ["output"]),
    ]
    inits = [v, shape, half, quarter]
    emap = None
    if with_emap:
        emap = rng.normal(size=(512, 512)).astype(np.float32) / np.sqrt(512)
        inits.append(numpy_helper.from_array(emap, "emap"))
    g = helper.make_graph(
        nodes, "swapper_standin",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, size, size]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])],
        inits,
    )
    _save(g, path)
    return emap


def make_converter(path: Path) -> None:
    """FaceFusion-style ArcFace converter: 'input' [N,512] -> 'output' [N,512]."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array((np.eye(512) + rng.normal(size=(512, 512)) * 0.01).astype(np.float32), "W")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["input", "W"], ["output"])], "converter_standin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 512])],
        [w],
    )
    _save(g, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, np.ndarray]:
    md = tmp_path_factory.mktemp("models")
    make_recogniser(md / "buffalo_l" / "w600k_r50.onnx")
    emap = make_swapper(md / "inswapper_128.onnx", 128, with_emap=True)
    make_swapper(md / "ghost_2_256.onnx", 256, with_emap=False)
    make_converter(md / "crossface_ghost.onnx")
    return md, emap


@pytest.fixture(scope="module")
def sample_root(sample_dataset) -> Path:
    """conftest's shared sample dataset (read-only; the runner test copies it)."""
    return sample_dataset


@pytest.fixture(scope="module")
def photos(sample_root) -> tuple[np.ndarray, np.ndarray]:
    imgs = sorted((sample_root / "images").glob("*/0.jpg"))
    return load_rgb(imgs[0]).rgb, load_rgb(imgs[1]).rgb


def _outside_face(target: np.ndarray) -> np.ndarray:
    face = shared_finder().main_face(target)
    x1, y1, x2, y2 = face.bbox
    w = (x2 - x1) * 0.6
    m = np.ones(target.shape[:2], bool)
    m[max(0, int(y1 - w)) : int(y2 + w), max(0, int(x1 - w)) : int(x2 + w)] = False
    return m


@pytest.mark.parametrize("cls", [RoopBackend, GhostBackend])
def test_swap_shapes_determinism_and_pasteback(cls, models, photos):
    md, _ = models
    src, tgt = photos
    b = cls()
    b.load(md, "cpu")
    a1 = b.make(src, tgt, seed=5)
    a2 = b.make(src, tgt, seed=5)
    assert a1.shape == tgt.shape and a1.dtype == np.uint8
    assert np.array_equal(a1, a2)
    diff = np.abs(a1.astype(int) - tgt.astype(int)).sum(2)
    assert diff.max() > 40  # the face region was replaced
    far = _outside_face(tgt)
    assert far.sum() > 1000
    assert diff[far].max() <= 3  # paste-back leaves the rest of the photo (all but the mask tail) untouched
    # the identity (source) changes the result
    b3 = b.make(tgt, tgt, seed=5)
    assert not np.array_equal(a1, b3)


def test_roop_uses_emap_and_normalised_latent(models, photos):
    md, emap = models
    assert np.allclose(read_emap(md / "inswapper_128.onnx"), emap)
    b = RoopBackend()
    b.load(md, "cpu")
    src, _ = photos
    face = shared_finder().main_face(src)
    lat = b.source_condition(src, face.landmarks)
    e = b.recogniser.embed_face(src, face.landmarks)
    expect = (e / np.linalg.norm(e)) @ emap
    assert lat.shape == (1, 512)
    assert np.allclose(lat[0], expect / np.linalg.norm(expect), atol=1e-5)


def test_missing_weights_named(tmp_path):
    with pytest.raises(Exception) as ei:
        RoopBackend().load(tmp_path, "cpu")
    assert "inswapper_128.onnx" in str(ei.value) and "w600k_r50.onnx" in str(ei.value)


def test_swappers_write_fakes_with_provenance(models, sample_root, tmp_path):
    md, _ = models
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    rep = generate_deepfakes(root, ["roop", "ghost"], per_identity=2, models_dir=md, seed=1, progress=False)
    assert rep.failed == 0 and rep.made == 2 * len(rep.per_identity)
    rows = list(csv.DictReader((root / "fakes.csv").open()))
    assert {r["backend"] for r in rows} == {"roop", "ghost"}
    for r in rows:
        assert (root / "images" / r["key"]).exists()
        assert r["source_key"].split("/")[0] == r["identity"] != r["target_key"].split("/")[0]
        assert "w600k_r50.onnx:" in r["weights"]
        fake = load_rgb(root / "images" / r["key"]).rgb
        assert fake.shape == load_rgb(root / "images" / r["target_key"]).rgb.shape
