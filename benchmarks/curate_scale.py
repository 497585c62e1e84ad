"""curate at Kryptonite scale: the 97,733 keys of ../shared/data/kryptonite-format/meta.json.

The images are not there, so embeddings are stand-ins: one random unit vector per identity plus
per-photo noise (within-identity cosine ~0.6, across ~0), 10% of the real photos swapped to another
identity's cluster, deepfakes a noisier copy of their identity. Measures the graph stage
(``fakeproof.curate.analyse.analyse``: graphs, suggestions, duplicates, merge candidates), the
writing of the curation files, and peak RSS. Target: analysis < 10 s and < 2 GB.

    .venv/bin/python benchmarks/curate_scale.py [--dim 512] [--noise 0.1]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import shared_or_skip

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    meta_path = shared_or_skip("kryptonite-format") / "meta.json"

    from fakeproof.curate.analyse import analyse
    from fakeproof.curate.report import write_similarity, write_tables
    from fakeproof.data import read_meta
    from fakeproof.ui import console, summary_table

    rss0 = rss_mb()
    t0 = time.perf_counter()
    meta = read_meta(meta_path)
    keys = sorted(meta)
    idents = [k.split("/", 1)[0] for k in keys]
    fake = np.array([meta[k] for k in keys], bool)
    t_read = time.perf_counter() - t0

    rng = np.random.default_rng(args.seed)
    names = sorted(set(idents))
    idx = {n: i for i, n in enumerate(names)}
    own = np.array([idx[i] for i in idents])
    centers = rng.standard_normal((len(names), args.dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    src = own.copy()
    reals = np.flatnonzero(~fake)
    bad = rng.choice(reals, int(round(args.noise * len(reals))), replace=False)
    src[bad] = (own[bad] + rng.integers(1, len(names), len(bad))) % len(names)
    # noise level giving within-identity cosine ~0.6 in args.dim dimensions
    sigma = np.where(fake, 1.6, 0.8) / np.sqrt(args.dim)
    emb = centers[src] + rng.standard_normal((len(keys), args.dim), dtype=np.float32) * sigma[:, None].astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    truth = np.zeros(len(keys), bool)
    truth[bad] = True
    rss_before = rss_mb()

    t1 = time.perf_counter()
    a = analyse(keys, idents, fake, emb, args.threshold, progress=False)
    t_an = time.perf_counter() - t1
    rss_an = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        t2 = time.perf_counter()
        write_tables(a, Path(tmp))
        write_similarity(a, Path(tmp))
        t_write = time.perf_counter() - t2
        size_sim = (Path(tmp) / "similarity.npz").stat().st_size / 2**20
    fl = a.flags.flagged.to_numpy() & ~fake
    tp = int((fl & truth).sum())
    prec, rec = tp / max(fl.sum(), 1), tp / max(truth.sum(), 1)

    rows = [
        ("keys / identities / deepfakes", f"{len(keys):,} / {len(names):,} / {int(fake.sum()):,}"),
        ("read meta.json", f"{t_read:.2f} s"),
        ("analysis total (target < 10 s)", f"{t_an:.2f} s  ({t_an / 10:.0%} of target)"),
        *[(f"  {k}", f"{v:.2f} s") for k, v in a.timings.items() if k != "total_s"],
        ("write flags/identities/similarity", f"{t_write:.2f} s (similarity.npz {size_sim:.0f} MiB)"),
        ("peak RSS before analysis", f"{rss_before:.0f} MiB (stand-in embeddings {emb.nbytes / 2**20:.0f} MiB; start {rss0:.0f} MiB)"),
        ("peak RSS after analysis (target < 2048 MiB)", f"{rss_an:.0f} MiB  ({rss_an / 2048:.0%} of target)"),
        ("flagged real photos", f"{int(fl.sum()):,}"),
        (f"precision / recall vs {args.noise:.0%} stand-in noise", f"{prec:.3f} / {rec:.3f}"),
        ("merge candidates", len(a.merges)),
    ]
    console.print(summary_table(f"curate scale: kryptonite-format keys, dim {args.dim}, threshold {args.threshold}", rows, ["measure", "value"]))


if __name__ == "__main__":
    main()
