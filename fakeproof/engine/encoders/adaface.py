"""AdaFace IR backbones (IR-18 / IR-50 / IR-101) that load the AdaFace repository's Lightning checkpoints.

The architecture follows ``net.py`` of https://github.com/mk-minchul/AdaFace with the same module
names, so a checkpoint's ``state_dict`` (keys prefixed ``model.``; the ``head.`` margin kernel is
dropped) loads strictly:

- ``input_layer``: Conv3x3(3, 64) -> BN -> PReLU
- ``body``: ``BasicBlockIR`` units; the first unit of every stage has stride 2. A unit is
  ``res_layer`` = BN, Conv3x3, BN, PReLU, Conv3x3(stride), BN plus ``shortcut_layer`` =
  MaxPool2d(1, stride) when the width is kept, else Conv1x1(stride) + BN.
- ``output_layer``: BN2d(512), Dropout(0.4), Flatten, Linear(512*7*7, 512), BN1d(512, affine=False).

Input: 112x112 **BGR**, ``(x/255 - 0.5) / 0.5``. The weights are the user's files (see
:data:`DEFAULT_FILES`); they are loaded with ``torch.load(weights_only=True)`` only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from ...errors import InputError, WeightsNotInstalledError
from ..paths import models_dir as _models_dir
from . import register_encoder
from .base import Encoder, EncoderSpec, WeightFile

UNITS = {18: (2, 2, 2, 2), 50: (3, 4, 14, 3), 101: (3, 13, 30, 3)}
WIDTHS = (64, 128, 256, 512)
DEFAULT_FILES = {
    18: "adaface_ir18_vgg2.ckpt",
    50: "adaface_ir50_ms1mv2.ckpt",
    101: "adaface_ir101_webface12m.ckpt",
}
LICENCE = "MIT (code); weights: see AdaFace repo, research use"
SOURCE = "https://github.com/mk-minchul/AdaFace"
WHERE = (
    "download it from the 'Pretrained Models' table of the AdaFace README "
    "(https://github.com/mk-minchul/AdaFace#pretrained-models, Google Drive links)"
)


class BasicBlockIR(nn.Module):
    """The IR residual unit (pre-activation BN, PReLU between the two 3x3 convolutions)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cin == cout:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRBackbone(nn.Module):
    """AdaFace's ``Backbone(input_size=(112, 112), num_layers, mode='ir')``; returns the raw (N, 512)
    embedding (the AdaFace repo's forward returns it divided by its norm, plus the norm)."""

    def __init__(self, depth: int = 101):
        super().__init__()
        if depth not in UNITS:
            raise ValueError(f"AdaFace IR depth must be one of {sorted(UNITS)}, got {depth}")
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        units, cin = [], 64
        for width, n in zip(WIDTHS, UNITS[depth]):
            units.append(BasicBlockIR(cin, width, 2))
            units += [BasicBlockIR(width, width, 1) for _ in range(n - 1)]
            cin = width
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(0.4),
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, 512),
            nn.BatchNorm1d(512, affine=False),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


def default_weights(depth: int, models_dir=None) -> Path:
    return _models_dir(models_dir) / "adaface" / DEFAULT_FILES[depth]


def load_adaface_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The backbone state dict inside an AdaFace checkpoint: a Lightning ``.ckpt`` (``state_dict`` with
    ``model.``/``head.`` keys), a plain state dict, or a ``.safetensors`` file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - a truncated or damaged file
            raise InputError(f"{path}: damaged or truncated safetensors file ({(str(e).splitlines() or [type(e).__name__])[0][:160]})") from None
    else:
        try:
            # Lightning may store hyper-parameters as an argparse.Namespace: allow that plain class only
            with torch.serialization.safe_globals([argparse.Namespace]):
                ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - reported as one clear line
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(
                f"{path}: cannot be loaded with torch.load(weights_only=True) ({reason}); fakeproof does not "
                "unpickle arbitrary objects - re-save it as {'state_dict': model.state_dict()} or safetensors"
            ) from None
        sd = ck.get("state_dict", ck) if isinstance(ck, dict) else None
        if not isinstance(sd, dict):
            raise InputError(f"{path}: not an AdaFace checkpoint (expected a dict with 'state_dict')")
    if any(k.startswith("model.") for k in sd):
        sd = {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}
    elif sd and all(k.startswith("net.") for k in sd):  # an AdaFaceEncoder state dict (fakeproof train checkpoints)
        sd = {k[len("net."):]: v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if not k.startswith("head.") and isinstance(v, torch.Tensor)}


