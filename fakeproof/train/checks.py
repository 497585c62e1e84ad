"""What a training run needs before any model work: options in range, two identities, a negative pair.

With one identity every pair is genuine: the loss has nothing to push apart, validation has no
impostors and the EER is undefined, so the run would "train" without learning anything useful.
"""
from __future__ import annotations

from ..data import TrainingDataset
from ..engine.encoders.dlib_resnet import BLOCKS as DLIB_BLOCKS

# TrainConfig field -> (lowest, highest, lowest excluded): `train run` refuses values outside
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "val_fraction": (0.0, 0.9, False),
    "max_pairs_per_identity": (1, None, False),
    "batch_size": (1, None, False),
    "accum_steps": (1, None, False),
    "lr": (0.0, None, True),
    "weight_decay": (0.0, None, False),
    "l2sp": (0.0, None, False),
    "scale": (0.0, None, True),
    "margin_base": (0.0, 2.0, False),
    "margin_alpha": (0.0, 2.0, False),
    "plateau_factor": (0.0, 1.0, True),
    "plateau_patience": (0, None, False),
    "plateau_threshold": (0.0, None, False),
    "val_every": (1, None, False),
    "max_steps": (1, None, False),
    "max_minutes": (0.0, None, True),
    "epochs": (0.0, None, True),
    "freeze_blocks": (0, None, False),
    "val_batch_size": (1, None, False),
    "hard_fakes": (0.0, 1.0, False),
    "head_blocks": (1, len(DLIB_BLOCKS), False),
    "head_lr": (0.0, None, True),
    "head_batch": (2, None, False),
    "head_selfblend": (0.0, 1.0, False),
    "gate_eer_budget": (0.0, 0.5, False),
}


def too_few_identities(ds: TrainingDataset) -> str | None:
    """Why ``ds`` cannot give training pairs (None when it can)."""
    reals: dict[str, int] = {}
    for it in ds.items:
        if not it.is_deepfake:
            reals[it.identity] = reals.get(it.identity, 0) + 1
    usable = [i for i, n in reals.items() if n >= 2]
    if len(reals) < 2:
        return f"training needs at least 2 identities with real photos, found {len(reals)} ({', '.join(sorted(reals)) or 'none'})"
    if not usable:
        return "training needs identities with at least 2 real photos (for genuine pairs); none has"
    return None


def untrainable(pairs) -> str | None:
    """Why these pairs cannot train an encoder (None when they can)."""
    train = [p for p in pairs if p.split == "train"]
    if not train:
        return "no training pairs"
    if not any(p.label == 0 for p in train):
        return "no negative (impostor or deepfake) training pair: training needs at least one, from a second identity or a deepfake"
    if not any(p.label == 1 for p in train):
        return "no genuine training pair: training needs an identity with at least 2 real photos"
    return None
