"""``onnx:PATH`` encoders on tiny graphs with insightface's recogniser signature."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from fakeproof.engine.encoders import encoder_spec, get_encoder
from fakeproof.engine.onnx import ArcFaceOnnx


def _tiny_recogniser(path, batch="None", seed=0):
    """input.1 [N, 3, 112, 112] -> Conv -> GlobalAveragePool -> Flatten -> Gemm -> [N, 512]."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 8).astype(np.float32)
    fc = rng.normal(0, 0.2, (512, 8)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, 512).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input.1", "w", "b"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc", "fc_b"], ["683"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [batch, 512])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fc, "fc"), (fc_b, "fc_b"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w, b, fc, fc_b


def _reference(crops, w, b, fc, fc_b):
    x = (torch.from_numpy(crops).float() - 127.5) / 127.5
    c = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), torch.from_numpy(w), torch.from_numpy(b), stride=2, padding=1)
    e = c.mean((2, 3)) @ torch.from_numpy(fc).T + torch.from_numpy(fc_b)
    return torch.nn.functional.normalize(e, dim=1).numpy()


@pytest.fixture
def crops():
    return np.random.default_rng(1).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)


def test_dynamic_batch(tmp_path, crops):
    path = tmp_path / "w600k_tiny.onnx"
    params = _tiny_recogniser(path)
    spec = encoder_spec(f"onnx:{path}")
    assert spec.input_size == (112, 112) and spec.embedding_dim == 512 and spec.color_order == "RGB"
    enc = get_encoder(f"onnx:{path}")
    assert isinstance(enc, ArcFaceOnnx) and enc.fixed_batch is None
    emb = enc.embed(crops, batch_size=2)
    assert emb.shape == (5, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb, _reference(crops, *params), atol=1e-4)
    assert enc.embed(crops[:0]).shape == (0, 512)
    assert enc.fingerprint and enc.fingerprint.startswith("onnx-")


def test_fixed_batch_one_graph(tmp_path, crops):
    path = tmp_path / "fixed.onnx"
    params = _tiny_recogniser(path, batch=1)
    enc = get_encoder(f"onnx:{path}")
    assert enc.fixed_batch == 1
    emb = enc.embed(list(crops), batch_size=4)
    np.testing.assert_allclose(emb, _reference(crops, *params), atol=1e-4)
    raw = enc(enc.to_input(crops[:3]))  # forward on normalised input works too
    assert raw.shape == (3, 512)


def test_rejects_wrong_size_and_missing_file(tmp_path, crops):
    path = tmp_path / "tiny.onnx"
    _tiny_recogniser(path)
    enc = get_encoder(f"onnx:{path}")
    with pytest.raises(ValueError, match="112x112"):
        enc.embed(np.zeros((1, 160, 160, 3), np.uint8))
    with pytest.raises(FileNotFoundError):
        get_encoder(f"onnx:{tmp_path / 'nope.onnx'}")


# -- one wrapper for scoring (engine) and for generation (a generator's identity condition) -----------
def _standin(path, baked: bool, seed=3):
    """The same tiny recogniser twice: ``baked`` subtracts 127.5 and scales by 1/127.5 inside the
    graph (nodes named like neither insightface's ``Sub``/``_minus`` nor ``Mul``/``_mul``, so only
    their op types give them away), otherwise it expects ``(x - 127.5) / 127.5`` input."""
    rng = np.random.default_rng(seed)
    fc = rng.normal(0, 0.2, (512, 3 * 8 * 8)).astype(np.float32)
    nodes, first = [], "input.1"
    inits = [numpy_helper.from_array(fc, "fc"), numpy_helper.from_array(np.array([1, 192], np.int64), "shape")]
    if baked:
        inits += [numpy_helper.from_array(np.array(127.5, np.float32), "mean"), numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale")]
        nodes += [
            helper.make_node("Sub", ["input.1", "mean"], ["centred"], name="preprocess/centre"),
            helper.make_node("Mul", ["centred", "scale"], ["scaled"], name="preprocess/scale"),
        ]
        first = "scaled"
    nodes += [
        helper.make_node("AveragePool", [first], ["pooled"], kernel_shape=[14, 14], strides=[14, 14]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc"], ["embedding"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 512])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return fc


def test_generation_and_scoring_feed_a_recogniser_alike(tmp_path):
    """A graph with its normalisation baked in and the same graph without it must give the same
    embedding on both paths: a wrong "baked in?" decision on either path normalises twice or never."""
    from fakeproof.engine.align import align_face
    from fakeproof.engine.template import template_for
    from fakeproof.generate.backends.base import arcface_recogniser

    rng = np.random.default_rng(5)
    photo = rng.integers(0, 256, (200, 180, 3), dtype=np.uint8)
    landmarks = template_for(112) * 1.2 + np.array([30.0, 25.0])  # a face 1.2x the template, off-centre
    crop = align_face(photo, landmarks, (112, 112), 0.0, "arcface")
    results = {}
    for baked in (False, True):
        path = tmp_path / f"standin_{baked}.onnx"
        fc = _standin(path, baked)
        scorer = get_encoder(f"onnx:{path}")  # what `infer`/`curate` embed with
        maker = arcface_recogniser(path)  # what roop/ghost/arc2face/instantid condition on
        assert (scorer.mean, scorer.std) == (maker.mean, maker.std) == ((0.0, 1.0) if baked else (127.5, 127.5))
        assert ("inside the graph" in scorer.spec.normalisation) is baked
        assert scorer.fingerprint == maker.fingerprint == ArcFaceOnnx(path).fingerprint
        raw = maker.embed_face(photo, landmarks)
        pooled = ((crop.astype(np.float64) - 127.5) / 127.5).reshape(8, 14, 8, 14, 3).mean((1, 3)).transpose(2, 0, 1).reshape(-1)
        np.testing.assert_allclose(raw, fc.astype(np.float64) @ pooled, rtol=1e-4, atol=1e-4)  # raw: not L2-normalised
        scored = scorer.embed(crop[None])[0]
        np.testing.assert_allclose(scored, raw / np.linalg.norm(raw), atol=1e-5)
        results[baked] = raw
    np.testing.assert_allclose(results[True], results[False], rtol=1e-4, atol=1e-4)


def test_one_digest_for_every_onnx_encoder(tmp_path):
    from fakeproof.engine.onnx import onnx_fingerprint
    from fakeproof.hashing import digest_file

    path = tmp_path / "a.onnx"
    _standin(path, baked=False)
    assert onnx_fingerprint(path) == "onnx-" + digest_file(path, "blake2b", 16)
    other = tmp_path / "b.onnx"
    _standin(other, baked=False, seed=4)
    assert onnx_fingerprint(other) != onnx_fingerprint(path)
