"""Per-face CPU time of the face engine's steps: detection, alignment, embedding (batch 1 and 32).

    .venv/bin/python benchmarks/engine_latency.py [--model facenet]

Reads real photos from ../shared/data/five-celebrities (skips cleanly where it is absent).
"""
from __future__ import annotations

import argparse
import os

from _common import shared_or_skip

import torch

from fakeproof.engine import FaceEngine, align_face, get_detector, load_rgb, pick_main_face
from fakeproof.infer.throughput import best_time as timeit
from fakeproof.ui import console, summary_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="facenet")
    ap.add_argument("--images", type=int, default=32)
    args = ap.parse_args()
    root = shared_or_skip("five-celebrities")
    paths = sorted((root / "images").glob("*/*.jpg"))[: args.images]
    imgs = [load_rgb(p).rgb for p in paths]
    det = get_detector("mtcnn")
    eng = FaceEngine(args.model, device="cpu", use_cache=False)
    size = eng.crop_size
    faces = [pick_main_face(det.detect(im), im.shape) for im in imgs]
    pairs = [(im, f) for im, f in zip(imgs, faces) if f is not None]
    n = len(pairs)
    t_load = timeit(lambda: [load_rgb(p) for p in paths], repeat=2) / len(paths)
    t_det = timeit(lambda: [det.detect(im) for im, _ in pairs], repeat=2) / n
    t_align = timeit(lambda: [align_face(im, f.landmarks, size, eng.margin, eng.template) for im, f in pairs], repeat=3) / n
    crops = [align_face(im, f.landmarks, size, eng.margin, eng.template) for im, f in pairs]
    batch32 = (crops * 2)[:32]
    t_b1 = timeit(lambda: [eng.embed_crops([c], batch_size=1) for c in crops[:16]], repeat=2) / 16
    t_b32 = timeit(lambda: eng.embed_crops(batch32, batch_size=32), repeat=3) / 32
    rows = [
        ["decode (EXIF, colour, downscale)", t_load * 1e3, 1 / t_load],
        ["detect (MTCNN, ONNX Runtime)", t_det * 1e3, 1 / t_det],
        [f"align ({size[0]}x{size[1]}, 5-point similarity)", t_align * 1e3, 1 / t_align],
        [f"embed {args.model}, batch 1", t_b1 * 1e3, 1 / t_b1],
        [f"embed {args.model}, batch 32", t_b32 * 1e3, 1 / t_b32],
    ]
    console.print(
        summary_table(
            f"face engine, per face, CPU ({os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads), {n} real photos",
            rows,
            ["step", "ms / face", "faces / s"],
        )
    )
    console.print(f"batch 32 vs batch 1 embedding: {t_b1 / t_b32:.2f}x faster per face")


if __name__ == "__main__":
    main()
