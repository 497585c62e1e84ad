"""``fakeproof train``: pairs / run.

Several GPUs or machines: run the same command under torchrun, e.g.
``torchrun --nproc_per_node=4 -m fakeproof.cli train run DATA --out RUN`` (DDP: NCCL on GPU, gloo
on CPU; only rank 0 writes). ``-m fakeproof.train.cli run ...`` works too and imports less.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..cli_errors import check_range, fail
from ..cli_options import chosen_model, encoder_alias_option, model_option
from ..ui import console, summary_table

app = typer.Typer(no_args_is_help=True)


@app.command("pairs")
def pairs_cmd(
    dataset: Path = typer.Argument(..., help="training-layout folder (images/<id>/<file> + meta.json)"),
    out: Path = typer.Option(Path("pairs.csv"), "--out", help="CSV to write (split, kind, label, identity, a, b)"),
    seed: int = typer.Option(0, "--seed"),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="share of identities held apart for validation"),
    test_fraction: float = typer.Option(0.0, "--test-fraction", help="share of identities held apart from training AND validation (split 'test', for a final evaluation)"),
    max_pairs_per_identity: Optional[int] = typer.Option(None, "--max-pairs-per-identity", help="cap on the pairs of one identity (all kinds together)"),
):
    """Genuine / impostor / deepfake pairs (50/25/25 per identity), split by identity."""
    from ..data import MetaError, OutputError, TrainingDataset, check_writable
    from .pairs import build_pairs, write_pairs_csv

    check_range("--val-fraction", val_fraction, 0.0, 1.0)
    check_range("--test-fraction", test_fraction, 0.0, 1.0)
    if val_fraction + test_fraction >= 1.0:
        fail(f"--val-fraction + --test-fraction must be < 1 (nothing left to train on), got {val_fraction + test_fraction:g}", 2)
    check_range("--max-pairs-per-identity", max_pairs_per_identity, 1)
    try:
        ds = TrainingDataset.load(dataset)
        check_writable(out, "pairs CSV")
    except (MetaError, OutputError, ValueError, OSError) as e:
        fail(str(e))
    if ds.missing_files:
        console.print(f"[yellow]{len(ds.missing_files)} keys of {ds.meta_path} have no file (e.g. {ds.missing_files[0]}); they are left out")
    pairs, summary = build_pairs(ds, seed=seed, val_fraction=val_fraction, max_pairs_per_identity=max_pairs_per_identity, test_fraction=test_fraction)
    if not pairs:
        fail(f"{dataset}: no pairs (every identity needs at least 2 real photos)")
    try:
        write_pairs_csv(pairs, out)
    except OSError as e:
        fail(f"{out}: cannot write ({e.strerror or e})")
    console.print(summary_table(f"pairs -> {out}", summary.rows(), ["split", "identities", "genuine", "impostor", "deepfake", "total"]))
    if summary.without_fakes:
        console.print(f"[yellow]{len(summary.without_fakes)} identities have no deepfakes (genuine + impostor pairs only): {', '.join(summary.without_fakes[:8])}{' ...' if len(summary.without_fakes) > 8 else ''}")
    if summary.too_few_reals:
        console.print(f"[yellow]{len(summary.too_few_reals)} identities have fewer than 2 real photos and give no pairs")


@app.command("run")
def run(
    dataset: Path = typer.Argument(..., help="training-layout folder (images/<id>/<file> + meta.json)"),
    out: Path = typer.Option(..., "--out", help="run folder: checkpoints/, metrics.csv, metrics.png, pairs.csv"),
    model: str = model_option(help="the encoder to fine-tune: a registry name (facenet, adaface_ir18/50/101) or a `train run` folder / checkpoint to go on from (ONNX models cannot be fine-tuned)"),
    encoder: Optional[str] = encoder_alias_option(),
    weights: Optional[str] = typer.Option(None, "--weights", help="pretrained weights file for the encoder"),
    models_dir: Optional[str] = typer.Option(None, "--models-dir"),
    detector: str = typer.Option("mtcnn", "--detector", help="mtcnn | scrfd:DIR"),
    pairs_csv: Optional[Path] = typer.Option(None, "--pairs", help="pairs.csv from `train pairs` (default: built here)"),
    seed: int = typer.Option(0, "--seed"),
    val_fraction: float = typer.Option(0.2, "--val-fraction"),
    max_pairs_per_identity: Optional[int] = typer.Option(None, "--max-pairs-per-identity"),
    batch_size: int = typer.Option(32, "--batch-size", help="pairs per optimizer step, over all processes"),
    accum_steps: int = typer.Option(1, "--accum-steps", help="gradient accumulation: micro-batches per step"),
    lr: float = typer.Option(5e-6, "--lr"),
    weight_decay: float = typer.Option(1e-2, "--weight-decay"),
    l2sp: float = typer.Option(0.0, "--l2sp", help="L2-SP strength: adds l2sp/2 * sum ||w - w_pretrained||^2, keeps the encoder near what it knew about real faces"),
    loss: str = typer.Option("adaptive_margin", "--loss", help="adaptive_margin | contrastive"),
    scale: float = typer.Option(16.0, "--scale", help="s in logit = s (cos - m_d y)"),
    margin_base: float = typer.Option(0.35, "--margin-base", help="m_b"),
    margin_alpha: float = typer.Option(0.1, "--margin-alpha", help="alpha in m_d = m_b + alpha (1 - cos)"),
    plateau_patience: int = typer.Option(10, "--plateau-patience", help="validations without improvement before lr halves"),
    val_every: int = typer.Option(100, "--val-every", help="validate (and checkpoint) every N steps"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="wall-clock budget of this invocation"),
    epochs: Optional[float] = typer.Option(10.0, "--epochs"),
    freeze_blocks: int = typer.Option(0, "--freeze-blocks", help="freeze the first N blocks of the encoder"),
    bn: str = typer.Option("frozen", "--bn", help="frozen (keep BatchNorm statistics) | train"),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="random horizontal flips"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="mixed precision (GPU only)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out exactly from its last checkpoint; training options come from RUN_DIR/run.json, only --max-steps/--max-minutes/--epochs/--device from this command"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Fine-tune the encoder with the adaptive-margin loss (CPU, GPU, or DDP under torchrun)."""
    from ..data import OutputError, check_writable
    from .config import TrainConfig, TrainError
    from .loop import train

    for name, value, lo, hi in (
        ("--val-fraction", val_fraction, 0.0, 0.9), ("--max-pairs-per-identity", max_pairs_per_identity, 1, None),
        ("--batch-size", batch_size, 1, None), ("--accum-steps", accum_steps, 1, None), ("--weight-decay", weight_decay, 0.0, None),
        ("--l2sp", l2sp, 0.0, None), ("--margin-base", margin_base, 0.0, 2.0), ("--margin-alpha", margin_alpha, 0.0, 2.0),
        ("--plateau-patience", plateau_patience, 1, None), ("--val-every", val_every, 1, None), ("--max-steps", max_steps, 1, None),
        ("--freeze-blocks", freeze_blocks, 0, None),
    ):
        check_range(name, value, lo, hi)
    for name, value in (("--lr", lr), ("--scale", scale), ("--max-minutes", max_minutes), ("--epochs", epochs)):
        check_range(name, value, 0.0, None, lo_open=True)
    try:
        check_writable(out, "run folder", is_dir=True)
    except OutputError as e:
        fail(str(e))
    cfg = TrainConfig(
        dataset=str(dataset),
        out=str(out),
        model=chosen_model(model, encoder),
        weights=weights,
        models_dir=models_dir,
        detector=detector,
        pairs_csv=str(pairs_csv) if pairs_csv else None,
        seed=seed,
        val_fraction=val_fraction,
        max_pairs_per_identity=max_pairs_per_identity,
        batch_size=batch_size,
        accum_steps=accum_steps,
        lr=lr,
        weight_decay=weight_decay,
        l2sp=l2sp,
        loss=loss,
        scale=scale,
        margin_base=margin_base,
        margin_alpha=margin_alpha,
        plateau_patience=plateau_patience,
        val_every=val_every,
        max_steps=max_steps,
        max_minutes=max_minutes,
        epochs=epochs,
        freeze_blocks=freeze_blocks,
        bn=bn,
        flip=flip,
        device=device,
        amp=amp,
        progress=progress,
    )
    try:
        train(cfg, resume=resume)
    except (TrainError, ValueError, FileNotFoundError, KeyError, OSError) as e:
        fail(str(e))


if __name__ == "__main__":  # torchrun -m fakeproof.train.cli run ...
    app()
