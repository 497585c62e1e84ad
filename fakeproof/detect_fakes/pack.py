"""Everything the protocol needs from the photos, in one ``.npz`` (so a GPU machine that gets only
the git tree and a few carried MiB can run it): per image the degraded detector crop (JPEG bytes at
:data:`PACK_JPEG_QUALITY`), the stock encoder's identity embedding, label, family, group, identity
and which set it came from; per pair the two image indices, the kind and the set.

Built once on the machine that has the photos (the face engine detects and embeds); read anywhere
with numpy + OpenCV only. Written to a temporary file and renamed.
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.atomic import replacing
from .corpus import Item, read_images_csv, read_training_layout

PACK_JPEG_QUALITY = 92


@dataclass
class Pack:
    crops_jpeg: list[bytes]
    emb: np.ndarray  # (N, D) float32 identity embeddings (stock encoder, flip); NaN rows = no face
    label: np.ndarray  # (N,) 1 = fake
    family: np.ndarray
    group: np.ndarray
    identity: np.ndarray
    source: np.ndarray  # train | offline | dev | celeba_pairs
    ok: np.ndarray  # crop made
    pair_a: np.ndarray
    pair_b: np.ndarray
    pair_kind: np.ndarray  # genuine | impostor | attack
    pair_source: np.ndarray
    pair_fold: np.ndarray  # celeba-pairs fold, -1 elsewhere

    def crops(self, idx=None, size: int | None = None) -> np.ndarray:
        idx = np.arange(len(self.crops_jpeg)) if idx is None else np.asarray(idx)
        out = []
        for i in idx:
            im = cv2.cvtColor(cv2.imdecode(np.frombuffer(self.crops_jpeg[i], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            if size and im.shape[0] != size:
                im = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA if im.shape[0] > size else cv2.INTER_LINEAR)
            out.append(im)
        return np.stack(out) if out else np.zeros((0, size or 1, size or 1, 3), np.uint8)


def _u(a) -> np.ndarray:
    return np.asarray([str(x) for x in a], dtype=str)


def save_pack(pack: Pack, out) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lens = np.array([len(b) for b in pack.crops_jpeg], np.int64)
    arrays = dict(
        jpeg=np.frombuffer(b"".join(pack.crops_jpeg), np.uint8),
        jpeg_offsets=np.concatenate([[0], np.cumsum(lens)]),
        emb=pack.emb.astype(np.float16),
        label=pack.label.astype(np.int8),
        family=_u(pack.family), group=_u(pack.group), identity=_u(pack.identity), source=_u(pack.source),
        ok=pack.ok.astype(bool),
        pair_a=pack.pair_a.astype(np.int32), pair_b=pack.pair_b.astype(np.int32),
        pair_kind=_u(pack.pair_kind), pair_source=_u(pack.pair_source), pair_fold=pack.pair_fold.astype(np.int16),
    )
    with replacing(out, ".tmp.npz") as tmp:  # np.savez keeps a name that already ends in .npz
        np.savez(tmp, **arrays)
    return out


def load_pack(path) -> Pack:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pack not found (make one with --pack)")
    z = np.load(path, allow_pickle=False)
    data, off = z["jpeg"], z["jpeg_offsets"]
    jpegs = [data[off[i]:off[i + 1]].tobytes() for i in range(len(off) - 1)]
    return Pack(jpegs, z["emb"].astype(np.float32), z["label"].astype(int), z["family"], z["group"], z["identity"], z["source"], z["ok"],
                z["pair_a"].astype(int), z["pair_b"].astype(int), z["pair_kind"], z["pair_source"], z["pair_fold"].astype(int))


# -- the sets -------------------------------------------------------------------------------------

def offline_pairs(items: list[Item], seed: int = 0, impostors_per_identity: int = 6):
    """Pairs of a generate layout: every genuine real pair, each real against each fake of the same
    identity (attack), and seeded real pairs of two identities (impostor)."""
    rng = np.random.default_rng(seed)
    by_id: dict[str, list[int]] = {}
    fakes_by_id: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        (fakes_by_id if it.label else by_id).setdefault(it.identity, []).append(i)
    pairs = []
    ids = sorted(by_id)
    for pid in ids:
        reals = by_id[pid]
        pairs += [(a, b, "genuine") for a, b in itertools.combinations(reals, 2)]
        pairs += [(a, f, "attack") for a in reals for f in fakes_by_id.get(pid, [])]
        others = [x for x in ids if x != pid]
        for _ in range(impostors_per_identity):
            o = others[int(rng.integers(len(others)))]
            pairs.append((reals[int(rng.integers(len(reals)))], by_id[o][int(rng.integers(len(by_id[o])))], "impostor"))
    return pairs


def read_dev(root) -> tuple[list[Item], list[tuple[int, int, str]]]:
    """deepfakes-dev: its images and pairs (kind deepfake_of_identity -> attack). Evaluation only."""
    root = Path(root)
    items, index = [], {}
    with (root / "images.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            index[r["path"]] = len(items)
            fake = r["status"] == "fake"
            items.append(Item(str((root / r["path"]).resolve()), int(fake), r["generator"] if fake else "real_dev", "dev", r["identity"] or r["path"]))
    pairs = []
    with (root / "pairs.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            kind = {"deepfake_of_identity": "attack"}.get(r["kind"], r["kind"])
            pairs.append((index[r["path_a"]], index[r["path_b"]], kind))
    return items, pairs


def read_celeba_pairs(root, folds=None) -> tuple[list[Item], list[tuple[int, int, str]], list[int]]:
    root = Path(root)
    fold_of = {}
    with (root / "pairs_meta.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            fold_of[r["pair_id"]] = int(r["fold"])
    items, index, pairs, pfold = [], {}, [], []
    with (root / "pairs.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            fold = fold_of.get(r["pair_id"], -1)
            if folds is not None and fold not in folds:
                continue
            ij = []
            for k in ("path_a", "path_b"):
                if r[k] not in index:
                    index[r[k]] = len(items)
                    items.append(Item(str((root / r[k]).resolve()), 0, "real_celeba_pairs", "celeba_pairs", r[k].split("/")[1]))
                ij.append(index[r[k]])
            pairs.append((ij[0], ij[1], "genuine" if r["expected_accept"] == "1" else "impostor"))
            pfold.append(fold)
    return items, pairs, pfold


def build_pack(out, corpus=None, offline=None, dev=None, celeba_pairs=None, celeba_folds=None, limit_per_family: int | None = None,
               seed: int = 0, size: int = None, engine=None, embed_sources=("offline", "dev", "celeba_pairs")) -> Pack:
    """Detect, crop (degraded, seeded) every image of the given sets and embed those of ``embed_sources``
    (the sets with pairs; deepfakes-train has none); write ``out``."""
    from ..engine import FaceEngine
    from .crops import CROP_SIZE, artefact_crops

    size = size or CROP_SIZE
    engine = engine or FaceEngine("dlib_resnet")
    items: list[Item] = []
    srcs: list[str] = []
    pairs: list[tuple[int, int, str, str, int]] = []

    def add(new_items, source, new_pairs=(), folds=None):
        base = len(items)
        items.extend(new_items)
        srcs.extend([source] * len(new_items))
        for k, (a, b, kind) in enumerate(new_pairs):
            pairs.append((base + a, base + b, kind, source, folds[k] if folds else -1))

    def limited(its):
        if not limit_per_family:
            return its
        rng = np.random.default_rng(seed)
        out_items = []
        for fam in sorted({i.family for i in its}):
            sel = [i for i in its if i.family == fam]
            take = rng.permutation(len(sel))[:limit_per_family]
            out_items += [sel[j] for j in sorted(take)]
        return out_items

    if corpus:
        add(limited(read_images_csv(corpus)), "train")
    if offline:
        off = read_training_layout(offline)
        if limit_per_family:
            keep_ids = sorted({i.identity for i in off})[: max(4, limit_per_family // 4)]
            off = [i for i in off if i.identity in keep_ids]
        add(off, "offline", offline_pairs(off, seed))
    if dev:
        dev_items, dev_pairs = read_dev(dev)
        add(dev_items, "dev", dev_pairs)
    if celeba_pairs:
        cp_items, cp_pairs, cp_folds = read_celeba_pairs(celeba_pairs, celeba_folds)
        if limit_per_family:
            cp_pairs, cp_folds = cp_pairs[: 4 * limit_per_family], cp_folds[: 4 * limit_per_family]
            used = sorted({x for a, b, _ in cp_pairs for x in (a, b)})
            remap = {o: n for n, o in enumerate(used)}
            cp_items = [cp_items[o] for o in used]
            cp_pairs = [(remap[a], remap[b], k) for a, b, k in cp_pairs]
        add(cp_items, "celeba_pairs", cp_pairs, cp_folds)
    paths = [i.path for i in items]
    crops, errors = artefact_crops(paths, engine, seed=seed, size=size)
    emb = np.full((len(paths), engine.spec.embedding_dim), np.nan, np.float32)
    todo = [i for i, s in enumerate(srcs) if s in embed_sources]
    if todo:
        from ..engine.encoders.base import l2_normalise

        # L2-normalised whatever the card's metric (stock dlib's engine gives raw descriptors): the
        # pack's identity score is the cosine (benchmarks/defence_lofo.py)
        emb[todo] = l2_normalise(engine.embed_paths([paths[i] for i in todo]).embeddings)
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(c, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, PACK_JPEG_QUALITY])[1].tobytes() for c in crops]
    pack = Pack(
        jpegs, emb, np.array([i.label for i in items]), _u(i.family for i in items), _u(i.group for i in items),
        _u(i.identity for i in items), _u(srcs), np.array([e is None for e in errors]),
        np.array([p[0] for p in pairs], int), np.array([p[1] for p in pairs], int), _u(p[2] for p in pairs), _u(p[3] for p in pairs),
        np.array([p[4] for p in pairs], int),
    )
    save_pack(pack, out)
    return pack


def repack(pack: Pack, out, size: int, quality: int) -> Pack:
    """``pack`` with its crops resized to ``size`` and re-encoded at ``quality`` (e.g. to fit a size
    limit); everything else as it was."""
    from dataclasses import replace

    crops = pack.crops(None, size)
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(c, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])[1].tobytes() for c in crops]
    new = replace(pack, crops_jpeg=jpegs)
    save_pack(new, out)
    return new
