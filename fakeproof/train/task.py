"""The pair task: what one forward pass and one loss are (timm's "task" object).

:class:`PairTask` owns the encoder (DDP-wrapped under torchrun), the pair loss on cosine
similarity, the optional L2-SP pull towards the pretrained weights, and mixed precision; the loop
hands it crops and labels and gets a loss back. :class:`Optimisation` holds the optimiser, the
plateau scheduler and the AMP scaler, whose states a checkpoint saves and ``--resume`` restores.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..engine import Encoder
from .blocks import freeze_early_blocks, set_train_mode, trainable_parameters, tune_only_norm
from .config import TrainConfig
from ..distributed.process_group import DistInfo
from .losses import make_loss


def amp_dtype(info: DistInfo, enabled: bool):
    """bfloat16 (or float16 where bfloat16 is missing) on GPU when AMP is on; None otherwise."""
    if not (enabled and info.device.startswith("cuda")):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class PairTask:
    """Forward + loss of a batch of pairs: ``cos(embed(a), embed(b))`` scored against the label."""

    def __init__(self, encoder: Encoder, cfg: TrainConfig, info: DistInfo):
        self.encoder, self.cfg, self.info = encoder, cfg, info
        # a guarded encoder: the recipe switches act on its base; the head always learns
        self.head = getattr(encoder, "head", None)
        base = encoder.base if self.head is not None else encoder
        self.frozen = freeze_early_blocks(base, cfg.freeze_blocks)
        if cfg.tune == "norm":
            tune_only_norm(base)
        elif cfg.tune == "head":
            for p in base.parameters():
                p.requires_grad_(False)
        self.loss_fn = make_loss(cfg.loss, cfg.loss_options)
        self.params = trainable_parameters(base)  # the encoder's (what L2-SP anchors)
        self.head_params = trainable_parameters(self.head) if self.head is not None else []
        # the starting point L2-SP pulls towards: the pretrained weights, taken before any --resume load
        self.anchor = [p.detach().clone() for p in self.params] if cfg.l2sp > 0 else None
        # keep-real distillation: the frozen starting encoder whose descriptors of real photos the encoder keeps
        self.teacher = frozen_copy(base) if cfg.keep_real > 0 and self.params else None
        self.amp_dtype = amp_dtype(info, cfg.amp)
        self.model = base  # what the pair loss runs
        self.head_model = self.head

    def wrap_distributed(self) -> None:
        """DDP around the encoder under torchrun (after any resumed weights are in)."""
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            dev = self.info.device
            ids = [self.info.local_rank] if dev.startswith("cuda") else None
            if self.params:  # (a guarded encoder: its base)
                self.model = DDP(self.model, device_ids=ids, broadcast_buffers=self.cfg.bn == "train")
            if self.head is not None:
                self.head_model = DDP(self.head, device_ids=ids)

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext()

    def train_mode(self) -> None:
        set_train_mode(self.encoder, self.cfg.bn)

    def l2sp_penalty(self) -> torch.Tensor | float:
        """``l2sp/2 * sum ||w - w0||^2`` over the trainable weights (0 when L2-SP is off)."""
        if self.anchor is None:
            return 0.0
        return (self.cfg.l2sp / 2) * sum(((w - w0) ** 2).sum() for w, w0 in zip(self.params, self.anchor))

    def _embed(self, x: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
        """What the pair loss scores, with ``net`` as the encoder: a guarded encoder's identity (the
        head learns from head_backward), else the raw descriptor."""
        return self.encoder.identity(x, base=net) if self.head is not None else net(x)

    def keep_real_penalty(self, x: torch.Tensor, raw: torch.Tensor, real: np.ndarray | None) -> torch.Tensor | float:
        """``keep_real * mean ||f(x) - f0(x)||^2 / mean ||f0(x)||^2`` over the rows of ``x`` that are real
        photos (``raw``: the encoder's raw descriptors of ``x``; 0 when off or no row is real)."""
        if self.teacher is None or real is None or not real.any():
            return 0.0
        rows = torch.from_numpy(np.flatnonzero(real)).to(x.device)
        with torch.no_grad(), self._autocast():
            t = self._embed(x[rows], self.teacher).float()  # (a copy of the encoder, on its device)
        drift = ((raw[rows].float() - t) ** 2).sum(1).mean()
        return self.cfg.keep_real * drift / (t ** 2).sum(1).mean().clamp_min(1e-12)

    def forward_backward(self, crops_a: np.ndarray, crops_b: np.ndarray, labels: np.ndarray, scaler: torch.amp.GradScaler, accum_steps: int = 1,
                         sync: bool = True, real: np.ndarray | None = None) -> float:
        """Loss of one micro-batch divided by ``accum_steps``, back-propagated through ``scaler``;
        ``sync=False`` (all but the last micro-batch) skips DDP's gradient all-reduce; ``real``: the
        pairs whose two photos are real (the keep-real distillation's rows)."""
        if not self.params:  # --tune head: only the artefact head learns (head_backward)
            return 0.0
        n = len(labels)
        x = self.encoder.to_input(np.concatenate([crops_a, crops_b]))
        y = torch.from_numpy(labels).to(x.device)
        with self.model.no_sync() if (self.info.enabled and not sync) else nullcontext():
            with self._autocast():
                # the pair loss trains identity; a guarded encoder's head learns from head_backward
                e = self._embed(x, self.model)
            keep = self.keep_real_penalty(x, e, None if real is None else np.concatenate([real, real]))
            u = F.normalize(e.float(), dim=1)
            cos = (u[:n] * u[n:]).sum(1)
            loss = (self.loss_fn(cos, y) + self.l2sp_penalty() + keep) / accum_steps
            scaler.scale(loss).backward()
        return float(loss.detach())

    def head_backward(self, crops: np.ndarray, labels: np.ndarray, scaler: torch.amp.GradScaler) -> float:
        """The artefact head's loss on one batch of single crops, back-propagated."""
        from .artefact import head_loss

        with self._autocast():
            loss = head_loss(self.encoder, crops, labels, head=self.head_model)
        scaler.scale(loss).backward()
        return float(loss.detach())

    @torch.no_grad()
    def embed(self, crops: np.ndarray) -> np.ndarray:
        """L2-normalised float32 embeddings of aligned crops, in eval mode."""
        self.encoder.eval()
        x = self.encoder.to_input(crops)
        with self._autocast():
            e = self.encoder(x)
        return F.normalize(e.float(), dim=1).cpu().numpy()

    def pair_loss(self, cos: np.ndarray, labels: np.ndarray) -> float:
        """The loss (without L2-SP) of already-scored pairs: the validation loss."""
        return float(self.loss_fn(torch.from_numpy(cos), torch.from_numpy(labels)))


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` in eval mode with no trainable parameter (a distillation teacher)."""
    import copy

    t = copy.deepcopy(module).eval()
    for p in t.parameters():
        p.requires_grad_(False)
    return t


@dataclass
class Optimisation:
    """AdamW, ReduceLROnPlateau on the validation loss, and the AMP gradient scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    scaler: torch.amp.GradScaler

    @classmethod
    def create(cls, task: PairTask) -> "Optimisation":
        cfg = task.cfg
        groups = [{"params": task.params, "lr": cfg.lr}] if task.params else []
        if task.head_params:
            groups.append({"params": task.head_params, "lr": cfg.head_lr})
        opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience, threshold=cfg.plateau_threshold)
        scaler = torch.amp.GradScaler("cuda" if task.info.device.startswith("cuda") else "cpu", enabled=task.amp_dtype == torch.float16)
        return cls(opt, sched, scaler)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, st: dict) -> None:
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.scaler.load_state_dict(st["scaler"])
