"""The data a ``train run`` works on, set up once per run: the dataset, ``RUN_DIR/pairs.csv``
(built, copied from ``--pairs``, or kept on ``--resume``), and the aligned-crop store with its
train / val pair tables. Rank 0 writes; every rank reads after a barrier."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data import TrainingDataset
from ..engine import FaceEngine
from .checks import too_few_identities, untrainable
from .config import TrainConfig, TrainError, save_run_config
from .data import CropStore, PairTable
from ..distributed.process_group import DistInfo, barrier
from .families import check_holdout, family_columns, fake_families, parse_holdout, select_pairs
from .pairs import Pair, build_pairs, read_pairs_csv, write_pairs_csv


@dataclass
class RunData:
    dataset: TrainingDataset
    store: CropStore
    train: PairTable
    val: PairTable
    steps_per_epoch: int
    val_family: object = None  # the generator family of each validation pair ("" for real pairs)


def load_run_pairs(cfg: TrainConfig, info: DistInfo, run_dir: Path, resume: bool, log: Callable[[str], None]) -> tuple[TrainingDataset, list[Pair]]:
    """The dataset and the run's pairs (``RUN_DIR/pairs.csv``, written by rank 0 first, with
    ``RUN_DIR/run.json`` for a new run)."""
    try:
        dataset = TrainingDataset.load(cfg.dataset)
    except Exception as e:  # MetaError and friends already name the file
        raise TrainError(str(e)) from None
    why = None if (resume or cfg.pairs_csv) else too_few_identities(dataset)
    if why:  # every rank sees the same dataset: all stop here, before any model work
        raise TrainError(f"{cfg.dataset}: {why}")
    pairs_path = run_dir / "pairs.csv"
    families, holdout = fake_families(cfg.dataset), parse_holdout(cfg.holdout_backend)
    try:
        check_holdout(holdout, families, str(dataset.root / "fakes.csv"))
    except ValueError as e:
        raise TrainError(str(e)) from None
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume and pairs_path.exists():
            pass
        elif cfg.pairs_csv:
            write_pairs_csv(select_pairs(read_pairs_csv(Path(cfg.pairs_csv)), families, holdout), pairs_path)
        else:
            pairs, summary = build_pairs(dataset, cfg.seed, cfg.val_fraction, cfg.max_pairs_per_identity, families=families, holdout=holdout)
            write_pairs_csv(pairs, pairs_path)
            if summary.without_fakes:
                log(f"[yellow]{len(summary.without_fakes)} identities have no deepfakes: they give genuine and impostor pairs only")
        if not resume:
            save_run_config(cfg, run_dir, info.world_size)
    barrier(info)
    pairs = read_pairs_csv(pairs_path)
    why = untrainable(pairs)
    if why:
        raise TrainError(f"{pairs_path}: {why}")
    return dataset, pairs


def build_run_data(cfg: TrainConfig, info: DistInfo, run_dir: Path, engine: FaceEngine, dataset: TrainingDataset, pairs: list[Pair], log: Callable[[str], None]) -> RunData:
    """Detect and align every photo the pairs use once (rank 0) into ``RUN_DIR/data``."""
    keys = sorted({k for p in pairs for k in (p.a, p.b)})
    if info.is_main:
        store = CropStore.build(engine, dataset.images_dir, keys, run_dir / "data", progress=cfg.progress)
        for k, why in list(store.errors.items())[:10]:
            log(f"[yellow]skipped {dataset.images_dir / k}: {why}")
        if len(store.errors) > 10:
            log(f"[yellow]... and {len(store.errors) - 10} more unusable photos (see {run_dir / 'data' / 'errors.csv'})")
    barrier(info)
    store = CropStore.open(run_dir / "data")
    train_t = PairTable.from_pairs([p for p in pairs if p.split == "train"], store)
    val_t = PairTable.from_pairs([p for p in pairs if p.split == "val"], store)
    if len(train_t) == 0:
        raise TrainError(f"{cfg.dataset}: no usable training pairs (need identities with at least 2 real photos)")
    steps_per_epoch = len(train_t) // cfg.batch_size
    if steps_per_epoch < 1:
        raise TrainError(f"--batch-size {cfg.batch_size} is larger than the {len(train_t)} training pairs; use a smaller --batch-size")
    return RunData(dataset, store, train_t, val_t, steps_per_epoch, family_columns(val_t, store, fake_families(dataset.root)))
