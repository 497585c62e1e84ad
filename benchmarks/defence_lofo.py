"""Leave-one-family-out protocol for the deepfake detector (issue #20), CPU or GPU.

Step 1 (where the photos are; needs the face engine):
    python benchmarks/defence_lofo.py --build-pack .cache/pack.npz            # ../shared/data sets
    python benchmarks/defence_lofo.py --build-pack .cache/offline.npz --sets offline --offline DS
Step 2 (anywhere with numpy, OpenCV, scikit-learn and torch; no detector, no dlib package):
    python benchmarks/defence_lofo.py --pack .cache/pack.npz --pack .cache/offline.npz
    python benchmarks/defence_lofo.py --pack P1 --pack P2 --device cuda --full --dlib-weights DIR_OR_FILE
    python benchmarks/defence_lofo.py --markdown RESULTS.json     # the README's tables of a run

Detectors compared, every one trained on the same items of each fold with the same family balance:
``spectrum`` (azimuthal FFT spectrum + residual moments, logistic regression), ``dlib`` (frozen pooled
block activations of the shipped dlib face ResNet, logistic regression), ``facenet`` (the same for the shipped
FaceNet: stem, Block35, Block17 and Block8 stacks pooled on the crops resized to 160 px; the same head),
``cnn`` (a small CNN trained from scratch on high-pass residuals), ``dlib_ft`` (dlib's lower blocks fine-tuned
end to end; GPU-sized), ``local`` (local noise / sharpness / colour statistics on a grid of patches of the full
192-px crop, pooled over inner face, blending ring and outside, with inner-minus-ring differences; logistic
regression), ``stack`` (spectrum + dlib + local features side by side, one logistic regression) and
``spectrum_full`` (the spectrum features on the full 192-px crop instead of 128 px) and ``consistency`` (does the inner
face carry the identity of its surroundings? frozen dlib descriptors of five views of the 192-px crop, tight inner
face to wide context with the inner face greyed, and their pairwise cosines and distances; logistic regression). Paired differences of the mean held-out AUC are reported for every pair of detectors
(``auc_pairs`` in the results). Families: the 7 neural ones of deepfakes-train (the four FF++ methods as one)
and the offline ``classic``, ``selfblend``, ``morph``. Items are split by
(group, footage unit) into train 55% / validation 15% / test 30% (``detect_fakes.corpus.footage_unit``: a fake and
the real footage it was rendered onto are one unit, so a scene is never "fake" in training and "real" in testing);
holding family F out removes F's fakes, and the reals of the footage they were made on, from training; F is scored on all its fakes against the test-split reals of its group. deepfakes-dev
is scored by the detector trained on every family, and chooses nothing. The gate (``detect_fakes.gate``)
takes the strictest realness threshold whose genuine-pair EER rise is <= 0.5 point on the validation
pairs (offline validation identities and celeba-pairs fold 1); it is checked on celeba-pairs fold 2
and the offline test identities. 95% intervals resample whole identities / videos
(``fakeproof.metrics.group_bootstrap``), paired across detectors.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fakeproof.data.atomic import atomic_write_text, replacing
from fakeproof.detect_fakes.crops import CROP_MARGIN
from fakeproof.detect_fakes.gate import choose_tau, eer, gated, realness
from fakeproof.detect_fakes.pack import Pack, load_pack
from fakeproof.metrics import group_bootstrap, roc_auc

NEURAL = ("dfdc_mixed_methods", "stylegan2_tpdne", "deepfacelive_dfm", "inswapper_128", "celebdf_v2_synthesis", "stylegan3_r_ffhq", "ffpp")
OFFLINE = ("classic", "selfblend", "morph")
DETECTORS = ("spectrum", "dlib", "cnn")  # the default
TRAINED = ("cnn", "dlib_ft")  # learn from pixels (fakeproof.detect_fakes.training); dlib_ft is GPU-sized
# frozen encoders + logistic regression: detector -> (loader, feature function) names in detect_fakes.features;
# each loader takes the --<detector>-weights file (or None: the installed package's weights)
FROZEN = {"dlib": ("load_dlib_net", "dlib_block_features"), "facenet": ("load_facenet_net", "facenet_block_features")}
FULL_SIZE = ("local", "spectrum_full", "consistency")  # computed on the pack's stored crop (192 px), whatever --crop-size says
STACKED = ("spectrum", "dlib", "local")  # ``stack``: these features concatenated, one logistic regression
CHOICES = ("spectrum", *FROZEN, *TRAINED, *FULL_SIZE, "stack")
SPLIT = (0.55, 0.15)  # train, validation; the rest is test


def family_of(fam: str) -> str:
    return "ffpp" if fam.startswith("ffpp_") and fam != "ffpp_original" else fam


def split_of(group: str, identity: str) -> str:
    h = int(hashlib.blake2b(f"{group}|{identity}".encode(), digest_size=8).hexdigest(), 16) / 2**64
    return "train" if h < SPLIT[0] else "val" if h < SPLIT[0] + SPLIT[1] else "test"


def concat_packs(packs: list[Pack]) -> Pack:
    if len(packs) == 1:
        return packs[0]
    off = np.cumsum([0] + [len(p.crops_jpeg) for p in packs[:-1]])
    cat = np.concatenate
    return Pack(
        [b for p in packs for b in p.crops_jpeg], cat([p.emb for p in packs]), cat([p.label for p in packs]), cat([p.family for p in packs]),
        cat([p.group for p in packs]), cat([p.identity for p in packs]), cat([p.source for p in packs]), cat([p.ok for p in packs]),
        cat([p.pair_a + o for p, o in zip(packs, off)]), cat([p.pair_b + o for p, o in zip(packs, off)]), cat([p.pair_kind for p in packs]),
        cat([p.pair_source for p in packs]), cat([p.pair_fold for p in packs]),
    )


# -- features and detectors ---------------------------------------------------------------------------

def cached(path: Path, key: str, fn):
    f = path.with_name(path.name + f".{key}.npy")
    if f.exists():
        return np.load(f)
    x = fn()
    with replacing(f, ".tmp.npy") as tmp:  # np.save keeps a name that already ends in .npy
        np.save(tmp, x)
    return x


def fit_lr(x, y, w, seed=0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000, random_state=seed))
    clf.fit(x, y, logisticregression__sample_weight=w / w.mean())
    return clf


def balance_weights(fam: np.ndarray, group: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Each fake family the same total weight, each real group the same, fakes and reals half each."""
    w = np.zeros(len(fam))
    fakes, reals = label == 1, label == 0
    for f in np.unique(fam[fakes]):
        m = fakes & (fam == f)
        w[m] = 1.0 / m.sum()
    for g in np.unique(group[reals]):
        m = reals & (group == g)
        w[m] = 1.0 / m.sum()
    w[fakes] /= w[fakes].sum()
    w[reals] /= w[reals].sum()
    return w


