"""A small CNN trained from scratch on high-pass residuals of the detector crop.

The first layer is fixed: a Laplacian and two first-difference filters on each colour channel (9
residual maps), so the network sees noise and blending traces, not the face's colours. Then four
strided 3x3 conv + batch-norm + ReLU stages, mean and max pooling, a linear logit. Small enough to
train in minutes on a CPU at 112 px; trained and scored by :mod:`.training` on CPU or CUDA.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _highpass_kernels() -> torch.Tensor:
    lap = torch.tensor([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=torch.float32) / 4
    dx = torch.tensor([[0, 0, 0], [0, -1, 1], [0, 0, 0]], dtype=torch.float32)
    dy = dx.T.contiguous()
    k = torch.zeros(9, 3, 3, 3)
    for c in range(3):
        for j, f in enumerate((lap, dx, dy)):
            k[c * 3 + j, c] = f
    return k


class ResidualCNN(nn.Module):
    def __init__(self, width: int = 24):
        super().__init__()
        self.register_buffer("highpass", _highpass_kernels())
        chans = [9, width, 2 * width, 4 * width, 4 * width]
        layers = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(2 * chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: uint8-valued RGB NHWC -> (N,) logits of "fake"."""
        x = x.permute(0, 3, 1, 2).float() / 255.0
        r = F.conv2d(x, self.highpass, padding=1) * 8.0
        h = self.body(r)
        return self.fc(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)).squeeze(1)
