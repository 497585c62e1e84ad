"""The face engine: photo -> (detection, 5 landmarks) -> aligned crop -> embedding (L2-normalised,
or the raw descriptor where the model card compares by Euclidean distance).

Every stage goes through :class:`FaceEngine`; nothing else in fakeproof detects, aligns or embeds.
Decoding, detection and alignment run in a thread pool (OpenCV and ONNX Runtime release the GIL);
embedding runs batched. Both aligned crops and embeddings are cached on disk by file content.
(A little over 300 lines: one class, whose caching of crops and of embeddings share their keys.)
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DeviceError, UsageError
from ..hashing import digest_weights
from ..ui import progress_task
from .align import align_face
from ..data.digests import file_digest
from .cache import CropCache, EmbeddingCache
from .detect import MAIN_FACE_FRACTION, Detector, Face, detect_downscaled, get_detector, pick_main_face
from .encoders import DEFAULT_ENCODER, Encoder
from .images import ImageLoadError, decode_rgb
from .paths import cache_home
from .template import template_for

PRE_ALIGNED_MAX_SIDE = 256  # images this small and square are candidates for "already aligned"
# Test-time flip: embed each crop and its mirror image and average (benchmarks/verify_peers.py
# measures what it buys). The one default for every command; library callers pass ``FaceEngine(flip=False)``.
FLIP_DEFAULT = True


@dataclass
class FaceRecord:
    """What the engine saw in one photo. ``ok`` means a crop exists (detected or by fallback)."""

    path: str
    ok: bool = False
    error: str | None = None
    n_faces: int = 0
    det_score: float | None = None
    bbox: list[float] | None = None
    landmarks: list[list[float]] | None = None
    fallback: str | None = None  # None = detected; "pre_aligned" | "whole_image"
    warnings: list[str] = field(default_factory=list)
    digest: str | None = None

    @property
    def detected(self) -> bool:
        return self.ok and self.fallback is None

    def to_meta(self) -> dict:
        d = asdict(self)
        d.pop("path")
        return d


@dataclass
class EmbedResult:
    embeddings: np.ndarray  # (N, D) float32 (L2-normalised unless the card's metric is euclidean); NaN rows where no crop could be made
    records: list[FaceRecord]

    @property
    def ok(self) -> np.ndarray:
        return np.array([r.ok for r in self.records], bool)

    @property
    def errors(self) -> list[FaceRecord]:
        return [r for r in self.records if not r.ok]


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> cuda when available, else cpu; ``cpu``, ``cuda`` and ``cuda:N`` are checked here, so
    a machine without the requested GPU gets one line (exit 5) before any work, never a traceback."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = str(device).partition(":")
    if kind == "cpu" and not index:
        return device
    if kind != "cuda" or (index and not index.isdigit()):
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {device}: no CUDA device is available here (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use --device cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return device


def encoder_fingerprint(encoder: Encoder) -> str:
    fp = getattr(encoder, "fingerprint", None)
    if fp:
        return fp
    s = encoder.spec
    # what the encoder is fed is part of what it computes: a change of normalisation, input size or
    # colour order must never reuse embeddings cached under the old one
    prefix = f"{s.name}|{s.normalisation}|{s.input_size}|{s.color_order}".encode()
    encoder.fingerprint = digest_weights(encoder, "blake2b", 12, prefix=prefix, sort_keys=False)
    return encoder.fingerprint


class FaceEngine:
    """Detection, alignment and embedding with caches.

    Built from component objects, as a diffusers pipeline is: an :class:`Encoder` and a
    :class:`~fakeproof.engine.detect.Detector` (whose ``name`` keys the crop cache). Names work too
    and are what :meth:`from_names` (the CLI's constructor) passes: ``encoder`` anything ``--model``
    takes (:func:`fakeproof.engine.resolve_model`), ``detector`` a registered detector (``mtcnn``,
    ``scrfd:PACK_DIR``; built on first use). margin: context around the ArcFace template
    (default: the encoder's own ``spec.align_margin``). fallback: ``auto`` (pre-aligned crops, then
    the whole image) or ``none`` (no face = no crop). flip: embed each crop and its mirror image
    and average the two (default :data:`FLIP_DEFAULT`). Crops are aligned to the encoder's template
    (``spec.template``).
    """

    large_first = MAIN_FACE_FRACTION  # look for the photo's main face first (engine/detect.py); 0 = every face in one pass

    def __init__(
        self,
        encoder: Encoder | str = DEFAULT_ENCODER,
        detector: Detector | str = "mtcnn",
        device: str = "auto",
        margin: float | None = None,
        weights=None,
        models_dir=None,
        cache_dir=None,
        use_cache: bool = True,
        workers: int | None = None,
        detect_max_side: int = 1024,
        fallback: str = "auto",
        flip: bool | None = None,
    ):
        self.device = resolve_device(device)
        if not isinstance(encoder, Encoder):
            from .resolve import resolve_model  # a registry name, run folder, checkpoint or exported .onnx

            encoder = resolve_model(encoder, device=self.device, weights=weights, models_dir=models_dir).encoder
        self.encoder = encoder
        self.encoder.to(self.device) if not getattr(self.encoder, "is_onnx", False) else None
        self.spec = self.encoder.spec
        if isinstance(detector, str):
            self.detector_name, self._detector = detector, None
        else:
            self.detector_name, self._detector = detector.name, detector
        if margin is not None and getattr(self.encoder, "fixed_geometry", False) and abs(float(margin) - self.spec.align_margin) > 1e-9:
            raise UsageError(f"{self.spec.name}: the alignment margin is fixed by the encoder ({self.spec.align_margin}); drop --margin")
        self.margin = self.spec.align_margin if margin is None else float(margin)
        self.flip = FLIP_DEFAULT if flip is None else bool(flip)
        self.template = self.spec.template
        self.crop_size = tuple(self.spec.input_size)
        self.detect_max_side = detect_max_side
        self.fallback = fallback
        self.workers = workers or min(8, os.cpu_count() or 2)
        self.use_cache = use_cache
        root = Path(cache_dir) if cache_dir else cache_home() / "engine"
        self._crop_cache = CropCache(root / "crops.sqlite") if use_cache else None
        self._emb_cache = EmbeddingCache(root / "embeddings.sqlite") if use_cache else None
        self.stats = {"crop_hits": 0, "crop_misses": 0, "emb_hits": 0, "emb_misses": 0}

    @classmethod
    def from_names(cls, model: str = DEFAULT_ENCODER, detector: str = "mtcnn", device: str = "auto", weights=None, models_dir=None, **kw) -> "FaceEngine":
        """The engine a command builds from its ``--model`` / ``--detector`` / ``--weights`` strings."""
        from .resolve import resolve_model

        dev = resolve_device(device)
        return cls(resolve_model(model, device=dev, weights=weights, models_dir=models_dir).encoder, detector, device=dev, **kw)

    @property
    def card(self):
        """The model card (:mod:`fakeproof.engine.cards`): ``card.similarity`` / ``card.scale`` is how
        every consumer scores two embeddings of this engine."""
        if self.encoder.card is None:  # an encoder built outside resolve_model: its stock card
            from .resolve import resolve_model

            resolve_model(self.encoder)
        return self.encoder.card

    # -- settings that make a cached crop / embedding valid ---------------------------------------
    @property
    def crop_key_suffix(self) -> str:
        det = f"{self.detector_name}:{self.detector.settings}" if getattr(self.detector, "settings", None) else self.detector_name
        return f"{det}|max{self.detect_max_side}|lf{self.large_first:g}|{self.crop_size[0]}x{self.crop_size[1]}|{self.template}|m{self.margin:.3f}|fb:{self.fallback}"

    @property
    def detector(self):
        if self._detector is None:
            self._detector = get_detector(self.detector_name, device=self.device)
        return self._detector

    # -- one photo ---------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[Face]:
        """The faces, in ``rgb`` pixel coordinates: those of at least ``large_first`` of the shorter
        side, or every face when there is none; detection runs on a copy of at most detect_max_side."""
        h, w = rgb.shape[:2]
        faces = detect_downscaled(self.detector, rgb, self.detect_max_side, self.large_first)
        if not faces and max(h, w) <= PRE_ALIGNED_MAX_SIDE:
            # tight crops (e.g. 112x112 aligned faces) leave MTCNN no context: retry with a border
            pad = max(h, w) // 3
            padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)
            faces = [Face(fc.bbox - np.array([pad, pad, pad, pad]), fc.score, fc.landmarks - pad) for fc in self.detector.detect(padded)]
        return faces

    def detect_and_align(self, data: bytes, path="<bytes>") -> tuple[FaceRecord, np.ndarray | None]:
        """Decode, detect, align one photo. Never raises for a bad image: the record says why."""
        rec = FaceRecord(path=str(path), digest=file_digest(data))
        try:
            img = decode_rgb(data, path)
        except ImageLoadError as e:
            rec.error = e.reason
            return rec, None
        rec.warnings = list(img.warnings)
        rgb = img.rgb
        faces = self.detect(rgb)
        rec.n_faces = len(faces)
        main = pick_main_face(faces, rgb.shape)
        if main is not None:
            lm = main.landmarks
            rec.det_score = round(main.score, 4)
            rec.bbox = [round(float(v) / img.scale, 1) for v in main.bbox]
        elif self.fallback == "auto":
            h, w = rgb.shape[:2]
            if max(h, w) <= PRE_ALIGNED_MAX_SIDE and 0.8 <= w / h <= 1.25:
                rec.fallback = "pre_aligned"  # treat the photo itself as an ArcFace-aligned crop
                lm = template_for((h, w))
            else:
                rec.fallback = "whole_image"  # the central square, as if it were an aligned crop
                s = min(h, w)
                lm = template_for(s) + np.array([(w - s) / 2, (h - s) / 2], np.float32)
        else:
            rec.error = "no face detected"
            return rec, None
        rec.landmarks = [[round(float(x) / img.scale, 2), round(float(y) / img.scale, 2)] for x, y in lm]
        crop = align_face(rgb, lm, self.crop_size, self.margin, self.template)
        rec.ok = True
        return rec, crop

    # -- many photos -------------------------------------------------------------------------------
    def crops(self, paths: Sequence, progress: bool = True, desc: str = "aligning faces") -> tuple[list[FaceRecord], list[np.ndarray | None]]:
        """Aligned crops of ``paths`` (crop cache first, then a worker pool for the rest)."""
        paths = [str(p) for p in paths]
        records: list[FaceRecord | None] = [None] * len(paths)
        crops: list[np.ndarray | None] = [None] * len(paths)
        for i, rec, crop in self.iter_crops(paths, progress, desc):
            records[i], crops[i] = rec, crop
        return records, crops  # type: ignore[return-value]

    def iter_crops(self, paths: Sequence, progress: bool = True, desc: str = "aligning faces"):
        """``(index, record, crop or None)`` for every photo of ``paths`` as it is ready (unreadable files,
        then crop-cache hits, then the rest in order from a worker pool that keeps detecting while the caller
        works on what it was given, e.g. embeds a batch)."""
        paths = [str(p) for p in paths]
        datas: dict[int, bytes] = {}
        keys: list[str | None] = [None] * len(paths)
        suffix = "|" + self.crop_key_suffix  # the same for every photo of this call
        for i, p in enumerate(paths):
            try:
                data = Path(p).read_bytes()
            except OSError as e:
                yield i, FaceRecord(path=p, error="file not found" if isinstance(e, FileNotFoundError) else f"cannot read ({e.strerror or e})"), None
                continue
            datas[i] = data
            keys[i] = file_digest(data) + suffix
        todo = list(datas)
        if self._crop_cache is not None and todo:
            hits = self._crop_cache.get([keys[i] for i in todo])
            rest = []
            for i in todo:
                hit = hits.get(keys[i])
                if hit is None:
                    rest.append(i)
                    continue
                crop, meta = hit
                rec = FaceRecord(path=paths[i], **meta)
                yield i, rec, (crop if rec.ok else None)
            self.stats["crop_hits"] += len(todo) - len(rest)
            todo = rest
        self.stats["crop_misses"] += len(todo)
        if not todo:
            return
        new = []
        with progress_task(desc, len(todo), progress) as advance, ThreadPoolExecutor(self.workers) as pool:
            t0 = time.perf_counter()
            for n, (i, (rec, crop)) in enumerate(zip(todo, pool.map(lambda j: self.detect_and_align(datas.pop(j), paths[j]), todo)), 1):
                new.append((keys[i], crop if crop is not None else np.zeros((1, 1, 3), np.uint8), rec.to_meta()))
                advance(1, f"{n / max(time.perf_counter() - t0, 1e-9):.1f} img/s")
                if len(new) >= 256 and self._crop_cache is not None:
                    self._crop_cache.put(new)
                    new = []
                yield i, rec, crop
        if self._crop_cache is not None:
            self._crop_cache.put(new)

    @property
    def normalised(self) -> bool:
        """Whether embeddings are L2-normalised (a cosine card) or raw descriptors (a Euclidean one)."""
        return self.card.normalised

    def embed_crops(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Embeddings of aligned crops in the form the model card compares (``card.metric``):
        L2-normalised for cosine, raw for euclidean. With test-time flip (``self.flip``) each crop and
        its mirror image go through the encoder in the same batch and the two are averaged: the
        normalised embeddings, re-normalised (cosine), or the raw descriptors (euclidean; what
        ``benchmarks/verify_peers.py`` measured)."""
        crops = list(crops)
        norm = self.normalised
        if not self.flip or not crops or getattr(self.encoder, "mirrors_itself", False):
            return self.encoder.embed(crops, batch_size=batch_size, normalise=norm)
        mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
        emb = self.encoder.embed(crops + mirrored, batch_size=2 * batch_size, normalise=norm)
        both = emb[: len(crops)] + emb[len(crops) :]
        if not norm:
            return (both / 2).astype(np.float32)
        return (both / np.linalg.norm(both, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)

    def embed_paths(self, paths: Sequence, progress: bool = True, batch_size: int = 32) -> EmbedResult:
        """Embeddings of ``paths`` in order; a photo that cannot be read gets a NaN row and a record.
        Detection (worker pool) and embedding (this thread, ``batch_size`` crops at a time) overlap."""
        paths = [str(p) for p in paths]
        d = self.spec.embedding_dim
        out = np.full((len(paths), d), np.nan, np.float32)
        fp = encoder_fingerprint(self.encoder)
        # fast path: embeddings cached under (file digest, crop settings, encoder)
        records: list[FaceRecord | None] = [None] * len(paths)
        keys: list[str | None] = [None] * len(paths)
        if self._emb_cache is not None:
            # the same for every photo; the metric decides raw vs normalised vectors, so it is part of the key
            suffix = "|" + self.crop_key_suffix + "|" + fp + ("|flip" if self.flip else "") + ("" if self.normalised else "|raw")
            for i, p in enumerate(paths):
                try:
                    keys[i] = file_digest(Path(p).read_bytes()) + suffix
                except OSError:
                    pass
            hits = self._emb_cache.get([k for k in keys if k])
            for i, k in enumerate(keys):
                if k and k in hits:
                    emb, meta = hits[k]
                    records[i] = FaceRecord(path=paths[i], **meta)
                    out[i] = emb
            self.stats["emb_hits"] += sum(r is not None for r in records)
        todo = [i for i, r in enumerate(records) if r is None]
        self.stats["emb_misses"] += len(todo)
        if todo:
            pending: list[tuple[int, np.ndarray]] = []  # (index into paths, crop) awaiting a batch

            def flush() -> None:
                if pending:
                    embs = self.embed_crops([c for _, c in pending], batch_size=batch_size)
                    for (i, _), e in zip(pending, embs):
                        out[i] = e
                    pending.clear()

            for j, rec, crop in self.iter_crops([paths[i] for i in todo], progress=progress, desc="detecting + embedding"):
                records[todo[j]] = rec
                if crop is not None:
                    pending.append((todo[j], crop))
                    if len(pending) >= batch_size:
                        flush()
            flush()
            new = [(keys[i], out[i], records[i].to_meta()) for i in todo if keys[i] and records[i].ok]
            if self._emb_cache is not None:
                self._emb_cache.put(new)
        return EmbedResult(out, records)  # type: ignore[arg-type]
