"""``fakeproof train run``: fine-tune an encoder on pairs, validate, checkpoint, resume.

One global batch of ``batch_size`` pairs per optimizer step, whatever the number of processes and
the gradient accumulation: each of ``W`` processes takes every W-th pair of the batch and splits
its share into ``accum_steps`` micro-batches; the loss is a mean over the global batch. The order
of pairs is a pure function of (seed, step) (see :func:`data.batch_order`), so a resumed run sees
exactly the data the uninterrupted run would have seen; the optimizer, scheduler, AMP scaler and
every rank's torch RNG are restored from the checkpoint. The scheduler only steps at scheduled
validations (every ``val_every`` steps), so an extra validation at the end of a cut-short run does
not change what happens after ``--resume``.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import TrainingDataset, atomic_write_text, json_text
from ..engine import FaceEngine
from ..faults import kill_point
from ..ui import console, progress_task, summary_table
from . import checkpoint as ckpt
from .blocks import freeze_early_blocks, set_train_mode, trainable_parameters
from .checks import too_few_identities, untrainable
from .data import CropStore, PairTable, batch_order, flip_mask, gather_crops
from .distributed import DistInfo, any_flag, barrier, cleanup, gather_objects, init_distributed, mean_across
from .loss import DEFAULT_MARGIN_ALPHA, DEFAULT_MARGIN_BASE, DEFAULT_SCALE, make_loss
from .pairs import build_pairs, read_pairs_csv, write_pairs_csv
from .plots import plot_metrics
from .validate import METRIC_FIELDS, pair_metrics

METRICS_CSV_FIELDS = ("step", "epoch", "scheduled", "train_loss", "val_loss", *METRIC_FIELDS, "lr", "elapsed_s", "pairs_per_s")


@dataclass
class TrainConfig:
    dataset: str
    out: str
    encoder: str = "facenet"
    weights: str | None = None
    models_dir: str | None = None
    detector: str = "mtcnn"
    pairs_csv: str | None = None
    seed: int = 0
    val_fraction: float = 0.2
    max_pairs_per_identity: int | None = None
    batch_size: int = 32
    accum_steps: int = 1
    lr: float = 5e-6
    weight_decay: float = 1e-2
    l2sp: float = 0.0  # pull towards the pretrained weights: + l2sp/2 * sum ||w - w0||^2 (L2-SP, Li et al. 2018)
    loss: str = "adaptive_margin"
    scale: float = DEFAULT_SCALE
    margin_base: float = DEFAULT_MARGIN_BASE
    margin_alpha: float = DEFAULT_MARGIN_ALPHA
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    plateau_threshold: float = 1e-4
    val_every: int = 100
    max_steps: int | None = None
    max_minutes: float | None = None
    epochs: float | None = 10.0
    freeze_blocks: int = 0
    bn: str = "frozen"
    flip: bool = True
    device: str = "auto"
    amp: bool = True
    val_batch_size: int = 64
    progress: bool = True


# options a resumed run takes from its command line; everything else comes from RUN_DIR/run.json
RESUME_OVERRIDES = {"max_steps", "max_minutes", "epochs", "device", "progress", "val_batch_size", "models_dir"}


class TrainError(RuntimeError):
    """A run that cannot start; the message says why in one line."""


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


class _StopSignal:
    """SIGINT/SIGTERM ask the loop to stop at the next step boundary (then validate and checkpoint);
    a second signal is not caught."""

    def __init__(self):
        self.flag = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.flag = True
        for s, h in self._old.items():
            signal.signal(s, h)

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def _resolve_config(cfg: TrainConfig, resume: bool, run_dir: Path) -> TrainConfig:
    run_json = run_dir / "run.json"
    if not resume:
        if ckpt.last_checkpoint(run_dir) is not None:
            raise TrainError(f"{run_dir}: already holds a run; add --resume to continue it or choose another --out")
        return cfg
    if ckpt.last_checkpoint(run_dir) is None or not run_json.exists():
        raise TrainError(f"{run_dir}: nothing to resume (no checkpoints/last.json with a training state)")
    saved = json.loads(run_json.read_text())["config"]
    merged = {f.name: saved.get(f.name, getattr(cfg, f.name)) for f in fields(TrainConfig)}
    for k in RESUME_OVERRIDES:
        merged[k] = getattr(cfg, k)
    merged["out"] = str(run_dir)
    return TrainConfig(**merged)


def _amp(info: DistInfo, enabled: bool):
    if not (enabled and info.device.startswith("cuda")):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.t_start = time.time()
        self.info = init_distributed(cfg.device)
        self.run_dir = Path(cfg.out)
        self.cfg = _resolve_config(cfg, resume, self.run_dir)
        self.resume = resume
        cfg = self.cfg
        if cfg.batch_size % (self.info.world_size * cfg.accum_steps):
            raise TrainError(f"--batch-size {cfg.batch_size} must be a multiple of processes x --accum-steps ({self.info.world_size} x {cfg.accum_steps})")
        torch.manual_seed(cfg.seed * 1000 + self.info.rank)
        self.main = self.info.is_main

    def log(self, msg: str) -> None:
        if self.main:
            console.print(msg)

    # -- data ------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        cfg, info = self.cfg, self.info
        try:
            self.dataset = TrainingDataset.load(cfg.dataset)
        except Exception as e:  # MetaError and friends already name the file
            raise TrainError(str(e)) from None
        why = None if (self.resume or cfg.pairs_csv) else too_few_identities(self.dataset)
        if why:  # every rank sees the same dataset: all stop here, before any model work
            raise TrainError(f"{cfg.dataset}: {why}")
        pairs_path = self.run_dir / "pairs.csv"
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.resume and pairs_path.exists():
                pass
            elif cfg.pairs_csv:
                write_pairs_csv(read_pairs_csv(Path(cfg.pairs_csv)), pairs_path)
            else:
                pairs, summary = build_pairs(self.dataset, cfg.seed, cfg.val_fraction, cfg.max_pairs_per_identity)
                write_pairs_csv(pairs, pairs_path)
                if summary.without_fakes:
                    self.log(f"[yellow]{len(summary.without_fakes)} identities have no deepfakes: they give genuine and impostor pairs only")
            if not self.resume:
                atomic_write_text(self.run_dir / "run.json", json.dumps({"config": asdict(cfg), "world_size": info.world_size, "started": time.time()}, indent=1) + "\n")
        barrier(info)
        pairs = read_pairs_csv(pairs_path)
        why = untrainable(pairs)
        if why:
            raise TrainError(f"{pairs_path}: {why}")
        self.engine = FaceEngine(cfg.encoder, detector=cfg.detector, device=info.device, weights=cfg.weights, models_dir=cfg.models_dir)
        self.encoder = self.engine.encoder
        if getattr(self.encoder, "is_onnx", False) or not any(True for _ in self.encoder.parameters()):
            raise TrainError(f"encoder {cfg.encoder!r} has no trainable torch parameters (ONNX encoders cannot be fine-tuned)")
        keys = sorted({k for p in pairs for k in (p.a, p.b)})
        if self.main:
            store = CropStore.build(self.engine, self.dataset.images_dir, keys, self.run_dir / "data", progress=cfg.progress)
            for k, why in list(store.errors.items())[:10]:
                self.log(f"[yellow]skipped {self.dataset.images_dir / k}: {why}")
            if len(store.errors) > 10:
                self.log(f"[yellow]... and {len(store.errors) - 10} more unusable photos (see {self.run_dir / 'data' / 'errors.csv'})")
        barrier(info)
        self.store = CropStore.open(self.run_dir / "data")
        self.train_t = PairTable.from_pairs([p for p in pairs if p.split == "train"], self.store)
        self.val_t = PairTable.from_pairs([p for p in pairs if p.split == "val"], self.store)
        if len(self.train_t) == 0:
            raise TrainError(f"{cfg.dataset}: no usable training pairs (need identities with at least 2 real photos)")
        self.steps_per_epoch = len(self.train_t) // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise TrainError(f"--batch-size {cfg.batch_size} is larger than the {len(self.train_t)} training pairs; use a smaller --batch-size")

    # -- model -----------------------------------------------------------------------------------
    def prepare_model(self) -> None:
        cfg, info = self.cfg, self.info
        enc = self.encoder
        self.frozen = freeze_early_blocks(enc, cfg.freeze_blocks)
        self.loss_fn = make_loss(cfg.loss, cfg.scale, cfg.margin_base, cfg.margin_alpha)
        params = trainable_parameters(enc)
        # the starting point L2-SP pulls towards: the pretrained weights, taken before any --resume load
        self.anchor = [p.detach().clone() for p in params] if cfg.l2sp > 0 else None
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience, threshold=cfg.plateau_threshold
        )
        self.amp_dtype = _amp(info, cfg.amp)
        self.scaler = torch.amp.GradScaler("cuda" if info.device.startswith("cuda") else "cpu", enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.best = {"eer": math.inf, "step": None}
        self.acc = (0.0, 0)  # train loss sum / steps since the last validation (this rank)
        if self.resume:
            folder = ckpt.last_checkpoint(self.run_dir)
            from safetensors.torch import load_file

            enc.load_state_dict(load_file(str(folder / ckpt.WEIGHTS)))
            st = ckpt.load_train_state(folder)
            self.optimizer.load_state_dict(st["optimizer"])
            self.scheduler.load_state_dict(st["scheduler"])
            self.scaler.load_state_dict(st["scaler"])
            self.step = int(st["step"])
            self.best = dict(st["best"])
            r = info.rank if info.rank < len(st["rng"]) else 0
            torch.set_rng_state(st["rng"][r])
            if info.device.startswith("cuda") and st.get("cuda_rng") and st["cuda_rng"][r] is not None:
                torch.cuda.set_rng_state(st["cuda_rng"][r])
            self.acc = tuple(st["acc"][r]) if "acc" in st else (0.0, 0)
            if len(st["rng"]) != info.world_size:
                self.log(f"[yellow]resuming a {len(st['rng'])}-process run with {info.world_size}: data order is the same, dropout noise is not")
            self.log(f"resuming {self.run_dir} at step {self.step} ({folder.name})")
            if self.main:
                _truncate_metrics(self.run_dir / "metrics.csv", self.step)
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.model = DDP(enc, device_ids=[info.local_rank] if info.device.startswith("cuda") else None, broadcast_buffers=cfg.bn == "train")
        else:
            self.model = enc

    # -- one step --------------------------------------------------------------------------------
    def train_step(self) -> float:
        cfg, info = self.cfg, self.info
        B = cfg.batch_size
        idx = batch_order(len(self.train_t), B, self.step, cfg.seed)
        flips = flip_mask(2 * B, self.step, cfg.seed) if cfg.flip else None
        mine = np.arange(B)[info.rank :: info.world_size]
        micro = len(mine) // cfg.accum_steps
        set_train_mode(self.encoder, cfg.bn)
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for m in range(cfg.accum_steps):
            pos = mine[m * micro : (m + 1) * micro]
            pi = idx[pos]
            ca = gather_crops(self.store, self.train_t.a[pi], flips[pos] if flips is not None else None)
            cb = gather_crops(self.store, self.train_t.b[pi], flips[B + pos] if flips is not None else None)
            x = self.encoder.to_input(np.concatenate([ca, cb]))
            y = torch.from_numpy(self.train_t.label[pi]).to(x.device)
            sync = info.enabled and m < cfg.accum_steps - 1
            with self.model.no_sync() if sync else nullcontext():
                with torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext():
                    e = self.model(x)
                e = F.normalize(e.float(), dim=1)
                cos = (e[: len(pi)] * e[len(pi) :]).sum(1)
                loss = self.loss_fn(cos, y) / cfg.accum_steps
                if self.anchor is not None:
                    loss = loss + (cfg.l2sp / 2) * sum(((w - w0) ** 2).sum() for w, w0 in zip(self.params, self.anchor)) / cfg.accum_steps
                self.scaler.scale(loss).backward()
            total += float(loss.detach())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return total

    # -- validation ------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict:
        cfg, info = self.cfg, self.info
        vt = self.val_t
        row: dict = {"val_loss": float("nan"), **dict.fromkeys(METRIC_FIELDS, float("nan"))}
        if len(vt):
            rows = vt.rows()
            mine = rows[info.rank :: info.world_size]
            self.encoder.eval()
            embs = []
            for s in range(0, len(mine), cfg.val_batch_size):
                x = self.encoder.to_input(gather_crops(self.store, mine[s : s + cfg.val_batch_size]))
                with torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext():
                    e = self.encoder(x)
                embs.append(F.normalize(e.float(), dim=1).cpu().numpy())
            emb = np.concatenate(embs) if embs else np.zeros((0, 1), np.float32)
            parts = gather_objects(info, (mine, emb))
            dim = max(p[1].shape[1] for p in parts if len(p[0])) if any(len(p[0]) for p in parts) else 1
            full = np.zeros((self.store.crops.shape[0], dim), np.float32)
            for r_rows, r_emb in parts:
                if len(r_rows):
                    full[r_rows] = r_emb
            cos = (full[vt.a] * full[vt.b]).sum(1)
            row["val_loss"] = float(self.loss_fn(torch.from_numpy(cos), torch.from_numpy(vt.label)))
            row.update(pair_metrics(cos, vt.label, vt.kind))
        s, n = self.acc
        row["train_loss"] = mean_across(info, s / n if n else float("nan"), n)
        self.acc = (0.0, 0)
        return row

    # -- checkpoints -----------------------------------------------------------------------------
    def _config(self, metrics: dict) -> dict:
        c = ckpt.encoder_config(self.encoder, self.cfg.encoder, self.cfg.weights, self.cfg.detector, self.engine.margin)
        c.update(
            threshold=None if math.isnan(metrics.get("threshold", float("nan"))) else metrics["threshold"],
            validation={k: metrics.get(k) for k in ("val_loss", *METRIC_FIELDS)},
            step=self.step,
            epoch=self.step / self.steps_per_epoch,
            world_size=self.info.world_size,
            written_by_rank=self.info.rank,
            frozen_blocks=self.frozen,
            train={k: getattr(self.cfg, k) for k in ("loss", "scale", "margin_base", "margin_alpha", "lr", "weight_decay", "l2sp", "batch_size", "seed", "bn")},
        )
        return c

    def checkpoint(self, metrics: dict) -> None:
        info = self.info
        rng = gather_objects(info, torch.get_rng_state())
        cuda_rng = gather_objects(info, torch.cuda.get_rng_state() if info.device.startswith("cuda") else None)
        acc = gather_objects(info, list(self.acc))
        eer = metrics.get("eer", float("nan"))
        improved = not math.isnan(eer) and eer < self.best["eer"]
        if improved:
            self.best = {"eer": float(eer), "step": self.step}
        if not self.main:
            return
        config = self._config(metrics)
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "cuda_rng": cuda_rng,
            "acc": acc,
            "best": self.best,
            "world_size": info.world_size,
        }
        folder = ckpt.save_step(self.run_dir, self.encoder, config, state, self.step)
        if improved or len(self.val_t) == 0:  # without validation pairs "best" is simply the latest
            ckpt.save_best(self.run_dir, self.encoder, config, same_weights_as=folder)

    def record(self, row: dict) -> None:
        if not self.main:
            return
        path = self.run_dir / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRICS_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        try:
            plot_metrics(path, self.run_dir / "metrics.png")
        except Exception as e:  # a plot must never kill a run
            self.log(f"[yellow]could not draw metrics.png: {e}")

    # -- the loop --------------------------------------------------------------------------------
    def limit(self) -> int:
        cfg = self.cfg
        lim = math.inf
        if cfg.max_steps is not None:
            lim = cfg.max_steps
        if cfg.epochs is not None:
            lim = min(lim, int(math.ceil(cfg.epochs * self.steps_per_epoch)))
        return int(lim) if lim != math.inf else 10**12

    def run(self) -> dict:
        cfg, info = self.cfg, self.info
        if cfg.max_steps is None and cfg.epochs is None and cfg.max_minutes is None:
            raise TrainError("no stopping rule: give --max-steps, --max-minutes or --epochs")
        self.prepare_data()
        self.prepare_model()
        limit = self.limit()
        start_step = self.step
        t_loop = time.time()
        self.step_seconds = 0.0  # time inside optimizer steps only (no validation, no checkpoints)
        last_row: dict | None = None
        n_train = 0
        self.log(
            f"training {cfg.encoder} on {len(self.train_t)} pairs ({self.steps_per_epoch} steps/epoch), validating on {len(self.val_t)} pairs"
            f"; {info.world_size} process(es) on {info.device}" + (f"; frozen: {len(self.frozen)} blocks" if self.frozen else "")
        )
        stopped_by = "step limit"
        with _StopSignal() as sig, progress_task("training", limit - start_step if limit < 10**12 else None, cfg.progress and self.main) as advance:
            while self.step < limit:
                over_time = cfg.max_minutes is not None and (time.time() - self.t_start) > cfg.max_minutes * 60
                if any_flag(info, over_time or sig.flag):
                    stopped_by = "time budget" if over_time else "signal"
                    break
                t_step = time.time()
                loss = self.train_step()
                kill_point("train step done")
                self.step_seconds += time.time() - t_step
                n_train += 1
                s, n = self.acc
                self.acc = (s + loss, n + 1)
                rate = 2 * cfg.batch_size * n_train / max(self.step_seconds, 1e-9)
                advance(1, f"loss {loss:.4f}  {rate:.1f} img/s")
                if self.step % cfg.val_every == 0:
                    last_row = self._validate_and_save(scheduled=True, t_loop=t_loop, n_train=n_train)
            if last_row is None or last_row["step"] != self.step:
                if self.step > start_step or ckpt.last_checkpoint(self.run_dir) is None:
                    last_row = self._validate_and_save(scheduled=False, t_loop=t_loop, n_train=n_train)
        digests = gather_objects(info, weights_digest(self.encoder))
        train_s = time.time() - t_loop
        summary = {
            "steps": self.step,
            "steps_this_run": self.step - start_step,
            "epochs": self.step / self.steps_per_epoch,
            "stopped_by": stopped_by if self.step < limit else "step limit",
            "best_eer": None if math.isinf(self.best["eer"]) else self.best["eer"],
            "best_step": self.best["step"],
            "last": last_row,
            "train_seconds": train_s,
            "step_seconds": self.step_seconds,
            "pairs_per_s": cfg.batch_size * n_train / max(self.step_seconds, 1e-9),
            "images_per_s": 2 * cfg.batch_size * n_train / max(self.step_seconds, 1e-9),  # training steps only
            "world_size": info.world_size,
            "device": info.device,
            "weight_digests": digests,
            "train_pairs": len(self.train_t),
            "val_pairs": len(self.val_t),
            "dropped_pairs": self.train_t.dropped + self.val_t.dropped,
            "engine_stats": dict(self.engine.stats),  # crop_misses = photos that needed detection
        }
        if self.main:
            atomic_write_text(self.run_dir / "summary.json", json_text(summary))
            self._print_summary(summary)
        cleanup(info)
        return summary

    def _validate_and_save(self, scheduled: bool, t_loop: float, n_train: int) -> dict:
        row = self.validate()
        if scheduled and not math.isnan(row["val_loss"]):
            self.scheduler.step(row["val_loss"])
        row.update(
            step=self.step,
            epoch=round(self.step / self.steps_per_epoch, 4),
            scheduled=int(scheduled),
            lr=self.optimizer.param_groups[0]["lr"],
            elapsed_s=round(time.time() - self.t_start, 1),
            pairs_per_s=round(self.cfg.batch_size * n_train / max(self.step_seconds, 1e-9), 2),
        )
        self.record(row)
        self.checkpoint(row)
        if self.main:
            self.log(
                f"step {self.step}: val loss {row['val_loss']:.4f}  EER {row['eer']:.4f}  deepfake err {row['error_real_deepfake']:.4f}"
                f"  impostor err {row['error_real_another_real']:.4f}  genuine EER {row['genuine_eer']:.4f}  lr {row['lr']:.2e}"
            )
        return row

    def _print_summary(self, s: dict) -> None:
        last = s["last"] or {}
        rows = [
            ["steps", s["steps"]],
            ["epochs", round(s["epochs"], 2)],
            ["stopped by", s["stopped_by"]],
            ["best validation EER", s["best_eer"] if s["best_eer"] is not None else "n/a"],
            ["best step", s["best_step"]],
            ["last EER", last.get("eer")],
            ["last error_real_deepfake", last.get("error_real_deepfake")],
            ["last error_real_another_real", last.get("error_real_another_real")],
            ["last genuine-pair EER", last.get("genuine_eer")],
            ["images/s", round(s["images_per_s"], 2)],
            ["run folder", str(self.run_dir)],
        ]
        console.print(summary_table("train run", rows, ["", "value"]))


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint a resumed run restarts from."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [r for r in rows if int(float(r["step"])) <= step]
    if len(keep) == len(rows):
        return
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRICS_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(keep)
    atomic_write_text(path, buf.getvalue())


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    return Trainer(cfg, resume).run()
