"""The default pair loss: the seed's adaptive-margin BCE.

Adaptive margin (per pair, ``y`` = 1 for real+same person, 0 otherwise)::

    m_d   = m_b + alpha * (1 - cos)          # a harder (lower-cos) positive gets a bigger margin
    logit = s * (cos - m_d * y)
    loss  = BCEWithLogits(logit, y)

A genuine pair is only "confident" once ``cos > (m_b + alpha) / (1 + alpha)`` (0.41 with the
defaults), a negative pair (impostor or deepfake) once ``cos < 0``. ``s`` sets how sharply the
sigmoid saturates: with ``s = 16`` a pair 0.3 past its boundary has probability 0.99 and stops
contributing much gradient. The seed does not state ``s``; 16 is our documented default (CosFace-
style heads use 30-64 for softmax over thousands of classes, which is far too peaky for a binary
decision). The margin is part of the target, not of the gradient path: ``m_d`` is computed from
``cos.detach()``.
"""
from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F

from ...cli_options import Opt
from . import LOSSES


@LOSSES.register("adaptive_margin")
class AdaptiveMarginLoss(torch.nn.Module):
    """``loss(cos, y)``: mean BCE-with-logits of ``s * (cos - (m_b + alpha*(1-cos)) * y)``."""

    def __init__(
        self,
        scale: Annotated[float, Opt("s in logit = s (cos - m_d y)", min=0.0, lo_open=True)] = 16.0,
        margin_base: Annotated[float, Opt("m_b in m_d = m_b + alpha (1 - cos)", min=0.0, max=2.0)] = 0.35,
        margin_alpha: Annotated[float, Opt("alpha in m_d = m_b + alpha (1 - cos)", min=0.0, max=2.0)] = 0.1,
    ):
        super().__init__()
        self.scale, self.margin_base, self.alpha = float(scale), float(margin_base), float(margin_alpha)

    def logits(self, cos: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.to(cos.dtype)
        margin = self.margin_base + self.alpha * (1.0 - cos.detach())
        return self.scale * (cos - margin * y)

    def forward(self, cos: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.logits(cos, y), y.to(cos.dtype), reduction=reduction)
