"""``fakeproof generate check``: do the fakes impersonate their identity?

Every photo is embedded with the encoder (default: the project's default encoder). The encoder's
genuine threshold is measured on the dataset's own REAL photos (EER threshold of same-identity vs
different-identity pairs). A fake IMPERSONATES its identity when its mean cosine to the identity's
real photos (the source photo it was made from excluded) reaches that threshold. Also reported:
cosine to the source photo, to the target photo, and how often the fake still passes as the
TARGET person (identity leaking from the target), and how often it passes as BOTH people (the
goal of a ``morph``; for a swap it means the target's identity leaks through). A fake that does not
impersonate teaches nothing.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..data import TrainingDataset, atomic_write_text
from ..metrics import compute_eer
from ..data.records import read_fakes_csv
from ..engine.encoders import DEFAULT_ENCODER

CHECK_CSV = "fakes_check.csv"
CHECK_PNG = "fakes_check.png"


@dataclass
class BackendCheck:
    backend: str
    n: int = 0
    embedded: int = 0
    impersonating: int = 0
    pair_accepts: int = 0
    pairs: int = 0
    cos_identity: list[float] = field(default_factory=list)
    cos_source: list[float] = field(default_factory=list)
    cos_target: list[float] = field(default_factory=list)
    passes_as_target: int = 0
    passes_as_both: int = 0
    with_target: int = 0

    @property
    def impersonation_rate(self) -> float:
        return self.impersonating / self.embedded if self.embedded else float("nan")

    @property
    def pair_accept_rate(self) -> float:
        return self.pair_accepts / self.pairs if self.pairs else float("nan")

    @property
    def target_pass_rate(self) -> float:
        return self.passes_as_target / self.with_target if self.with_target else float("nan")

    @property
    def both_pass_rate(self) -> float:
        """Share of fakes (with a usable target photo) accepted as their identity AND as the target person."""
        return self.passes_as_both / self.with_target if self.with_target else float("nan")


@dataclass
class CheckReport:
    threshold: float
    real_eer: float
    encoder: str
    backends: dict[str, BackendCheck]
    genuine: np.ndarray
    impostor: np.ndarray
    unembeddable: list[str]


def _sample_pairs(by_id: dict[str, list[int]], rng: np.random.Generator, max_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    gen = [(a, b) for idx in by_id.values() for i, a in enumerate(idx) for b in idx[i + 1 :]]
    if len(gen) > max_pairs:
        gen = [gen[i] for i in rng.choice(len(gen), max_pairs, replace=False)]
    ids = [i for i in by_id if by_id[i]]
    imp = []
    if len(ids) >= 2:
        for _ in range(max(len(gen), 1) * 2):
            a, b = rng.choice(len(ids), 2, replace=False)
            imp.append((int(rng.choice(by_id[ids[a]])), int(rng.choice(by_id[ids[b]]))))
    return np.array(gen, int).reshape(-1, 2), np.array(imp, int).reshape(-1, 2)


def check_fakes(dataset, encoder: str = DEFAULT_ENCODER, device: str = "auto", progress: bool = True, seed: int = 0, max_pairs: int = 50000, engine=None) -> CheckReport:
    from ..engine import FaceEngine

    root = Path(dataset)
    ds = TrainingDataset.load(root)
    eng = engine or FaceEngine.from_names(encoder, device=device)
    keys = [it.key for it in ds.items]
    res = eng.embed_paths([it.path for it in ds.items], progress=progress)
    emb = res.embeddings
    ok = ~np.isnan(emb).any(1)
    row = {k: i for i, k in enumerate(keys)}
    reals_by_id: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(ds.items):
        if not it.is_deepfake and ok[i]:
            reals_by_id[it.identity].append(i)
    gen, imp = _sample_pairs(reals_by_id, np.random.default_rng(seed), max_pairs)
    if len(gen) == 0 or len(imp) == 0:
        raise InputError(f"{root}: need identities with >= 2 embeddable real photos to set the genuine threshold")
    sim = eng.card.raw_similarity  # the model card's metric ("cosine" below: its raw score, -euclidean for stock dlib)
    gs = sim(emb[gen[:, 0]], emb[gen[:, 1]])
    is_ = sim(emb[imp[:, 0]], emb[imp[:, 1]])
    eer = compute_eer(np.r_[np.ones(len(gs)), np.zeros(len(is_))], np.r_[gs, is_])
    thr = float(eer.threshold)
    prov = {r["key"]: r for r in read_fakes_csv(root)}
    out: dict[str, BackendCheck] = {}
    rows = []
    unembeddable = []
    for i, it in enumerate(ds.items):
        if not it.is_deepfake:
            continue
        p = prov.get(it.key, {})
        name = p.get("backend") or "unknown"
        bc = out.setdefault(name, BackendCheck(name))
        bc.n += 1
        if not ok[i]:
            unembeddable.append(it.key)
            rows.append([it.key, name, "", "", "", "", "", "no face"])
            continue
        src_i = row.get(p.get("source_key", ""))
        own = [j for j in reals_by_id.get(it.identity, []) if j != src_i]
        if not own:
            own = reals_by_id.get(it.identity, [])
        if not own:
            rows.append([it.key, name, "", "", "", "", "", "identity has no embeddable real photo"])
            continue
        bc.embedded += 1
        cos = sim(emb[own], emb[i][None])
        ci = float(cos.mean())
        bc.cos_identity.append(ci)
        bc.impersonating += int(ci >= thr)
        bc.pair_accepts += int((cos >= thr).sum())
        bc.pairs += len(cos)
        cs = float(sim(emb[src_i], emb[i])) if src_i is not None and ok[src_i] else float("nan")
        if not np.isnan(cs):
            bc.cos_source.append(cs)
        tk = p.get("target_key", "")
        ct, passes = float("nan"), ""
        ti = row.get(tk) if tk else None
        if ti is not None and ok[ti]:
            ct = float(sim(emb[ti], emb[i]))
            bc.cos_target.append(ct)
            tid = tk.split("/", 1)[0]
            tgt_own = [j for j in reals_by_id.get(tid, []) if j != ti] or [ti]
            passes = bool(float(sim(emb[tgt_own], emb[i][None]).mean()) >= thr)
            bc.passes_as_target += int(passes)
            bc.passes_as_both += int(passes and ci >= thr)
            bc.with_target += 1
        rows.append([it.key, name, f"{ci:.4f}", int(ci >= thr), f"{cs:.4f}", f"{ct:.4f}", passes, ""])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "backend", "cos_identity", "impersonates", "cos_source", "cos_target", "passes_as_target", "problem"])
    w.writerows(rows)
    atomic_write_text(root / CHECK_CSV, buf.getvalue())
    rep = CheckReport(thr, float(eer.eer), eng.spec.name, out, gs, is_, unembeddable)
    plot_check(rep, root / CHECK_PNG)
    return rep


def plot_check(rep: CheckReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(-0.4, 1.0, 57)
    ax.hist(rep.impostor, bins, alpha=0.35, density=True, label="real, different people", color="grey")
    ax.hist(rep.genuine, bins, alpha=0.35, density=True, label="real, same person", color="green")
    for name, bc in sorted(rep.backends.items()):
        if bc.cos_identity:
            ax.hist(bc.cos_identity, bins, histtype="step", lw=2, density=True, label=f"fake ({name}) vs its identity")
    ax.axvline(rep.threshold, color="k", ls="--", label=f"genuine threshold {rep.threshold:.3f}")
    ax.set_xlabel(f"cosine similarity ({rep.encoder})")
    ax.set_ylabel("density")
    ax.set_title("Do the fakes impersonate their identity?")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
