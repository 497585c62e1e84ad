"""Benchmark: does the deepfake defence generalise to a generator family it never saw?

    .venv/bin/python benchmarks/train_cross_generator.py [--minutes 4] [--work DIR] [--train-args "..."]
    .venv/bin/python benchmarks/train_cross_generator.py --fast      # tiny, package-shipped faces (a test runs it)

Leave-one-family-out, with the commands a user has:

1. ``fakeproof generate celeba ../shared/data/celeba-mini`` -> training layout (60 ids x 6 photos);
   ``generate deepfakes --backends classic,selfblend,morph`` -> fakes of every family for everyone;
2. ``train pairs --test-fraction`` once with every family (its test split is what we measure on),
   and once per family F with ``--holdout-backend F`` (F's fakes in no training or validation pair);
   the identity split is the same in all of them (it depends on the seed and identities only);
3. ``train run --pairs`` for each F (the checkpoint is chosen on validation, where F is absent),
   and once on every family ("all");
4. on the TEST identities (never seen by training): attack acceptance per family at the
   genuine-pair EER threshold, and the genuine-pair EER, for the stock encoder and every run;
5. ``../shared/data/deepfakes-dev`` (real neural deepfakes; EVALUATION ONLY, nothing is chosen
   with it): acceptance of its fakes at the real-pair EER threshold of its own genuine / impostor
   pairs, and that EER.

The table: one row per model; "held-out acc." is the acceptance of the family the row never saw.
``--train-args`` passes a training recipe to every ``train run`` (e.g. ``"--tune norm --lr 1e-3"``).
"""
from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import time
from pathlib import Path

from _common import SHARED_DATA, shared_or_skip

import numpy as np  # noqa: E402
import torch  # noqa: E402

FAMILIES = ("classic", "selfblend", "morph")


def cli(*args: str) -> float:
    """Run one ``fakeproof`` command in this process (the very code the console script runs)."""
    from fakeproof.cli import app

    t = time.perf_counter()
    print("$ fakeproof", " ".join(shlex.quote(a) for a in args), flush=True)
    rc = app(list(args), standalone_mode=False)
    if rc not in (None, 0):
        raise SystemExit(f"fakeproof {args[0]} {args[1]} failed (exit {rc})")
    return time.perf_counter() - t


def embed(engine, paths: list[Path]) -> dict[Path, np.ndarray]:
    uniq = sorted(set(paths))
    res = engine.embed_paths(uniq, progress=False)
    return {p: e for p, e in zip(uniq, res.embeddings) if not np.isnan(e).any()}


def test_metrics(engine, ds: Path, pairs) -> dict:
    """Genuine-pair EER and attack acceptance (overall and per family) on ``pairs``."""
    from fakeproof.metrics import pair_metrics

    emb = embed(engine, [ds / "images" / k for p in pairs for k in (p.a, p.b)])
    ok = [p for p in pairs if ds / "images" / p.a in emb and ds / "images" / p.b in emb]
    cos = np.array([float(emb[ds / "images" / p.a] @ emb[ds / "images" / p.b]) for p in ok])
    fams = np.array([p.backend if p.kind == "deepfake" else "" for p in ok], dtype=object)
    m = pair_metrics(cos, np.array([p.label for p in ok]), np.array([p.kind for p in ok]), fams)
    m["pairs"] = len(ok)
    m["cos"] = {pair_key(p): float(c) for p, c in zip(ok, cos)}  # for the paired bootstrap of --compare
    return m


def pair_key(p) -> str:
    return f"{p.a}|{p.b}"


@torch.no_grad()
def head_logits(guard, engine, paths: list[Path]) -> dict[Path, float]:
    """The artefact head's logit of each photo the engine can align (flip-averaged, eval mode)."""
    guard.eval()
    _recs, crops = engine.crops(paths, progress=False)
    ok = [(p, c) for p, c in zip(paths, crops) if c is not None]
    out = {}
    for s in range(0, len(ok), 64):
        chunk = ok[s : s + 64]
        logits = guard.artefact_logit(guard.to_input([c for _, c in chunk])).float().cpu().numpy()
        out.update({p: float(v) for (p, _), v in zip(chunk, logits)})
    return out


