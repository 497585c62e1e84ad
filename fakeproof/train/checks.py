"""What a training run needs before any model work: two identities, a negative pair (the options'
ranges: :class:`fakeproof.train.config.TrainConfig`).

With one identity every pair is genuine: the loss has nothing to push apart, validation has no
impostors and the EER is undefined, so the run would "train" without learning anything useful.
"""
from __future__ import annotations

from ..data import TrainingDataset

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
