"""Inference throughput on real photos: aligned-crop embedding (torch / ONNX Runtime, batch 1 / 32),
the full pipeline (decode + detect + align + embed, worker pool + batching) and the naive
one-photo-at-a-time loop, with the ratio.

    .venv/bin/python benchmarks/infer_throughput.py [--model auto] [--images 64] [--device cpu]

Reads ../shared/data/five-celebrities and celeba-mini (skips cleanly where they are absent).
Targets on a 2-core CPU: aligned crops >= 40 img/s, full pipeline >= 8 img/s and >= 1.5x naive.
"""
from __future__ import annotations

import argparse

from _common import SHARED_DATA, shared_or_skip

from fakeproof.infer.threads import configure_cpu_threads

configure_cpu_threads()  # what the infer commands do, before torch is imported
from fakeproof.infer.throughput import print_report, run_benchmark  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="auto", help="what --model takes (default: the default encoder)")
    ap.add_argument("--images", type=int, default=64, help="photos: half from five-celebrities, half from celeba-mini")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-onnx", action="store_true")
    args = ap.parse_args()
    five = shared_or_skip("five-celebrities")
    paths = sorted((five / "images").glob("*/*.jpg"))
    celeba = SHARED_DATA / "celeba-mini" / "img_celeba"
    if celeba.exists():
        # interleave: the small web photos and the larger in-the-wild CelebA originals
        more = sorted(celeba.glob("*.jpg"))
        half = args.images // 2
        paths = paths[::max(1, len(paths) // half)][:half] + more[::max(1, len(more) // (args.images - half))][: args.images - half]
    paths = paths[: args.images]
    rep = run_benchmark(paths, model=args.model, device=args.device, workers=args.workers, onnx=not args.no_onnx)
    print_report(rep)


if __name__ == "__main__":
    main()
