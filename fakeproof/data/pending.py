"""The interrupted batch of a dataset: every command that reads or writes a dataset settles it first.

``curate apply`` (and ``--undo``) move photos under a write-ahead journal,
``DATASET/curation/pending_batch.json`` (:mod:`fakeproof.data.move_journal`). A kill leaves that journal
behind; until it is rolled forward or back, ``meta.json`` and the files disagree. Any command that
reads or writes the dataset - not only ``curate`` - must therefore finish (or reverse) the batch
before it looks at the dataset, or refuse when that cannot be done safely; otherwise it would read a
half-moved dataset or write a meta.json that makes the batch unrecoverable.
"""
from __future__ import annotations

import os
from pathlib import Path

from .move_journal import recover

PENDING_BATCH = "curation/pending_batch.json"  # relative to the dataset root


def settle_interrupted_batch(root) -> str | None:
    """Roll an interrupted apply/undo of dataset ``root`` forward or back; returns what was done
    (None: nothing pending). Raises :class:`~fakeproof.data.move_journal.JournalError` (one line, the
    command stops) when it cannot be done safely. Under torchrun only rank 0 recovers."""
    root = Path(root)
    if not (root / "meta.json").exists() or os.environ.get("RANK", "0") != "0":
        return None  # the command reports a missing meta.json itself
    return recover(root, PENDING_BATCH)
