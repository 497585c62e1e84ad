"""Pair losses on cosine similarity. The default is the seed's adaptive-margin BCE.

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

import torch
import torch.nn.functional as F

from ..registry import Registry

DEFAULT_SCALE = 16.0
DEFAULT_MARGIN_BASE = 0.35
DEFAULT_MARGIN_ALPHA = 0.1


class AdaptiveMarginLoss(torch.nn.Module):
    """``loss(cos, y)``: mean BCE-with-logits of ``s * (cos - (m_b + alpha*(1-cos)) * y)``."""

    def __init__(self, scale: float = DEFAULT_SCALE, margin_base: float = DEFAULT_MARGIN_BASE, alpha: float = DEFAULT_MARGIN_ALPHA):
        super().__init__()
        self.scale, self.margin_base, self.alpha = float(scale), float(margin_base), float(alpha)

    def logits(self, cos: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.to(cos.dtype)
        margin = self.margin_base + self.alpha * (1.0 - cos.detach())
        return self.scale * (cos - margin * y)

    def forward(self, cos: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.logits(cos, y), y.to(cos.dtype), reduction=reduction)


class ContrastiveCosineLoss(torch.nn.Module):
    """Classic contrastive loss on cosine: ``y (1-cos)^2 + (1-y) max(0, cos - margin)^2``."""

    def __init__(self, margin: float = 0.3):
        super().__init__()
        self.margin = float(margin)

    def forward(self, cos: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        y = y.to(cos.dtype)
        per = y * (1 - cos) ** 2 + (1 - y) * torch.clamp(cos - self.margin, min=0) ** 2
        return per.mean() if reduction == "mean" else per


# name -> factory(scale, margin_base, alpha) -> loss(cos, y); ``train run --loss NAME``
LOSSES: Registry = Registry("loss")
LOSSES.register("adaptive_margin", lambda scale, margin_base, alpha: AdaptiveMarginLoss(scale, margin_base, alpha))
LOSSES.register("contrastive", lambda scale, margin_base, alpha: ContrastiveCosineLoss(margin=margin_base))


def make_loss(name: str, scale: float = DEFAULT_SCALE, margin_base: float = DEFAULT_MARGIN_BASE, alpha: float = DEFAULT_MARGIN_ALPHA) -> torch.nn.Module:
    """The registered loss ``name`` (``--margin-base`` is the contrastive loss's margin)."""
    return LOSSES.get(name)(scale, margin_base, alpha)
