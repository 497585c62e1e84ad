"""EER of an encoder on real photos, through the same commands a user runs:
``infer score-pairs`` then ``infer evaluate``.

    .venv/bin/python benchmarks/infer_eer.py [--model facenet] [--out /tmp/fakeproof-infer-eer]

Pairs from ../shared/data (skips cleanly where it is absent): in celeba-mini (CelebA layout) and in
five-celebrities (training layout) every pair of photos of the same identity is a genuine pair and
as many random pairs of photos of different identities (same dataset) are impostor pairs.
Groups ``<dataset>:genuine`` / ``<dataset>:impostor`` show the acceptance per dataset.
"""
from __future__ import annotations

import argparse
import random
from itertools import combinations
from pathlib import Path

from _common import SHARED_DATA, shared_or_skip

import pandas as pd

from fakeproof.data import CelebA, TrainingDataset
from fakeproof.infer.cli import app


def build_pairs(seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    sets: dict[str, dict[str, list[str]]] = {}
    five = SHARED_DATA / "five-celebrities"
    if five.exists():
        ds = TrainingDataset.load(five)
        sets["five-celebrities"] = {i: [str(it.path) for it in items if not it.is_deepfake] for i, items in ds.by_identity().items()}
    celeba = SHARED_DATA / "celeba-mini"
    if celeba.exists():
        cb = CelebA.load(celeba)
        sets["celeba-mini"] = {i: [str(cb.image_dir / f) for f in files] for i, files in cb.identities.items()}
    for name, ids in sets.items():
        genuine = [(a, b) for files in ids.values() for a, b in combinations(files, 2)]
        people = [i for i in ids if ids[i]]
        impostor = set()
        while len(impostor) < len(genuine):
            p, q = rng.sample(people, 2)
            impostor.add((rng.choice(ids[p]), rng.choice(ids[q])))
        rows += [{"path_a": a, "path_b": b, "expected_accept": 1, "group": f"{name}:genuine"} for a, b in genuine]
        rows += [{"path_a": a, "path_b": b, "expected_accept": 0, "group": f"{name}:impostor"} for a, b in sorted(impostor)]
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="facenet")
    ap.add_argument("--runtime", default="torch")
    ap.add_argument("--out", type=Path, default=Path("/tmp/fakeproof-infer-eer"))
    args = ap.parse_args()
    shared_or_skip("five-celebrities")
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = build_pairs()
    pairs_csv = args.out / "pairs.csv"
    pairs.to_csv(pairs_csv, index=False)
    print(f"{len(pairs)} pairs ({int(pairs.expected_accept.sum())} genuine) over {len(set(pairs.path_a) | set(pairs.path_b))} photos -> {pairs_csv}")
    scores = args.out / f"scores-{Path(args.model).name}-{args.runtime}.csv"
    app(["score-pairs", str(pairs_csv), "--root", "/", "--out", str(scores), "--model", args.model, "--runtime", args.runtime], standalone_mode=False)
    app(["evaluate", str(scores)], standalone_mode=False)
    for name in ("five-celebrities", "celeba-mini"):
        sub = pd.read_csv(scores)
        sub = sub[sub.group.str.startswith(name)]
        if len(sub):
            part = args.out / f"{scores.stem}-{name}.csv"
            sub.to_csv(part, index=False)
            app(["evaluate", str(part)], standalone_mode=False)


if __name__ == "__main__":
    main()
