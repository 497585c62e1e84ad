"""Pair data over aligned crops: the face engine detects and aligns each photo once, the crops go
into one uint8 array (``RUN_DIR/data/crops.npy``, memory-mapped), and every epoch reads from it.

The engine's own crop cache (keyed by file content) makes a rebuild cheap too: a second run on the
same photos does no detection at all. Photos the engine cannot use are reported (one line each in
``data/errors.csv``) and every pair that needs them is dropped.
"""
from __future__ import annotations

import csv
import errno
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..data import atomic_write_text
from ..data.atomic import named
from ..engine import FaceEngine
from ..metrics import KIND_CODE
from .pairs import Pair

CHUNK = 512  # photos per engine call: bounds memory while building the array


def _allocated_memmap(path: Path, shape: tuple) -> np.ndarray:
    """A writable ``.npy`` memmap whose blocks are reserved on disk first: a sparse file on a full
    disk dies of SIGBUS (exit 135, nothing printed) at the first page written; a reservation fails
    here with ENOSPC naming the file."""
    try:
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    except OSError as e:
        raise named(e, path) from None
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem without reservations: go on
            del arr
            raise named(e, path) from None
    finally:
        os.close(fd)
    return arr


@dataclass
class CropStore:
    """Aligned crops of every photo the pairs use: ``crops[row]`` for ``row = index[key]``."""

    crops: np.ndarray  # (N, H, W, 3) uint8, memory-mapped
    index: dict[str, int]
    ok: np.ndarray  # (N,) bool: a crop exists
    errors: dict[str, str]  # key -> one-line reason

    @classmethod
    def build(cls, engine: FaceEngine, images_dir: Path, keys: list[str], out_dir: Path, progress: bool = True) -> "CropStore":
        """Run the engine over ``keys`` (reusing ``out_dir`` when it already holds the same set)."""
        out_dir = Path(out_dir)
        keys = sorted(set(keys))
        settings = {"keys": len(keys), "crop": engine.crop_key_suffix, "encoder_input": list(engine.crop_size)}
        index_path = out_dir / "index.json"
        if index_path.exists():
            try:
                prev = json.loads(index_path.read_text())
                if prev.get("settings") == settings and prev.get("order") == keys:
                    return cls.open(out_dir)
            except (ValueError, OSError):
                pass
        out_dir.mkdir(parents=True, exist_ok=True)
        h, w = engine.crop_size
        tmp = out_dir / "crops.npy.tmp"
        try:
            arr = _allocated_memmap(tmp, (len(keys), h, w, 3))
            ok = np.zeros(len(keys), bool)
            errors: dict[str, str] = {}
            for s in range(0, len(keys), CHUNK):
                chunk = keys[s : s + CHUNK]
                recs, crops = engine.crops([images_dir / k for k in chunk], progress=progress, desc=f"aligning faces {s + 1}-{s + len(chunk)}/{len(keys)}")
                for j, (rec, crop) in enumerate(zip(recs, crops)):
                    if crop is None:
                        errors[chunk[j]] = rec.error or "no crop"
                    else:
                        arr[s + j] = crop
                        ok[s + j] = True
            arr.flush()
            del arr
            tmp.replace(out_dir / "crops.npy")
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise named(e, out_dir / "crops.npy") from None
            raise
        np.save(out_dir / "ok.npy", ok)
        buf = io.StringIO()
        wr = csv.writer(buf, lineterminator="\n")
        wr.writerow(["key", "reason"])
        for k, why in sorted(errors.items()):
            wr.writerow([k, why])
        atomic_write_text(out_dir / "errors.csv", buf.getvalue())
        atomic_write_text(index_path, json.dumps({"settings": settings, "order": keys}))
        return cls.open(out_dir)

    @classmethod
    def open(cls, out_dir: Path) -> "CropStore":
        out_dir = Path(out_dir)
        keys = json.loads((out_dir / "index.json").read_text())["order"]
        crops = np.load(out_dir / "crops.npy", mmap_mode="r")
        ok = np.load(out_dir / "ok.npy")
        errors = {}
        with (out_dir / "errors.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                errors[row["key"]] = row["reason"]
        return cls(crops, {k: i for i, k in enumerate(keys)}, ok, errors)


@dataclass
class PairTable:
    """Pairs as row indices into a :class:`CropStore` (pairs with an unusable photo removed)."""

    a: np.ndarray  # (P,) int64
    b: np.ndarray
    label: np.ndarray  # (P,) float32
    kind: np.ndarray  # (P,) int8 code into metrics.KINDS (metrics.KIND_CODE)
    dropped: int = 0
    identity: np.ndarray | None = None  # (P,) the anchor's identity (what a bootstrap resamples)

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def from_pairs(cls, pairs: list[Pair], store: CropStore) -> "PairTable":
        a, b, y, k, ident = [], [], [], [], []
        dropped = 0
        for p in pairs:
            ia, ib = store.index.get(p.a), store.index.get(p.b)
            if ia is None or ib is None or not store.ok[ia] or not store.ok[ib]:
                dropped += 1
                continue
            a.append(ia), b.append(ib), y.append(p.label), k.append(KIND_CODE[p.kind]), ident.append(p.identity)
        return cls(np.array(a, np.int64), np.array(b, np.int64), np.array(y, np.float32), np.array(k, np.int8), dropped, np.array(ident, dtype=object))

    def rows(self) -> np.ndarray:
        """Sorted unique crop rows these pairs use."""
        return np.unique(np.concatenate([self.a, self.b])) if len(self) else np.zeros(0, np.int64)


def batch_order(n_pairs: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """The pair indices of global batch ``step``: epoch ``e`` walks a permutation seeded by (seed, e),
    the last incomplete batch of an epoch is dropped. Stateless, so a resumed run sees the same data."""
    per_epoch = n_pairs // batch_size
    if per_epoch < 1:
        raise UsageError(f"batch size {batch_size} is larger than the {n_pairs} training pairs; use a smaller --batch-size")
    epoch, pos = divmod(step, per_epoch)
    perm = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0xE90C, epoch])).permutation(n_pairs)
    return perm[pos * batch_size : (pos + 1) * batch_size]


def flip_mask(n: int, step: int, seed: int) -> np.ndarray:
    """Which of the ``n`` crops of global batch ``step`` to mirror (p = 0.5); stateless like
    :func:`batch_order`, and the same whatever the number of processes."""
    g = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0xF11B, step]))
    return g.random(n) < 0.5


def embed_rows(store: CropStore, rows: np.ndarray, fn, batch_size: int) -> np.ndarray:
    """``fn`` (aligned crops -> one row of output per crop) over ``store``'s ``rows`` in batches,
    concatenated in the order of ``rows``."""
    return np.concatenate([fn(gather_crops(store, rows[s : s + batch_size])) for s in range(0, len(rows), batch_size)])


def gather_crops(store: CropStore, rows: np.ndarray, flips: np.ndarray | None = None) -> np.ndarray:
    """``store.crops[rows]`` as a contiguous array, mirrored where ``flips`` is true."""
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows),) + store.crops.shape[1:], np.uint8)
    out[order] = store.crops[rows[order]]  # sorted reads from the memmap
    if flips is not None and flips.any():
        out[flips] = out[flips][:, :, ::-1]
    return np.ascontiguousarray(out)
