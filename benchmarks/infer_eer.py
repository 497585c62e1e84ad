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
from pathlib import Path

from _common import shared_or_skip
from _pairs import build_pairs

import pandas as pd

from fakeproof.infer.cli import app


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
