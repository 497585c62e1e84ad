"""Compare 2-10 photos with each other (like a face-verification web demo): the similarity matrix,
a verdict per pair at the model's threshold, and a picture with the aligned faces along the axes."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.atomic import replacing
from ..errors import UsageError
from ..engine import FaceEngine, FaceRecord
from .scoring import embed_records, face_state

MIN_PHOTOS, MAX_PHOTOS = 2, 10
FACE_STATES = ("detected",)  # what counts as a face for a verdict (a fallback crop of a grey square is "pre_aligned" too)


@dataclass
class Comparison:
    paths: list[str]
    records: list[FaceRecord]
    crops: list[np.ndarray | None]
    similarity: np.ndarray  # (n, n); NaN rows/columns for unreadable photos
    threshold: float

    @property
    def labels(self) -> list[str]:
        """``folder/file``: in the dataset layout the folder is the identity."""
        return [f"{Path(p).parent.name}/{Path(p).name}" if Path(p).parent.name else Path(p).name for p in self.paths]

    def has_face(self, k: int) -> bool:
        """Whether a face was detected in photo ``k``. A photo embedded through a fallback (used as a
        pre-aligned crop or whole) never takes part in a match: a 24 px icon, a grey and a blue
        square are "pre_aligned" too and score 0.98 with each other."""
        return face_state(self.records[k]) in FACE_STATES

    def verdict(self, i: int, j: int) -> str:
        s = float(self.similarity[i, j])
        if not np.isfinite(s):
            return "unreadable"
        if not (self.has_face(i) and self.has_face(j)):
            return "no face: not a match"
        return "same person" if s >= self.threshold else "different"

    def verdicts(self) -> list[tuple[int, int, float, str]]:
        """(i, j, similarity, verdict) for every pair i < j."""
        return [(i, j, float(self.similarity[i, j]), self.verdict(i, j)) for i, j in combinations(range(len(self.paths)), 2)]


def compare_photos(engine: FaceEngine, paths: Sequence, threshold: float, progress: bool = False, raw: bool = False) -> Comparison:
    """Similarities on the calibrated scale (``engine.card``; ``raw=True``: the metric's raw scores), judged at ``threshold``."""
    paths = [str(p) for p in paths]
    if not MIN_PHOTOS <= len(paths) <= MAX_PHOTOS:
        raise UsageError(f"compare takes {MIN_PHOTOS} to {MAX_PHOTOS} photos, got {len(paths)}")
    records, crops, emb = embed_records(engine, paths, progress=progress)
    sim = engine.card.clip_raw(engine.card.similarity_matrix(emb, raw=True))
    sim = sim if raw else engine.card.scale(sim)
    return Comparison(paths, records, crops, sim, float(threshold))


def matrix_rows(c: Comparison) -> list[list[str]]:
    rows = []
    for i, lab in enumerate(c.labels):
        cells = []
        for j in range(len(c.paths)):
            s = c.similarity[i, j]
            if i == j:
                cells.append("-" if np.isfinite(s) else "n/a")
            elif not np.isfinite(s):
                cells.append("n/a")
            elif not (c.has_face(i) and c.has_face(j)):
                cells.append(f"[dim]{s:.3f} (no face)[/]")
            else:
                colour = "green" if s >= c.threshold else "red"
                cells.append(f"[{colour}]{s:.3f}[/]")
        rows.append([f"{lab} ({face_state(c.records[i])})", *cells])
    return rows


def _short(label: str, n: int = 22) -> str:
    """At most ``n`` characters, cut in the middle so both the identity and the file stay readable."""
    return label if len(label) <= n else label[: n // 2 - 1] + "..." + label[-(n - n // 2 - 2):]


def plot_comparison(c: Comparison, out, title: str = "") -> Path:
    """Aligned faces along the top and the left, similarities in the cells (green = same person)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(c.paths)
    size = 1.3 * (n + 1)
    fig, axes = plt.subplots(n + 1, n + 1, figsize=(size, size))
    blank = np.full((*c.crops[0].shape[:2], 3), 235, np.uint8) if any(x is not None for x in c.crops) else np.full((112, 112, 3), 235, np.uint8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, f"threshold\n{c.threshold:.3f}", ha="center", va="center", fontsize=8)
    for k in range(n):
        crop = c.crops[k] if c.crops[k] is not None else blank
        state = face_state(c.records[k])
        for ax in (axes[0, k + 1], axes[k + 1, 0]):
            ax.imshow(crop)
            for sp in ax.spines.values():
                sp.set_color("orange" if state in ("pre_aligned", "whole_image") else "red" if state != "detected" else "black")
        axes[0, k + 1].set_title(_short(c.labels[k]), fontsize=7)
        axes[k + 1, 0].set_ylabel(_short(c.labels[k]), fontsize=7)
    for i in range(n):
        for j in range(n):
            ax = axes[i + 1, j + 1]
            s = c.similarity[i, j]
            if i == j or not np.isfinite(s):
                ax.set_facecolor("#f0f0f0")
                ax.text(0.5, 0.5, "-" if i == j else "n/a", ha="center", va="center", fontsize=9, color="grey", transform=ax.transAxes)
                continue
            v = c.verdict(i, j)
            same = v == "same person"
            ax.set_facecolor((0.75, 0.93, 0.75) if same else (0.9, 0.9, 0.9) if v.startswith("no face") else (0.97, 0.8, 0.8))
            ax.text(0.5, 0.55, f"{s:.3f}", ha="center", va="center", fontsize=10, weight="bold", transform=ax.transAxes)
            ax.text(0.5, 0.25, "same" if same else "no face" if v.startswith("no face") else "different", ha="center", va="center", fontsize=7, transform=ax.transAxes)
    if title:  # wrapped to the figure's width: a long model description is never cut
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(title, max(20, int(size * 11)))), fontsize=9)
    fig.tight_layout()
    out = Path(out)
    try:
        with replacing(out, ".tmp.png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return out
