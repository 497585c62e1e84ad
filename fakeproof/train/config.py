"""What a ``train run`` is configured with, and how ``--resume`` merges a saved run's config with
the command line (everything from ``RUN_DIR/run.json`` except :data:`RESUME_OVERRIDES`)."""
from __future__ import annotations

from ..errors import FakeproofError

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..data import atomic_write_text, json_text
from ..engine.checkpoint_reader import last_checkpoint
from .loss import DEFAULT_MARGIN_ALPHA, DEFAULT_MARGIN_BASE, DEFAULT_SCALE


@dataclass
class TrainConfig:
    dataset: str
    out: str
    model: str = "auto"  # anything fakeproof.engine.resolve_model reads that has torch weights; auto = the stock default encoder (dlib_resnet without AdaFace weights)
    weights: str | None = None
    models_dir: str | None = None
    detector: str = "mtcnn"
    pairs_csv: str | None = None
    seed: int = 0
    val_fraction: float = 0.2
    max_pairs_per_identity: int | None = None
    holdout_backend: str | None = None  # generator families (NAME[,NAME]) kept out of training and validation
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
    tune: str = "all"  # all | norm (only the normalisation layers' affine parameters learn, GenD-like) | head (only the artefact head)
    hard_fakes: float = 0.0  # share of training deepfake pairs (the most similar for the starting encoder) seen twice per epoch
    artefact_corpus: str | None = None  # a folder in deepfakes-train's layout (images.csv: path,label,family); trains the head (implies artefact_head)
    holdout_family: str | None = None  # corpus family kept out of training for the closing check; None = automatic, "none" = no hold-out
    artefact_head: bool = False  # add an artefact head (fakeproof.engine.encoders.guard) and train it
    head_blocks: int = 7
    head_lr: float = 1e-4
    head_batch: int = 32
    head_selfblend: float | None = None  # None: 0.5 without a corpus, one family's share with one
    gate_eer_budget: float = 0.005  # the guard's tau: the strictest whose genuine-pair EER rise on validation is <= this (detect_fakes.gate.choose_tau)
    bn: str = "frozen"
    flip: bool = True
    device: str = "auto"
    amp: bool = True
    val_batch_size: int = 64
    progress: bool = True


# options a resumed run takes from its command line; everything else comes from RUN_DIR/run.json
RESUME_OVERRIDES = {"max_steps", "max_minutes", "epochs", "device", "progress", "val_batch_size", "models_dir"}


class TrainError(FakeproofError, RuntimeError):
    """A run that cannot start; the message says why in one line."""


def resolve_config(cfg: TrainConfig, resume: bool, run_dir: Path) -> TrainConfig:
    """``cfg`` for a new run (refused if ``run_dir`` already holds one); for ``--resume`` the saved
    config (``run.json``, limits included) with those of this command's :data:`RESUME_OVERRIDES`
    that it sets to something other than their default."""
    run_json = run_dir / "run.json"
    if not resume:
        if last_checkpoint(run_dir) is not None:
            raise TrainError(f"{run_dir}: already holds a run; add --resume to continue it or choose another --out")
        return cfg
    if last_checkpoint(run_dir) is None or not run_json.exists():
        raise TrainError(f"{run_dir}: nothing to resume (no checkpoints/last.json with a training state)")
    saved = json.loads(run_json.read_text())["config"]
    if "encoder" in saved and "model" not in saved:  # run.json of runs made before --model
        saved["model"] = saved.pop("encoder")
    merged = {f.name: saved.get(f.name, getattr(cfg, f.name)) for f in fields(TrainConfig)}
    defaults = TrainConfig(dataset=cfg.dataset, out=cfg.out)
    for k in RESUME_OVERRIDES:  # only what this command sets: a bare --resume keeps the run's limits
        if getattr(cfg, k) != getattr(defaults, k):
            merged[k] = getattr(cfg, k)
    merged["out"] = str(run_dir)
    return TrainConfig(**merged)


def stop_limit(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The step a run stops at (``--max-steps`` / ``--epochs``, whichever comes first; a huge number
    when only ``--max-minutes`` bounds it)."""
    lim = math.inf
    if cfg.max_steps is not None:
        lim = cfg.max_steps
    if cfg.epochs is not None:
        lim = min(lim, int(math.ceil(cfg.epochs * steps_per_epoch)))
    return int(lim) if lim != math.inf else 10**12


def save_run_config(cfg: TrainConfig, run_dir: Path, world_size: int) -> None:
    """``RUN_DIR/run.json``: the resolved config of a new run (what ``--resume`` reads back)."""
    atomic_write_text(run_dir / "run.json", json_text({"config": asdict(cfg), "world_size": world_size, "started": time.time()}))
