"""Inference throughput, measured side by side on the same photos (``infer benchmark`` and
``benchmarks/infer_throughput.py``):

- aligned-crop embedding, images/s: torch and ONNX Runtime, batch 1 and batch 32;
- the full pipeline (read + decode + detect + align + embed) as ``FaceEngine.embed_paths`` runs it:
  a worker pool for decode/detect/align, batched embedding, caches off;
- the naive loop: one photo at a time, no pool, no batching (the baseline), and the ratio.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ..engine.encoders import DEFAULT_ENCODER

IMAGE_GLOB_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class Measurement:
    name: str
    images: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class BenchmarkReport:
    model: str
    device: str
    n_photos: int
    n_faces: int
    workers: int
    rows: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def rate(self, name: str) -> float:
        return next(m.rate for m in self.rows if m.name == name)


def best_time(fn, repeat: int = 2, warmup: int = 1) -> float:
    """Best wall time of ``repeat`` calls of ``fn`` (seconds), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def embed_rates(encoder, crops: Sequence[np.ndarray], label: str, n_batch1: int = 16) -> list[Measurement]:
    """Aligned crops to embeddings at batch 1 (``n_batch1`` crops) and batch 32 (all crops)."""
    crops = list(crops)
    b1 = crops[:n_batch1]
    t1 = best_time(lambda: [encoder.embed([c], batch_size=1) for c in b1])
    t32 = best_time(lambda: encoder.embed(crops, batch_size=32))
    return [Measurement(f"aligned crops, {label}, batch 1", len(b1), t1), Measurement(f"aligned crops, {label}, batch 32", len(crops), t32)]


def run_benchmark(paths: Sequence, model: str = DEFAULT_ENCODER, device: str = "cpu", workers: int | None = None, onnx: bool = True) -> BenchmarkReport:
    from ..engine import FaceEngine
    from .model import load_model
    from .onnx_export import export_onnx
    from ..engine.onnx import ExportedOnnx

    paths = [str(p) for p in paths]
    m = load_model(model, device=device)
    enc = m.encoder
    # caches off: every run does the real work
    eng = FaceEngine(enc, device=device, use_cache=False, workers=workers)
    naive = FaceEngine(enc, device=device, use_cache=False, workers=1)
    rep = BenchmarkReport(m.name, eng.device, len(paths), 0, eng.workers)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rep.notes.append((
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}; {os.cpu_count()} CPUs, load average {load:.1f} at start"
    ))

    # warm up the detector sessions and the encoder once
    eng.embed_paths(paths[:2], progress=False)
    naive.embed_paths(paths[:2], progress=False)

    # full pipeline: pool for decode/detect/align, batched embedding
    t = best_time(lambda: eng.embed_paths(paths, progress=False, batch_size=32), repeat=1, warmup=0)
    rep.rows.append(Measurement(f"full pipeline, batch 32 + {eng.workers} workers", len(paths), t))

    # naive: one photo at a time, read -> decode -> detect -> align -> embed (batch 1)
    def naive_loop():
        for p in paths:
            rec, crop = naive.detect_and_align(Path(p).read_bytes(), p)
            if crop is not None:
                naive.embed_crops([crop], batch_size=1)

    t = best_time(naive_loop, repeat=1, warmup=0)
    rep.rows.append(Measurement("naive loop (1 photo at a time)", len(paths), t))

    _, crops = eng.crops(paths, progress=False)
    crops = [c for c in crops if c is not None]
    rep.n_faces = len(crops)
    crops32 = (crops * (32 // max(len(crops), 1) + 1))[:32]
    rep.rows += embed_rates(enc, crops32, "torch")
    if onnx and m.runtime == "torch":
        with tempfile.TemporaryDirectory() as td:
            er = export_onnx(enc, Path(td) / "model.onnx", threshold=m.threshold, source=m.name)
            ort_enc = ExportedOnnx(er.path, device=eng.device)
            rep.rows += embed_rates(ort_enc, crops32, "ONNX Runtime")
            rep.notes.append(f"ONNX Runtime vs torch max |diff| {er.max_abs_diff:.1e}")
            ort_eng = FaceEngine(ort_enc, device=device, use_cache=False, workers=workers)
            ort_eng.embed_paths(paths[:2], progress=False)
            t = best_time(lambda: ort_eng.embed_paths(paths, progress=False, batch_size=32), repeat=1, warmup=0)
            rep.rows.append(Measurement(f"full pipeline, ONNX Runtime, batch 32 + {eng.workers} workers", len(paths), t))
    return rep


TARGETS = {"aligned": 40.0, "pipeline": 8.0, "ratio": 1.5}


def print_report(rep: BenchmarkReport) -> None:
    from ..ui import console, summary_table

    rows = [[m.name, m.images, f"{m.seconds:.2f}", f"{m.rate:.1f}"] for m in rep.rows]
    console.print(summary_table(f"infer throughput: {rep.model} on {rep.device}, {rep.n_photos} photos ({rep.n_faces} crops)", rows, ["measurement", "images", "seconds", "images/s"]))
    full = rep.rate(f"full pipeline, batch 32 + {rep.workers} workers")
    naive = rep.rate("naive loop (1 photo at a time)")
    best_aligned = max(m.rate for m in rep.rows if m.name.startswith("aligned crops") and "batch 32" in m.name)
    checks = [
        ["aligned crops, best batch 32", f"{best_aligned:.1f} img/s", f">= {TARGETS['aligned']:g}", "ok" if best_aligned >= TARGETS["aligned"] else "MISSED"],
        ["full pipeline", f"{full:.1f} img/s", f">= {TARGETS['pipeline']:g}", "ok" if full >= TARGETS["pipeline"] else "MISSED"],
        ["full pipeline / naive loop", f"{full / naive:.2f}x", f">= {TARGETS['ratio']:g}x", "ok" if full / naive >= TARGETS["ratio"] else "MISSED"],
    ]
    console.print(summary_table("targets (2-core CPU)", checks, ["what", "measured", "target", ""]))
    for n in rep.notes:
        console.print(n, highlight=False)
