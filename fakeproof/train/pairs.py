"""Training pairs from a dataset in the training layout (the seed's 50/25/25 recipe).

Per identity with ``n`` real photos (``n >= 2``):

- ``k = C(n, 2)`` genuine pairs (two real photos of the identity, label 1), capped so that one big
  identity does not dominate (``max_pairs_per_identity`` counts all three kinds together);
- ``ceil(k/2)`` impostor pairs: a random real photo of the identity with a random real photo of
  another identity *of the same split* (label 0, kind ``impostor``);
- ``ceil(k/2)`` deepfake pairs: a random real photo of the identity with a random deepfake filed
  under the same identity (label 0, kind ``deepfake``).

Identities without deepfakes contribute genuine and impostor pairs only (they are counted in
:class:`PairSummary`); identities with fewer than two real photos contribute no pairs. Identities
are split into train/validation (and, with ``test_fraction``, a test split that training never
reads, for a final before/after evaluation) before any pair is drawn, so no identity is on two sides.
Everything is deterministic under ``seed``; each identity draws from its own generator (seeded
from ``seed`` and its name), so adding an identity does not reshuffle the others.
"""
from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..data.safe_paths import PathEscapeError, why_unsafe
from ..errors import InputError
from ..data import TrainingDataset, atomic_write_text
from ..metrics import KINDS
from .families import UNKNOWN

CSV_FIELDS = ("split", "kind", "label", "identity", "a", "b", "backend")
OPTIONAL_FIELDS = {"backend"}  # pairs files written before it existed still read
SPLITS = ("train", "val", "test")  # train run reads train and val; test is held apart from both


@dataclass(frozen=True)
class Pair:
    a: str  # dataset key "<identity>/<file>" of the real anchor photo
    b: str  # dataset key of the second photo
    label: int  # 1 = same real person, 0 = other person or deepfake
    kind: str  # genuine | impostor | deepfake
    identity: str  # the anchor's identity
    split: str  # train | val | test
    backend: str = ""  # deepfake pairs: the fake's generator family (fakes.csv); "" otherwise


@dataclass
class PairSummary:
    identities: dict[str, int] = field(default_factory=dict)  # split -> identities
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> kind -> pairs
    without_fakes: list[str] = field(default_factory=list)  # identities with no deepfake
    too_few_reals: list[str] = field(default_factory=list)  # identities with < 2 real photos

    def rows(self) -> list[list[object]]:
        out = []
        for split in SPLITS:
            if split == "test" and split not in self.counts:
                continue
            c = self.counts.get(split, {})
            total = sum(c.values())
            out.append([split, self.identities.get(split, 0), *(c.get(k, 0) for k in KINDS), total])
        return out


def _identity_rng(seed: int, identity: str) -> np.random.Generator:
    h = int.from_bytes(hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, h]))


