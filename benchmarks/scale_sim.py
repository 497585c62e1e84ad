"""Past one machine, simulated here: generate and embed at CelebA / Kryptonite scale over gloo ranks.

1. ``generate deepfakes`` for a plan of N identities x 4 fakes, split over R torchrun ranks
   (:func:`fakeproof.generate.distributed.generate_across_ranks`, the code the CLI runs). The dataset
   has 2 tiny real photos per identity and the backend is a stand-in that returns an 8x8 image, so
   what is measured is fakeproof's own cost: planning (reading meta.json and the journals, the
   plan, the split), the per-fake journal (one fsync per fake), and rank 0's merge of the rank
   journals into fakes.csv + meta.json.
2. Embedding P photos over the same ranks (:func:`fakeproof.distributed.embed.embed_paths_across_ranks`)
   with a stand-in engine (a 512-d unit vector drawn from each path's hash, no image work): the
   gather to rank 0 and the merge, checked equal to the one-process result.

Reported per size: plan time, merge time, peak RSS (rank 0 and the largest other rank), duplicate
keys (must be 0), and the growth from the small to the large size as a ratio (10x more work).

    .venv/bin/python benchmarks/scale_sim.py            # 8 ranks; 1,000 -> 10,000 identities; 10,000 -> 100,000 photos
    .venv/bin/python benchmarks/scale_sim.py --fast     # 2 ranks; 20 -> 200 identities; 500 -> 5,000 photos (a test runs it)

Synthetic data only: nothing is read from ../shared/data, so this never skips.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from _common import REPO

FULL = {"ranks": 8, "identities": (1000, 10000), "photos": (10000, 100000)}
FAST = {"ranks": 2, "identities": (20, 200), "photos": (500, 5000)}
PER_IDENTITY = 4
DIM = 512


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- stand-ins -------------------------------------------------------------------------------------
def standin_backend():
    from fakeproof.generate.backends.base import Backend

    class StandInBackend(Backend):
        """An 8x8 'fake': the mean colours of source and target, jittered by the seed."""

        name = "standin"
        needs_weights = False

        @classmethod
        def weight_files(cls, models_dir):
            return []

        def load(self, models_dir, device="cpu"):
            self.loaded = True

        def make(self, source_rgb, target_rgb, seed):
            rng = np.random.default_rng(seed)
            base = source_rgb.reshape(-1, 3).mean(0) if target_rgb is None else (source_rgb.reshape(-1, 3).mean(0) + target_rgb.reshape(-1, 3).mean(0)) / 2
            self.last_info = {"jpeg_quality": 90}
            return np.clip(base + rng.integers(-20, 20, (8, 8, 3)), 0, 255).astype(np.uint8)

    return StandInBackend


class StandInEngine:
    """What :func:`embed_paths_across_ranks` needs of a FaceEngine, without images or a model."""

    def __init__(self):
        self.spec = SimpleNamespace(name="standin", embedding_dim=DIM)
        self.stats = {"emb_hits": 0, "emb_misses": 0}
        self.seconds = 0.0
        self.finished = 0.0

    def embed_paths(self, paths, progress=True, batch_size=32):
        from fakeproof.engine import EmbedResult, FaceRecord

        t0 = time.perf_counter()
        emb = np.empty((len(paths), DIM), np.float32)
        records = []
        for i, p in enumerate(paths):
            seed = int.from_bytes(hashlib.blake2b(str(p).encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            emb[i] = v / np.linalg.norm(v)
            records.append(FaceRecord(path=str(p), ok=True, n_faces=1))
        self.stats["emb_misses"] += len(paths)
        self.seconds += time.perf_counter() - t0
        self.finished = time.monotonic()  # one clock for every process of this machine
        return EmbedResult(emb, records)


# -- one torchrun run (every rank runs this) -----------------------------------------------------
def worker(args) -> None:
    import torch

    torch.set_num_threads(1)
    from fakeproof.distributed.embed import embed_paths_across_ranks
    from fakeproof.generate.distributed import generate_across_ranks
    from fakeproof.distributed.ranks import torchrun_ranks
    from fakeproof.generate import registry
    from fakeproof.distributed.process_group import barrier, gather_objects

    registry.BACKENDS.register("standin", standin_backend())
    out: dict = {}
    with torchrun_ranks("cpu") as info:
        t0 = time.perf_counter()
        run = generate_across_ranks(args.dataset, ["standin"], PER_IDENTITY, device="cpu", progress=False)
        gen_s = time.perf_counter() - t0
        rss_gen = rss_mb()
        paths = [f"photos/{i // 20:05d}/{i % 20}.jpg" for i in range(args.photos)]
        eng = StandInEngine()
        barrier(info)
        t0 = time.perf_counter()
        res = embed_paths_across_ranks(eng, paths, progress=False)
        emb_s, done = time.perf_counter() - t0, time.monotonic()
        rss = gather_objects(info, (rss_gen, rss_mb(), eng.finished))
        if info.is_main:
            ref = StandInEngine().embed_paths(paths)
            got = [r.path for r in res.records]
            out = {
                "ranks": info.world_size,
                "generate_s": gen_s,
                "plan_s": max(m["plan_s"] or 0.0 for m in run.ranks),
                "made": run.total.made,
                "failed": run.total.failed,
                "merge_s": run.fold_after.seconds if run.fold_after else 0.0,
                "merged_rows": run.fold_after.rows if run.fold_after else 0,
                "rss_generate_rank0_mb": rss[0][0],
                "rss_generate_other_mb": max((r[0] for r in rss[1:]), default=0.0),
                "embed_s": emb_s,
                "embed_gather_merge_s": done - max(r[2] for r in rss),  # from the last rank's slice to the result
                "rss_embed_rank0_mb": rss[0][1],
                "rss_embed_other_mb": max((r[1] for r in rss[1:]), default=0.0),
                "embed_duplicates": len(got) - len(set(got)),
                "embed_in_order": got == paths,
                "embed_max_abs_diff": float(np.abs(res.embeddings - ref.embeddings).max()),
            }
    if info.is_main:
        Path(args.stats).write_text(json.dumps(out))


# -- the driver ------------------------------------------------------------------------------------
def make_dataset(root: Path, identities: int) -> Path:
    import cv2

    from fakeproof.data import write_meta

    rng = np.random.default_rng(identities)
    meta = {}
    for i in range(identities):
        d = root / "images" / f"id{i:05d}"
        d.mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(d / f"{k}.jpg"), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
            meta[f"id{i:05d}/{k}.jpg"] = 0
    write_meta(root / "meta.json", meta)
    return root


def check_dataset(root: Path, identities: int) -> dict:
    """Duplicates and consistency of fakes.csv, meta.json and the images after the run."""
    from fakeproof.data import TrainingDataset, read_meta

    with (root / "fakes.csv").open(newline="") as f:
        keys = [r["key"] for r in csv.DictReader(f)]
    meta = read_meta(root / "meta.json")
    ds = TrainingDataset.load(root)
    fakes = {k for k, v in meta.items() if v == 1}
    return {
        "rows": len(keys),
        "duplicates": len(keys) - len(set(keys)),
        "expected": identities * PER_IDENTITY,
        "rows_match_meta": set(keys) == fakes,
        "missing_or_unlisted": len(ds.missing_files) + len(ds.unlisted_files),
        "rank_journals_left": (root / "fakes.ranks").exists(),
    }


def run_size(ranks: int, identities: int, photos: int, tmp: Path) -> dict:
    ds = make_dataset(tmp / f"ds-{identities}", identities)
    stats = tmp / f"stats-{identities}.json"
    cmd = [
        str(Path(sys.executable).parent / "torchrun"), "--standalone", f"--nproc_per_node={ranks}", str(Path(__file__).resolve()),
        "--worker", "--dataset", str(ds), "--photos", str(photos), "--stats", str(stats),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "FAKEPROOF_HOME": str(tmp / "home")}
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"torchrun failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    out = json.loads(stats.read_text())
    out.update(identities=identities, photos=photos, wall_s=wall, **check_dataset(ds, identities))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="2 ranks, small sizes (what the test runs)")
    ap.add_argument("--ranks", type=int, help="torchrun processes (default 8, --fast 2)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--photos", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    mode = dict(FAST if args.fast else FULL)
    ranks = args.ranks or mode["ranks"]

    from fakeproof.ui import console, summary_table

    with tempfile.TemporaryDirectory(prefix="scale_sim-") as tmp:
        results = [run_size(ranks, n, p, Path(tmp)) for n, p in zip(mode["identities"], mode["photos"])]
    small, large = results
    fields = [
        ("identities x 4 fakes", "identities", "{:,}"),
        ("fakes made (failed)", None, None),
        ("duplicate keys", "duplicates", "{}"),
        ("fakes.csv = meta.json fakes = images", None, None),
        ("plan s (slowest rank)", "plan_s", "{:.2f}"),
        ("generate s (all ranks)", "generate_s", "{:.1f}"),
        ("merge s (rank 0)", "merge_s", "{:.2f}"),
        ("peak RSS MB rank 0 / other", None, None),
        ("photos embedded", "photos", "{:,}"),
        ("embed gather+merge s (rank 0)", "embed_gather_merge_s", "{:.2f}"),
        ("embed duplicates / in order / max |diff|", None, None),
        ("peak RSS MB after embedding rank 0 / other", None, None),
        ("torchrun wall s", "wall_s", "{:.1f}"),
    ]

    def cell(r, label, key, fmt):
        if key:
            return fmt.format(r[key])
        if label.startswith("fakes made"):
            return f"{r['made']:,} ({r['failed']})"
        if label.startswith("fakes.csv"):
            return "yes" if r["rows_match_meta"] and r["rows"] == r["expected"] and not r["missing_or_unlisted"] and not r["rank_journals_left"] else "NO"
        if label.startswith("peak RSS MB rank"):
            return f"{r['rss_generate_rank0_mb']:.0f} / {r['rss_generate_other_mb']:.0f}"
        if label.startswith("embed duplicates"):
            return f"{r['embed_duplicates']} / {r['embed_in_order']} / {r['embed_max_abs_diff']:.0e}"
        return f"{r['rss_embed_rank0_mb']:.0f} / {r['rss_embed_other_mb']:.0f}"

    def ratio(key):
        return f"{large[key] / small[key]:.1f}x" if small[key] else "-"

    growth = {
        "plan s (slowest rank)": ratio("plan_s"),
        "merge s (rank 0)": ratio("merge_s"),
        "generate s (all ranks)": ratio("generate_s"),
        "embed gather+merge s (rank 0)": ratio("embed_gather_merge_s"),
        "peak RSS MB rank 0 / other": f"{ratio('rss_generate_rank0_mb')} / {ratio('rss_generate_other_mb')}",
        "peak RSS MB after embedding rank 0 / other": f"{ratio('rss_embed_rank0_mb')} / {ratio('rss_embed_other_mb')}",
    }
    rows = [[label, cell(small, label, k, f), cell(large, label, k, f), growth.get(label, "")] for label, k, f in fields]
    console.print(summary_table(f"scale simulation: {ranks} gloo ranks on {os.cpu_count()} CPU cores", rows, ["", "small", "large", "growth (10x work)"]))
    bad = [r for r in results if r["duplicates"] or r["embed_duplicates"] or not r["embed_in_order"] or r["embed_max_abs_diff"] > 1e-6 or cell(r, "fakes.csv", None, None) != "yes"]
    if args.json:
        args.json.write_text(json.dumps({"ranks": ranks, "results": results, "growth": growth}, indent=1))
    if bad:
        raise SystemExit("FAILED: duplicates or a mismatch (see the table)")


if __name__ == "__main__":
    main()
