"""CelebA's own layout -> the training layout (``images/<id>/<k>.jpg`` + ``meta.json``).

Every kept photo is copied byte for byte when it is already a JPEG (fast: no re-encoding) and
``celeba_map.csv`` maps each new key back to its CelebA file name and identity. Re-running skips
photos already copied, so an interrupted conversion simply continues.
"""
from __future__ import annotations

import csv
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..data import CelebA, atomic_write_text, read_meta, write_meta
from ..errors import InputError
from ..data.celeba import identity_order
from ..ui import progress_task

MAP_NAME = "celeba_map.csv"


@dataclass
class CelebAConversion:
    out: Path
    identities: int
    photos: int
    copied: int
    skipped_existing: int
    too_few_photos: int
    missing_in_celeba: int
    errors: list[str]
    requested: int | None = None  # --identities, when more were asked for than there are


def select_identities(ids: dict[str, list[str]], n: int | None, min_photos: int, seed: int) -> list[str]:
    """Identities with at least ``min_photos`` photos; ``n`` of them drawn with ``seed`` (all if None)."""
    ok = [i for i, files in ids.items() if len(files) >= min_photos]
    if n is not None and n < len(ok):
        ok = sorted(random.Random(seed).sample(ok, n), key=identity_order)
    return ok


def _read_map(path: Path) -> dict[str, tuple[str, str]]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {r["key"]: (r["celeba_file"], r["celeba_identity"]) for r in csv.DictReader(f)}


def convert_celeba(celeba_dir, out_dir, identities: int | None = None, min_photos: int = 3, seed: int = 0, progress: bool = True) -> CelebAConversion:
    """Write the training layout for ``identities`` CelebA ids with >= ``min_photos`` photos each."""
    cel = CelebA.load(celeba_dir)
    out = Path(out_dir)
    meta_path = out / "meta.json"
    if meta_path.exists() and not (out / MAP_NAME).exists():  # a re-run continues; another dataset is not merged into
        raise InputError(f"{out}: already a dataset not written by `generate celeba` (meta.json without {MAP_NAME}); refusing to merge CelebA into it, choose a new --out")
    chosen = select_identities(cel.identities, identities, min_photos, seed)
    if not chosen:
        most = max((len(f) for f in cel.identities.values()), default=0)
        raise InputError(f"{celeba_dir}: no CelebA identity has >= {min_photos} photos (the most any has: {most}); nothing written, lower --min-photos")
    meta = read_meta(meta_path) if meta_path.exists() else {}
    map_path = out / MAP_NAME
    mapping = _read_map(map_path)
    by_file = {v[0]: k for k, v in mapping.items()}
    copied = skipped = 0
    errors: list[str] = []
    total = sum(len(cel.identities[i]) for i in chosen)
    with progress_task("CelebA -> training layout", total, progress) as advance:
        for ident in chosen:
            d = out / "images" / ident
            d.mkdir(parents=True, exist_ok=True)
            used = {Path(k).name for k in meta if k.startswith(ident + "/")}
            k = 0
            for fname in cel.identities[ident]:
                advance()
                src = cel.image_dir / fname
                key = by_file.get(fname)
                if key and (out / "images" / key).exists() and key in meta:
                    skipped += 1
                    continue
                while f"{k}.jpg" in used:
                    k += 1
                key = f"{ident}/{k}.jpg"
                used.add(f"{k}.jpg")
                try:
                    _copy_as_jpeg(src, out / "images" / key)
                except Exception as e:  # one bad photo is reported, not fatal
                    errors.append(f"{src}: {e}")
                    used.discard(f"{k}.jpg")
                    continue
                meta[key] = 0
                mapping[key] = (fname, ident)
                by_file[fname] = key
                copied += 1
    _write_map(map_path, mapping)
    write_meta(meta_path, meta)
    n_photos = sum(1 for k in mapping if k in meta)
    return CelebAConversion(out, len(chosen), n_photos, copied, skipped, sum(1 for f in cel.identities.values() if len(f) < min_photos), len(cel.missing), errors, identities)


def _copy_as_jpeg(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    if src.suffix.lower() in (".jpg", ".jpeg"):
        shutil.copyfile(src, tmp)
    else:
        import cv2

        from ..engine import load_rgb

        rgb = load_rgb(src).rgb
        if not cv2.imwrite(str(tmp) + ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError("cannot encode JPEG")
        os.replace(str(tmp) + ".jpg", tmp)
    os.replace(tmp, dst)


def _write_map(path: Path, mapping: dict[str, tuple[str, str]]) -> None:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "celeba_file", "celeba_identity"])
    for key in sorted(mapping, key=_key_order):
        w.writerow([key, *mapping[key]])
    atomic_write_text(path, buf.getvalue())


def _key_order(key: str):
    ident, name = key.split("/", 1)
    stem = Path(name).stem
    return ((0, int(ident), "") if ident.isdigit() else (1, 0, ident), (0, int(stem), "") if stem.isdigit() else (1, 0, stem))
