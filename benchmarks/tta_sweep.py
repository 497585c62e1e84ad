"""Test-time augmentation (TTA) of the default encoder ``dlib_resnet``: does averaging the raw
descriptors of more jittered copies of the aligned chip lower the verification EER beyond noise,
and what does it cost in encoder throughput?

    .venv/bin/python benchmarks/tta_sweep.py                  # celeba-pairs (10 folds) and wild
    .venv/bin/python benchmarks/tta_sweep.py --protocol wild
    .venv/bin/python benchmarks/tta_sweep.py --fast           # 40 pairs, 2 variants (what the test runs)

Variants (each a mean of the raw 128-d descriptors of a set of copies of the chip; scored like the
card: -euclidean distance of the means):

- ``no flip``: the chip alone;
- ``flip`` (the library default, the reference row): the chip and its mirror image;
- ``flip + K jitters`` (K = 2, 4, 8): also K deterministic jitters of the chip, each with its mirror
  image (2 + 2K copies): rotation +-3 degrees (K >= 2), scale 1.05 / 0.95 (K >= 4), shifts of
  (+-3, +-3) px (K = 8);
- ``--dlib-random N`` (optional): N seeded random jitters drawn the way dlib's
  ``compute_face_descriptor(num_jitters=N)`` draws them (its ``jitter_image``: dlib's
  ``random_cropper`` on the chip's box shrunk by 3 px, object height 0.97-1.0 of the chip, i.e.
  zoomed in 1.01-1.04x, translation +-2% of the box, rotation +-3 degrees, mirrored with
  probability 1/2), averaged WITHOUT the plain chip, as dlib does.

Jitters are applied to the engine's aligned 150x150 chips as tensors (bilinear
``torch.nn.functional.grid_sample``, border pixels replicated where a jitter looks past the chip),
so each photo is decoded, detected and aligned once (the engine's crop cache in ``--cache``).
Descriptors of every copy are stored per photo in ``--cache`` too, so a rerun only embeds what is
missing and the variants share the copies they have in common.

Protocols (the pairs, folds and figures of ``benchmarks/verify_peers.py`` / ``_protocol.py``):

- ``celeba-pairs``: 6,000 pairs in 10 identity-disjoint folds: accuracy at the best threshold of
  the other 9 folds (mean +- std over the 10), EER per fold (mean +- std), pooled EER, TAR at
  FAR 1e-3 and the paired identity bootstrap (``fakeproof.metrics.group_bootstrap``, resampling the
  first photo's identity) interval of the pooled-EER difference against the reference;
- ``wild``: every genuine pair of celeba-mini + five-celebrities and as many seeded impostor pairs
  (``_pairs.build_pairs``; no folds): pooled EER, ROC AUC, TAR at FAR 1e-3 and the same interval.

Speed: encoder throughput of each variant (chips/s: jitters + forward passes, torch CPU,
``--threads`` threads, batch ``--batch``) on ``--time-chips`` chips, after a warm-up batch; the
best of ``--time-repeats`` rounds with the variants interleaved (on a shared CPU one round is noisy).
``FAKEPROOF_SHARED_DATA`` points the data elsewhere (the test's fixture); skips cleanly without it.

Measured results and their reading: the README, "Results" (test-time augmentation).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import SHARED_DATA, print_table, shared_or_skip

REFERENCE = "flip"


@dataclass(frozen=True)
class Jitter:
    """A similarity transform of the chip about its centre: content rotated by ``deg`` degrees,
    magnified ``scale`` times and moved by (``dx``, ``dy``) px; then mirrored when ``mirror``."""

    name: str
    deg: float = 0.0
    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    mirror: bool = False

    @property
    def identity(self) -> bool:
        return self.deg == 0 and self.scale == 1 and self.dx == 0 and self.dy == 0


def _with_mirror(j: Jitter) -> list[Jitter]:
    return [j, Jitter(j.name + "~m", j.deg, j.scale, j.dx, j.dy, True)]


PLAIN = Jitter("plain")
# the deterministic jitters, in the order the K-jitter variants take them (each with its mirror)
JITTERS = [
    Jitter("rot+3", deg=3), Jitter("rot-3", deg=-3),
    Jitter("scale1.05", scale=1.05), Jitter("scale0.95", scale=0.95),
    Jitter("shift+3+3", dx=3, dy=3), Jitter("shift-3+3", dx=-3, dy=3),
    Jitter("shift+3-3", dx=3, dy=-3), Jitter("shift-3-3", dx=-3, dy=-3),
]


def dlib_random_jitters(n: int, seed: int = 0, size: int = 150) -> list[Jitter]:
    """``n`` jitters drawn as dlib's ``jitter_image`` / ``random_cropper`` draws them for a face chip
    (box = chip shrunk by 3 px; object height in [0.97, 0.99999] of the output; translation
    +-2% of the box; rotation +-3 degrees; mirrored with probability 1/2). Seeded: the same copies
    for every photo."""
    rng = np.random.default_rng(seed)
    box = size - 6
    out = []
    for i in range(n):
        dx, dy = rng.uniform(-0.02, 0.02, 2) * box
        height = rng.uniform(0.97, 0.99999)
        crop = box / height  # the side of the chip region that becomes the whole output
        deg = rng.uniform(-3, 3)
        out.append(Jitter(f"dlib{i}", deg=float(deg), scale=float(size / crop), dx=float(-dx * size / crop), dy=float(-dy * size / crop), mirror=bool(rng.random() < 0.5)))
    return out


def variants(ks=(2, 4, 8), no_flip: bool = True, dlib_random: int = 0) -> dict[str, list[Jitter]]:
    """Name -> the copies whose descriptors the variant averages."""
    out: dict[str, list[Jitter]] = {}
    if no_flip:
        out["no flip"] = [PLAIN]
    out[REFERENCE] = _with_mirror(PLAIN)
    for k in ks:
        out[f"flip + {k} jitters"] = _with_mirror(PLAIN) + [m for j in JITTERS[:k] for m in _with_mirror(j)]
    if dlib_random:
        out[f"dlib-style {dlib_random} random jitters"] = dlib_random_jitters(dlib_random)
    return out


def apply_jitter(x, j: Jitter):
    """``x``: (N, C, H, W) float (the encoder's normalised input); the jittered copy, same shape."""
    import torch
    import torch.nn.functional as F

    if not j.identity:
        n, _, h, w = x.shape
        a = math.radians(j.deg)
        c, s = math.cos(a) / j.scale, math.sin(a) / j.scale
        # output pixel -> input pixel in grid_sample's [-1, 1] coordinates (align_corners=False):
        # inverse rotation and scale about the centre, minus the shift
        theta = torch.tensor([[c, s, -(c * 2 * j.dx / w + s * 2 * j.dy / h)],
                              [-s, c, -(-s * 2 * j.dx / w + c * 2 * j.dy / h)]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(n, 2, 3), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x.flip(-1) if j.mirror else x


def descriptors(encoder, chips: np.ndarray, copies: list[Jitter], batch: int = 32) -> dict[str, np.ndarray]:
    """Raw descriptors (N, 128) of every copy of ``chips`` (N, H, W, 3 uint8)."""
    import torch

    out = {j.name: np.zeros((len(chips), encoder.spec.embedding_dim), np.float32) for j in copies}
    encoder.eval()
    with torch.no_grad():
        for i in range(0, len(chips), batch):
            x = encoder.to_input(chips[i : i + batch])
            for j in copies:
                out[j.name][i : i + batch] = encoder(apply_jitter(x, j)).float().cpu().numpy()
    return out


def photo_descriptors(encoder, chips: dict[str, np.ndarray], paths: list[str], copies: list[Jitter], store: Path, batch: int, progress_every: int = 512) -> dict[str, np.ndarray]:
    """{copy name: (len(paths), D)} for the photos with a chip (zero rows for the others, as
    verify_peers scores a photo without a crop), read from / added to ``store`` (.npz per copy)."""
    have = [p for p in paths if p in chips]
    res = {}
    store.mkdir(parents=True, exist_ok=True)
    for j in copies:
        f = store / f"{hashlib.sha1(repr(j).encode()).hexdigest()[:12]}.npz"
        known: dict[str, np.ndarray] = {}
        if f.exists():
            z = np.load(f, allow_pickle=False)
            known = dict(zip(z["paths"].tolist(), z["desc"]))
        todo = [p for p in have if p not in known]
        for i in range(0, len(todo), progress_every):
            part = todo[i : i + progress_every]
            got = descriptors(encoder, np.stack([chips[p] for p in part]), [j], batch)[j.name]
            known.update(zip(part, got))
            done = sorted(known)
            np.savez(f.with_name(f.name + ".tmp.npz"), paths=np.array(done), desc=np.stack([known[p] for p in done]))
            f.with_name(f.name + ".tmp.npz").replace(f)
            print(f"  {j.name}: {min(i + progress_every, len(todo))}/{len(todo)} chips embedded", flush=True)
        res[j.name] = np.stack([known[p] if p in known else np.zeros(encoder.spec.embedding_dim, np.float32) for p in paths])
    return res


def variant_scores(desc: dict[str, np.ndarray], copies: list[Jitter], ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """-euclidean distance of the mean raw descriptors (the card's raw similarity of dlib_resnet)."""
    from fakeproof.engine.cards import raw_scores

    mean = np.mean([desc[j.name] for j in copies], axis=0)
    return raw_scores("euclidean", mean[ia], mean[ib])


def time_variants(encoder, chips: np.ndarray, vs: dict[str, list[Jitter]], batch: int, repeats: int = 3) -> dict[str, float]:
    """Chips per second of each variant (jitters + forward passes), after one warm-up batch: the
    best of ``repeats`` rounds, the variants interleaved within a round (a shared CPU's load moves)."""
    descriptors(encoder, chips[:batch], [PLAIN], batch)
    best: dict[str, float] = {}
    for r in range(repeats):
        for name, copies in vs.items():
            t0 = time.perf_counter()
            descriptors(encoder, chips, copies, batch)
            best[name] = max(best.get(name, 0.0), len(chips) / (time.perf_counter() - t0))
        print(f"  speed round {r + 1}/{repeats}: " + ", ".join(f"{k} {v:.1f}" for k, v in best.items()), flush=True)
    return best


def check_parity(engine, chips: np.ndarray) -> float:
    """Largest difference between the ``flip`` variant here and the engine's own flip
    (``FaceEngine.embed_crops``): both must be the same computation."""
    ref = engine.embed_crops(list(chips))
    d = descriptors(engine.encoder, chips, _with_mirror(PLAIN))
    ours = (d["plain"] + d["plain~m"]) / 2
    return float(np.abs(ours - ref).max())


def load_chips(engine, paths: list[str]) -> tuple[dict[str, np.ndarray], int]:
    recs, crops = engine.crops(paths, progress=False)
    chips = {p: c for p, c in zip(paths, crops) if c is not None}
    return chips, sum(1 for r in recs if not r.detected)


def interval_cell(labels, s, ref, groups, n: int) -> str:
    from _protocol import paired_eer_interval

    d, lo, hi = paired_eer_interval(labels, s, ref, groups, n=n)
    return f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def evaluate(protocol: str, args, engine, vs: dict[str, list[Jitter]], speed: dict[str, float]) -> dict | None:
    from _protocol import fold_figures

    from fakeproof.metrics import compute_eer, roc_auc, tar_at_far

    pairs = protocol_pairs(protocol, args.fast)
    if pairs is None:
        print(f"SKIP {protocol}: " + (f"{SHARED_DATA / 'celeba-pairs'} not found" if protocol == "celeba-pairs"
                                      else f"neither celeba-mini nor five-celebrities under {SHARED_DATA}"))
        return None
    if protocol == "celeba-pairs":
        if args.folds:
            pairs = pairs[pairs.fold.isin([int(f) for f in args.folds.split(",")])].reset_index(drop=True)
        groups = pairs.identity_a.values
    else:
        from _pairs import identity_photos

        who = {p: f"{ds}:{i}" for ds, ids in identity_photos().items() for i, files in ids.items() for p in files}
        groups = pairs.path_a.map(who).values
    labels = pairs.expected_accept.values.astype(int)
    paths = sorted(set(pairs.path_a) | set(pairs.path_b))
    t0 = time.perf_counter()
    chips, no_face = load_chips(engine, paths)
    print(f"\n[{protocol}] {len(pairs)} pairs ({labels.sum()} genuine) over {len(paths)} photos; chips in {time.perf_counter() - t0:.0f} s "
          f"({no_face} without a detected face: scored on the engine's fallback crop, or a zero descriptor without one)", flush=True)
    copies = list({j.name: j for c in vs.values() for j in c}.values())
    store = args.cache / f"tta_{protocol}{'_fast' if args.fast else ''}"
    desc = photo_descriptors(engine.encoder, chips, paths, copies, store, args.batch)
    idx = {p: i for i, p in enumerate(paths)}
    ia, ib = pairs.path_a.map(idx).values, pairs.path_b.map(idx).values
    scores = {name: variant_scores(desc, c, ia, ib) for name, c in vs.items()}
    ref = scores[REFERENCE]
    rows = []
    for name, s in scores.items():
        r: dict = {"variant": name, "copies": len(vs[name])}
        if protocol == "celeba-pairs":
            r.update(fold_figures(labels, s, pairs.fold.values))
        else:
            tar = tar_at_far(labels, s, 1e-3)
            r.update({"EER % (pooled)": round(100 * compute_eer(labels, s).eer, 2), "ROC AUC": round(roc_auc(labels, s), 4),
                      "TAR@FAR1e-3 %": None if tar is None else round(100 * tar, 2)})
        r["EER - ref. (pt) [95%]"] = "reference" if name == REFERENCE else interval_cell(labels, s, ref, groups, args.bootstrap)
        if name in speed:
            r["chips/s"] = round(speed[name], 1)
        rows.append(r)
    what = ("10-fold protocol; accuracy at the threshold chosen on the other 9 folds" if protocol == "celeba-pairs" else "pooled over all pairs (no folds)")
    print(f"\n{protocol}: {what}; interval: paired bootstrap over {len(set(groups))} identities ({args.bootstrap} resamples), reference = {REFERENCE}")
    print_table(rows)
    return {"pairs": len(pairs), "photos": len(paths), "no_face": no_face, "identities": len(set(groups)), "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", default="both", choices=["celeba-pairs", "wild", "both"])
    ap.add_argument("--fast", action="store_true", help="40 celeba-pairs pairs / 20 genuine wild pairs per dataset, variants flip and flip + 2 jitters")
    ap.add_argument("--ks", default="2,4,8", help="numbers of deterministic jitters (each with its mirror) added to flip")
    ap.add_argument("--dlib-random", type=int, default=0, help="also N seeded dlib-style random jitters (dlib's num_jitters=N), 0 = off")
    ap.add_argument("--folds", default="", help="celeba-pairs: only these folds, e.g. 1,2")
    ap.add_argument("--bootstrap", type=int, default=1000, help="identity resamples behind the intervals")
    ap.add_argument("--time-chips", type=int, default=256, help="chips timed per variant (0 = no timing)")
    ap.add_argument("--time-repeats", type=int, default=3, help="timing rounds (best of; variants interleaved)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fakeproof-tta", help="engine crop cache and stored descriptors")
    ap.add_argument("--json", type=Path, help="write the tables here")
    args = ap.parse_args(argv)
    if not any((SHARED_DATA / d).exists() for d in ("celeba-pairs", "celeba-mini", "five-celebrities")):
        shared_or_skip("celeba-pairs")
    import torch

    from fakeproof.engine import FaceEngine

    torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    vs = variants(ks[:1] if args.fast else ks, no_flip=not args.fast, dlib_random=0 if args.fast else args.dlib_random)
    args.cache.mkdir(parents=True, exist_ok=True)
    engine = FaceEngine("dlib_resnet", device="cpu", flip=True, cache_dir=args.cache)
    if engine.card.metric != "euclidean":
        print(f"note: dlib_resnet's card compares by {engine.card.metric}; this sweep scores by -euclidean of the raw descriptors")
    protocols = ["celeba-pairs", "wild"] if args.protocol == "both" else [args.protocol]
    result: dict = {"variants": {k: [j.name for j in c] for k, c in vs.items()}, "threads": args.threads, "batch": args.batch}
    speed: dict[str, float] = {}
    if args.time_chips:
        # chips of a few pairs of the first protocol present, repeated up to --time-chips
        pairs = next((p for p in (protocol_pairs(pr, fast=True) for pr in protocols) if p is not None), None)
        paths = [] if pairs is None else sorted(set(pairs.path_a) | set(pairs.path_b))
        chips = np.stack(list(load_chips(engine, paths)[0].values()))
        chips = np.resize(chips, (args.time_chips, *chips.shape[1:]))
        result["parity_max_abs_diff"] = check_parity(engine, chips[: args.batch])
        print(f"parity: flip here vs FaceEngine.embed_crops (flip on): max |diff| of the raw descriptors {result['parity_max_abs_diff']:.2e}")
        print(f"speed: {args.time_chips} chips, batch {args.batch}, torch CPU {args.threads} threads, best of {args.time_repeats} rounds", flush=True)
        speed = time_variants(engine.encoder, chips, vs, args.batch, args.time_repeats)
        result["chips_per_s"] = speed
        print("\nencoder speed per variant")
        print_table([{"variant": k, "copies": len(vs[k]), "chips/s": round(v, 1), "relative to flip": f"{v / speed[REFERENCE]:.2f}x"} for k, v in speed.items()])
    for protocol in protocols:
        res = evaluate(protocol, args, engine, vs, speed)
        if res is not None:
            result[protocol] = res
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float))
    return 0


def protocol_pairs(protocol: str, fast: bool):
    """The pairs of ``protocol`` (``fast``: a few), or None where its data is absent."""
    if protocol == "celeba-pairs":
        from _protocol import load_pairs

        return load_pairs(SHARED_DATA / "celeba-pairs", fast=fast) if (SHARED_DATA / "celeba-pairs").exists() else None
    from _pairs import build_pairs

    pairs = build_pairs(max_per_dataset=20 if fast else None)
    return None if pairs.empty else pairs


if __name__ == "__main__":
    sys.exit(main())
