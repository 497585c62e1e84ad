"""Model-side training switches: freezing the early blocks, and BatchNorm handling.

"Blocks" are found generically, for any registered encoder: descend through wrappers that hold a
single parametrised child, then list the parametrised children in registration order, expanding
``nn.Sequential``/``nn.ModuleList`` containers into their members (so an IResNet's ``body`` counts
each residual unit and FaceNet's ``repeat_1`` counts each Inception-ResNet block).
"""
from __future__ import annotations

from ..errors import UsageError

import torch
from torch import nn


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def block_list(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(qualified name, module), ...]`` of the model's blocks, input side first."""
    prefix, m = "", model
    while True:
        kids = [(n, c) for n, c in m.named_children() if _has_params(c)]
        if len(kids) == 1 and not isinstance(kids[0][1], (nn.Sequential, nn.ModuleList)) and list(kids[0][1].children()):
            prefix, m = f"{prefix}{kids[0][0]}.", kids[0][1]
            continue
        break
    out: list[tuple[str, nn.Module]] = []
    for n, c in kids:
        if isinstance(c, (nn.Sequential, nn.ModuleList)):
            out += [(f"{prefix}{n}.{n2}", c2) for n2, c2 in c.named_children() if _has_params(c2)]
        else:
            out.append((f"{prefix}{n}", c))
    return out


def freeze_early_blocks(model: nn.Module, n_blocks: int) -> list[str]:
    """Stop gradients to the first ``n_blocks`` blocks; returns their names."""
    if n_blocks <= 0:
        return []
    blocks = block_list(model)
    if n_blocks >= len(blocks):
        raise UsageError(f"--freeze-blocks {n_blocks} would freeze the whole encoder ({len(blocks)} blocks)")
    names = []
    for name, b in blocks[:n_blocks]:
        for p in b.parameters():
            p.requires_grad_(False)
        names.append(name)
    return names


def set_train_mode(model: nn.Module, bn: str = "frozen") -> None:
    """``model.train()``; with ``bn='frozen'`` BatchNorm layers keep their running statistics (eval
    mode) while their affine parameters still learn: the right choice for small fine-tuning batches."""
    model.train()
    if bn == "frozen":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    elif bn != "train":
        raise UsageError(f"unknown BatchNorm mode {bn!r} (frozen | train)")


def trainable_parameters(model: nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


# plus any module with ``is_norm_layer = True`` (dlib's affine layers: a batch norm folded at export)
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)


def tune_only_norm(model: nn.Module) -> int:
    """Leave only the normalisation layers' affine parameters (scale and shift) trainable, in the
    spirit of GenD (fine-tune the norm layers, keep the pretrained features). Returns how many
    parameters still learn."""
    for p in model.parameters():
        p.requires_grad_(False)
    n = 0
    for m in model.modules():
        if isinstance(m, NORM_LAYERS) or getattr(m, "is_norm_layer", False):
            for p in m.parameters(recurse=False):
                p.requires_grad_(True)
                n += p.numel()
    if n == 0:
        raise UsageError("--tune norm: the encoder has no normalisation layer with affine parameters")
    return n
