"""Inference throughput you can trust, shared by ``fakeproof infer benchmark`` and
``benchmarks/infer_throughput.py``.

- Every variant is warmed up (sessions built, first batch run) outside the timed part.
- The variants are interleaved over ``repeats`` rounds (the order rotates each round), so a burst of
  load on a shared machine hits all of them alike; each row reports the median and the spread
  (min-max) of its rates, and each ratio is the median of the per-round ratios (paired by round).
- The peer, ``face_recognition`` (HOG + dlib ResNet, one photo at a time, exactly as its README
  uses it: ``load_image_file`` then ``face_encodings``), runs in the same rounds on the same photos.
  It is a benchmark-only package: without it its rows are left out, with a note.
- Photo sizes: the photos as given, or resized copies at the sizes asked for (``--sizes 250,600,1600``).
- The load average (start and end), CPU count and thread settings are recorded with the figures.
- A per-stage profile (one thread: decode, detect, align, embed) says where the time goes.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..engine.encoders import DEFAULT_ENCODER
from ..engine.runtime import DEFAULT_RUNTIME

IMAGE_GLOB_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
TARGET_VS_PEER = 5.0  # the full pipeline against face_recognition, at every photo size (issue #21)
PEER = "face_recognition"


@dataclass
class Row:
    """One variant on one photo set: the wall time of each round."""

    photos: str  # the photo set ("native", "250 px", ...)
    variant: str
    images: int
    seconds: list[float] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [self.images / s for s in self.seconds if s > 0]

    @property
    def median(self) -> float:
        return float(np.median(self.rates)) if self.rates else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        r = self.rates
        return (min(r), max(r)) if r else (float("nan"), float("nan"))


@dataclass
class BenchmarkReport:
    model: str
    device: str
    runtime: str
    n_photos: int
    workers: int
    repeats: int
    rows: list[Row] = field(default_factory=list)
    profile: list[dict] = field(default_factory=list)  # per photo set: ms per photo of each stage
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self, photos: str, variant: str) -> Row | None:
        return next((r for r in self.rows if r.photos == photos and r.variant == variant), None)

    def ratios(self) -> list[dict]:
        """The default pipeline against the peer, per photo set: median of the per-round ratios."""
        out = []
        for ps in dict.fromkeys(r.photos for r in self.rows):
            ours, peer = self.row(ps, pipeline_name(self.runtime)), self.row(ps, PEER)
            if ours is None or peer is None:
                continue
            per_round = [a / b for a, b in zip(ours.rates, peer.rates)]
            med = float(np.median(per_round))
            out.append({"photos": ps, "ratio": med, "min": min(per_round), "max": max(per_round), "target": TARGET_VS_PEER, "ok": med >= TARGET_VS_PEER})
        return out

    def to_json(self) -> dict:
        rows = [{"photos": r.photos, "variant": r.variant, "images": r.images, "seconds": r.seconds, "median_img_s": r.median, "min_img_s": r.spread[0], "max_img_s": r.spread[1]} for r in self.rows]
        d = {k: v for k, v in asdict(self).items() if k != "rows"}
        return {**d, "rows": rows, "vs_peer": self.ratios()}


def pipeline_name(runtime: str) -> str:
    return f"fakeproof full pipeline, {runtime}"


def check_photos(paths: Sequence) -> None:
    """Every photo must decode: a benchmark over unreadable files would time error paths. Raises
    ``ValueError('PATH: reason')`` for the first that does not (before any model is loaded)."""
    from ..engine.images import ImageLoadError, decode_rgb

    for p in paths:
        try:
            decode_rgb(Path(p).read_bytes(), p)
        except ImageLoadError as e:
            raise InputError(f"{p}: {e.reason}; the benchmark needs photos that decode") from None
        except OSError as e:
            raise InputError(f"{p}: cannot read ({e.strerror or e})") from None


def resized_sets(paths: Sequence, sizes: Sequence[int], workdir: Path) -> dict[str, list[str]]:
    """Copies of ``paths`` whose longer side is each of ``sizes`` (JPEG, quality 95), by photo set."""
    import cv2

    from ..engine.images import decode_rgb

    sets = {}
    for size in sizes:
        d = Path(workdir) / f"{size}px"
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for i, p in enumerate(paths):
            rgb = decode_rgb(Path(p).read_bytes(), p).rgb
            h, w = rgb.shape[:2]
            f = size / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
            q = d / f"{i:05d}.jpg"
            cv2.imwrite(str(q), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            out.append(str(q))
        sets[f"{size} px"] = out
    return sets


def peer_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("face_recognition", "face_recognition_models", "dlib"))


def peer_loop() -> Callable[[Sequence[str]], None] | None:
    """face_recognition as its README uses it, one photo at a time; None when it is not installed."""
    if not peer_available():
        return None
    try:
        import face_recognition
    except (ImportError, SystemExit):  # it calls quit() when its models package is missing
        return None

    def run(paths):
        for p in paths:
            face_recognition.face_encodings(face_recognition.load_image_file(p))

    return run


def settings_now(eng=None) -> dict:
    import torch

    s = {
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "default"),
    }
    try:
        import onnxruntime

        s["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover
        pass
    if eng is not None:
        s["workers"] = eng.workers
        s["encoder_threads"] = getattr(eng.encoder, "threads", None)
    return s


def profile_stages(eng, paths: Sequence[str]) -> dict:
    """Milliseconds per photo of each stage, one photo at a time on one thread (no overlap): where the
    time goes. ``embed`` includes the mirror image when the engine flips."""
    from ..engine.align import align_face
    from ..engine.detect import pick_main_face
    from ..engine.images import decode_rgb

    t = {"read + decode": 0.0, "detect": 0.0, "align": 0.0, "embed": 0.0}
    crops = []
    for p in paths:
        t0 = time.perf_counter()
        rgb = decode_rgb(Path(p).read_bytes(), p).rgb
        t1 = time.perf_counter()
        main = pick_main_face(eng.detect(rgb), rgb.shape)
        t2 = time.perf_counter()
        if main is not None:
            crops.append(align_face(rgb, main.landmarks, eng.crop_size, eng.margin, eng.template))
        t3 = time.perf_counter()
        t["read + decode"] += t1 - t0
        t["detect"] += t2 - t1
        t["align"] += t3 - t2
    if crops:
        t0 = time.perf_counter()
        for c in crops:
            eng.embed_crops([c], batch_size=1)
        t["embed"] = (time.perf_counter() - t0) * len(paths) / len(crops)
    return {k: 1000 * v / len(paths) for k, v in t.items()}


def run_benchmark(
    paths: Sequence,
    model: str = DEFAULT_ENCODER,
    device: str = "cpu",
    workers: int | None = None,
    runtime: str = DEFAULT_RUNTIME,
    sizes: Sequence[int] = (),
    repeats: int = 3,
    peer: bool = True,
    other_runtime: bool = True,
    crops: bool = True,
    profile: bool = True,
    progress: bool = True,
) -> BenchmarkReport:
    """Time the default pipeline (and, with ``other_runtime``, the other runtime), the peer and aligned
    crops, interleaved over ``repeats`` rounds, on ``paths`` as they are or resized to ``sizes``."""
    from ..engine import FaceEngine
    from ..ui import progress_task
    from .model import load_model

    paths = [str(p) for p in paths]
    check_photos(paths)
    m = load_model(model, device=device, runtime=runtime)
    engines = {pipeline_name(m.runtime): FaceEngine(m.encoder, device=device, use_cache=False, workers=workers)}
    notes = []
    if other_runtime:
        alt = "torch" if m.runtime == "onnx" else "onnx"
        try:
            m2 = load_model(model, device=device, runtime=alt)
            engines[pipeline_name(m2.runtime)] = FaceEngine(m2.encoder, device=device, use_cache=False, workers=workers)
        except (ValueError, RuntimeError, ImportError) as e:  # e.g. a model that cannot be exported
            notes.append(f"{alt}: not measured ({e})")
    eng = next(iter(engines.values()))
    rep = BenchmarkReport(m.name, eng.device, m.runtime, len(paths), eng.workers, repeats, notes=notes)

    work = tempfile.TemporaryDirectory(prefix="fakeproof-bench-")
    try:
        sets = {"as given": paths} if not sizes else resized_sets(paths, sizes, Path(work.name))
        variants: dict[str, Callable[[Sequence[str]], None]] = {
            name: (lambda ps, e=e: e.embed_paths(ps, progress=False, batch_size=32)) for name, e in engines.items()
        }
        loop = peer_loop() if peer else None
        if loop is not None:
            variants[PEER] = loop
        elif peer:
            rep.notes.append(f"{PEER} is not installed: no peer rows (benchmark only: pip install --no-deps face_recognition==1.3.0 dlib face_recognition_models)")

        crop_variants: dict[str, Callable[[], None]] = {}
        if crops:
            _, cs = eng.crops(next(iter(sets.values())), progress=False)
            cs = [c for c in cs if c is not None]
            if cs:
                cs32 = (cs * (32 // len(cs) + 1))[:32]
                for name, e in engines.items():
                    rt = name.rsplit(", ", 1)[1]
                    crop_variants[f"aligned crops, {rt}, batch 1"] = lambda e=e: [e.encoder.embed([c], batch_size=1) for c in cs32[:8]]
                    crop_variants[f"aligned crops, {rt}, batch 32"] = lambda e=e: e.encoder.embed(cs32, batch_size=32)
        crop_images = {n: (8 if "batch 1" in n else 32) for n in crop_variants}

        # warm-up outside the timed part: sessions, thread pools, first batches
        for ps in sets.values():
            for fn in variants.values():
                fn(ps[:2])
        for fn in crop_variants.values():
            fn()
        rep.settings = settings_now(eng)

        rows = {(ps, v): Row(ps, v, len(sets[ps])) for ps in sets for v in variants}
        rows.update({("aligned crops", v): Row("aligned crops", v, crop_images[v]) for v in crop_variants})
        names = list(variants)
        total = repeats * (len(sets) * len(names) + len(crop_variants))
        with progress_task("benchmark rounds", total, progress) as advance:
            for r in range(repeats):
                order = names[r % len(names):] + names[: r % len(names)]  # rotate: no variant always first
                for ps, ps_paths in sets.items():
                    for v in order:
                        t0 = time.perf_counter()
                        variants[v](ps_paths)
                        rows[(ps, v)].seconds.append(time.perf_counter() - t0)
                        advance(1, f"round {r + 1}/{repeats}")
                for v, fn in crop_variants.items():
                    t0 = time.perf_counter()
                    fn()
                    rows[("aligned crops", v)].seconds.append(time.perf_counter() - t0)
                    advance(1)
        rep.rows = list(rows.values())
        rep.settings["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        if profile:
            one = FaceEngine(m.encoder, device=device, use_cache=False, workers=1)
            for ps, ps_paths in sets.items():
                rep.profile.append({"photos": ps, **profile_stages(one, ps_paths[:16])})
    finally:
        work.cleanup()
    return rep


def print_report(rep: BenchmarkReport) -> None:
    from ..ui import console, summary_table

    rows = [[r.photos, r.variant, r.images, f"{r.median:.1f}", f"{r.spread[0]:.1f}-{r.spread[1]:.1f}"] for r in rep.rows]
    console.print(
        summary_table(
            f"infer throughput: {rep.model} ({rep.runtime}) on {rep.device}, {rep.repeats} interleaved rounds",
            rows,
            ["photos", "variant", "images", "median img/s", "min-max img/s"],
        )
    )
    ratios = rep.ratios()
    if ratios:
        checks = [[x["photos"], f"{x['ratio']:.2f}x", f"{x['min']:.2f}-{x['max']:.2f}x", f">= {x['target']:g}x", "ok" if x["ok"] else "MISSED"] for x in ratios]
        console.print(summary_table(f"full pipeline ({rep.runtime}) / {PEER} (per-round ratios)", checks, ["photos", "median", "min-max", "target", ""]))
    if rep.profile:
        stages = [k for k in rep.profile[0] if k != "photos"]
        prow = []
        for p in rep.profile:
            tot = sum(p[s] for s in stages)
            prow.append([p["photos"], *[f"{p[s]:.1f} ({100 * p[s] / tot:.0f}%)" for s in stages], f"{tot:.1f}"])
        console.print(summary_table("where the time goes: ms per photo, one thread, no overlap", prow, ["photos", *stages, "total"]))
    s = rep.settings
    la = s.get("load_average") or [float("nan")]
    lb = s.get("load_average_end") or [float("nan")]
    console.print(
        f"{s.get('cpus')} CPUs, load average {la[0]:.1f} at start, {lb[0]:.1f} at end; {rep.workers} detection workers; "
        f"torch {s.get('torch')} with {s.get('torch_threads')} threads, OMP_WAIT_POLICY={s.get('OMP_WAIT_POLICY')}; "
        f"onnxruntime {s.get('onnxruntime', '-')}, encoder threads {s.get('encoder_threads')}",
        highlight=False,
    )
    for n in rep.notes:
        console.print(n, highlight=False)
