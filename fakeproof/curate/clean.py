"""``curate clean``: embed every image with the face engine, analyse, write the curation folder.

Read-only for the dataset: it never touches ``meta.json`` or an image; everything goes to
``DATASET/curation/`` (or ``out``). Embeddings come from the engine's content cache, so re-running
with another threshold only redoes the (fast) graph stage.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..data import TrainingDataset
from ..data.digests import meta_digest, path_digest
from ..distributed.embed import embed_paths_across_ranks
from ..engine import FaceEngine
from .analyse import Analysis, PhotoInfo, analyse
from .report import write_embeddings, write_heatmaps, write_similarity, write_summary, write_tables
from ..engine.encoders import DEFAULT_ENCODER
from .thresholds import CLOSER_FLOOR_MARGIN_SCALE, CLOSER_MARGIN_SCALE, DISTINCT_BELOW_SCALE, DISTINCT_MARGIN_SCALE, KEEP_FLOOR, curation_thresholds


@dataclass
class CleanResult:
    analysis: Analysis
    out: Path
    dataset: TrainingDataset
    summary: dict


def curation_dir(dataset: Path, out: Path | None = None) -> Path:
    return Path(out) if out else Path(dataset) / "curation"


def run_clean(
    dataset,
    threshold: float | None = None,
    encoder=DEFAULT_ENCODER,
    out=None,
    engine: FaceEngine | None = None,
    fake_threshold: float | None = None,
    dup_threshold: float | None = None,
    max_heatmaps: int = 100,
    progress: bool = True,
) -> CleanResult | None:
    """Under torchrun the ranks embed slices of the photos and rank 0 does the rest; the other
    ranks get ``None``. Thresholds are on the similarity scale (0.5 = the model's decision point;
    ``None``: the defaults of :func:`fakeproof.curate.thresholds.curation_thresholds`); the graph
    works on the raw cosines they stand for (``summary.json`` records both)."""
    dataset = Path(dataset)
    t0 = time.perf_counter()
    meta_sha = meta_digest(dataset / "meta.json")
    ds = TrainingDataset.load(dataset)
    if not ds.items:
        raise InputError(f"{dataset / 'meta.json'}: no image of meta.json exists under {ds.images_dir}")
    items = sorted(ds.items, key=lambda it: it.key)
    eng = engine or FaceEngine(encoder)
    card = eng.card
    scale_threshold = 0.5 if threshold is None else float(threshold)
    threshold, fake_threshold, dup_threshold = curation_thresholds(card, threshold, fake_threshold, dup_threshold)
    res = embed_paths_across_ranks(eng, [it.path for it in items], progress=progress)
    if res is None:  # not rank 0
        return None
    t_embed = time.perf_counter()
    info = [PhotoInfo(r.ok, r.error, r.n_faces if r.ok else None, r.fallback, r.digest or path_digest(it.path)) for r, it in zip(res.records, items)]
    a = analyse(
        [it.key for it in items],
        [it.identity for it in items],
        np.array([it.is_deepfake for it in items], bool),
        res.embeddings,
        threshold,
        info,
        fake_threshold=fake_threshold,
        dup_threshold=dup_threshold,
        closer_margin=CLOSER_MARGIN_SCALE,
        scale=card.scale,
        keep_floor=card.raw_threshold(KEEP_FLOOR) if card.calibrated else None,
        closer_floor=card.raw_threshold(scale_threshold + CLOSER_FLOOR_MARGIN_SCALE),
        distinct_floor=card.raw_threshold(scale_threshold - DISTINCT_BELOW_SCALE),
        distinct_margin=DISTINCT_MARGIN_SCALE,
        progress=progress,
        metric=card.metric,
    )
    o = curation_dir(dataset, out)
    o.mkdir(parents=True, exist_ok=True)
    write_tables(a, o)
    write_similarity(a, o)
    write_embeddings([it.key for it in items], res.embeddings, o)
    maps = write_heatmaps(a, o, max_heatmaps)
    f = a.flags
    summary = {
        "dataset": str(dataset.resolve()),
        "meta_sha256": meta_sha,  # review/apply compare it with meta.json now
        "threshold": scale_threshold,  # on the similarity scale
        "threshold_cosine": threshold,  # the raw cosine it stands for (graph edges)
        "calibration": card.calibration.to_dict(),
        "fake_threshold": fake_threshold,
        "dup_threshold": dup_threshold,
        "encoder": eng.spec.name,
        "margin": eng.margin,
        "images": len(f),
        "real": int((f.is_deepfake == 0).sum()),
        "deepfakes": int((f.is_deepfake == 1).sum()),
        "identities": len(a.identities),
        "flagged": int(f.flagged.sum()),
        "reasons": {k: int(v) for k, v in f[f.flagged].reason.value_counts().items()},
        "merge_candidates": len(a.merges),
        "missing_files": ds.missing_files,
        "unlisted_files": ds.unlisted_files,
        "heatmaps": len(maps),
        "timings": {"embed_s": t_embed - t0, **a.timings, "total_s": time.perf_counter() - t0},
        "engine_cache": dict(eng.stats),
    }
    write_summary(o, summary)
    return CleanResult(a, o, ds, summary)