# -- metrics with intervals -----------------------------------------------------------------------------

def auc_with_ci(y, scores: dict[str, np.ndarray], groups, n_boot: int, seed: int = 0):
    """{detector: (AUC, lo, hi)} and the bootstrap AUC draws (paired: the same resamples for all)."""
    point = {k: roc_auc(y, s) for k, s in scores.items()}
    draws = {k: [] for k in scores}
    for idx in group_bootstrap(groups, n_boot, seed):
        yy = y[idx]
        if yy.min() == yy.max():
            continue
        for k, s in scores.items():
            draws[k].append(roc_auc(yy, s[idx]))
    out = {k: (point[k], *(np.percentile(draws[k], [2.5, 97.5]) if draws[k] else (np.nan, np.nan))) for k in scores}
    return out, {k: np.array(v) for k, v in draws.items()}


def rate_ci(hits: np.ndarray, groups, n_boot: int, seed: int = 0):
    hits = np.asarray(hits, float)
    if len(hits) == 0:
        return (float("nan"),) * 3
    d = [hits[i].mean() for i in group_bootstrap(groups, n_boot, seed)]
    return (float(hits.mean()), *np.percentile(d, [2.5, 97.5]))


def cosines(pack: Pack, a, b) -> np.ndarray:
    return np.einsum("ij,ij->i", pack.emb[a], pack.emb[b])


# -- the protocol ---------------------------------------------------------------------------------------

