"""Which crop geometry suits ``dlib_resnet``: the engine's template path or dlib's own chips?

    .venv/bin/python benchmarks/dlib_alignment.py [--fast]

Real genuine / impostor pairs of ../shared/data (_pairs.build_pairs: every genuine pair in
five-celebrities and celeba-mini and as many seeded random impostor pairs; skips cleanly where the
data is absent). One MTCNN pass (the engine's) per photo, then three ways to the embedding:

(a) engine: ``FaceEngine("dlib_resnet")`` - MTCNN 5 points aligned onto ``DLIB_CHIP_TEMPLATE``;
(b) dlib chip: dlib's 5-point predictor inside the engine's MTCNN box, ``get_face_chip`` (150 px,
    padding 0.25), embedded by fakeproof's torch port;
(c) dlib itself: ``compute_face_descriptor`` on (b)'s chips (the reference implementation).

Prints EER (and the cosine there), ROC AUC, TAR@FAR 1e-2 per variant. ``--margins -0.05,0.05`` adds
(a) re-aligned with other margins (same detections). ``--fast`` uses the first 40 photos (a smoke run).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from _common import shared_or_skip
from dlib_chips import DlibChipper, EngineFace


def evaluate(name: str, emb: dict[str, np.ndarray], pairs) -> list:
    from fakeproof.metrics import compute_eer, roc_auc, tar_at_far

    scores = np.array([float(emb[a] @ emb[b]) if a in emb and b in emb else -1.0 for a, b in zip(pairs.path_a, pairs.path_b)])
    labels = pairs.expected_accept.to_numpy()
    tar = tar_at_far(labels, scores, 1e-2)
    eer = compute_eer(labels, scores)
    return [name, f"{100 * eer.eer:.2f}%", f"{eer.threshold:.3f}", f"{roc_auc(labels, scores):.4f}", "-" if tar is None else f"{100 * tar:.1f}%"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true", help="first 40 photos only (smoke run)")
    ap.add_argument("--margins", default="", help="also variant (a) re-aligned with these margins, e.g. -0.05,0.05")
    args = ap.parse_args()
    shared_or_skip("five-celebrities")
    import dlib
    import torch

    from _pairs import build_pairs

    from fakeproof.engine import FaceEngine, align_face
    from fakeproof.engine.encoders.dlib_resnet import installed_dat
    from fakeproof.engine.images import load_rgb
    from fakeproof.ui import console, summary_table

    torch.set_num_threads(2)
    pairs = build_pairs(seed=0)
    photos = sorted(set(pairs.path_a) | set(pairs.path_b))
    if args.fast:
        keep = set(photos[:40])
        pairs = pairs[pairs.path_a.isin(keep) & pairs.path_b.isin(keep)]
        photos = sorted(keep)
    n_gen = int(pairs.expected_accept.sum())
    print(f"{len(pairs)} pairs ({n_gen} genuine, {len(pairs) - n_gen} impostor) over {len(photos)} photos")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        engine = FaceEngine("dlib_resnet", device="cpu", cache_dir=cache)
        res = engine.embed_paths(photos, progress=False)
    emb_a = {p: e for p, e, r in zip(photos, res.embeddings, res.records) if r.ok}
    t_a = time.perf_counter() - t0

    chipper, rec = DlibChipper(), dlib.face_recognition_model_v1(str(installed_dat()))
    chips, t_chip = {}, time.perf_counter()
    for p, r in zip(photos, res.records):
        if not r.detected:
            continue
        img = load_rgb(p)
        face = EngineFace(img.rgb, np.asarray(r.bbox) * img.scale, np.asarray(r.landmarks) * img.scale)
        chips[p] = chipper.chip(face)
    t_chip = time.perf_counter() - t_chip
    keys = sorted(chips)
    t0 = time.perf_counter()
    emb_b = dict(zip(keys, engine.encoder.embed([chips[k] for k in keys])))
    t_b = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = [np.asarray(rec.compute_face_descriptor(chips[k]), np.float32) for k in keys]
    emb_c = {k: v / np.linalg.norm(v) for k, v in zip(keys, ref)}
    t_c = time.perf_counter() - t0
    agree = min(float(emb_b[k] @ emb_c[k]) for k in keys) if keys else float("nan")

    extra = []
    for margin in [float(m) for m in args.margins.split(",") if m.strip()]:
        crops = {}
        for p, r in zip(photos, res.records):
            if r.detected:
                img = load_rgb(p)
                crops[p] = align_face(img.rgb, np.asarray(r.landmarks) * img.scale, engine.crop_size, margin, engine.template)
        emb = dict(zip(sorted(crops), engine.encoder.embed([crops[k] for k in sorted(crops)])))
        extra.append(evaluate(f"(a) with margin {margin:+.2f}", emb, pairs) + [f"{len(emb)}/{len(photos)}"])
    rows = [
        evaluate("(a) engine: MTCNN points -> dlib_chip template", emb_a, pairs) + [f"{len(emb_a)}/{len(photos)}"],
        evaluate("(b) dlib 5-pt predictor in MTCNN box -> get_face_chip", emb_b, pairs) + [f"{len(emb_b)}/{len(photos)}"],
        evaluate("(c) (b) chips -> dlib compute_face_descriptor", emb_c, pairs) + [f"{len(emb_c)}/{len(photos)}"],
    ] + extra
    console.print(summary_table("dlib_resnet: crop geometry on real pairs", rows, ["variant", "EER", "cosine at EER", "ROC AUC", "TAR@FAR1e-2", "photos embedded"]))
    print(f"times: (a) engine detect+align+embed {t_a:.1f}s; dlib chips {t_chip:.1f}s; (b) torch embed {t_b:.1f}s; (c) dlib embed {t_c:.1f}s")
    print(f"min cosine between (b) and (c) on the same chips: {agree:.6f}")


if __name__ == "__main__":
    main()
