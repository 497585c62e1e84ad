"""Inference throughput against face_recognition, same run, same photos, three photo sizes.

The code is ``fakeproof.infer.throughput`` (the same as ``fakeproof infer benchmark``): warm-up
outside the timed part, the variants interleaved over ``--repeats`` rounds (median and min-max),
the full pipeline on both runtimes, face_recognition (HOG + dlib ResNet, one photo at a time, as its
README uses it), aligned-crop embedding, a per-stage profile, the load average and thread settings.

    .venv/bin/python benchmarks/infer_throughput.py [--images 64] [--sizes 250,600,1600] [--repeats 3] [--json OUT]
    .venv/bin/python benchmarks/infer_throughput.py --fast [--photos DIR]   # 4 photos, 2 sizes, 1 round

Photos: half from ../shared/data/five-celebrities, half from celeba-mini's originals, resized so their
longer side is each size (skips cleanly where the data is absent); ``--photos DIR`` takes a folder
instead. Target: the full pipeline >= 5x face_recognition's img/s at every size, on 2 CPU cores
(absolute img/s on a shared machine are noisy: read the per-round ratios and the load average).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _common import SHARED_DATA, shared_or_skip

from fakeproof.infer.threads import configure_cpu_threads

configure_cpu_threads()  # what the infer commands do, before torch is imported
from fakeproof.infer.throughput import IMAGE_GLOB_EXTS, print_report, run_benchmark  # noqa: E402


def shared_photos(n: int) -> list[Path]:
    five = shared_or_skip("five-celebrities")
    paths = sorted((five / "images").glob("*/*.jpg"))
    celeba = SHARED_DATA / "celeba-mini" / "img_celeba"
    if celeba.exists():
        # half small web photos, half in-the-wild CelebA originals
        more = sorted(celeba.glob("*.jpg"))
        half = n // 2
        paths = paths[:: max(1, len(paths) // half)][:half] + more[:: max(1, len(more) // (n - half))][: n - half]
    return paths[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="auto", help="what --model takes (default: the default encoder)")
    ap.add_argument("--runtime", default="auto", help="auto | torch | onnx (the other one is timed too)")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--sizes", default="250,600,1600", help="longer side of the resized copies, pixels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--photos", type=Path, default=None, help="a folder of photos instead of ../shared/data")
    ap.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    ap.add_argument("--fast", action="store_true", help="4 photos, sizes 250 and 600, 1 round: a smoke run for tests")
    args = ap.parse_args()
    if args.fast:
        args.images, args.sizes, args.repeats = 4, "250,600", 1
    if args.photos:
        paths = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in IMAGE_GLOB_EXTS)[: args.images]
    else:
        paths = shared_photos(args.images)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rep = run_benchmark(paths, model=args.model, device=args.device, workers=args.workers, runtime=args.runtime, sizes=sizes, repeats=args.repeats)
    print_report(rep)
    if args.json:
        from fakeproof.data.atomic import atomic_write_text, json_text

        atomic_write_text(args.json, json_text(rep.to_json()))
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()
