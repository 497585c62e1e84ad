"""Score photo pairs with the face engine: one finite similarity for every pair, always.

``similarity`` is on fakeproof's calibrated scale (``engine.card.scale``, :mod:`fakeproof.engine.cards`:
0 = typical different people, 0.5 = the decision point, 1 = the same photo); ``raw`` is the raw
score of the card's metric it was computed from (the cosine, or minus the Euclidean distance of
the raw descriptors for stock dlib), written to the CSV column ``card.raw_column``.

Every distinct photo is embedded once (the engine batches the encoder, decodes/detects/aligns in a
worker pool and caches crops and embeddings by file content). For each side we record how its crop
was made, in ``face_a`` / ``face_b``:

- ``detected``: a face was found and aligned;
- ``pre_aligned`` / ``whole_image``: no face found; the engine's fallback used the photo itself as
  an aligned crop (small square photos) or its central square;
- ``unreadable``: the file could not be decoded (the reason is in ``error``);
- ``missing``: there is no file for that side.

A pair with an unreadable or missing side still gets a finite similarity:
:data:`UNSCORABLE_SIMILARITY` (0.0 on the scale, "unrelated faces", below the decision point), and the reason
in ``error``. Pairs are never dropped.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..distributed.embed import embed_paths_across_ranks
from ..engine import FaceEngine, FaceRecord
from ..engine.cards import RAW_COLUMN

UNSCORABLE_SIMILARITY = 0.0
RAW_COLUMNS = tuple(RAW_COLUMN.values())  # every name the raw-score column can have


def raw_score_column(scores_csv: Path) -> str:
    """The raw-score column of a score-pairs CSV (``cosine`` or ``neg_euclidean``, after the model's metric)."""
    import pandas as pd

    from ..errors import InputError

    cols = [c for c in RAW_COLUMNS if c in pd.read_csv(scores_csv, nrows=0).columns]
    if not cols:
        raise InputError(f"{scores_csv}: no raw-score column ({' or '.join(RAW_COLUMNS)}); score it with `fakeproof infer score-pairs`")
    return cols[0]


def face_state(rec: FaceRecord | None) -> str:
    if rec is None:
        return "missing"
    if not rec.ok:
        return "unreadable"
    return rec.fallback or "detected"


@dataclass
class PairScores:
    similarity: np.ndarray  # (P,) float64, finite, on the calibrated scale
    face_a: list[str]
    face_b: list[str]
    error: list[str]  # "" where both sides were usable

    raw: np.ndarray | None = None  # (P,) float64, finite: the metric's raw score behind each similarity
    raw_column: str = "cosine"  # its name: ModelCard.raw_column (cosine / neg_euclidean)

    def counts(self) -> Counter:
        return Counter(self.face_a + self.face_b)

    @property
    def n_unscorable(self) -> int:
        return sum(1 for e in self.error if e)


def score_pairs(
    engine: FaceEngine,
    pairs: Sequence[tuple[object | None, object | None]],
    batch_size: int = 32,
    progress: bool = True,
) -> PairScores | None:
    """Similarity (calibrated, ``engine.card``) and raw score of each ``(path_a, path_b)``; ``None``
    means the side has no file.

    Under torchrun the ranks embed slices of the photos; rank 0 gets the scores, the others ``None``."""
    uniq: dict[str, int] = {}
    for a, b in pairs:
        for p in (a, b):
            if p is not None:
                uniq.setdefault(str(p), len(uniq))
    paths = list(uniq)
    if paths:
        res = embed_paths_across_ranks(engine, paths, progress=progress, batch_size=batch_size)
        if res is None:  # under torchrun, a rank other than 0: rank 0 scores
            return None
        emb, records = res.embeddings.astype(np.float64), res.records
    else:
        emb, records = np.zeros((0, engine.spec.embedding_dim)), []
    card = engine.card
    unscorable_raw = card.raw_threshold(UNSCORABLE_SIMILARITY)
    sims = np.full(len(pairs), unscorable_raw, np.float64)
    face_a, face_b, errors = [], [], []
    for k, (a, b) in enumerate(pairs):
        ia = uniq.get(str(a)) if a is not None else None
        ib = uniq.get(str(b)) if b is not None else None
        ra = records[ia] if ia is not None else None
        rb = records[ib] if ib is not None else None
        face_a.append(face_state(ra))
        face_b.append(face_state(rb))
        problems = []
        for side, p, r in (("a", a, ra), ("b", b, rb)):
            if p is None:
                problems.append(f"{side}: no file")
            elif r is not None and not r.ok:
                problems.append(f"{side}: {Path(str(p)).name}: {r.error}")
        if not problems:
            v = float(card.raw_similarity(emb[ia], emb[ib]))
            if np.isfinite(v):
                sims[k] = float(card.clip_raw(v))
            else:  # pragma: no cover - the engine gives finite rows for every ok record
                problems.append("non-finite embedding")
        errors.append("; ".join(problems))
    return PairScores(np.asarray(card.scale(sims), np.float64), face_a, face_b, errors, raw=sims, raw_column=card.raw_column)


def embed_records(engine: FaceEngine, paths: Sequence, batch_size: int = 32, progress: bool = True):
    """``(records, crops, embeddings)`` for a handful of photos (``compare``): the crops too. Both
    go through the engine's caches (a photo compared twice is embedded once)."""
    records, crops = engine.crops(paths, progress=progress)
    res = engine.embed_paths(paths, progress=False, batch_size=batch_size)
    return records, crops, res.embeddings
