"""The torch runner of ONNX graphs (engine/onnx_torch.py): MTCNN's GPU path, checked on the CPU
against ONNX Runtime on the same graphs and a real photo."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fakeproof.engine import load_rgb
from fakeproof.engine.detect import MTCNNDetector
from fakeproof.engine.onnx import session
from fakeproof.engine.onnx_torch import TorchOnnxGraph


@pytest.mark.parametrize("net,shape", [("pnet", (1, 61, 47, 3)), ("rnet", (9, 24, 24, 3)), ("onet", (4, 48, 48, 3))])
def test_mtcnn_graphs_match_onnx_runtime(net, shape):
    path = MTCNNDetector().weights[net]
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    sess = session(path, "cpu")
    want = sess.run(None, {sess.get_inputs()[0].name: x})
    got = TorchOnnxGraph(path).run(None, {sess.get_inputs()[0].name: x})
    assert len(got) == len(want)
    for a, b in zip(want, got):
        assert a.shape == b.shape
        assert np.abs(a - b).max() < 1e-5


def test_torch_runner_detects_the_same_faces(group_photo):
    rgb = load_rgb(group_photo).rgb
    ref = MTCNNDetector(runner="onnxruntime").detect(rgb)
    got = MTCNNDetector(runner="torch").detect(rgb)
    assert len(ref) >= 6 and len(got) == len(ref)
    for a, b in zip(sorted(ref, key=lambda f: f.bbox[0]), sorted(got, key=lambda f: f.bbox[0])):
        assert np.abs(a.landmarks - b.landmarks).max() < 0.05
        assert abs(a.score - b.score) < 1e-4


def test_unsupported_op_and_bad_file_are_refused_by_name(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "g", [x], [y])
    p = tmp_path / "sig.onnx"
    onnx.save(helper.make_model(graph), str(p))
    with pytest.raises(ValueError, match="sig.onnx.*Sigmoid"):
        TorchOnnxGraph(p)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="bad.onnx"):
        TorchOnnxGraph(bad)
    with pytest.raises(ValueError, match="runner"):
        MTCNNDetector(runner="tensorrt")
