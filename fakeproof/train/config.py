"""What a ``train run`` is configured with, and how ``--resume`` merges a saved run's config with
the command line (everything from ``RUN_DIR/run.json`` except :data:`RESUME_OVERRIDES`)."""
from __future__ import annotations

from ..errors import FakeproofError

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..data import atomic_write_text, json_text
from ..cli_options import option
from ..engine.checkpoint_reader import last_checkpoint
from ..engine_options import EngineOptions
from .losses import DEFAULT_LOSS, resolve_loss_options


def _dlib_blocks() -> int:
    """The dlib ResNet's residual blocks (read when ``--head-blocks`` is checked: imports torch)."""
    from ..engine.encoders.dlib_resnet import BLOCKS

    return len(BLOCKS)


ENGINE = {f.name: f.metadata["option"] for f in fields(EngineOptions)}  # help shared with the infer commands


KEEP_REAL = 100.0  # the keep-real distillation weight train run uses unless told (README "3. train")


@dataclass
class TrainConfig:
    """What ``train run`` is configured with; each field's default, help and range is its option's
    (:func:`fakeproof.cli_options.option`)."""

    dataset: str
    out: str
    model: str = "auto"  # anything fakeproof.engine.resolve_model reads that has torch weights; auto = the stock default encoder (dlib_resnet without AdaFace weights)
    weights: str | None = option(None, "pretrained weights file for the encoder")
    models_dir: str | None = option(None, ENGINE["models_dir"].help)
    detector: str = option("mtcnn", ENGINE["detector"].help)
    pairs_csv: str | None = None
    seed: int = option(0, "seed of the pair split (and, in train run, of the batch order and flips)")
    val_fraction: float = option(0.2, "share of identities held apart for validation (when the pairs are built here)", min=0.0, max=0.9)
    max_pairs_per_identity: int | None = option(None, "cap on the pairs of one identity (all kinds together)", min=1)
    holdout_backend: str | None = option(None, "leave-one-family-out: generator families (NAME[,NAME], the backend column of fakes.csv) kept out of training AND validation pairs")
    batch_size: int = option(32, "pairs per optimizer step, over all processes", min=1)
    accum_steps: int = option(1, "gradient accumulation: micro-batches per step", min=1)
    lr: float = option(5e-6, "AdamW learning rate", min=0.0, lo_open=True)
    weight_decay: float = option(1e-2, "AdamW weight decay", min=0.0)
    l2sp: float = option(0.0, "L2-SP strength: adds l2sp/2 * sum ||w - w_pretrained||^2, keeps the encoder near what it knew about real faces (Li et al. 2018)", min=0.0)
    keep_real: float = option(KEEP_REAL, (
        "keep-real distillation: adds keep_real * mean ||f(x) - f0(x)||^2 / mean ||f0(x)||^2 over the batch's REAL crops, "
        "f0 the frozen starting encoder: the pair loss may move deepfakes, the real faces' geometry stays (0: off)"
    ), min=0.0)
    loss: str = option(DEFAULT_LOSS, "a registered pair loss (fakeproof.train.losses): adaptive_margin | contrastive | ...; its options follow")
    loss_options: dict = field(default_factory=dict)  # the loss's constructor options (each one a --option of its own)
    plateau_factor: float = option(0.5, "lr factor when the validation loss plateaus", min=0.0, max=1.0, lo_open=True)
    plateau_patience: int = option(10, "validations without improvement before the lr drops", min=0)
    plateau_threshold: float = option(1e-4, "relative improvement that counts for the plateau scheduler", min=0.0)
    val_every: int = option(100, "validate (and checkpoint) every N steps", min=1)
    max_steps: int | None = option(None, "stop after this many optimizer steps", min=1)
    max_minutes: float | None = option(None, "wall-clock budget of this invocation", min=0.0, lo_open=True)
    epochs: float | None = option(10.0, "stop after this many epochs", min=0.0, lo_open=True)
    freeze_blocks: int = option(0, "freeze the first N blocks of the encoder", min=0)
    tune: str = option("all", (
        "all (every unfrozen parameter) | norm (only normalisation layers' scale and shift: keeps the pretrained features, GenD-like) "
        "| head (only the artefact head; the encoder stays as it is)"
    ))
    hard_fakes: float = option(0.0, "hard-negative mining: the share of training deepfake pairs that the starting encoder finds most similar, shown twice per epoch", min=0.0, max=1.0)
    artefact_corpus: str | None = option(None, (
        "a deepfake corpus in deepfakes-train's layout (DIR/images.csv with path,label,family at least; images under DIR): its "
        "images train the artefact head beside the dataset's own fakes (implies --artefact-head), balanced per family and per "
        "real group, each re-encoded and resized at random; checked before any work"
    ))
    check_pairs: str | None = option(None, (
        "a CSV of REAL pairs of many people (path_a,path_b,expected_accept, paths relative to its folder; e.g. "
        "celeba-pairs/pairs.csv) on which the closing check also measures the genuine-pair EER of stock and trained: "
        "a model whose EER rises there by more than --gate-eer-budget is not recommended; checked before any work"
    ))
    holdout_family: str | None = option(None, (
        "corpus family kept out of training for the closing check against stock "
        "(default: the corpus family with most fakes not in the dataset; none: no hold-out)"
    ))
    artefact_head: bool = option(False, (
        "add an artefact head: a small classifier of blending/generation artefacts whose verdict scales the embedding, so any "
        "pair with a flagged photo scores low (inside the checkpoint and the exported ONNX)"
    ))
    head_blocks: int = option(7, "dlib ResNet blocks the artefact head copies (1 to the network's residual blocks)", min=1, max=_dlib_blocks)
    head_lr: float = option(1e-4, "AdamW learning rate of the artefact head", min=0.0, lo_open=True)
    head_batch: int = option(32, "single crops per step for the artefact head (half real, half fake)", min=2)
    head_selfblend: float | None = option(None, (
        "share of the head's fakes self-blended on the fly from real training crops "
        "(default: 0.5, or one family's share with --artefact-corpus; 0: none; off when selfblend is held out)"
    ), min=0.0, max=1.0)
    gate_eer_budget: float = option(0.005, (
        "the guard's threshold: the strictest whose genuine-pair EER on validation rises by at most this "
        "(0.005 = 0.5 point; detect_fakes.gate.choose_tau)"
    ), min=0.0, max=0.5)
    bn: str = option("frozen", "frozen (keep BatchNorm statistics) | train")
    flip: bool = option(True, "random horizontal flips")
    device: str = option("auto", ENGINE["device"].help)
    amp: bool = option(True, "mixed precision (GPU only)")
    val_batch_size: int = option(64, "crops per validation batch", min=1)
    progress: bool = option(True, "progress bar")


# options a resumed run takes from its command line; everything else comes from RUN_DIR/run.json
RESUME_OVERRIDES = {"max_steps", "max_minutes", "epochs", "device", "progress", "val_batch_size", "models_dir", "check_pairs"}


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
    if "loss_options" not in saved:  # run.json of runs made before loss_options: the loss's values were top-level fields
        saved["loss_options"], _ = resolve_loss_options(saved.get("loss", DEFAULT_LOSS), {}, saved)
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
