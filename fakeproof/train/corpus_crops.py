"""The artefact corpus of ``train run --artefact-corpus DIR``: its images as the guard's input.

Every image of ``DIR/images.csv`` (:func:`fakeproof.detect_fakes.corpus.read_images_csv`) goes
through the run's own face engine once: detection and the 5 landmarks come from the engine (and its
crop cache, keyed by file content, so a second run detects nothing). Then the photo itself is shrunk
by a random factor, re-encoded at a random JPEG quality and scaled back
(:func:`fakeproof.detect_fakes.crops.degrade`, seeded per image), and only then aligned to the
encoder's chip: the corpus's sources differ in format (PNG fakes, JPEG reals) and size, and a head
that learns "PNG" or "small source" learns nothing. The chips go into ``RUN_DIR/corpus/crops.npy``
(memory-mapped, rebuilt only when the corpus, the crop settings or the seed change).

Each image gets a split by its capture unit (group + person/video, so a video's real and fake
frames stay together): ``train`` (the head learns from it) or ``eval`` (20%: the gate's choice of
``tau`` and the closing check read it). The held-out family's fakes are never trained on.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import atomic_write_text
from ..detect_fakes.corpus import CorpusError, Item, read_images_csv
from ..ui import progress_task

EVAL_SHARE = 0.2  # share of capture units kept for the gate's choice and the closing check
NONE = "none"  # --holdout-family none: every family trains


def unit_split(item: Item, seed: int) -> str:
    """``train`` or ``eval`` for an image, by its (group, identity): stable under any order."""
    h = hashlib.blake2b(f"{seed}|{item.group}|{item.identity}".encode(), digest_size=8).digest()
    return "eval" if int.from_bytes(h, "big") / 2**64 < EVAL_SHARE else "train"


def check_corpus(root) -> list[Item]:
    """``DIR/images.csv`` and every image it names, read as far as the header (cheap: no decoding of
    pixels), before any model work; :class:`CorpusError` names the file, the line and the reason."""
    from PIL import Image, UnidentifiedImageError

    items = read_images_csv(root)
    csv_path = Path(root) / "images.csv"
    for n, it in enumerate(items, 2):  # read_images_csv keeps one item per row, in order
        try:
            with Image.open(it.path) as im:
                im.size
        except (UnidentifiedImageError, OSError, ValueError) as e:
            why = "not an image PIL can read" if isinstance(e, UnidentifiedImageError) else (getattr(e, "strerror", None) or str(e) or type(e).__name__)
            raise CorpusError(f"{csv_path}: line {n}: {it.path}: unreadable image ({why})") from None
    return items


def choose_holdout(items: list[Item], dataset_families, asked: str | None) -> str | None:
    """The family the closing check holds out: ``asked`` (checked), else the corpus family with most
    fakes that the dataset does not have (ties: by name); None for ``none``."""
    fams: dict[str, int] = {}
    for it in items:
        if it.label:
            fams[it.family] = fams.get(it.family, 0) + 1
    if asked is not None:
        if asked.strip().lower() == NONE:
            return None
        if asked not in fams:
            raise CorpusError(f"--holdout-family {asked}: no fakes of that family in the corpus (families: {', '.join(sorted(fams))})")
        return asked
    present = {str(f).lower() for f in dataset_families}
    cands = sorted((-n, f) for f, n in fams.items() if f.lower() not in present)
    return cands[0][1] if cands else None


def _csv_digest(root: Path) -> str:
    return hashlib.blake2b((root / "images.csv").read_bytes(), digest_size=12).hexdigest()


@dataclass
class CorpusCrops:
    """The corpus's chips (``crops[row]``, uint8 HWC in the encoder's input size) and what each is."""

    crops: np.ndarray
    items: list[Item]
    ok: np.ndarray  # (N,) a chip exists
    split: np.ndarray  # (N,) "train" | "eval"
    holdout: str | None
    errors: dict[str, str]

    @property
    def label(self) -> np.ndarray:
        return np.array([it.label for it in self.items], int)

    @property
    def family(self) -> np.ndarray:
        return np.array([it.family for it in self.items], dtype=object)

    def rows(self, *, label: int, split: str | None = None, holdout: bool | None = False) -> np.ndarray:
        """Usable rows of one label, in one split (None: any), of the held-out family only (True),
        not of it (False), or either (None)."""
        m = self.ok & (self.label == label)
        if split is not None:
            m &= self.split == split
        if holdout is not None and self.holdout is not None:
            m &= (self.family == self.holdout) == holdout
        return np.flatnonzero(m)

    def train_groups(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """({real group: rows}, {fake family: rows}) the head trains on (held-out family excluded)."""
        reals, fakes = {}, {}
        for r in self.rows(label=0, split="train", holdout=None):
            reals.setdefault(self.items[r].group, []).append(r)
        for r in self.rows(label=1, split="train", holdout=False):
            fakes.setdefault(self.items[r].family, []).append(r)
        return ({k: np.asarray(v) for k, v in sorted(reals.items())}, {k: np.asarray(v) for k, v in sorted(fakes.items())})

    @classmethod
    def build(cls, engine, root, out_dir: Path, seed: int, holdout: str | None, progress: bool = True, items: list[Item] | None = None) -> "CorpusCrops":
        from ..detect_fakes.crops import degrade
        from ..engine.align import align_face
        from ..engine.images import ImageLoadError, decode_rgb

        root, out_dir = Path(root), Path(out_dir)
        items = items if items is not None else read_images_csv(root)
        split = np.array([unit_split(it, seed) for it in items], dtype=object)
        settings = {"csv": _csv_digest(root), "n": len(items), "crop": engine.crop_key_suffix, "seed": int(seed)}
        index_path = out_dir / "index.json"
        if index_path.exists():
            try:
                if json.loads(index_path.read_text()).get("settings") == settings:
                    return cls._open(out_dir, items, split, holdout)
            except (ValueError, OSError):
                pass
        out_dir.mkdir(parents=True, exist_ok=True)
        h, w = engine.crop_size
        tmp = out_dir / "crops.npy.tmp"
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(items), h, w, 3))
        ok = np.zeros(len(items), bool)
        errors: dict[str, str] = {}
        records, _ = engine.crops([it.path for it in items], progress=progress, desc="artefact corpus: finding faces")

        def one(i: int):
            rec = records[i]
            if not rec.ok:
                return i, rec.error or "no face"
            try:
                img = decode_rgb(Path(items[i].path).read_bytes(), items[i].path)
            except (ImageLoadError, OSError) as e:
                return i, getattr(e, "reason", str(e))
            rgb = degrade(img.rgb, np.random.default_rng([int(seed), 0xC0A9, i]))
            arr[i] = align_face(rgb, np.asarray(rec.landmarks, np.float64) * img.scale, engine.crop_size, engine.margin, engine.template)
            return i, None

        with progress_task("artefact corpus: degrading and aligning", len(items), progress) as advance, ThreadPoolExecutor(2) as pool:
            for i, err in pool.map(one, range(len(items))):
                if err is None:
                    ok[i] = True
                else:
                    errors[items[i].path] = err
                advance(1)
        arr.flush()
        tmp.replace(out_dir / "crops.npy")
        np.save(out_dir / "ok.npy", ok)
        buf = io.StringIO()
        wr = csv.writer(buf, lineterminator="\n")
        wr.writerow(["path", "reason"])
        wr.writerows(sorted(errors.items()))
        atomic_write_text(out_dir / "errors.csv", buf.getvalue())
        atomic_write_text(index_path, json.dumps({"settings": settings}))
        return cls._open(out_dir, items, split, holdout)

    @classmethod
    def _open(cls, out_dir: Path, items, split, holdout) -> "CorpusCrops":
        errors = {}
        with (out_dir / "errors.csv").open(newline="") as f:
            for r in csv.DictReader(f):
                errors[r["path"]] = r["reason"]
        return cls(np.load(out_dir / "crops.npy", mmap_mode="r"), items, np.load(out_dir / "ok.npy"), split, holdout, errors)