def run(args) -> dict:
    t_start = time.perf_counter()
    packs = [load_pack(p) for p in args.pack]
    pack = concat_packs(packs)
    n = len(pack.crops_jpeg)
    # an unknown identity ("unknown (target/source ids not recorded)") is no group: each image its own unit
    pack.identity = np.array([f"img:{k}" if str(v).lower().startswith("unknown") else v for k, v in enumerate(pack.identity)])
    fam = np.array([family_of(f) for f in pack.family])
    split = np.array([split_of(g, i) for g, i in zip(pack.group, pack.identity)])
    src = pack.source
    learn = np.isin(src, ["train", "offline"]) & pack.ok
    present = set(fam[learn & (pack.label == 1)])
    families = [f for f in NEURAL + OFFLINE if f in present] + sorted(present - set(NEURAL + OFFLINE))
    print(f"{n} images ({learn.sum()} in the training corpora), families: {', '.join(families)}; device {args.device}")

    size = args.crop_size
    crops = pack.crops(None, size)
    feats: dict[str, np.ndarray] = {}
    detectors = [d for d in args.detectors.split(",") if d]
    bounds = np.cumsum([0] + [len(p.crops_jpeg) for p in packs])
    nets: dict = {}
    full_crops: dict[int, np.ndarray] = {}  # pack index -> its crops at the stored size, decoded once for every FULL_SIZE detector

    def full_size(k: int) -> np.ndarray:
        if k not in full_crops:
            full_crops[k] = packs[k].crops(None)
        return full_crops[k]

    def features_of(d: str) -> np.ndarray:
        """One fixed feature set for every image, cached per pack file (and its modification time)."""
        if d in feats:
            return feats[d]
        t = time.perf_counter()
        if d == "stack":  # the others' columns side by side; fit_lr standardises each column
            feats[d] = np.concatenate([features_of(b) for b in STACKED], 1)
            print(f"{d} features {feats[d].shape} ({' + '.join(STACKED)})", flush=True)
            return feats[d]
        from fakeproof.detect_fakes import features

        parts = []
        for k, pth in enumerate(args.pack):
            c = crops[bounds[k]:bounds[k + 1]]
            key = f"{d}{size}"
            if d == "spectrum":
                fn = lambda c=c: features.spectrum_features(c, size=min(size, 128))
            elif d in FULL_SIZE:  # the pack's stored crops, not resized to --crop-size
                key = f"{d}{packs[k].crops([0]).shape[1] if len(packs[k].crops_jpeg) else 0}"

                def fn(k=k, d=d):
                    full = full_size(k)
                    if d == "local":
                        return features.local_consistency_features(full)
                    if d == "consistency":
                        if "dlib" not in nets:
                            nets["dlib"] = features.load_dlib_net(args.dlib_weights)
                        return features.identity_consistency_features(full, nets["dlib"], CROP_MARGIN, args.device)
                    return features.spectrum_features(full, size=full.shape[1])
            else:
                def fn(c=c, d=d):
                    load, extract = (getattr(features, f) for f in FROZEN[d])
                    if d not in nets:
                        nets[d] = load(getattr(args, f"{d}_weights"))
                    return extract(c, nets[d], args.device)
            stamp = hashlib.blake2b(f"{Path(pth).resolve()}|{Path(pth).stat().st_mtime_ns}".encode(), digest_size=6).hexdigest()
            parts.append(cached(Path(args.cache_dir or Path(pth).parent) / f"feat_{stamp}", key, fn))
        feats[d] = np.concatenate(parts)
        print(f"{d} features {feats[d].shape} in {time.perf_counter() - t:.0f} s", flush=True)
        return feats[d]

    for d in [d for d in detectors if d not in TRAINED]:
        features_of(d)

    holds = families + ["(none)"]
    variants_t = None

    def variants_on_device():
        """Every crop's degraded versions, made once and kept on the training device for all folds."""
        nonlocal variants_t
        if variants_t is None:
            import torch

            from fakeproof.detect_fakes.training import degraded_variants

            t = time.perf_counter()
            variants_t = torch.from_numpy(degraded_variants(crops, args.variants, args.seed, args.workers)).to(args.device)
            print(f"{args.variants} versions of {len(crops)} crops in {time.perf_counter() - t:.0f} s", flush=True)
        return variants_t
    scores = {d: {} for d in detectors}  # detector -> held-out family -> (n,) logits
    for h in holds:
        # F's fakes out, and the reals of the footage they were made on (else the scene itself says "real")
        held_units = np.unique(pack.identity[(fam == h) & (pack.label == 1)])
        base = learn & (split == "train") & ~((fam == h) & (pack.label == 1))
        tr = base & ~((pack.label == 0) & np.isin(pack.identity, held_units))
        if len(np.unique(pack.label[tr])) < 2:
            print(f"  {h}: no real photo left for training once its source footage is out; that footage stays in this fold", flush=True)
            tr = base
        w = balance_weights(fam[tr], pack.group[tr], pack.label[tr])
        for d in detectors:
            t = time.perf_counter()
            if d in TRAINED:
                from fakeproof.detect_fakes.training import predict, train_detector

                if d == "cnn":
                    from fakeproof.detect_fakes.residual_cnn import ResidualCNN

                    model, steps, lr = ResidualCNN(args.cnn_width), args.cnn_steps, args.cnn_lr
                else:
                    from fakeproof.detect_fakes.dlib_finetune import DlibArtefactNet
                    from fakeproof.detect_fakes.features import load_dlib_net

                    model, steps, lr = DlibArtefactNet(load_dlib_net(args.dlib_weights)), args.ft_steps, args.ft_lr
                rows = np.flatnonzero(tr)
                model = train_detector(model, variants_on_device(), rows, pack.label[rows], w, steps=steps, seed=args.seed,
                                       batch=args.cnn_batch, size=args.cnn_size, lr=lr, max_seconds=args.max_fold_seconds)
                s = predict(model, crops, args.device, size=args.cnn_size)
                if np.ptp(s[tr]) < 1e-6:
                    print(f"  warning: {d} collapsed to a constant score with {h} held out (its AUC is 0.5 by construction)", flush=True)
            else:
                clf = fit_lr(feats[d][tr], pack.label[tr], w, args.seed)
                s = clf.decision_function(feats[d])
            scores[d][h] = s
            print(f"  held out {h:22s} {d:8s} trained on {tr.sum()} images in {time.perf_counter() - t:.0f} s", flush=True)

    # 1. held-out AUC per family, with paired intervals
    res: dict = {"families": families, "detectors": detectors, "auc": {}, "auc_mean": {}, "auc_diff": {}, "acceptance": {}, "gate": {}}
    draws_all = {d: [] for d in detectors}
    for f in families:
        grp = np.unique(pack.group[(fam == f) & learn])
        ev = pack.ok & (((fam == f) & (pack.label == 1) & learn) | ((pack.label == 0) & np.isin(pack.group, grp) & (split == "test") & learn))
        if len(np.unique(pack.label[ev])) < 2:
            print(f"  {f}: no test-split real photo of its group; no AUC")
            continue
        auc, draws = auc_with_ci(pack.label[ev], {d: scores[d][f][ev] for d in detectors}, pack.identity[ev], args.bootstrap, args.seed)
        res["auc"][f] = {d: list(map(float, v)) for d, v in auc.items()}
        res.setdefault("n_eval", {})[f] = [int((pack.label[ev] == 1).sum()), int((pack.label[ev] == 0).sum())]
        m = min(len(v) for v in draws.values())
        for d in detectors:
            draws_all[d].append(draws[d][:m])
    m = min(len(x) for d in detectors for x in draws_all[d])
    mean_draws = {d: np.mean([x[:m] for x in draws_all[d]], 0) for d in detectors}
    for d in detectors:
        res["auc_mean"][d] = [float(np.mean([res["auc"][f][d][0] for f in families if f in res["auc"]])), *map(float, np.percentile(mean_draws[d], [2.5, 97.5]))]
    best = max(detectors, key=lambda d: res["auc_mean"][d][0])
    res["best"] = best
    res["auc_pairs"] = {}  # "a - b": paired difference of the mean held-out AUC, every ordered pair
    for a in detectors:
        for d in detectors:
            if d != a:
                diff = mean_draws[a] - mean_draws[d]
                v = [res["auc_mean"][a][0] - res["auc_mean"][d][0], *map(float, np.percentile(diff, [2.5, 97.5]))]
                res["auc_pairs"][f"{a} - {d}"] = v
                if a == best:
                    res["auc_diff"][d] = v
    # the same families SEEN: the all-families detector on the test split (fakes and reals it never trained on, of
    # families it did): the gap to the held-out AUC is what does not generalise
    res["auc_seen"] = {}
    for f in families:
        grp = np.unique(pack.group[(fam == f) & learn])
        ev = pack.ok & learn & (split == "test") & (((fam == f) & (pack.label == 1)) | ((pack.label == 0) & np.isin(pack.group, grp)))
        if len(np.unique(pack.label[ev])) == 2:
            auc, _ = auc_with_ci(pack.label[ev], {d: scores[d]["(none)"][ev] for d in detectors}, pack.identity[ev], args.bootstrap, args.seed)
            res["auc_seen"][f] = {d: list(map(float, v)) for d, v in auc.items()}
    if res["auc_seen"]:
        res["auc_seen_mean"] = {d: float(np.mean([v[d][0] for v in res["auc_seen"].values()])) for d in detectors}
    # deepfakes-dev: the all-families detector, evaluation only
    dev = (src == "dev") & pack.ok
    if dev.any() and len(np.unique(pack.label[dev])) == 2:
        auc, _ = auc_with_ci(pack.label[dev], {d: scores[d]["(none)"][dev] for d in detectors}, pack.identity[dev], args.bootstrap, args.seed)
        res["auc"]["deepfakes-dev"] = {d: list(map(float, v)) for d, v in auc.items()}

    # 2. operating point of the best detector: the gate, acceptance per held-out family
    pk, ps, pa, pb = pack.pair_kind, pack.pair_source, pack.pair_a, pack.pair_b
    pair_ok = pack.ok[pa] & pack.ok[pb] & np.isfinite(pack.emb[pa]).all(1) & np.isfinite(pack.emb[pb]).all(1)
    cos = np.where(pair_ok, cosines(pack, pa, np.where(pair_ok, pb, pa)), np.nan)
    pair_split = np.array([split_of(pack.group[a], pack.identity[a]) for a in pa])
    vp = lambda m: (cos[m], (pk[m] == "genuine").astype(int), pa[m], pb[m])
    val_sets = [m for m in (pair_ok & (ps == "offline") & (pair_split == "val") & (pk != "attack"), pair_ok & (ps == "celeba_pairs") & (pack.pair_fold == 1)) if m.sum() and len(np.unique(pk[m])) == 2]
    test_sets = {"offline test identities": pair_ok & (ps == "offline") & (pair_split == "test") & (pk != "attack"),
                 "celeba-pairs fold 2": pair_ok & (ps == "celeba_pairs") & (pack.pair_fold == 2),
                 "deepfakes-dev real pairs": pair_ok & (ps == "dev") & (pk != "attack")}
    val_reals = pack.ok & (pack.label == 0) & (((split == "val") & learn) | ((src == "celeba_pairs") & np.isin(np.arange(n), pa[val_sets[-1]] if val_sets else [])))
    for d in detectors:
        gate_rows, acc_rows = {}, {}
        for h in families + ["(none)"]:
            s = scores[d][h]
            sets = [(c, y, s[a], s[b]) for c, y, a, b in (vp(m) for m in val_sets)]
            tau, rate, _ = choose_tau(s[val_reals], sets, args.eer_budget)
            r = realness(s, tau)
            rows = {}
            for name, m in test_sets.items():
                if m.sum() == 0 or len(np.unique(pk[m])) < 2:
                    continue
                y = (pk[m] == "genuine").astype(int)
                e0, _ = eer(cos[m], y)
                e1, _ = eer(gated(cos[m], r[pa[m]], r[pb[m]]), y)
                rows[name] = [e0, e1]
            gate_rows[h] = {"tau": tau, "flag_rate": rate, "eer": rows}
            if h == "(none)":
                # deepfakes-dev: acceptance at the EER threshold of its own real pairs (stock, gated)
                m, att = test_sets["deepfakes-dev real pairs"], pair_ok & (ps == "dev") & (pk == "attack")
                if m.sum() and att.sum():
                    y = (pk[m] == "genuine").astype(int)
                    _, t0 = eer(cos[m], y)
                    _, t1 = eer(gated(cos[m], r[pa[m]], r[pb[m]]), y)
                    acc_rows["deepfakes-dev"] = {"stock": rate_ci(cos[att] >= t0, pack.identity[pa[att]], args.bootstrap, args.seed),
                                                 "gated": rate_ci(gated(cos[att], r[pa[att]], r[pb[att]]) >= t1, pack.identity[pa[att]], args.bootstrap, args.seed)}
                continue
            # threshold: genuine-pair EER threshold on the offline test identities (stock and gated)
            m = test_sets["offline test identities"]
            if not m.sum():
                continue
            y = (pk[m] == "genuine").astype(int)
            _, t0 = eer(cos[m], y)
            _, t1 = eer(gated(cos[m], r[pa[m]], r[pb[m]]), y)
            if h in OFFLINE:
                att = pair_ok & (ps == "offline") & (pk == "attack") & (pair_split == "test") & (fam[pb] == h)
                g = pack.identity[pa[att]]
                acc_rows[h] = {"stock": rate_ci(cos[att] >= t0, g, args.bootstrap, args.seed),
                               "gated": rate_ci(gated(cos[att], r[pa[att]], r[pb[att]]) >= t1, g, args.bootstrap, args.seed)}
            else:
                # no real photo of the same person: the fake stands in for the second photo of every test
                # genuine pair with that pair's identity cosine (a perfect impersonation)
                fk = np.flatnonzero(pack.ok & learn & (fam == h) & (pack.label == 1))
                gen = m & (pk == "genuine")
                ga = r[pa[gen]]
                gc = cos[gen]
                per_fake_stock = np.full(len(fk), float((gc >= t0).mean()))
                per_fake_gated = ((gc[None, :] * ga[None, :] * r[fk][:, None]) >= t1).mean(1)
                acc_rows[h] = {"stock": rate_ci(per_fake_stock, pack.identity[fk], args.bootstrap, args.seed),
                               "gated": rate_ci(per_fake_gated, pack.identity[fk], args.bootstrap, args.seed),
                               "flagged": float((r[fk] < 1).mean())}
        res["gate"][d] = gate_rows
        res["acceptance"][d] = acc_rows
    res["seconds"] = time.perf_counter() - t_start
    res["args"] = {k: v for k, v in vars(args).items() if k != "func"}
    return res


