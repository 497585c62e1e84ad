"""Benchmark: seconds per fake of the offline backends (classic, selfblend, morph) on CPU.

    .venv/bin/python benchmarks/generate_speed.py [--photos 40] [--threads 1]
    .venv/bin/python benchmarks/generate_speed.py --fast     # package-shipped faces (a test runs it)

Each backend makes one fake from each of ``--photos`` CelebA originals (``../shared/data/celeba-mini``,
the second person for classic/morph: the next photo), after one warm-up fake. Per fake: wall time
and this process's CPU time (``time.process_time``, which a busy shared machine inflates far less
than wall time), both including the face detection and landmark fit the backend does itself.
The morph backend's look-alike search is left out (it runs in the runner, with the engine's caches).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import shared_or_skip

import numpy as np  # noqa: E402


def photos(args) -> list[Path]:
    if args.fast:
        from fakeproof.sample_data import make_sample_dataset

        import tempfile

        root = make_sample_dataset(Path(tempfile.mkdtemp(prefix="fakeproof-speed-")), photos_per_identity=2, identities=3)
        return sorted((root / "images").glob("*/*.jpg"))
    return sorted((shared_or_skip("celeba-mini") / "img_celeba").glob("*.jpg"))[: args.photos]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="OpenCV / ONNX Runtime threads (1 = one core)")
    ap.add_argument("--fast", action="store_true")
    args = ap.parse_args(argv)

    import cv2

    from fakeproof.engine import load_rgb
    from fakeproof.generate.registry import create_backend
    from fakeproof.ui import console, summary_table

    cv2.setNumThreads(args.threads)
    imgs = [load_rgb(p).rgb for p in photos(args)]
    out = {}
    for name in ("classic", "selfblend", "morph"):
        b = create_backend(name, partner_candidates=0) if name == "morph" else create_backend(name)
        b.load(None, "cpu")
        b.make(imgs[0], imgs[1], 0)  # warm-up: detector sessions, landmark model
        wall, cpu, failed = [], [], 0
        for i, src in enumerate(imgs):
            tgt = imgs[(i + 1) % len(imgs)]
            t, c = time.perf_counter(), time.process_time()
            try:
                b.make(src, tgt, i)
            except Exception:  # a photo without a usable face: counted, not timed
                failed += 1
                continue
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[name] = {"fakes": len(wall), "failed": failed, "wall_s": float(np.mean(wall)), "cpu_s": float(np.mean(cpu)), "wall_median_s": float(np.median(wall))}
    rows = [[n, v["fakes"], v["failed"], f"{v['wall_s']:.3f}", f"{v['wall_median_s']:.3f}", f"{v['cpu_s']:.3f}"] for n, v in out.items()]
    console.print(summary_table(f"seconds per fake ({len(imgs)} photos, {args.threads} thread(s))", rows, ["backend", "fakes", "failed", "wall mean", "wall median", "CPU mean"]))
    return out


if __name__ == "__main__":
    main()
