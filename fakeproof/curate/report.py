"""What ``clean`` writes to ``DATASET/curation/``: tables, matrices, heatmaps, embeddings.

- ``flags.csv``: one row per image (see :data:`fakeproof.curate.analyse.FLAG_COLUMNS`); flagged rows
  first, worst score first; the empty ``decision`` column is for reviewers who do not use FiftyOne.
- ``identities.csv``, ``merge_candidates.csv``
- ``similarity.npz``: ``identities`` and, for identity number ``j``, ``keys_j`` and ``sim_j``
  (its real photos' raw-score matrix, the card's metric, in the order of ``keys_j``).
- ``embeddings.npz``: ``keys`` and ``embeddings`` (what ``review`` puts into FiftyOne).
- ``heatmaps/<identity>.png`` for identities with flagged photos (rows ordered by component).
- ``summary.json``: settings, counts and timings.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import atomic_write_text, json_text
from ..data.atomic import replacing
from .analyse import Analysis
from .graph import ISOLATED, IdentityGraph


def sorted_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Flagged first, then by score (lowest = least like its identity), then key."""
    f = flags.assign(_s=flags.score.fillna(-9.0))
    return f.sort_values(["flagged", "_s", "key"], ascending=[False, True, True], kind="stable").drop(columns="_s")


def write_tables(a: Analysis, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "flags.csv", sorted_flags(a.flags).to_csv(index=False))
    atomic_write_text(out / "identities.csv", a.identities.to_csv(index=False))
    merges = pd.DataFrame(a.merges, columns=["identity_a", "identity_b", "mean_cosine"])
    atomic_write_text(out / "merge_candidates.csv", merges.to_csv(index=False, float_format="%.4f"))


def write_similarity(a: Analysis, out: Path) -> Path:
    arrays: dict[str, np.ndarray] = {"identities": np.array(sorted(a.graphs), dtype=str)}
    for j, ident in enumerate(sorted(a.graphs)):
        g = a.graphs[ident]
        arrays[f"keys_{j}"] = np.array(g.keys, dtype=str)
        arrays[f"sim_{j}"] = g.sim.astype(np.float16 if len(g.keys) > 2000 else np.float32)
    path = out / "similarity.npz"
    with replacing(path, ".tmp.npz") as tmp:  # np.savez adds .npz to other names
        np.savez(tmp, **arrays)
    return path


def write_embeddings(keys: list[str], emb: np.ndarray, out: Path) -> Path:
    path = out / "embeddings.npz"
    with replacing(path, ".tmp.npz") as tmp:
        np.savez(tmp, keys=np.array(keys, dtype=str), embeddings=emb.astype(np.float32))
    return path


def read_embeddings(out: Path) -> dict[str, np.ndarray]:
    path = Path(out) / "embeddings.npz"
    if not path.exists():
        return {}
    with np.load(path) as z:
        return {k: e for k, e in zip(z["keys"].tolist(), z["embeddings"])}


def write_summary(out: Path, summary: dict) -> None:
    atomic_write_text(out / "summary.json", json_text(summary, default=float))


def safe_name(identity: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", identity)[:120] or "_"


def _scale(sim: np.ndarray, threshold: float):
    """The colour scale of a heatmap: this identity's own off-diagonal range, centred (white) on the
    edge threshold, so an encoder whose cosines all lie in 0.85..0.99 still shows its
    genuine/impostor gap (a fixed -0.2..1 scale painted it one colour)."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    off = sim[~np.eye(len(sim), dtype=bool)] if len(sim) > 1 else sim.ravel()
    off = off[np.isfinite(off)]
    lo, hi = (float(off.min()), float(off.max())) if off.size else (threshold - 0.1, threshold + 0.1)
    lo, hi = min(lo, threshold - 1e-3), max(hi, threshold + 1e-3)
    return TwoSlopeNorm(vcenter=threshold, vmin=lo, vmax=hi) if lo < threshold < hi else Normalize(lo, hi)


def heatmap(g: IdentityGraph, path: Path, threshold: float) -> None:
    """Cosine heatmap of one identity, rows/columns ordered by component, boundaries drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = g.order()
    sim = g.sim[np.ix_(o, o)]
    comp = g.component[o]
    n = len(o)
    size = min(14.0, 3.0 + 0.32 * n)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(sim, norm=_scale(sim, threshold), cmap="RdBu")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=f"cosine (white = edge threshold {threshold:g})")
    labels = [f"{Path(g.keys[i]).name} [{'iso' if c == ISOLATED else c}]" for i, c in zip(o, comp)]
    if n <= 60:
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        if n <= 25:
            for r in range(n):
                for c in range(n):
                    ax.text(c, r, f"{sim[r, c]:.2f}", ha="center", va="center", fontsize=6, color="k")
    for b in np.flatnonzero(np.diff(comp)) + 0.5:
        ax.axhline(b, color="r", lw=1)
        ax.axvline(b, color="r", lw=1)
    ax.set_title(f"{g.identity}: {g.n_components} component(s), main {g.main_size}/{n}, edge at cos >= {threshold:g}", fontsize=9)
    fig.tight_layout()
    try:
        with replacing(path, ".tmp.png") as tmp:
            fig.savefig(tmp, dpi=90)
    finally:
        plt.close(fig)


def write_heatmaps(a: Analysis, out: Path, limit: int = 100) -> list[Path]:
    """Heatmaps for identities with flagged real photos, the most flagged first (at most ``limit``)."""
    d = out / "heatmaps"
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.png"):
        old.unlink()
    # identities with any flagged photo (by the graph or by a cross-identity rule), the most flagged first
    f = a.flags
    n_flagged = f[f.flagged.astype(bool)].groupby("identity").size().to_dict() if len(f) else {}
    todo = sorted((g for g in a.graphs.values() if n_flagged.get(g.identity, 0) and len(g.keys) >= 2), key=lambda g: (-n_flagged[g.identity], g.identity))
    paths = []
    for g in todo[:limit]:
        p = d / f"{safe_name(g.identity)}.png"
        heatmap(g, p, a.threshold)
        paths.append(p)
    return paths