def head_detection(guard, engine, ds: Path, test, dev: Path | None) -> dict:
    """The artefact head judged as a deepfake detector, DeepfakeBench's way: ROC AUC of its logit,
    the test identities' real photos against each family's fakes (``head_auc:F``) and, where
    given, deepfakes-dev's real photos against its neural fakes (``head_auc:dev``). A head that
    cannot rank fakes above reals cannot lower acceptance at any threshold without rejecting reals."""
    import pandas as pd

    from fakeproof.metrics import roc_auc

    def auc(logit: dict[Path, float], fake: set[Path]) -> float | None:
        r, f = [v for k, v in logit.items() if k not in fake], [v for k, v in logit.items() if k in fake]
        return roc_auc([0] * len(r) + [1] * len(f), r + f) if r and f else None

    images = ds / "images"
    family = {images / p.b: p.backend for p in test if p.kind == "deepfake"}
    logit = head_logits(guard, engine, sorted({images / k for p in test for k in (p.a, p.b)}))
    out = {}
    for f in sorted(set(family.values())):  # real photos against this family's fakes (other fakes left out)
        v = auc({k: s for k, s in logit.items() if family.get(k, f) == f}, {k for k, g in family.items() if g == f})
        if v is not None:
            out[f"head_auc:{f}"] = v
    if dev is not None:
        df = pd.read_csv(dev / "pairs.csv", dtype=str, keep_default_na=False)
        v = auc(head_logits(guard, engine, sorted({dev / k for k in pd.concat([df.path_a, df.path_b])})), {dev / k for k in df.path_b[df.kind == "deepfake_of_identity"]})
        if v is not None:
            out["head_auc:dev"] = v
    return out


def dev_metrics(engine, dev: Path) -> dict:
    """deepfakes-dev: real-pair EER (its genuine vs impostor pairs) and the share of its
    (real, neural fake) pairs accepted at that EER's threshold."""
    import pandas as pd

    from fakeproof.metrics import acceptance_rate, compute_eer

    df = pd.read_csv(dev / "pairs.csv", dtype=str, keep_default_na=False)
    emb = embed(engine, [dev / p for p in pd.concat([df.path_a, df.path_b])])
    df = df[[dev / a in emb and dev / b in emb for a, b in zip(df.path_a, df.path_b)]]
    cos = np.array([float(emb[dev / a] @ emb[dev / b]) for a, b in zip(df.path_a, df.path_b)])
    real = df.kind.isin(["genuine", "impostor"]).to_numpy()
    e = compute_eer((df.kind[real] == "genuine").astype(int).to_numpy(), cos[real])
    fake = (df.kind == "deepfake_of_identity").to_numpy()
    return {"dev_real_eer": float(e.eer), "dev_threshold": float(e.threshold), "dev_acceptance": acceptance_rate(cos[fake], e.threshold), "dev_fake_pairs": int(fake.sum())}


def recalibrate(guard, run_dir: Path, false_alarm: float) -> None:
    """Set a guarded encoder's head threshold at ``false_alarm`` of the run's VALIDATION real
    photos (the run's own crop store); ``train run`` itself sets it under the EER budget (``--gate-eer-budget``)."""
    from fakeproof.train.artefact import calibrate
    from fakeproof.train.data import CropStore, PairTable
    from fakeproof.train.pairs import read_pairs_csv

    store = CropStore.open(run_dir / "data")
    val = PairTable.from_pairs([p for p in read_pairs_csv(run_dir / "pairs.csv") if p.split == "val"], store)
    calibrate(guard, store, val, false_alarm)
    guard.fingerprint = None  # a new threshold: new embeddings


def prepare_data(args, work: Path) -> tuple[Path, tuple[str, ...]]:
    ds = work / "ds"
    fams = tuple(args.families.split(","))
    if args.fast:
        from fakeproof.generate.runner import generate_deepfakes
        from fakeproof.sample_data import make_sample_dataset

        if not (ds / "meta.json").exists():
            make_sample_dataset(ds, photos_per_identity=3, seed=args.seed, size=192)
        generate_deepfakes(ds, list(fams), per_identity=len(fams), seed=args.seed, progress=False)
        return ds, fams
    celeba = shared_or_skip("celeba-mini")
    if not (ds / "meta.json").exists():
        cli("generate", "celeba", str(celeba), "--out", str(ds), "--seed", str(args.seed))
    cli("generate", "deepfakes", str(ds), "--backends", ",".join(fams), "--per-identity", str(args.fakes), "--seed", str(args.seed), "--device", "cpu")
    return ds, fams


EER_BUDGET = 0.005  # a recipe may cost at most 0.5 point of genuine-pair EER on any held-out row


BOOTSTRAP = 1000  # identity resamples behind the recipe table's confidence intervals


