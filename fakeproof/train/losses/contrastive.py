"""Classic contrastive loss on cosine: ``y (1-cos)^2 + (1-y) max(0, cos - margin)^2``."""
from __future__ import annotations

from typing import Annotated

import torch

from ...cli_options import Opt
from . import LOSSES


@LOSSES.register("contrastive")
class ContrastiveCosineLoss(torch.nn.Module):
    """Genuine pairs pulled to cosine 1; negative pairs pushed below ``margin_base``."""

    def __init__(self, margin_base: Annotated[float, Opt("cosine a negative pair is pushed below", min=0.0, max=2.0)] = 0.35):
        super().__init__()
        self.margin = float(margin_base)

    def forward(self, cos: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        y = y.to(cos.dtype)
        per = y * (1 - cos) ** 2 + (1 - y) * torch.clamp(cos - self.margin, min=0) ** 2
        return per.mean() if reduction == "mean" else per
