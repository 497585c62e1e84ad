"""Genuine and impostor pairs of REAL photos from ../shared/data, shared by the accuracy benchmarks.

In celeba-mini (CelebA layout) and five-celebrities (training layout) every pair of photos of the
same identity is a genuine pair and as many seeded random pairs of photos of different identities
(same dataset) are impostor pairs. ``group`` is ``<dataset>:genuine`` / ``<dataset>:impostor``.
"""
from __future__ import annotations

import random
from itertools import combinations

import pandas as pd

from _common import SHARED_DATA

from fakeproof.data import CelebA, TrainingDataset


def identity_photos() -> dict[str, dict[str, list[str]]]:
    """``{dataset: {identity: [photo path, ...]}}`` of the real photos present under ../shared/data."""
    sets: dict[str, dict[str, list[str]]] = {}
    five = SHARED_DATA / "five-celebrities"
    if five.exists():
        ds = TrainingDataset.load(five)
        sets["five-celebrities"] = {i: [str(it.path) for it in items if not it.is_deepfake] for i, items in ds.by_identity().items()}
    celeba = SHARED_DATA / "celeba-mini"
    if celeba.exists():
        cb = CelebA.load(celeba)
        sets["celeba-mini"] = {i: [str(cb.image_dir / f) for f in files] for i, files in cb.identities.items()}
    return sets


def build_pairs(seed: int = 0, max_per_dataset: int | None = None) -> pd.DataFrame:
    """Columns path_a, path_b, expected_accept (1 genuine / 0 impostor), group."""
    rng = random.Random(seed)
    rows = []
    for name, ids in identity_photos().items():
        genuine = [(a, b) for files in ids.values() for a, b in combinations(files, 2)]
        if max_per_dataset is not None and len(genuine) > max_per_dataset:
            genuine = rng.sample(genuine, max_per_dataset)
        people = [i for i in ids if ids[i]]
        impostor = set()
        while len(impostor) < len(genuine):
            p, q = rng.sample(people, 2)
            impostor.add((rng.choice(ids[p]), rng.choice(ids[q])))
        rows += [{"path_a": a, "path_b": b, "expected_accept": 1, "group": f"{name}:genuine"} for a, b in genuine]
        rows += [{"path_a": a, "path_b": b, "expected_accept": 0, "group": f"{name}:impostor"} for a, b in sorted(impostor)]
    return pd.DataFrame(rows)
