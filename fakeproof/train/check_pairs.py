"""Real pairs of many people for the closing check (``train run --check-pairs CSV``).

A validation split of a dozen identities cannot see a half-point rise of the genuine-pair EER: on the
issue's own run (60 CelebA identities, 96 validation impostor pairs) a trained encoder went from 1.0% to
1.0% on validation while it went from 4.27% to 7.03% on the 6,000 pairs of ``celeba-pairs``. This file
reads such a set (the LFW View 2 / ``celeba-pairs`` layout: ``path_a,path_b,expected_accept`` with paths
relative to the CSV's folder; the people are the photos' parent folders unless ``identity_a`` is a
column), checked before any work, and scores it for the closing check.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FakeproofError

COLUMNS = ("path_a", "path_b", "expected_accept")
MIN_PAIRS = 20  # of each kind: fewer is no check at all


class CheckPairsError(FakeproofError, ValueError):
    """A --check-pairs file that cannot be used; the message names the file, the line and the reason."""


@dataclass
class CheckPairs:
    paths: list[str]  # unique photos (absolute)
    a: np.ndarray  # (P,) index into paths
    b: np.ndarray
    label: np.ndarray  # (P,) 1 = same person
    person: np.ndarray  # (P,) the bootstrap's unit: the person of photo a
    source: str

    def __len__(self) -> int:
        return len(self.label)


def read_check_pairs(csv_path) -> CheckPairs:
    """The pairs of ``csv_path``; every photo must exist (:class:`CheckPairsError` otherwise)."""
    p = Path(csv_path)
    if not p.is_file():
        raise CheckPairsError(f"{p}: --check-pairs: no such file")
    root = p.parent.resolve()
    try:
        with p.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CheckPairsError(f"{p}: --check-pairs: cannot read as CSV ({e})") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise CheckPairsError(f"{p}: --check-pairs: no column {missing[0]!r} (needs {', '.join(COLUMNS)})")
    index: dict[str, int] = {}
    a, b, y, person = [], [], [], []
    for n, r in enumerate(rows, 2):
        lab = r["expected_accept"].strip().lower()
        if lab not in ("0", "1", "true", "false"):
            raise CheckPairsError(f"{p}: line {n}: expected_accept {r['expected_accept']!r} is not 0/1")
        ij = []
        for k in ("path_a", "path_b"):
            rel = r[k].strip()
            full = (root / rel).resolve()
            if not full.is_relative_to(root):
                raise CheckPairsError(f"{p}: line {n}: {k} {rel!r} leaves the CSV's folder")
            if str(full) not in index:
                if not full.is_file():
                    raise CheckPairsError(f"{p}: line {n}: {k} {rel!r}: no such file")
                index[str(full)] = len(index)
            ij.append(index[str(full)])
        a.append(ij[0]), b.append(ij[1]), y.append(int(lab in ("1", "true")))
        person.append(r.get("identity_a") or Path(r["path_a"].strip()).parent.as_posix())
    y = np.asarray(y, np.int64)
    if min((y == 1).sum(), (y == 0).sum()) < MIN_PAIRS:
        raise CheckPairsError(f"{p}: --check-pairs: {int((y == 1).sum())} genuine and {int((y == 0).sum())} impostor pairs; needs {MIN_PAIRS} of each")
    return CheckPairs(list(index), np.asarray(a), np.asarray(b), y, np.asarray(person, dtype=object), str(p))


def check_pairs_measure(scores: dict[str, np.ndarray], pairs: CheckPairs, n_boot: int = 1000, seed: int = 0) -> dict:
    """Genuine-pair EER of each model's ``scores`` on ``pairs`` (NaN = a photo without a crop: the
    pair is left out for every model), with intervals resampling people, and each model's paired
    difference against ``stock``."""
    from ..metrics import group_bootstrap
    from .closing import interval, pair_eer

    ok = np.all([np.isfinite(s) for s in scores.values()], axis=0)
    y, person = pairs.label[ok], pairs.person[ok]
    s = {k: v[ok] for k, v in scores.items()}
    point = {k: pair_eer(v, y)[0] for k, v in s.items()}
    boots = {k: [] for k in s}
    for idx in group_bootstrap(person, n_boot, seed):
        for k, v in s.items():
            boots[k].append(pair_eer(v[idx], y[idx])[0])
    out = {"source": pairs.source, "pairs": int(ok.sum()), "left_out": int((~ok).sum()), "genuine": int(y.sum()),
           "models": {k: {"value": point[k], "ci": interval(boots[k])} for k in s}, "vs_stock": {}}
    for k in s:
        if k != "stock":
            out["vs_stock"][k] = {"diff": point[k] - point["stock"], "ci": interval(np.asarray(boots[k]) - np.asarray(boots["stock"]))}
    return out
