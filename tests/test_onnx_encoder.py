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