def split_identities(identities: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle identities under ``seed`` and hold ``val_fraction`` of them apart for validation.

    With a positive fraction and at least four identities the validation side gets at least two
    (impostor pairs need two identities), and the training side always keeps at least two."""
    ids = sorted(identities)
    if not ids or val_fraction <= 0:
        return ids, []
    order = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x5911])).permutation(len(ids))
    n_val = int(round(val_fraction * len(ids)))
    if len(ids) >= 4:
        n_val = min(max(n_val, 2), len(ids) - 2)
    else:
        n_val = min(max(n_val, 1), len(ids) - 1)
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return train, val


def _sample_unique(rng: np.random.Generator, count: int, draw, limit: int) -> list[tuple]:
    """Up to ``count`` distinct tuples from ``draw(rng)``; ``limit`` is the size of the space."""
    count = min(count, limit)
    seen: dict[tuple, None] = {}
    tries = 0
    while len(seen) < count and tries < 50 * count + 100:
        seen.setdefault(draw(rng), None)
        tries += 1
    return list(seen)


def pairs_for_split(reals: dict[str, list[str]], fakes: dict[str, list[str]], split: str, seed: int, max_pairs_per_identity: int | None) -> list[Pair]:
    """The recipe for the identities of one split (``reals``/``fakes``: identity -> sorted keys)."""
    pool = sorted(i for i, r in reals.items() if r)
    out: list[Pair] = []
    for ident in sorted(reals):
        r = reals[ident]
        n = len(r)
        if n < 2:
            continue
        rng = _identity_rng(seed, ident)
        all_pos = n * (n - 1) // 2
        k = all_pos
        if max_pairs_per_identity:
            k = min(k, max(1, max_pairs_per_identity // 2))
        if k < all_pos:
            chosen = sorted(rng.choice(all_pos, size=k, replace=False).tolist())
            combos = [(i, j) for i in range(n) for j in range(i + 1, n)]
            pos = [combos[c] for c in chosen]
        else:
            pos = [(i, j) for i in range(n) for j in range(i + 1, n)]
        out += [Pair(r[i], r[j], 1, "genuine", ident, split) for i, j in pos]
        n_neg = math.ceil(k / 2)
        others = [o for o in pool if o != ident]
        if others:
            n_other = sum(len(reals[o]) for o in others)

            def draw_imp(g, r=r, others=others):
                o = others[int(g.integers(len(others)))]
                return (r[int(g.integers(len(r)))], reals[o][int(g.integers(len(reals[o])))])

            out += [Pair(a, b, 0, "impostor", ident, split) for a, b in _sample_unique(rng, n_neg, draw_imp, n * n_other)]
        f = fakes.get(ident, [])
        if f:

            def draw_fake(g, r=r, f=f):
                return (r[int(g.integers(len(r)))], f[int(g.integers(len(f)))])

            out += [Pair(a, b, 0, "deepfake", ident, split) for a, b in _sample_unique(rng, n_neg, draw_fake, n * len(f))]
    return out


def build_pairs(
    dataset: TrainingDataset,
    seed: int = 0,
    val_fraction: float = 0.2,
    max_pairs_per_identity: int | None = None,
    test_fraction: float = 0.0,
    families: dict[str, str] | None = None,
    holdout: tuple[str, ...] = (),
) -> tuple[list[Pair], PairSummary]:
    """All pairs of ``dataset``: identity-disjoint train/val(/test) splits, each built with the recipe.

    ``test_fraction`` of the identities is drawn first (from a different stream than the
    validation split); ``val_fraction`` then applies to the identities that remain. ``families``
    (fake key -> backend, from :func:`families.fake_families`) labels each deepfake pair; fakes of a
    ``holdout`` family are left out before any pair is drawn (leave-one-family-out)."""
    reals: dict[str, list[str]] = {}
    fakes: dict[str, list[str]] = {}
    for ident, items in dataset.by_identity().items():
        reals[ident] = sorted(it.key for it in items if not it.is_deepfake)
        fakes[ident] = sorted(it.key for it in items if it.is_deepfake)
    summary = PairSummary()
    summary.too_few_reals = sorted(i for i, r in reals.items() if len(r) < 2)
    usable = sorted(i for i, r in reals.items() if len(r) >= 2)
    summary.without_fakes = sorted(i for i in usable if not fakes.get(i))
    families = families or {}
    if holdout:  # a held-out family's fakes never enter any split's pairs
        fakes = {i: [k for k in f if families.get(k, UNKNOWN) not in holdout] for i, f in fakes.items()}
    rest, test_ids = split_identities(usable, test_fraction, seed + 7919) if test_fraction > 0 else (usable, [])
    train_ids, val_ids = split_identities(rest, val_fraction, seed)
    pairs: list[Pair] = []
    for split, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        if split == "test" and not test_fraction > 0:
            continue
        # impostor partners come from the same split only: no identity crosses the split
        sub_reals = {i: reals[i] for i in ids}
        sub_fakes = {i: fakes[i] for i in ids}
        got = [replace(p, backend=families.get(p.b, UNKNOWN)) if p.kind == "deepfake" else p for p in pairs_for_split(sub_reals, sub_fakes, split, seed, max_pairs_per_identity)]
        pairs += got
        summary.identities[split] = len(ids)
        summary.counts[split] = {k: sum(p.kind == k for p in got) for k in KINDS}
    return pairs, summary


def write_pairs_csv(pairs: list[Pair], path: Path) -> Path:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for p in pairs:
        d = asdict(p)
        w.writerow({k: d[k] for k in CSV_FIELDS})
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def read_pairs_csv(path: Path) -> list[Pair]:
    """Pairs written by :func:`write_pairs_csv`; a malformed row, or a path that leaves the dataset
    (absolute, ``..``), raises an error naming the line."""
    path = Path(path)
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        missing = set(CSV_FIELDS) - OPTIONAL_FIELDS - set(r.fieldnames or [])
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(r, 2):
            if row["split"] not in SPLITS or row["kind"] not in KINDS or row["label"] not in ("0", "1"):
                raise InputError(f"{path}:{line}: bad split/kind/label {row['split']!r}/{row['kind']!r}/{row['label']!r}")
            for col in ("a", "b"):  # keys under DATASET/images: nothing outside the dataset is trained on
                why = why_unsafe(row[col] or "")
                if why or not row[col]:
                    raise PathEscapeError(f"{path}:{line}: column {col} {row[col]!r}: {why or 'empty'}; pairs must name photos inside the dataset")
            out.append(Pair(row["a"], row["b"], int(row["label"]), row["kind"], row["identity"], row["split"], row.get("backend") or ""))
    return out
