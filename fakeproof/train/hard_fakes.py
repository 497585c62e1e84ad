"""Hard-negative mining of deepfakes (``train run --hard-fakes SHARE``).

Before the first step, the starting encoder scores every training deepfake pair (a real photo of X
against a fake carrying X's identity). The ``SHARE`` of them it finds most similar, the fakes it
would accept first, are added to the training pairs a second time, so every epoch shows them
twice. It is computed once from the starting weights (a resumed run recomputes the same list).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..metrics import KIND_CODE
from .data import CropStore, PairTable, embed_rows

DEEPFAKE = KIND_CODE["deepfake"]


def oversample_hard_fakes(table: PairTable, store: CropStore, embed: Callable[[np.ndarray], np.ndarray], share: float, batch_size: int = 64) -> tuple[PairTable, int]:
    """``table`` plus a second copy of its hardest ``share`` of deepfake pairs; and how many."""
    fake = np.flatnonzero(table.kind == DEEPFAKE)
    n = int(round(share * len(fake)))
    if n <= 0:
        return table, 0
    rows = np.unique(np.concatenate([table.a[fake], table.b[fake]]))  # sorted: searchsorted finds each side
    emb = embed_rows(store, rows, embed, batch_size)
    cos = (emb[np.searchsorted(rows, table.a[fake])] * emb[np.searchsorted(rows, table.b[fake])]).sum(1)
    hard = fake[np.argsort(-cos, kind="stable")[:n]]
    cat = lambda f: np.concatenate([f, f[hard]])  # noqa: E731
    ident = cat(table.identity) if table.identity is not None else None
    return replace(table, a=cat(table.a), b=cat(table.b), label=cat(table.label), kind=cat(table.kind), identity=ident), n
