"""The checkpoint keeper of a run (timm's ``CheckpointSaver``): which checkpoint is best, what a
checkpoint holds beyond the weights (optimiser, scheduler, scaler, every rank's RNG and running
train loss), and putting all of it back on ``--resume``. The files themselves: :mod:`.checkpoint`."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from ..engine.checkpoint_reader import WEIGHTS, last_checkpoint, load_train_state
from . import checkpoint_writer as ckpt
from ..distributed.process_group import DistInfo, gather_objects
from .task import Optimisation, PairTask
from ..metrics import FAMILY_PREFIX, METRIC_FIELDS


class CheckpointKeeper:
    """``best`` is ``{"eer": lowest validation EER so far, "step": its step}``."""

    def __init__(self, run_dir: Path, info: DistInfo, describe: dict, steps_per_epoch: int):
        self.run_dir, self.info = Path(run_dir), info
        self.describe = describe  # encoder + training settings every checkpoint's config.json carries
        self.steps_per_epoch = steps_per_epoch
        self.best = {"eer": math.inf, "step": None}
        self.calibration: dict | None = None  # the similarity scale fitted on the latest validation (fakeproof.engine.cards)
        self.gate: dict | None = None  # the guard's gate chosen at the latest validation (train.artefact.choose_gate)

    def restore(self, task: PairTask, opt: Optimisation, log: Callable[[str], None]) -> tuple[int, tuple[float, int]]:
        """Load the last checkpoint into ``task``'s encoder, ``opt`` and the RNGs; returns ``(step,
        this rank's (train loss sum, steps) since the last validation)``."""
        from safetensors.torch import load_file

        info = self.info
        folder = last_checkpoint(self.run_dir)
        task.encoder.load_state_dict(load_file(str(folder / WEIGHTS)))
        st = load_train_state(folder)
        opt.load_state_dict(st)
        step = int(st["step"])
        self.best = dict(st["best"])
        r = info.rank if info.rank < len(st["rng"]) else 0
        torch.set_rng_state(st["rng"][r])
        if info.device.startswith("cuda") and st.get("cuda_rng") and st["cuda_rng"][r] is not None:
            torch.cuda.set_rng_state(st["cuda_rng"][r])
        sums = st.get("train_loss_since_val", st.get("acc"))  # "acc" in older checkpoints
        since_val = tuple(sums[r]) if sums else (0.0, 0)
        if len(st["rng"]) != info.world_size:
            log(f"[yellow]resuming a {len(st['rng'])}-process run with {info.world_size}: data order is the same, dropout noise is not")
        log(f"resuming {self.run_dir} at step {step} ({folder.name})")
        return step, since_val

    def config(self, step: int, metrics: dict) -> dict:
        """A checkpoint's ``config.json``: what the encoder is plus where and how well it validated."""
        thr = metrics.get("threshold", float("nan"))
        return {
            **self.describe,
            "threshold": None if math.isnan(thr) else thr,
            # the similarity scale's calibration on this checkpoint's validation pairs (real genuine and
            # impostor pairs; all pairs when there are none): --model RUN reports on it
            "calibration": self.calibration,
            **({"gate": self.gate} if self.gate is not None else {}),
            "validation": {k: v for k, v in metrics.items() if k in ("val_loss", *METRIC_FIELDS) or k.startswith(FAMILY_PREFIX)},
            "step": step,
            "epoch": step / self.steps_per_epoch,
            "world_size": self.info.world_size,
            "written_by_rank": self.info.rank,
        }

    def save(self, task: PairTask, opt: Optimisation, step: int, metrics: dict, since_val: tuple[float, int], has_val: bool) -> None:
        """A resumable checkpoint at ``step`` (collective: every rank calls it, rank 0 writes) and
        ``checkpoints/best`` when the EER improved (always, when there are no validation pairs)."""
        info = self.info
        rng = gather_objects(info, torch.get_rng_state())
        cuda_rng = gather_objects(info, torch.cuda.get_rng_state() if info.device.startswith("cuda") else None)
        sums = gather_objects(info, list(since_val))
        eer = metrics.get("eer", float("nan"))
        improved = not math.isnan(eer) and eer < self.best["eer"]
        if improved:
            self.best = {"eer": float(eer), "step": step}
        if not info.is_main:
            return
        config = self.config(step, metrics)
        state = {"step": step, **opt.state_dict(), "rng": rng, "cuda_rng": cuda_rng, "train_loss_since_val": sums, "best": self.best, "world_size": info.world_size}
        folder = ckpt.save_step(self.run_dir, task.encoder, config, state, step)
        if improved or not has_val:  # without validation pairs "best" is simply the latest
            ckpt.save_best(self.run_dir, task.encoder, config, same_weights_as=folder)
