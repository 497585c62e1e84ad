"""Fit ``DLIB_CHIP_TEMPLATE`` (fakeproof/engine/template.py): the mean position of the engine's
5 MTCNN points inside dlib's own 150 px face chips, on real photos.

    .venv/bin/python benchmarks/fit_dlib_chip_template.py [--limit N]

Reads ../shared/data/five-celebrities and ../shared/data/celeba-mini (skips cleanly where absent).
For every photo the engine finds a face in, dlib's chip is placed from dlib's 5-point predictor run
inside the engine's box (see dlib_chips.py) and the MTCNN points are mapped into it. Prints the
mean, the per-point spread, and the constants to paste into template.py.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import shared_or_skip
from dlib_chips import DlibChipper, engine_face


def photos() -> list[str]:
    from _pairs import identity_photos

    return sorted(p for ids in identity_photos().values() for files in ids.values() for p in files)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="use only the first N photos (fast mode)")
    args = ap.parse_args()
    shared_or_skip("five-celebrities")
    from fakeproof.engine import FaceEngine

    engine = FaceEngine("facenet", device="cpu", use_cache=False)
    chipper = DlibChipper()
    paths = photos()[: args.limit or None]
    pts, t0 = [], time.perf_counter()
    for p in paths:
        face = engine_face(engine, p)
        if face is None:
            continue
        pts.append(chipper.points_in_chip(face, chipper.details(face)))
    pts = np.stack(pts)
    mean, std = pts.mean(0), pts.std(0)
    print(f"{len(pts)} of {len(paths)} photos with a face, {time.perf_counter() - t0:.0f}s")
    names = ["left eye", "right eye", "nose tip", "left mouth", "right mouth"]
    print(f"{'point':<12} {'x':>8} {'y':>8} {'sd x':>6} {'sd y':>6}")
    for n, (x, y), (sx, sy) in zip(names, mean, std):
        print(f"{n:<12} {x:8.2f} {y:8.2f} {sx:6.2f} {sy:6.2f}")
    print("DLIB_CHIP_TEMPLATE = np.array([" + ", ".join(f"[{x:.2f}, {y:.2f}]" for x, y in mean) + "], dtype=np.float32)")


if __name__ == "__main__":
    main()