def protocol_figures(cos: dict[str, np.ndarray], test, idx: np.ndarray) -> dict:
    """Genuine-pair EER and per-family acceptance (at that EER's threshold) of each model in
    ``cos`` (name -> cosine per test pair, NaN where missing), on the test pairs ``idx``: the
    very :func:`fakeproof.metrics.pair_metrics` of :func:`test_metrics`, on a resample."""
    from fakeproof.metrics import FAMILY_PREFIX, pair_metrics

    kind = np.array([p.kind for p in test])[idx]
    label = np.array([p.label for p in test])[idx]
    fam = np.array([p.backend for p in test], dtype=object)[idx]
    out = {}
    for name, c in cos.items():
        ok = ~np.isnan(c[idx])
        m = pair_metrics(c[idx][ok], label[ok], kind[ok], fam[ok])
        out[name] = {"eer": m["genuine_eer"], **{k[len(FAMILY_PREFIX):]: v for k, v in m.items() if k.startswith(FAMILY_PREFIX)}}
    return out


def recipe_row(tag: str, bench: dict, test=None) -> dict:
    """One recipe's protocol figures: held-out acceptance of each rotation (its mean and worst),
    the largest genuine-EER rise over stock among the held-out rows, deepfakes-dev acceptance
    (mean over the rotations; evaluation only, never used to choose). With ``test`` (the test
    pairs) and per-pair cosines in ``bench``: 95% intervals, over test identities resampled with
    replacement, of the change in mean held-out acceptance and of the worst EER rise, both
    paired with stock on the same resample."""
    res = bench["results"]
    stock = res["stock"]
    held = {k.replace("without ", ""): v for k, v in res.items() if k.startswith("without ") and " @ " not in k}
    acc = {f: m[f"attack_acceptance:{f}"] for f, m in held.items()}
    rise = max(m["genuine_eer"] - stock["genuine_eer"] for m in held.values()) if held else float("nan")
    dev = [m["dev_acceptance"] for m in held.values() if "dev_acceptance" in m]
    row = {"recipe": tag, "train_args": bench["args"].get("train_args", ""), "steps": bench["args"].get("steps"), "held_out": acc,
           "mean_held_out": float(np.mean(list(acc.values()))) if acc else float("nan"), "worst_held_out": max(acc.values()) if acc else float("nan"),
           "max_eer_rise": rise, "dev_acceptance": float(np.mean(dev)) if dev else float("nan"), "delta_ci": None, "rise_ci": None}
    if test is not None and held and all("cos" in m for m in [stock, *held.values()]):
        from fakeproof.metrics import group_bootstrap

        keys = [pair_key(p) for p in test]
        cos = {name: np.array([m["cos"].get(k, np.nan) for k in keys]) for name, m in [("stock", stock), *held.items()]}
        deltas, rises = [], []
        for idx in group_bootstrap([p.identity for p in test], BOOTSTRAP, seed=0):
            fig = protocol_figures(cos, test, idx)
            d = [fig[f].get(f, np.nan) - fig["stock"].get(f, np.nan) for f in held]
            deltas.append(float(np.mean([v for v in d if not np.isnan(v)])) if not np.isnan(d).all() else np.nan)
            rises.append(max(fig[f]["eer"] - fig["stock"]["eer"] for f in held))
        row["delta_ci"] = [float(v) for v in np.nanpercentile(deltas, [2.5, 97.5])]
        row["rise_ci"] = [float(v) for v in np.percentile(rises, [2.5, 97.5])]
    return row


def stock_row(bench: dict) -> dict:
    s = bench["results"]["stock"]
    fams = [k.split(":", 1)[1] for k in s if k.startswith("attack_acceptance:")]
    acc = {f: s[f"attack_acceptance:{f}"] for f in fams}
    return {"recipe": "stock (no training)", "train_args": "", "steps": 0, "held_out": acc, "mean_held_out": float(np.mean(list(acc.values()))),
            "worst_held_out": max(acc.values()), "max_eer_rise": 0.0, "dev_acceptance": s.get("dev_acceptance", float("nan")), "delta_ci": None, "rise_ci": None}


def beats_stock(row: dict, stock: dict) -> bool:
    """The protocol's bar: within :data:`EER_BUDGET` on every rotation, and held-out acceptance
    lower than stock's beyond the noise of which people are in the test split (the upper end of
    the paired 95% interval of the change is below 0)."""
    return row["max_eer_rise"] <= EER_BUDGET and row["mean_held_out"] < stock["mean_held_out"] and row["delta_ci"] is not None and row["delta_ci"][1] < 0


