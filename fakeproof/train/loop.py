"""``fakeproof train run``: the loop. It only loops: steps, validates every ``val_every`` steps,
checkpoints after each validation, stops on a step/epoch/time limit or a signal.

The parts it loops over: :mod:`.config` (what the run is, ``--resume`` merge), :mod:`.run_data`
(pairs and aligned crops), :mod:`.task` (forward + loss + L2-SP, optimiser), :mod:`.keeper`
(best/last checkpoints, resume state), :mod:`.records` (metrics.csv, plot, summary).

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

import math
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ..data import atomic_write_text, json_text
from ..engine import FaceEngine, resolve_model
from ..engine.checkpoint_reader import last_checkpoint
from ..faults import kill_point
from ..hashing import digest_weights
from ..ui import console, progress_task
from . import checkpoint_writer as ckpt
from .config import TrainConfig, TrainError, resolve_config, stop_limit
from .data import batch_order, embed_rows, flip_mask, gather_crops
from ..distributed.process_group import any_flag, barrier, cleanup, gather_objects, init_distributed, mean_across
from .keeper import CheckpointKeeper
from .records import MetricsLog, print_summary, validation_line
from .run_data import build_run_data, load_run_pairs
from .task import Optimisation, PairTask
from ..metrics import KIND_CODE, METRIC_FIELDS, pair_metrics
from .families import fake_families, family_summary, parse_holdout, stock_comparison
from .artefact import HeadBatches, choose_gate
from ..engine.encoders.guard import GuardedEncoder, guard


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


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.t_start = time.time()
        self.info = init_distributed(cfg.device)
        self.run_dir = Path(cfg.out)
        if cfg.artefact_corpus and not cfg.artefact_head:  # the corpus trains the guard's head
            from dataclasses import replace

            cfg = replace(cfg, artefact_head=True)
        self.cfg = resolve_config(cfg, resume, self.run_dir)
        self.resume = resume
        cfg = self.cfg
        if cfg.tune not in ("all", "norm", "head"):
            raise TrainError(f"unknown --tune {cfg.tune!r} (all | norm | head)")
        if cfg.tune == "head" and not cfg.artefact_head:
            raise TrainError("--tune head trains only the artefact head: add --artefact-head")
        if cfg.batch_size % (self.info.world_size * cfg.accum_steps):
            raise TrainError(f"--batch-size {cfg.batch_size} must be a multiple of processes x --accum-steps ({self.info.world_size} x {cfg.accum_steps})")
        torch.manual_seed(cfg.seed * 1000 + self.info.rank)
        self.main = self.info.is_main

    def log(self, msg: str) -> None:
        if self.main:
            console.print(msg)

    def setup(self) -> None:
        """Pairs, engine, crops, task, optimiser, checkpoint keeper, metrics log; resume state."""
        cfg, info = self.cfg, self.info
        dataset, pairs = load_run_pairs(cfg, info, self.run_dir, self.resume, self.log)
        start = resolve_model(cfg.model, device=info.device, weights=cfg.weights, models_dir=cfg.models_dir)
        encoder = start.encoder
        if getattr(encoder, "is_onnx", False) or not any(True for _ in encoder.parameters()):
            raise TrainError(f"model {cfg.model!r} has no trainable torch parameters (ONNX models cannot be fine-tuned)")
        if cfg.artefact_head and not isinstance(encoder, GuardedEncoder):
            encoder = guard(encoder, {"blocks": cfg.head_blocks}).to(info.device)
        guarded = isinstance(encoder, GuardedEncoder)
        self.engine = FaceEngine(encoder, detector=cfg.detector, device=info.device)
        self.data = build_run_data(cfg, info, self.run_dir, self.engine, dataset, pairs, self.log)
        self.head_batches = None
        self.corpus = self._corpus() if cfg.artefact_corpus else None
        if guarded:
            share = 0.0 if "selfblend" in parse_holdout(cfg.holdout_backend) else cfg.head_selfblend
            try:
                self.head_batches = HeadBatches(self.data.store, self.data.train, encoder.spec, cfg.head_batch, share, cfg.seed,
                                                corpus=self.corpus, row_family=self._row_family())
            except ValueError as e:
                raise TrainError(f"{cfg.dataset}: {e}") from None
            if self.corpus is not None:
                self.log(f"artefact head: fakes from {', '.join(self.head_batches.family_names)} and self-blends ({self.head_batches.share:.0%}), "
                         f"each family and each real group ({len(self.head_batches.real_groups)}) drawn with equal weight")
        self.task = PairTask(encoder, cfg, info)
        if cfg.hard_fakes > 0:
            from .hard_fakes import oversample_hard_fakes

            train_t, n_hard = oversample_hard_fakes(self.data.train, self.data.store, self.task.embed, cfg.hard_fakes, cfg.val_batch_size)
            self.data.train, self.data.steps_per_epoch = train_t, len(train_t) // cfg.batch_size
            self.log(f"hard fakes: the {n_hard} training deepfake pairs the starting encoder finds most similar are seen twice per epoch")
        self.opt = Optimisation.create(self.task)
        base_weights = start.config.get("base_weights") if start.kind == "checkpoint" else cfg.weights
        describe = ckpt.encoder_config(encoder, start.architecture, base_weights, cfg.detector, self.engine.margin)
        if start.kind == "checkpoint":
            describe["started_from"] = start.name
        if guarded:
            describe["artefact_head"] = encoder.head_config()
        trained_with = ("loss", "loss_options", "lr", "weight_decay", "l2sp", "keep_real", "batch_size", "seed", "bn", "tune")
        describe.update(frozen_blocks=self.task.frozen, train={k: getattr(cfg, k) for k in trained_with}, holdout_backend=cfg.holdout_backend)
        self.keeper = CheckpointKeeper(self.run_dir, info, describe, self.data.steps_per_epoch)
        self.metrics = MetricsLog(self.run_dir, self.main, self.log)
        self.step = 0
        self.train_loss_since_val = (0.0, 0)  # (sum of step losses, steps) since the last validation, this rank
        if self.resume:
            self.step, self.train_loss_since_val = self.keeper.restore(self.task, self.opt, self.log)
            self.metrics.truncate(self.step)
        self.task.wrap_distributed()

    def _corpus(self):
        """The artefact corpus's chips (rank 0 builds ``RUN_DIR/corpus``, the others open it) and the
        held-out family, said at the start."""
        from ..detect_fakes.corpus import CorpusError, read_images_csv
        from .corpus_crops import CorpusCrops, choose_holdout

        cfg, info = self.cfg, self.info
        try:
            items = read_images_csv(cfg.artefact_corpus)
            holdout = choose_holdout(items, set(fake_families(cfg.dataset).values()), cfg.holdout_family)
        except CorpusError as e:
            raise TrainError(str(e)) from None
        if holdout is None:
            self.log("[yellow]artefact corpus: no family held out (--holdout-family none, or the dataset has every corpus family): the closing check has no unseen family")
        else:
            n = sum(1 for it in items if it.label and it.family == holdout)
            why = "--holdout-family" if cfg.holdout_family else "automatic: the corpus family with most fakes not in the dataset"
            self.log(f"closing check: corpus family [bold]{holdout}[/] ({n} fakes) is held out of training ({why})")
        out = self.run_dir / "corpus"
        if info.is_main:
            corpus = CorpusCrops.build(self.engine, cfg.artefact_corpus, out, cfg.seed, holdout, progress=cfg.progress, items=items)
        barrier(info)
        if not info.is_main:
            corpus = CorpusCrops.build(self.engine, cfg.artefact_corpus, out, cfg.seed, holdout, progress=False, items=items)
        if corpus.errors:
            self.log(f"[yellow]artefact corpus: {len(corpus.errors)} of {len(corpus.items)} images without a usable face are left out (see {out / 'errors.csv'})")
        return corpus

    def _row_family(self) -> dict[int, str]:
        """The generator family of each fake crop of the dataset (fakes.csv's backend)."""
        fams = fake_families(self.cfg.dataset)
        return {row: fams[key] for key, row in self.data.store.index.items() if key in fams}

    def train_step(self) -> float:
        """One optimizer step over global batch ``self.step``; returns its loss (this rank's share)."""
        cfg, info, data = self.cfg, self.info, self.data
        B = cfg.batch_size
        idx = batch_order(len(data.train), B, self.step, cfg.seed)
        flips = flip_mask(2 * B, self.step, cfg.seed) if cfg.flip else None
        mine = np.arange(B)[info.rank :: info.world_size]
        micro = len(mine) // cfg.accum_steps
        self.task.train_mode()
        self.opt.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for m in range(cfg.accum_steps):
            pos = mine[m * micro : (m + 1) * micro]
            pi = idx[pos]
            ca = gather_crops(data.store, data.train.a[pi], flips[pos] if flips is not None else None)
            cb = gather_crops(data.store, data.train.b[pi], flips[B + pos] if flips is not None else None)
            real = data.train.kind[pi] != KIND_CODE["deepfake"]  # genuine and impostor pairs: both photos real
            total += self.task.forward_backward(ca, cb, data.train.label[pi], self.opt.scaler, cfg.accum_steps, sync=m == cfg.accum_steps - 1, real=real)
        if self.head_batches is not None:
            crops, labels = self.head_batches(self.step)  # every rank draws the same batch and takes its share
            total += self.task.head_backward(crops[info.rank :: info.world_size], labels[info.rank :: info.world_size], self.opt.scaler)
        self.opt.scaler.step(self.opt.optimizer)
        self.opt.scaler.update()
        self.step += 1
        return total

    def validate(self, gate: bool = True) -> dict:
        """Embed the validation crops (split over ranks), score the pairs, and the mean train loss
        since the last validation (which this resets); ``gate=False``: the guard stays as it is
        (before the first step: off, so the row is the stock encoder's)."""
        info, store, vt = self.info, self.data.store, self.data.val
        row: dict = {"val_loss": float("nan"), **dict.fromkeys(METRIC_FIELDS, float("nan"))}
        if self.head_batches is not None and gate:  # the gate: the strictest tau within the EER budget on validation (training's pairs when none)
            self.keeper.gate = choose_gate(self.task.encoder, store, self.data.val, self.cfg.gate_eer_budget, self.cfg.val_batch_size,
                                           corpus=self.corpus, fallback=self.data.train)
        if len(vt):
            mine = vt.rows()[info.rank :: info.world_size]
            bs = self.cfg.val_batch_size
            emb = embed_rows(store, mine, self.task.embed, bs) if len(mine) else np.zeros((0, 1), np.float32)
            parts = gather_objects(info, (mine, emb))
            dim = max(p[1].shape[1] for p in parts if len(p[0])) if any(len(p[0]) for p in parts) else 1
            full = np.zeros((store.crops.shape[0], dim), np.float32)
            for r_rows, r_emb in parts:
                if len(r_rows):
                    full[r_rows] = r_emb
            cos = (full[vt.a] * full[vt.b]).sum(1)
            row["val_loss"] = self.task.pair_loss(cos, vt.label)
            row.update(pair_metrics(cos, vt.label, vt.kind, self.data.val_family))
            self.keeper.calibration = validation_calibration(cos, vt.label, vt.kind, self.step)
        s, n = self.train_loss_since_val
        row["train_loss"] = mean_across(info, s / n if n else float("nan"), n)
        self.train_loss_since_val = (0.0, 0)
        return row

    def validate_and_save(self, scheduled: bool, n_train: int) -> dict:
        row = self.validate()
        if scheduled and not math.isnan(row["val_loss"]):
            self.opt.scheduler.step(row["val_loss"])
        row.update(
            step=self.step,
            epoch=round(self.step / self.data.steps_per_epoch, 4),
            scheduled=int(scheduled),
            lr=self.opt.lr,
            elapsed_s=round(time.time() - self.t_start, 1),
            pairs_per_s=round(self.cfg.batch_size * n_train / max(self.step_seconds, 1e-9), 2),
        )
        self.metrics.append(row)
        self.keeper.save(self.task, self.opt, self.step, row, self.train_loss_since_val, has_val=len(self.data.val) > 0)
        self.log(validation_line(row))
        return row

    def _bar_total(self, limit: int, start_step: int, t_loop: float) -> int | None:
        """Steps the bar counts to: the step limit, or - when --max-minutes ends the run first - the
        steps the time left allows at the pace so far (so the bar never shows 9/21000, 102 h)."""
        cfg = self.cfg
        if cfg.max_minutes is None:
            return None
        done = self.step - start_step
        elapsed = time.time() - t_loop
        left = cfg.max_minutes * 60 - (time.time() - self.t_start)
        if done <= 0 or elapsed <= 0:
            return None
        by_time = done + max(0, int(left / (elapsed / done)))
        return min(limit - start_step, by_time) if limit < 10**12 else by_time

    def run(self) -> dict:
        cfg, info = self.cfg, self.info
        if cfg.max_steps is None and cfg.epochs is None and cfg.max_minutes is None:
            raise TrainError("no stopping rule: give --max-steps, --max-minutes or --epochs")
        self.setup()
        data = self.data
        limit = stop_limit(cfg, data.steps_per_epoch)
        start_step = self.step
        t_loop = time.time()
        self.step_seconds = 0.0  # time inside optimizer steps only (no validation, no checkpoints)
        last_row: dict | None = None
        n_train = 0
        self.log(
            f"training {self.engine.spec.name} on {len(data.train)} pairs ({data.steps_per_epoch} steps/epoch), validating on {len(data.val)} pairs"
            f"; {info.world_size} process(es) on {info.device}" + (f"; frozen: {len(self.task.frozen)} blocks" if self.task.frozen else "")
        )
        stopped_by = "step limit"
        # the stock encoder on the same validation pairs, before any step: the summary says plainly
        # when training made the model accept more deepfakes than the encoder it started from
        stock_row = self.validate(gate=False) if start_step == 0 and len(data.val) else None
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
                s, n = self.train_loss_since_val
                self.train_loss_since_val = (s + loss, n + 1)
                advance(1, f"loss {loss:.4f}  {2 * cfg.batch_size * n_train / max(self.step_seconds, 1e-9):.1f} img/s", total=self._bar_total(limit, start_step, t_loop))
                if self.step % cfg.val_every == 0:
                    last_row = self.validate_and_save(scheduled=True, n_train=n_train)
            if last_row is None or last_row["step"] != self.step:
                if self.step > start_step or last_checkpoint(self.run_dir) is None:
                    last_row = self.validate_and_save(scheduled=False, n_train=n_train)
        best = self.keeper.best
        summary = {
            "steps": self.step,
            "steps_this_run": self.step - start_step,
            "epochs": self.step / data.steps_per_epoch,
            "stopped_by": stopped_by if self.step < limit else "step limit",
            "best_eer": None if math.isinf(best["eer"]) else best["eer"],
            "best_step": best["step"],
            "last": last_row,
            "train_seconds": time.time() - t_loop,
            "step_seconds": self.step_seconds,
            "pairs_per_s": cfg.batch_size * n_train / max(self.step_seconds, 1e-9),
            "images_per_s": 2 * cfg.batch_size * n_train / max(self.step_seconds, 1e-9),  # training steps only
            "world_size": info.world_size,
            "device": info.device,
            "weight_digests": gather_objects(info, digest_weights(self.task.encoder)),
            "train_pairs": len(data.train),
            "val_pairs": len(data.val),
            "dropped_pairs": data.train.dropped + data.val.dropped,
            "engine_stats": dict(self.engine.stats),  # crop_misses = photos that needed detection
            "holdout_backend": cfg.holdout_backend,
        }
        summary.update(family_summary(self.run_dir, last_row))
        summary.update(stock_comparison(stock_row, summary))
        if self.main:
            from .closing_run import run_closing_check

            try:
                summary["closing"] = run_closing_check(self)
            except Exception as e:  # noqa: BLE001 - a finished run keeps its checkpoints whatever the check meets
                summary["closing"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                self.log(f"[yellow]closing check against the stock encoder failed ({summary['closing']['error']}); no decision.json: --model RUN loads the best checkpoint")
            atomic_write_text(self.run_dir / "summary.json", json_text(summary))
            print_summary(summary, self.run_dir)
            if "models" in summary["closing"]:
                from .closing_run import print_closing

                print_closing(summary["closing"], self.run_dir)
        cleanup(info)
        return summary


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    return Trainer(cfg, resume).run()


def validation_calibration(cos, labels, kinds, step: int) -> dict | None:
    """The similarity scale (:class:`fakeproof.engine.cards.Calibration`) fitted on validation pairs:
    real genuine vs impostor pairs where there are both, else every pair; None when one class is missing."""
    from ..engine.cards import Calibration
    from ..metrics import KINDS

    cos, labels, kinds = np.asarray(cos, np.float64), np.asarray(labels).astype(int), np.asarray(kinds)
    if kinds.dtype.kind in "iu":
        kinds = np.array(KINDS, dtype=object)[kinds.astype(int)]
    real = (kinds == "genuine") | (kinds == "impostor")
    use = real if real.any() and labels[real].min() != labels[real].max() else np.ones(len(cos), bool)
    if len(cos) == 0 or labels[use].min() == labels[use].max():
        return None
    return Calibration.fit(cos[use], labels[use], f"train run validation split, step {step}").to_dict()
