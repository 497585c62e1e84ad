"""SCRFDDetector (``--detector scrfd:DIR``) on a stand-in SCRFD graph with det_10g.onnx's signature.

input.1 [1, 3, ?, ?] -> 9 outputs in insightface's order: scores (N, 1) for strides 8/16/32, then
bbox distances (N, 4), then keypoint distances (N, 10), N = (H/s) * (W/s) * 2 anchors, all in
stride units. The outputs are constants for a 640x640 input (the detector's det_size) with ONE
anchor decoding to a known face; that anchor's score is sigmoid(10 * (mean R - mean B)) of the
normalised input, so a red photo has a face and the same photo with R and B swapped has none
(the network must see RGB, as insightface's models do)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fakeproof.engine import get_detector

SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2
# the face in a 320x240 photo (the detector letterboxes it to 640x480: det scale 2)
BOX = np.array([100.0, 60.0, 200.0, 190.0], np.float32)
KPS = np.array([[130, 105], [170, 105], [150, 130], [135, 160], [165, 160]], np.float32)
STRIDE, GX, GY, ANCHOR = 16, 19, 16, 0  # the anchor that fires: centre (304, 256) in the 640 input


def make_scrfd(path: Path, with_kps: bool = True) -> None:
    n = {s: (SIZE // s) ** 2 * ANCHORS for s in STRIDES}
    scores = {s: np.zeros((n[s], 1), np.float32) for s in STRIDES}
    boxes = {s: np.zeros((n[s], 4), np.float32) for s in STRIDES}
    kps = {s: np.zeros((n[s], 10), np.float32) for s in STRIDES}
    idx = (GY * (SIZE // STRIDE) + GX) * ANCHORS + ANCHOR
    centre = np.array([GX * STRIDE, GY * STRIDE], np.float32)
    b = BOX * 2
    boxes[STRIDE][idx] = np.r_[centre - b[:2], b[2:] - centre] / STRIDE  # left, top, right, bottom
    kps[STRIDE][idx] = ((KPS * 2 - centre) / STRIDE).ravel()
    mask = np.zeros((n[STRIDE], 1), np.float32)
    mask[idx] = 1
    inits = [
        numpy_helper.from_array(mask, "mask"),
        numpy_helper.from_array(np.array([0], np.int64), "r"),
        numpy_helper.from_array(np.array([2], np.int64), "b"),
        numpy_helper.from_array(np.array(10.0, np.float32), "k"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["chan"], axes=[0, 2, 3], keepdims=0),  # (3,)
        helper.make_node("Gather", ["chan", "r"], ["red"]),
        helper.make_node("Gather", ["chan", "b"], ["blue"]),
        helper.make_node("Sub", ["red", "blue"], ["rb"]),
        helper.make_node("Mul", ["rb", "k"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p"]),
        helper.make_node("Mul", ["mask", "p"], ["fire"]),
    ]
    outputs = []
    groups = [("score", scores, 1), ("bbox", boxes, 4)] + ([("kps", kps, 10)] if with_kps else [])
    for kind, arrays, width in groups:
        for s in STRIDES:
            name = f"{kind}_{s}"
            if kind == "score" and s == STRIDE:
                nodes.append(helper.make_node("Add", ["fire", f"{name}_base"], [name]))
                inits.append(numpy_helper.from_array(arrays[s], f"{name}_base"))
            else:
                nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arrays[s], f"{name}_c")))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n{s}", width]))
    graph = helper.make_graph(nodes, "scrfd_standin", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("buffalo_l")
    make_scrfd(d / "det_10g.onnx")
    return d


def red_photo() -> np.ndarray:
    img = np.zeros((240, 320, 3), np.uint8)
    img[:] = (200, 80, 40)  # RGB
    return img


def test_scrfd_decodes_the_face_box_and_landmarks(pack):
    det = get_detector(f"scrfd:{pack}")
    assert det.name == "scrfd" and det.weights["det"] == pack / "det_10g.onnx"
    faces = det.detect(red_photo())
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.99
    np.testing.assert_allclose(f.bbox, BOX, atol=1.0)
    assert f.landmarks.shape == (5, 2)
    np.testing.assert_allclose(f.landmarks, KPS, atol=1.0)  # ArcFace order, in photo pixels
    assert f.bbox.dtype == np.float32 and f.landmarks.dtype == np.float32


def test_scrfd_sees_rgb(pack):
    det = get_detector(f"scrfd:{pack}")
    assert det.detect(np.ascontiguousarray(red_photo()[..., ::-1])) == []  # blue photo: the anchor does not fire


def test_scrfd_in_the_generate_face_finder(pack):
    from fakeproof.generate.faces import FaceFinder

    big = np.zeros((480, 640, 3), np.uint8)
    big[:] = (200, 80, 40)
    face = FaceFinder(detector=f"scrfd:{pack}", max_side=320).main_face(big)  # detects on a 320x240 copy
    np.testing.assert_allclose(face.bbox, BOX * 2, atol=2.0)
    np.testing.assert_allclose(face.landmarks, KPS * 2, atol=2.0)


def test_scrfd_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no SCRFD detector"):
        get_detector(f"scrfd:{tmp_path}")
    make_scrfd(tmp_path / "scrfd_10g_bnkps.onnx", with_kps=False)
    with pytest.raises(ValueError, match="landmarks"):
        get_detector(f"scrfd:{tmp_path}")