def _resolve(depth: int, weights=None, models_dir=None) -> Path:
    return Path(weights).expanduser() if weights else default_weights(depth, models_dir)


def adaface_spec(depth: int, models_dir=None, weights=None) -> EncoderSpec:
    path = _resolve(depth, weights, models_dir)
    return EncoderSpec(
        name=f"adaface_ir{depth}",
        input_size=(112, 112),
        color_order="BGR",
        normalisation="(x/255-0.5)/0.5",
        embedding_dim=512,
        licence=LICENCE,
        source=SOURCE,
        weights=(WeightFile(path.name, path, LICENCE, f"{SOURCE}#pretrained-models"),),
        align_margin=0.0,  # AdaFace was trained on tight 112x112 ArcFace-template crops
    )


class AdaFaceEncoder(Encoder):
    """An AdaFace IR backbone as a fakeproof encoder; ``forward`` returns the unnormalised embedding."""

    def __init__(self, depth: int = 101, state_dict: dict[str, torch.Tensor] | None = None,
                 spec: EncoderSpec | None = None, source: str | Path | None = None):
        super().__init__()
        self.spec = spec or adaface_spec(depth)
        self.net = IRBackbone(depth)
        if state_dict is not None:
            own = self.net.state_dict()
            missing = [k for k in own if k not in state_dict]
            unexpected = [k for k in state_dict if k not in own]
            shape = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
            if missing or unexpected or shape:
                raise InputError(
                    f"{source or 'state dict'}: does not fit AdaFace IR-{depth} (missing {len(missing)} keys, "
                    f"e.g. {missing[:3]}; unexpected {len(unexpected)}, e.g. {unexpected[:3]}; "
                    f"{len(shape)} with another shape, e.g. {shape[:3]})"
                )
            self.net.load_state_dict(state_dict, strict=True)

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC (already in BGR order, see ``spec.color_order``) -> float NCHW in [-1, 1]."""
        return ((crops.to(torch.float32) / 255.0 - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_with_norm(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """AdaFace's own output: (L2-normalised embedding, its norm (N, 1)); the norm is the
        feature-norm image-quality proxy AdaFace's margin uses."""
        e = self.net(x)
        norm = torch.norm(e, 2, 1, True)
        return e / norm.clamp_min(1e-12), norm


def _build(depth: int, weights=None, models_dir=None) -> AdaFaceEncoder:
    path = _resolve(depth, weights, models_dir)
    if not path.exists():
        raise WeightsNotInstalledError(
            f"AdaFace IR-{depth} weights not found at {path}: {WHERE} and save it there "
            f"(or pass --weights PATH / --models-dir DIR with adaface/{DEFAULT_FILES[depth]} inside)"
        )
    return AdaFaceEncoder(depth, load_adaface_state_dict(path), adaface_spec(depth, models_dir, weights), path)


def _register(depth: int) -> None:
    name = f"adaface_ir{depth}"

    def spec(models_dir=None, weights=None) -> EncoderSpec:
        return adaface_spec(depth, models_dir, weights)

    def factory(weights=None, models_dir=None) -> AdaFaceEncoder:
        return _build(depth, weights, models_dir)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"AdaFace IR-{depth}; weights default to ``MODELS/adaface/{DEFAULT_FILES[depth]}``."
    register_encoder(name, spec)(factory)


for _depth in (18, 50, 101):
    _register(_depth)