def pct(v) -> str:
    return f"{100 * v[0]:.1f}% [{100 * v[1]:.1f}, {100 * v[2]:.1f}]"


def print_tables(res: dict) -> None:
    from fakeproof.ui import console, summary_table

    def print_table(title, columns, rows):
        console.print(summary_table(title, rows, columns))

    dets = res["detectors"]
    rows = []
    for f in [f for f in res["families"] if f in res["auc"]] + (["deepfakes-dev"] if "deepfakes-dev" in res["auc"] else []):
        nf, nr = res.get("n_eval", {}).get(f, ["", ""])
        rows.append([f"{f} (held out)" if f != "deepfakes-dev" else "deepfakes-dev (all families)", f"{nf}/{nr}"] + [f"{a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}]" for a in (res["auc"][f][d] for d in dets)])
    rows.append(["mean held-out", ""] + [f"{a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}]" for a in (res["auc_mean"][d] for d in dets)])
    print_table("ROC AUC, real vs fake photos (95% CI, identities resampled)", ["family", "fakes/reals"] + dets, rows)
    if res.get("auc_seen"):
        rows = [[f] + [f"{a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}]" for a in (v[d] for d in dets)] for f, v in res["auc_seen"].items()]
        rows.append(["mean seen"] + [f"{res['auc_seen_mean'][d]:.3f}" for d in dets])
        print_table("the same families SEEN in training (all-families detector, test split)", ["family"] + dets, rows)
    for d, v in res["auc_diff"].items():
        print(f"{res['best']} - {d}: mean held-out AUC {v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]")
    others = {k: v for k, v in res.get("auc_pairs", {}).items() if not k.startswith(f"{res['best']} - ")}
    if others:
        print("the other paired differences: " + "; ".join(f"{k} {v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for k, v in others.items()))
    d = res["best"]
    rows = []
    for f, a in res["acceptance"][d].items():
        g = res["gate"][d].get(f if f != "deepfakes-dev" else "(none)", {})
        e = g.get("eer", {})
        er = "; ".join(f"{k}: {100 * v[0]:.2f}->{100 * v[1]:.2f}%" for k, v in e.items())
        rows.append([f, pct(a["stock"]), pct(a["gated"]), f"{100 * g.get('flag_rate', 0):.1f}%", er])
    print_table(f"attack acceptance at the genuine-pair EER threshold, stock vs gated by {d} (95% CI)", ["held-out family", "stock", "gated", "val reals flagged", "genuine EER stock->gated"], rows)


def markdown(res: dict) -> str:
    """The README's tables from a results JSON."""
    dets = res["detectors"]
    fm = lambda a, k=3: f"{a[0]:.{k}f} [{a[1]:.{k}f}, {a[2]:.{k}f}]"  # noqa: E731
    lines = ["| held-out family | fakes / test reals | " + " | ".join(dets) + " |", "|---" * (2 + len(dets)) + "|"]
    for f in [f for f in res["families"] if f in res["auc"]]:
        nf, nr = res["n_eval"][f]
        lines.append(f"| {f} | {nf} / {nr} | " + " | ".join(fm(res["auc"][f][d]) for d in dets) + " |")
    lines.append("| **mean held-out** | | " + " | ".join(fm(res["auc_mean"][d]) for d in dets) + " |")
    if "deepfakes-dev" in res["auc"]:
        lines.append("| deepfakes-dev (trained on all families; evaluation only) | | " + " | ".join(fm(res["auc"]["deepfakes-dev"][d]) for d in dets) + " |")
    lines += ["", *[f"- {res['best']} minus {d}: mean held-out AUC {v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for d, v in res["auc_diff"].items()]]
    pairs, mean = res.get("auc_pairs", {}), {d: res["auc_mean"][d][0] for d in dets}
    for i, a in enumerate(dets):  # the pairs without the best one, each once: the higher mean minus the lower
        for b in dets[i + 1:]:
            hi, lo = (a, b) if mean[a] >= mean[b] else (b, a)
            if res["best"] not in (a, b) and f"{hi} - {lo}" in pairs:
                v = pairs[f"{hi} - {lo}"]
                lines.append(f"- {hi} minus {lo}: mean held-out AUC {v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]")
    lines += [""]
    if res.get("auc_seen"):
        lines += ["| family SEEN in training (test split) | " + " | ".join(dets) + " |", "|---" * (1 + len(dets)) + "|"]
        lines += [f"| {f} | " + " | ".join(fm(v[d]) for d in dets) + " |" for f, v in res["auc_seen"].items()]
        lines += ["| **mean seen** | " + " | ".join(f"{res['auc_seen_mean'][d]:.3f}" for d in dets) + " |", ""]
    d = res["best"]
    lines += [f"| held-out family | stock acceptance | gated by `{d}` | validation reals flagged | genuine-pair EER, stock -> gated |", "|---|---|---|---|---|"]
    pc = lambda a: f"{100 * a[0]:.1f}% [{100 * a[1]:.1f}, {100 * a[2]:.1f}]"  # noqa: E731
    for f, a in res["acceptance"][d].items():
        g = res["gate"][d].get(f if f != "deepfakes-dev" else "(none)", {})
        er = "; ".join(f"{k} {100 * v[0]:.2f}% -> {100 * v[1]:.2f}%" for k, v in g.get("eer", {}).items())
        lines.append(f"| {f} | {pc(a['stock'])} | {pc(a['gated'])} | {100 * g.get('flag_rate', 0):.1f}% | {er} |")
    return "\n".join(lines)


def main(argv=None):
    from fakeproof.engine.encoders.dlib_resnet import CACHE_NAME as DLIB_FILE
    from fakeproof.engine.encoders.facenet import CACHE_NAME as FACENET_FILE

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", action="append", default=[], help="pack(s) to read (repeatable)")
    ap.add_argument("--build-pack", help="write a pack of the sets in --sets and stop")
    ap.add_argument("--sets", default="corpus,dev,celeba_pairs", help="for --build-pack: corpus,offline,dev,celeba_pairs")
    ap.add_argument("--repack", help="write the --pack(s) as one pack of smaller crops (for a machine that gets a few carried MiB) and stop")
    ap.add_argument("--repack-to", default="144,86", help="SIZE,JPEG_QUALITY for --repack")
    ap.add_argument("--offline", help="a generate training layout (classic/selfblend/morph fakes of celeba-mini)")
    ap.add_argument("--celeba-folds", default="1,2")
    ap.add_argument("--limit-per-family", type=int, default=None)
    ap.add_argument("--detectors", default=",".join(DETECTORS), help=f"comma-separated, of: {', '.join(CHOICES)}")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full", action="store_true", help=(
        "GPU settings: 144 px crops (the GPU pack's size), 8 versions of each crop, CNN 1500 steps and dlib_ft 800 steps "
        "of 128 windows of 128 px, 1000 resamples (add dlib_ft to --detectors)"))
    ap.add_argument("--fast", action="store_true", help="test settings: a few CNN steps, 50 resamples")
    ap.add_argument("--crop-size", type=int, default=128)
    ap.add_argument("--cnn-size", type=int, default=112)
    ap.add_argument("--cnn-steps", type=int, default=300)
    ap.add_argument("--cnn-batch", type=int, default=48)
    ap.add_argument("--cnn-width", type=int, default=24)
    ap.add_argument("--cnn-lr", type=float, default=2e-3)
    ap.add_argument("--ft-steps", type=int, default=300, help="dlib_ft: fine-tuning steps per fold (batch and window: --cnn-batch, --cnn-size)")
    ap.add_argument("--ft-lr", type=float, default=1e-4)
    ap.add_argument("--variants", type=int, default=4, help="versions of each crop made before training (1 as stored + degraded ones)")
    ap.add_argument("--max-fold-seconds", type=float, default=None, help="stop a trained detector's fold after this long (the steps done are reported)")
    ap.add_argument("--workers", type=int, default=1, help="threads for the CNN's augmentation")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--eer-budget", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dlib-weights", help="converted dlib ResNet .safetensors (a file, or a folder holding " + DLIB_FILE + ")")
    ap.add_argument("--facenet-weights", help="converted FaceNet .safetensors (a file, or a folder holding " + FACENET_FILE + ")")
    ap.add_argument("--cache-dir", help="where features are cached (default: beside the first pack)")
    ap.add_argument("--out", help="results JSON")
    ap.add_argument("--markdown", help="print the README tables of this results JSON and stop")
    args = ap.parse_args(argv)
    for d, file in (("dlib", DLIB_FILE), ("facenet", FACENET_FILE)):  # a folder: the converted file in it
        w = getattr(args, f"{d}_weights")
        if w and Path(w).is_dir():
            setattr(args, f"{d}_weights", str(Path(w) / file))
    unknown = [d for d in args.detectors.split(",") if d and d not in CHOICES]
    if unknown:
        ap.error(f"--detectors: unknown {', '.join(unknown)} (choices: {', '.join(CHOICES)})")
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    if args.build_pack:
        from benchmarks._common import shared_or_skip  # noqa: F401 - the data may be absent
        from fakeproof.detect_fakes.pack import build_pack

        sets = set(args.sets.split(","))
        root = REPO.parent / "shared" / "data"
        import os

        root = Path(os.environ.get("FAKEPROOF_SHARED_DATA", root))
        need = {"corpus": root / "deepfakes-train", "dev": root / "deepfakes-dev", "celeba_pairs": root / "celeba-pairs"}
        if any(s in sets and not need[s].exists() for s in need):
            print(f"skip: {root} lacks the sets {sorted(s for s in need if s in sets and not need[s].exists())}")
            return 0
        t = time.perf_counter()
        p = build_pack(args.build_pack, corpus=need["corpus"] if "corpus" in sets else None, offline=args.offline if "offline" in sets else None,
                       dev=need["dev"] if "dev" in sets else None, celeba_pairs=need["celeba_pairs"] if "celeba_pairs" in sets else None,
                       celeba_folds={int(x) for x in args.celeba_folds.split(",")}, limit_per_family=args.limit_per_family, seed=args.seed)
        mib = Path(args.build_pack).stat().st_size / 2**20
        print(f"pack {args.build_pack}: {len(p.crops_jpeg)} images ({int(p.ok.sum())} with a crop), {len(p.pair_a)} pairs, {mib:.1f} MiB, {time.perf_counter() - t:.0f} s")
        return 0
    if args.repack:
        from fakeproof.detect_fakes.pack import repack

        size, q = (int(x) for x in args.repack_to.split(","))
        p = repack(concat_packs([load_pack(x) for x in args.pack]), args.repack, size, q)
        print(f"pack {args.repack}: {len(p.crops_jpeg)} images at {size} px, JPEG q{q}, {Path(args.repack).stat().st_size / 2**20:.1f} MiB")
        return 0
    if not args.pack:
        ap.error("--pack FILE (or --build-pack OUT) is required")
    if args.full:
        args.crop_size, args.cnn_size, args.cnn_steps, args.cnn_batch, args.cnn_width, args.bootstrap = 144, 128, 1500, 128, 32, 1000
        args.ft_steps, args.variants = 800, 8
        args.workers = max(args.workers, 12)
        if args.device.startswith("cuda"):
            import torch

            torch.backends.cudnn.benchmark = True
    if args.fast:
        args.cnn_steps, args.ft_steps, args.bootstrap, args.cnn_batch, args.variants = 8, 4, 50, 16, 2
    res = run(args)
    print_tables(res)
    print(f"total {res['seconds']:.0f} s")
    if args.out:
        out = Path(args.out)
        atomic_write_text(out, json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
