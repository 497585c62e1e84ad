"""Reading the corpora a detector learns from, each checked before any model work.

``images.csv`` (deepfakes-train's layout): ``path,label,family`` at least (label ``real``/``fake``,
or 0/1), optional ``group`` (the matched real/fake capture domain) and ``identity_or_video`` (what a
bootstrap resamples). A ``generate`` training layout (``meta.json`` + ``fakes.csv``) reads as a
corpus too: reals are family ``real_<name>``, fakes their backend, one group for the whole set.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import FakeproofError

REQUIRED_COLUMNS = ("path", "label", "family")
LABELS = {"real": 0, "0": 0, "fake": 1, "1": 1}


class CorpusError(FakeproofError, ValueError):
    """One line naming the file and the reason."""


@dataclass(frozen=True)
class Item:
    path: str  # absolute
    label: int  # 1 = fake
    family: str
    group: str  # the capture domain its matched reals share
    identity: str  # the footage unit (:func:`footage_unit`): what splits and the bootstrap keep together


FOOTAGE_KEYS = ("original_video", "target_video", "driver_clip", "video", "target", "id")  # first present names the footage


def footage_unit(raw: str, path: str) -> str:
    """The real footage an image comes from, so a fake and the real it was rendered onto share one unit.

    ``identity_or_video`` is ``key:value`` pairs joined by ``;``; keys may carry a dataset prefix
    (``ffpp_target_video``, ``celebdf_id``). A fake names the footage it was made on (``original_video``,
    ``target_video``, ``driver_clip``, ``target``), a real its own (``video``, ``driver_clip``, ``id``); a
    ``clip`` is appended. So ``ffpp_target_video:519;source_video:515`` and ``ffpp_video:519`` are one unit,
    as are ``celebdf_target:id13;source:id10;clip:0011`` and ``celebdf_id:id13;clip:0011``. Splits and
    bootstrap resamples work on these units: a detector that saw a scene as "fake" in training and
    meets the same scene as "real" in testing would learn scenes, not artefacts. Unknown: each image its
    own unit; without a footage key, the first ``;`` part names the unit."""
    raw = (raw or "").strip()
    if not raw or raw.lower().startswith("unknown"):
        return path
    kv = {}
    for part in raw.split(";"):
        if ":" in part:
            k, v = part.split(":", 1)
            kv[k.strip().lower()] = v.strip()
    first = raw.split(";")[0].strip()
    def find(key):
        for k, v in kv.items():
            if k == key or k.endswith("_" + key):
                return v
        return None

    footage = next((v for v in map(find, FOOTAGE_KEYS) if v), None)
    if footage is None:
        return first
    clip = find("clip")
    return footage if clip is None or clip == footage else f"{footage}/{clip}"


def read_images_csv(root) -> list[Item]:
    root = Path(root)
    csv_path = root / "images.csv"
    if not root.is_dir():
        raise CorpusError(f"{root}: artefact corpus folder not found")
    if not csv_path.is_file():
        raise CorpusError(f"{csv_path}: missing (an artefact corpus needs images.csv with columns {','.join(REQUIRED_COLUMNS)})")
    try:
        with csv_path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CorpusError(f"{csv_path}: missing column(s) {', '.join(missing)} (needs {','.join(REQUIRED_COLUMNS)})")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise CorpusError(f"{csv_path}: not a UTF-8 CSV ({e.reason})") from None
    items: list[Item] = []
    for n, r in enumerate(rows, 2):
        label = LABELS.get(str(r["label"]).strip().lower())
        if label is None:
            raise CorpusError(f"{csv_path}: line {n}: label {r['label']!r} is not real/fake/0/1")
        p = root / r["path"]
        if not p.is_file():
            raise CorpusError(f"{csv_path}: line {n}: image {r['path']} not found under {root}")
        if not r["family"]:
            raise CorpusError(f"{csv_path}: line {n}: empty family")
        items.append(Item(str(p.resolve()), label, r["family"], r.get("group") or r["family"], footage_unit(r.get("identity_or_video", ""), r["path"])))
    labels = {i.label for i in items}
    if labels != {0, 1}:
        raise CorpusError(f"{csv_path}: needs both real and fake images (has only {'fake' if 1 in labels else 'real' if labels else 'no'} rows)")
    return items


def read_training_layout(root, group: str = "celeba") -> list[Item]:
    """A ``generate`` dataset (``images/<id>/<k>.jpg``, ``meta.json``; ``fakes.csv`` names each fake's backend)."""
    root = Path(root)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise CorpusError(f"{meta_path}: missing (not a fakeproof training layout)")
    meta = json.loads(meta_path.read_text())
    backend = {}
    fakes = root / "fakes.csv"
    if fakes.is_file():
        with fakes.open(newline="") as f:
            for r in csv.DictReader(f):
                backend[r["key"]] = r["backend"]
    for key in backend:  # a generate run still going: its written fakes are in fakes.csv before meta.json
        if key not in meta and (root / "images" / key).is_file():
            meta[key] = 1
    items = []
    for key, lab in sorted(meta.items()):
        p = root / "images" / key
        if not p.is_file():
            raise CorpusError(f"{meta_path}: {key} listed but images/{key} not found")
        fam = backend.get(key, "unknown_fake") if int(lab) else f"real_{group}"
        items.append(Item(str(p.resolve()), int(lab), fam, group, key.split("/")[0]))
    return items
