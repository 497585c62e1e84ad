"""Benchmark: does fine-tuning cut deepfake acceptance on identities the model never saw?

    .venv/bin/python benchmarks/train_celeba_mini.py [--minutes 12] [--work DIR] [--lr 5e-5] ...

1. ``fakeproof generate celeba ../shared/data/celeba-mini`` -> training layout (60 ids x 6 photos);
2. ``fakeproof generate deepfakes --backends classic`` -> fakes of every identity;
3. ``fakeproof train pairs --test-fraction`` -> 50/25/25 pairs, identities split into train /
   validation / test (disjoint); training reads train, picks its best checkpoint on validation and
   never sees the test identities;
4. ``fakeproof train run`` for a bounded wall-clock budget on this machine (CPU here);
5. before/after on the test identities, both through the face engine: the base encoder vs
   ``load_trained_encoder(RUN)`` (what ``infer --model RUN`` loads).

Printed per model: EER over all validation pairs, genuine-pair EER (genuine vs impostor only),
attack acceptance (share of real+deepfake pairs accepted at the genuine-pair EER threshold), and
the two error rates at the all-pairs EER threshold. Work goes to a temp folder (or ``--work``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, shared_or_skip

import numpy as np  # noqa: E402


def cli(*args: str, env=None) -> float:
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "fakeproof.cli", *args]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True, env=env)
    return time.perf_counter() - t


def evaluate(engine, dataset_root: Path, pairs) -> dict:
    from fakeproof.metrics import pair_metrics

    keys = sorted({k for p in pairs for k in (p.a, p.b)})
    res = engine.embed_paths([dataset_root / "images" / k for k in keys], progress=False)
    row = {k: i for i, k in enumerate(keys)}
    ok = [p for p in pairs if not np.isnan(res.embeddings[row[p.a]]).any() and not np.isnan(res.embeddings[row[p.b]]).any()]
    cos = np.array([float(res.embeddings[row[p.a]] @ res.embeddings[row[p.b]]) for p in ok])
    m = pair_metrics(cos, np.array([p.label for p in ok]), np.array([p.kind for p in ok]))
    m["pairs"] = len(ok)
    m["mean_cos"] = {k: float(cos[[p.kind == k for p in ok]].mean()) for k in ("genuine", "impostor", "deepfake")}
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=9.0, help="training budget (wall clock, data preparation included)")
    ap.add_argument("--work", type=Path, default=None, help="keep everything here (default: a temp folder)")
    ap.add_argument("--model", default="facenet")
    ap.add_argument("--fakes", type=int, default=3, help="classic fakes per identity")
    ap.add_argument("--val-fraction", type=float, default=0.25, help="of the identities left after the test split")
    ap.add_argument("--test-fraction", type=float, default=0.3, help="identities for the final before/after, never seen by training")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--freeze-blocks", type=int, default=26)
    ap.add_argument("--l2sp", type=float, default=0.0)
    ap.add_argument("--keep-real", type=float, default=0.0, help="keep-real distillation weight (0: the recipe the README's table measured; train run's default is 100)")
    ap.add_argument("--val-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    celeba = shared_or_skip("celeba-mini")
    work = args.work or Path(tempfile.mkdtemp(prefix="fakeproof-train-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ds, run, pairs_csv = work / "ds", work / "run", work / "pairs.csv"
    times = {}
    if not (ds / "meta.json").exists():
        times["generate celeba"] = cli("generate", "celeba", str(celeba), "--out", str(ds), "--seed", str(args.seed))
    if not (ds / "fakes.csv").exists():
        times["generate deepfakes (classic)"] = cli("generate", "deepfakes", str(ds), "--backends", "classic", "--per-identity", str(args.fakes), "--seed", str(args.seed), "--device", "cpu")
    times["train pairs"] = cli("train", "pairs", str(ds), "--out", str(pairs_csv), "--seed", str(args.seed), "--val-fraction", str(args.val_fraction), "--test-fraction", str(args.test_fraction))
    if not (run / "summary.json").exists():
        times["train run"] = cli(
            "train", "run", str(ds), "--out", str(run), "--pairs", str(pairs_csv), "--model", args.model,
            "--max-minutes", str(args.minutes), "--epochs", "1000", "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--freeze-blocks", str(args.freeze_blocks), "--l2sp", str(args.l2sp),
            "--keep-real", str(args.keep_real), "--val-every", str(args.val_every), "--seed", str(args.seed), "--device", "cpu", "--no-progress",
        )

    from fakeproof.engine import FaceEngine
    from fakeproof.engine.checkpoint_reader import load_trained_encoder
    from fakeproof.train.pairs import read_pairs_csv
    from fakeproof.ui import console, summary_table

    all_pairs = read_pairs_csv(pairs_csv)
    held = "test" if any(p.split == "test" for p in all_pairs) else "val"
    val = [p for p in all_pairs if p.split == held]
    seen = {p.identity for p in all_pairs if p.split in ("train", "val") and p.split != held}
    assert not seen & {p.identity for p in val}, "held-apart identities leaked into training"
    cache = work / "engine-cache"
    before = evaluate(FaceEngine(args.model, device="cpu", cache_dir=cache), ds, val)
    enc, conf = load_trained_encoder(run, device="cpu")
    after = evaluate(FaceEngine(enc, device="cpu", cache_dir=cache), ds, val)
    summary = json.loads((run / "summary.json").read_text())

    def pct(v):
        return f"{100 * v:.1f}%"

    rows = []
    for name, key in (
        ("EER, all validation pairs", "eer"),
        ("genuine-pair EER (genuine vs impostor)", "genuine_eer"),
        ("attack acceptance (deepfakes at the genuine threshold)", "attack_acceptance"),
        ("error_real_deepfake (at all-pairs EER threshold)", "error_real_deepfake"),
        ("error_real_another_real (at all-pairs EER threshold)", "error_real_another_real"),
    ):
        rows.append([name, pct(before[key]), pct(after[key]), f"{100 * (after[key] - before[key]):+.1f} pt"])
    for k in ("genuine", "impostor", "deepfake"):
        rows.append([f"mean cosine, {k} pairs", f"{before['mean_cos'][k]:.3f}", f"{after['mean_cos'][k]:.3f}", f"{after['mean_cos'][k] - before['mean_cos'][k]:+.3f}"])
    console.print(summary_table(
        f"{args.model} before/after fine-tuning; {before['pairs']} {held} pairs of {len({p.identity for p in val})} held-apart identities",
        rows, ["metric", "before", "after", "change"],
    ))
    info = [
        ["training steps", summary["steps"]],
        ["epochs", round(summary["epochs"], 2)],
        ["best step (by val EER)", summary["best_step"]],
        ["train pairs / val pairs", f"{summary['train_pairs']} / {summary['val_pairs']}"],
        ["train images/s (fwd+bwd, CPU)", round(summary["images_per_s"], 2)],
        ["threshold in checkpoint", round(conf["threshold"], 4) if conf.get("threshold") is not None else "n/a"],
        ["settings", f"batch {args.batch_size}, lr {args.lr}, freeze {args.freeze_blocks} blocks, l2sp {args.l2sp}, keep-real {args.keep_real}, budget {args.minutes} min"],
        *[[f"time: {k}", f"{v:.0f} s"] for k, v in times.items()],
        ["work folder", str(work)],
    ]
    console.print(summary_table("run", info, ["", "value"]))
    (work / "benchmark.json").write_text(json.dumps({"before": before, "after": after, "summary": summary, "times": times, "args": vars(args)}, indent=1, default=str))


if __name__ == "__main__":
    main()
