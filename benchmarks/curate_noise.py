"""How well ``curate clean`` finds injected label noise on real photos.

Datasets: ``../shared/data/celeba-mini`` (CelebA layout, converted to the training layout in a temp
folder with fakeproof.generate's converter) and ``../shared/data/five-celebrities``. For 10% and 20%
noise, a seeded random choice of real photos moves to a random other identity (a noisy copy of the
dataset is built in a temp folder outside the repo with hard links; the originals are never
touched). ``run_clean`` then runs at several thresholds, and the flags are scored against the
injected truth: precision, recall, F1, and how often the suggested identity is the true one.

Side by side, on the same embeddings:
- centroid baseline: flag a photo whose mean similarity (the model card's metric, on its scale) to
  the other photos of its identity is below t;
- cleanlab (when installed): ``find_label_issues`` on out-of-fold probabilities of a logistic
  regression on the embeddings.

Photos already mislabelled (or hard) in the source sets count as false positives in ``P`` (the
truth is only what we injected); ``P excl. pre-existing`` leaves out the photos that clean also
flags on the source without injected noise. The centroid baseline is given the same number of
flags as clean (a fair budget) and, separately, its best threshold chosen with the truth (oracle).

    .venv/bin/python benchmarks/curate_noise.py [--model facenet] [--thresholds 0.3,0.4,0.5,0.6,0.7] [--seeds 0-9]
    .venv/bin/python benchmarks/curate_noise.py --fast        # five-celebrities, 10%, threshold 0.5, one seed (the test)

Thresholds are on the similarity scale (fakeproof.engine.cards): 0.5 is every calibrated model's
decision point, what the README's ``curate clean --threshold 0.5`` uses. ``--seeds`` repeats each
noise level with other random moves; the last table gives the mean and the worst seed of P and R at
0.5 for clean and for cleanlab, side by side.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SHARED_DATA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def noisy_copy(src_root: Path, dst_root: Path, rate: float, seed: int) -> dict[str, str]:
    """Copy (hard links) ``src_root`` to ``dst_root`` with ``rate`` of the real photos moved to a
    random other identity; returns {key of a moved photo in the copy: its true identity}."""
    from fakeproof.data import TrainingDataset, write_meta

    ds = TrainingDataset.load(src_root)
    rng = np.random.default_rng(seed)
    reals = sorted(it.key for it in ds.reals())
    idents = ds.identities()
    moved = set(rng.choice(reals, int(round(rate * len(reals))), replace=False).tolist())
    meta, truth = {}, {}
    for it in sorted(ds.items, key=lambda i: i.key):
        key = it.key
        if key in moved:
            others = [i for i in idents if i != it.identity]
            new_id = others[int(rng.integers(len(others)))]
            key = f"{new_id}/noise_{it.identity}_{Path(it.key).name}"
            truth[key] = it.identity
        link_or_copy(it.path, dst_root / "images" / key)
        meta[key] = int(it.is_deepfake)
    write_meta(dst_root / "meta.json", meta)
    return truth


def celeba_pairs_layout(src: Path, dst: Path, min_photos: int = 3) -> Path:
    """``celeba-pairs`` (``images/celeba_<id>/*.jpg``, aligned 89x109 crops) as a training-layout dataset
    (hard links, every photo real) of the identities with >= ``min_photos`` photos."""
    from fakeproof.data import write_meta

    meta = {}
    for d in sorted(p for p in (src / "images").iterdir() if p.is_dir()):
        files = sorted(d.glob("*.jpg"))
        if len(files) < min_photos:
            continue
        for f in files:
            key = f"{d.name}/{f.name}"
            link_or_copy(f, dst / "images" / key)
            meta[key] = 0
    write_meta(dst / "meta.json", meta)
    return dst


def prf(flagged: set[str], truth: set[str]) -> tuple[float, float, float]:
    tp = len(flagged & truth)
    p = tp / len(flagged) if flagged else 0.0
    r = tp / len(truth) if truth else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def centroid_scores(flags, emb_by_key: dict, card) -> dict[str, float]:
    """Baseline: each real photo's mean raw score (``card``'s metric) to the other photos of its
    identity, on the card's similarity scale (-inf: no embedding)."""
    out = {}
    reals = flags[flags.is_deepfake == 0]
    for _ident, g in reals.groupby("identity"):
        keys = [k for k in g.key if np.isfinite(emb_by_key[k]).all()]
        out.update({k: -np.inf for k in set(g.key) - set(keys)})
        if len(keys) < 2:
            out.update({k: np.inf for k in keys})
            continue
        e = np.stack([emb_by_key[k] for k in keys])
        s = card.raw_similarity_matrix(e)
        out.update(zip(keys, card.scale((s.sum(1) - np.diag(s)) / (len(keys) - 1))))
    return out


def centroid_same_count(scores: dict[str, float], n: int) -> set[str]:
    """The ``n`` photos with the lowest baseline score (same flag budget as clean)."""
    return set(sorted(scores, key=lambda k: scores[k])[:n])


def centroid_best(scores: dict[str, float], truth: set[str]) -> tuple[float, tuple[float, float, float]]:
    """Oracle: the baseline threshold with the best F1 against the truth (an upper bound)."""
    best = (0.0, (0.0, 0.0, 0.0))
    for t in np.arange(-1.0, 1.0, 0.01):
        r = prf({k for k, v in scores.items() if v < t}, truth)
        if r[2] > best[1][2]:
            best = (float(t), r)
    return best


def cleanlab_flags(flags, emb_by_key: dict) -> set[str] | str:
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return "cleanlab not installed"
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    reals = flags[flags.is_deepfake == 0]
    keys = [k for k in reals.key if np.isfinite(emb_by_key[k]).all()]
    labels_s = reals.set_index("key").loc[keys, "identity"].to_numpy()
    names = sorted(set(labels_s))
    y = np.array([names.index(v) for v in labels_s])
    x = np.stack([emb_by_key[k] for k in keys])
    folds = max(2, min(5, int(np.bincount(y).min())))
    probs = cross_val_predict(LogisticRegression(C=10.0, max_iter=2000), x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0), method="predict_proba")
    issues = find_label_issues(y, probs)
    return {k for k, bad in zip(keys, issues) if bad}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="auto", help="what --model takes (default: the engine's default encoder)")
    ap.add_argument("--cache", default=None, help="engine cache folder (default: $FAKEPROOF_HOME/engine); verify_peers.py's --cache shares its crops")
    ap.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7")
    ap.add_argument("--rates", default="0.1,0.2")
    ap.add_argument("--seeds", default="0", help="noise seeds: 0,1,2 or a range 0-9")
    ap.add_argument("--only", default=None, help="celeba-mini, five-celebrities or celeba-pairs")
    ap.add_argument("--celeba-pairs", action="store_true", help="also ../shared/data/celeba-pairs: its identities with >= 3 photos (89x109 aligned crops), a larger confirmation set")
    ap.add_argument("--fast", action="store_true", help="five-celebrities, 10% noise, threshold 0.5, seed 0")
    ap.add_argument("--quiet", action="store_true", help="only the summary tables")
    ap.add_argument("--no-cleanlab", action="store_true", help="skip cleanlab (minutes per run on celeba-pairs' ~800 classes)")
    args = ap.parse_args()
    if args.fast:
        args.only, args.rates, args.thresholds, args.seeds = "five-celebrities", "0.1", "0.5", "0"
    a, _, b = args.seeds.partition("-")
    seeds = list(range(int(a), int(b) + 1)) if b else [int(x) for x in args.seeds.split(",")]
    if not SHARED_DATA.exists():
        print(f"SKIP: {SHARED_DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return
    from fakeproof.curate.clean import run_clean
    from fakeproof.engine import FaceEngine
    from fakeproof.ui import console, summary_table

    thresholds = [float(t) for t in args.thresholds.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    eng = FaceEngine(args.model, cache_dir=args.cache)
    console.width = max(console.width, 170)
    pre_cache: dict = {}

    def preexisting(name: str, src: Path, t: float) -> set[str]:
        """Real photos clean flags on the source itself (no injected noise) at threshold t."""
        if (name, t) not in pre_cache:
            r = run_clean(src, t, engine=eng, out=tmp / "pre" / f"{name}-{t}", max_heatmaps=0, progress=False)
            ff = r.analysis.flags
            pre_cache[name, t] = set(ff.key[ff.flagged & (ff.is_deepfake == 0)])
        return pre_cache[name, t]
    console.print(f"encoder {eng.spec.name}, align margin {eng.margin}, detector {eng.detector_name}")
    with tempfile.TemporaryDirectory(prefix="fakeproof-curate-noise-") as tmp:
        tmp = Path(tmp)
        sources = {}
        if (SHARED_DATA / "celeba-mini").exists() and args.only in (None, "celeba-mini"):
            from fakeproof.generate.celeba import convert_celeba

            convert_celeba(SHARED_DATA / "celeba-mini", tmp / "celeba-mini", progress=False)
            sources["celeba-mini"] = tmp / "celeba-mini"
        if (SHARED_DATA / "five-celebrities").exists() and args.only in (None, "five-celebrities"):
            sources["five-celebrities"] = SHARED_DATA / "five-celebrities"
        if (SHARED_DATA / "celeba-pairs").exists() and (args.celeba_pairs or args.only == "celeba-pairs") and args.only in (None, "celeba-pairs"):
            sources["celeba-pairs"] = celeba_pairs_layout(SHARED_DATA / "celeba-pairs", tmp / "celeba-pairs")
        summary_rows, sweep = [], {}
        for name, src, rate, seed in [(n, s_, r, sd) for n, s_ in sources.items() for r in rates for sd in seeds]:
            if True:
                root = tmp / f"{name}-noise{int(rate * 100)}-seed{seed}"
                true_id = noisy_copy(src, root, rate, seed)
                truth = set(true_id)
                rows = []
                for t in thresholds:
                    pre = preexisting(name, src, t)
                    t0 = time.perf_counter()
                    res = run_clean(root, t, engine=eng, out=tmp / "out" / f"{root.name}-{t}", max_heatmaps=0, progress=False)
                    dt = time.perf_counter() - t0
                    f = res.analysis.flags
                    real = f[f.is_deepfake == 0]
                    flagged = set(real.key[real.flagged])
                    p, r, f1 = prf(flagged, truth)
                    p_adj = prf(flagged - pre, truth)[0]
                    hit = real[real.key.isin(flagged & truth)]
                    sug = np.mean([s == true_id[k] for k, s in zip(hit.key, hit.suggested_identity)]) if len(hit) else float("nan")
                    emb = _embeddings(res.out)
                    scores = centroid_scores(f, emb, eng.card)
                    bp, br, bf = prf(centroid_same_count(scores, len(flagged)), truth)
                    rows.append((t, len(flagged), p, r, f1, p_adj, sug, bp, br, bf, f"{dt:.1f}s"))
                    if t == 0.5:
                        summary_rows.append((name, f"{rate:.0%}", seed, len(truth), p, r, f1, p_adj, bf))
                        sweep.setdefault((name, rate), []).append([p, r])
                bt, (bbp, bbr, bbf) = centroid_best(scores, truth)
                if not args.quiet:
                    console.print(
                        summary_table(
                            f"{name}: {len(real)} real photos, {rate:.0%} noise ({len(truth)} moved, seed {seed}), encoder {eng.spec.name}",
                            rows,
                            ["threshold", "flagged", "P", "R", "F1", "P excl. pre-existing", "suggestion right", "centroid P", "centroid R", "centroid F1", "clean time"],
                        )
                    )
                    console.print(f"  centroid baseline with the same number of flags as clean (columns above); at its best threshold {bt:.2f} (oracle): P {bbp:.3f} R {bbr:.3f} F1 {bbf:.3f}")
                cl = "cleanlab skipped (--no-cleanlab)" if args.no_cleanlab else cleanlab_flags(f, emb)
                cl_prf = prf(cl, truth) if isinstance(cl, set) else None
                if not args.quiet:
                    console.print("  " + (cl if cl_prf is None else "cleanlab find_label_issues (logistic regression, out-of-fold): P {:.3f} R {:.3f} F1 {:.3f} ({} flagged)".format(*cl_prf, len(cl))))
                if summary_rows and summary_rows[-1][:3] == (name, f"{rate:.0%}", seed):
                    summary_rows[-1] = summary_rows[-1] + (bbf, "n/a" if cl_prf is None else cl_prf[2])
                    sweep[name, rate][-1] += [float("nan"), float("nan")] if cl_prf is None else list(cl_prf[:2])
        if not args.quiet:
            console.print(
                summary_table(
                    "at --threshold 0.5 (target: P >= 0.90 at R >= 0.95)",
                    summary_rows,
                    ["dataset", "noise", "seed", "moved", "P", "R", "F1", "P excl. pre-existing", "centroid F1 (same count)", "centroid F1 (oracle t)", "cleanlab F1"],
                )
            )
        agg = []
        for (name, rate), v in sweep.items():
            v = np.array([x + [float("nan")] * (4 - len(x)) for x in v], float)
            agg.append((name, f"{rate:.0%}", len(v), f"{v[:, 0].mean():.3f} ({v[:, 0].min():.3f})", f"{v[:, 1].mean():.3f} ({v[:, 1].min():.3f})",
                        "n/a" if np.isnan(v[:, 2]).all() else f"{np.nanmean(v[:, 2]):.3f} ({np.nanmin(v[:, 2]):.3f})",
                        "n/a" if np.isnan(v[:, 3]).all() else f"{np.nanmean(v[:, 3]):.3f} ({np.nanmin(v[:, 3]):.3f})"))
        console.print(summary_table(f"curate clean --threshold 0.5 ({eng.spec.name}) vs cleanlab, same embeddings: mean (worst seed) over seeds {args.seeds}",
                                    agg, ["dataset", "noise", "seeds", "clean P", "clean R", "cleanlab P", "cleanlab R"]))


def _embeddings(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "embeddings.npz") as z:
        return dict(zip(z["keys"].tolist(), z["embeddings"]))


if __name__ == "__main__":
    main()