def compare(work: Path, tags: list[str]) -> dict:
    """The recipe table over saved runs (``WORK/benchmark_TAG.json``) and the protocol's choice:
    the lowest mean held-out acceptance among recipes that :func:`beats_stock`; stock when none
    does. deepfakes-dev is shown, never used."""
    from fakeproof.train.pairs import read_pairs_csv
    from fakeproof.ui import console, summary_table

    benches = {t: json.loads((work / f"benchmark_{t}.json").read_text()) for t in tags}
    test = [p for p in read_pairs_csv(work / "pairs_all.csv") if p.split == "test"]
    rows = [stock_row(next(iter(benches.values())))] + [recipe_row(t, b, test) for t, b in benches.items()]
    better = [r for r in rows[1:] if beats_stock(r, rows[0])]
    winner = min(better, key=lambda r: (r["mean_held_out"], r["max_eer_rise"])) if better else rows[0]
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    ci = lambda v, unit: f"[{100 * v[0]:+.1f}, {100 * v[1]:+.1f}]{unit}" if v else "-"  # noqa: E731
    fams = list(rows[0]["held_out"])
    table = [[r["recipe"] + (" *" if r is winner else ""), r["train_args"] or "-", str(r["steps"])] + [pct(r["held_out"].get(f, float("nan"))) for f in fams]
             + [pct(r["mean_held_out"]), ci(r["delta_ci"], " pt"), f"{100 * r['max_eer_rise']:+.1f} pt", ci(r["rise_ci"], " pt"), pct(r["dev_acceptance"])] for r in rows]
    cols = (["recipe", "train run options", "steps"] + [f"held-out {f}" for f in fams]
            + ["mean held-out", "vs stock, 95% CI", "worst EER rise", "worst EER rise, 95% CI", "deepfakes-dev acc."])
    title = (f"recipes by the leave-one-family-out protocol (* = chosen: lowest mean held-out acceptance within +{100 * EER_BUDGET:.1f} pt genuine EER, "
             f"lower than stock's beyond the 95% interval over {len({p.identity for p in test})} test identities resampled {BOOTSTRAP} times)")
    console.print(summary_table(title, table, cols))
    out = {"rows": rows, "winner": winner["recipe"]}
    (work / "recipes.json").write_text(json.dumps(out, indent=1))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="keep everything here (default: a temp folder); finished runs are reused")
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget of each run (wall clock)")
    ap.add_argument("--steps", type=int, default=None, help="training budget of each run in optimizer steps instead of minutes (fair on a shared machine)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--fakes", type=int, default=6, help="fakes per identity, spread over the families")
    ap.add_argument("--encoder", default="auto", help="the base encoder (default: the engine's default, dlib_resnet without AdaFace weights)")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--val-fraction", type=float, default=0.25)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--train-args", default="", help="the recipe: extra `train run` options for every run (default: train run's own defaults)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fast", action="store_true", help="package-shipped faces, 2 steps per run, no deepfakes-dev: a smoke test")
    ap.add_argument("--runs", default=None, help="only these runs (comma list of held-out families and/or 'all')")
    ap.add_argument("--false-alarms", default="", help=(
        "runs with an artefact head: also re-calibrate it at these shares of flagged validation real photos "
        "(e.g. 0.005,0.02,0.05) and add a row each: the trade-off curve"
    ))
    ap.add_argument("--tag", default="default", help="runs go to WORK/runs/TAG/ (compare recipes on the same data and split)")
    ap.add_argument("--compare", default=None, help="TAG[,TAG...]: no training; the recipe table over WORK/benchmark_TAG.json files and the protocol's choice")
    args = ap.parse_args(argv)
    if args.compare:
        if args.work is None:
            raise SystemExit("--compare needs --work (where the benchmark_TAG.json files are)")
        return compare(args.work, args.compare.split(","))

    work = args.work or Path(tempfile.mkdtemp(prefix="fakeproof-xgen-"))
    work.mkdir(parents=True, exist_ok=True)
    ds, fams = prepare_data(args, work)
    split = ["--seed", str(args.seed), "--val-fraction", str(args.val_fraction), "--test-fraction", str(args.test_fraction)]
    pairs_all = work / "pairs_all.csv"
    cli("train", "pairs", str(ds), "--out", str(pairs_all), *split)
    runs = {"all": pairs_all}
    for f in fams:
        runs[f"without {f}"] = work / f"pairs_without_{f}.csv"
        cli("train", "pairs", str(ds), "--out", str(runs[f"without {f}"]), *split, "--holdout-backend", f)
    if args.runs:
        keep = set(args.runs.split(","))
        runs = {k: v for k, v in runs.items() if k.replace("without ", "") in keep}
    enc_args = ["--model", args.encoder] + (["--weights", args.weights] if args.weights else [])
    if args.fast:
        budget = ["--max-steps", "2", "--batch-size", "4", "--val-every", "1"]
    elif args.steps:
        budget = ["--max-steps", str(args.steps), "--epochs", "1000", "--val-every", str(max(1, args.steps // 5))]
    else:
        budget = ["--max-minutes", str(args.minutes), "--epochs", "1000", "--val-every", "100"]  # tens of seconds of training between validations on 2 cores
    times = {}
    for name, pairs in runs.items():
        out = work / "runs" / args.tag / name.replace(" ", "_")
        if not (out / "summary.json").exists():
            times[name] = cli("train", "run", str(ds), "--out", str(out), "--pairs", str(pairs), *enc_args, *budget, *shlex.split(args.train_args),
                              "--seed", str(args.seed), "--device", "cpu", "--no-progress")

    from fakeproof.engine import FaceEngine
    from fakeproof.engine.checkpoint_reader import load_trained_encoder
    from fakeproof.train.pairs import read_pairs_csv
    from fakeproof.ui import console, summary_table

    pairs = read_pairs_csv(pairs_all)
    test = [p for p in pairs if p.split == "test"]
    trained_on = {p.identity for p in pairs if p.split in ("train", "val")}
    assert not trained_on & {p.identity for p in test}, "test identities leaked into training"
    dev = SHARED_DATA / "deepfakes-dev"
    use_dev = dev.exists() and not args.fast
    cache = work / "engine-cache"
    stock = FaceEngine(args.encoder, device="cpu", cache_dir=cache, weights=args.weights)
    results = {"stock": {**test_metrics(stock, ds, test), **(dev_metrics(stock, dev) if use_dev else {})}}
    for name in runs:
        enc, _conf = load_trained_encoder(work / "runs" / args.tag / name.replace(" ", "_"), device="cpu")
        eng = FaceEngine(enc, device="cpu", cache_dir=cache)
        results[name] = {**test_metrics(eng, ds, test), **(dev_metrics(eng, dev) if use_dev else {})}
        results[name]["summary"] = json.loads((work / "runs" / args.tag / name.replace(" ", "_") / "summary.json").read_text())
        if getattr(enc, "head", None) is not None:
            results[name].update(head_detection(enc, eng, ds, test, dev if use_dev else None))
            for fa in [float(v) for v in args.false_alarms.split(",") if v.strip()]:
                recalibrate(enc, work / "runs" / args.tag / name.replace(" ", "_"), fa)
                eng = FaceEngine(enc, device="cpu", cache_dir=cache)
                results[f"{name} @ {100 * fa:g}% flagged"] = {**test_metrics(eng, ds, test), **(dev_metrics(eng, dev) if use_dev else {})}

    def pct(v):
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}%"

    base = results["stock"]["genuine_eer"]
    rows = []
    for name, m in results.items():
        held = name.split(" @ ")[0].replace("without ", "") if name.startswith("without ") else None
        row = [name, pct(m.get(f"attack_acceptance:{held}")) if held else "-"]
        row += [pct(m.get(f"attack_acceptance:{f}")) for f in fams]
        row += [pct(m["genuine_eer"]), f"{100 * (m['genuine_eer'] - base):+.1f} pt" if name != "stock" else ""]
        if use_dev:
            row += [pct(m["dev_acceptance"]), pct(m["dev_real_eer"])]
        rows.append(row)
    cols = ["model (trained on)", "held-out acc."] + [f"acc. {f}" for f in fams] + ["genuine EER", "vs stock"]
    if use_dev:
        cols += ["deepfakes-dev acc.", "dev real EER"]
    if any(k.startswith("head_auc:") for m in results.values() for k in m):  # guarded runs: the head as a detector
        for name, row in zip(results, rows):
            held = name.split(" @ ")[0].replace("without ", "") if name.startswith("without ") else None
            m = results[name]
            row += [f"{m[f'head_auc:{held}']:.2f}" if held and f"head_auc:{held}" in m else "-", f"{m['head_auc:dev']:.2f}" if "head_auc:dev" in m else "-"]
        cols += ["head AUC held-out", "head AUC dev"]
    n_ids = len({p.identity for p in test})
    console.print(summary_table(f"leave-one-family-out on {n_ids} test identities ({results['stock']['pairs']} pairs); recipe: {args.train_args}", rows, cols))
    steps = {k: v["summary"]["steps"] for k, v in results.items() if "summary" in v}
    console.print(f"acceptance = share of (real, fake) pairs accepted at the genuine-pair EER threshold; training steps per run: {steps}; work: {work}", soft_wrap=True)
    out = {"results": results, "args": {k: str(v) for k, v in vars(args).items()}, "times": times}
    (work / f"benchmark_{args.tag}.json").write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
