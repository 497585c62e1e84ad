"""Generator families of a dataset's fakes, for the leave-one-family-out protocol.

A fake's family is the ``backend`` that ``generate deepfakes`` recorded for it in ``fakes.csv``
(``classic``, ``selfblend``, ``morph``, ``roop``, ...); fakes the journal does not list (made by
hand, or by another tool) are family ``unknown``. ``train run --holdout-backend F`` keeps family F
out of training and validation pairs; :func:`acceptance_by_family` is the per-family column of
every report: the share of (real, fake) pairs accepted at the genuine-pair EER threshold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.records import read_fakes_csv
from ..errors import InputError
from ..metrics import FAMILY_PREFIX, KIND_CODE, acceptance_rate

UNKNOWN = "unknown"


def fake_families(dataset_root) -> dict[str, str]:
    """``{fake key: backend}`` from the dataset's ``fakes.csv`` (empty when there is none)."""
    return {r["key"]: (r.get("backend") or UNKNOWN) for r in read_fakes_csv(Path(dataset_root))}


def parse_holdout(spec: str | None) -> tuple[str, ...]:
    """``NAME[,NAME]`` -> the families to hold out (empty for None / "")."""
    return tuple(dict.fromkeys(s.strip().lower() for s in (spec or "").split(",") if s.strip()))


def check_holdout(holdout: tuple[str, ...], families: dict[str, str], where: str) -> None:
    """ValueError (one line, naming ``where``) when a held-out family has no fake in the dataset."""
    present = sorted(set(families.values()))
    absent = [h for h in holdout if h not in present]
    if absent:
        raise InputError(f"{where}: no fakes of backend {', '.join(absent)} in fakes.csv (families present: {', '.join(present) or 'none'})")


def acceptance_by_family(cos: np.ndarray, families: np.ndarray, threshold: float) -> dict[str, float]:
    """``{family: share of its (real, fake) pairs with cos >= threshold}``; ``families`` holds the
    family of each deepfake pair and "" for genuine / impostor pairs."""
    out: dict[str, float] = {}
    if threshold is None or not np.isfinite(threshold):
        return out
    fams = np.asarray(families, dtype=object)
    for f in sorted({str(x) for x in fams if x}):
        out[f] = acceptance_rate(np.asarray(cos, np.float64)[fams == f], threshold)
    return out


def select_pairs(pairs: list, families: dict[str, str], holdout: tuple[str, ...]) -> list:
    """Pairs read from a file: deepfake pairs labelled with their family (where the file has none),
    and those of a ``holdout`` family dropped."""
    from dataclasses import replace

    out = []
    for p in pairs:
        if p.kind == "deepfake" and not p.backend:
            p = replace(p, backend=families.get(p.b, UNKNOWN))
        if p.kind == "deepfake" and p.backend in holdout:
            continue
        out.append(p)
    return out


def family_columns(table, store, families: dict[str, str]) -> np.ndarray:
    """The family of each pair of a :class:`data.PairTable` ("" for genuine / impostor pairs)."""
    by_row = np.full(len(store.index), UNKNOWN, dtype=object)
    for key, row in store.index.items():
        if key in families:
            by_row[row] = families[key]
    out = np.full(len(table), "", dtype=object)
    fake = table.kind == KIND_CODE["deepfake"]
    out[fake] = by_row[table.b[fake]]
    return out


def family_summary(run_dir, last_row: dict | None) -> dict:
    """What ``summary.json`` says per family: the selected (best) checkpoint's validation numbers,
    read back from its config, and the last validation's."""
    import json

    def fams(row: dict | None) -> dict[str, float]:
        return {k[len(FAMILY_PREFIX) :]: v for k, v in (row or {}).items() if k.startswith(FAMILY_PREFIX)}

    best: dict = {}
    cfg = Path(run_dir) / "checkpoints" / "best" / "config.json"
    if cfg.exists():
        try:
            best = json.loads(cfg.read_text()).get("validation") or {}
        except (OSError, ValueError):
            best = {}
    return {
        "attack_acceptance_by_family": fams(best),
        "best_genuine_eer": best.get("genuine_eer"),
        "best_attack_acceptance": best.get("attack_acceptance"),
        "last_attack_acceptance_by_family": fams(last_row),
    }


def stock_comparison(stock_row: dict | None, summary: dict) -> dict:
    """The stock (untrained) encoder's validation acceptance beside the selected checkpoint's, and
    the families where the trained model accepts more deepfakes than stock (``worse_than_stock``)."""
    if not stock_row:
        return {}
    stock = {k[len(FAMILY_PREFIX) :]: v for k, v in stock_row.items() if k.startswith(FAMILY_PREFIX)}
    trained = summary.get("attack_acceptance_by_family") or {}
    worse = sorted(f for f, v in trained.items() if f in stock and v is not None and stock[f] is not None and v > stock[f])
    return {
        "stock_attack_acceptance_by_family": stock,
        "stock_attack_acceptance": stock_row.get("attack_acceptance"),
        "stock_genuine_eer": stock_row.get("genuine_eer"),
        "worse_than_stock": worse,
    }
