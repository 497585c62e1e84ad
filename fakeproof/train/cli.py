"""``fakeproof train``: pairs / run.

Several GPUs or machines: run the same command under torchrun, e.g.
``torchrun --nproc_per_node=4 -m fakeproof.cli train run DATA --out RUN`` (DDP: NCCL on GPU, gloo
on CPU; only rank 0 writes). ``-m fakeproof.train.cli run ...`` works too and imports less.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..cli_errors import HandledGroup, check_range, fail
from ..cli_options import check_device, chosen_model, config_options, encoder_alias_option, field_default, given_on_command_line, model_option, read_config_file, settle_dataset
from ..ui import console, summary_table
from .config import TrainConfig

app = typer.Typer(no_args_is_help=True, cls=HandledGroup)


@app.command("pairs")
def pairs_cmd(
    dataset: Path = typer.Argument(..., help="training-layout folder (images/<id>/<file> + meta.json)"),
    out: Path = typer.Option(Path("pairs.csv"), "--out", help="CSV to write (split, kind, label, identity, a, b)"),
    seed: int = typer.Option(field_default(TrainConfig, "seed"), "--seed"),
    val_fraction: float = typer.Option(field_default(TrainConfig, "val_fraction"), "--val-fraction", help="share of identities held apart for validation"),
    test_fraction: float = typer.Option(0.0, "--test-fraction", help="share of identities held apart from training AND validation (split 'test', for a final evaluation)"),
    max_pairs_per_identity: Optional[int] = typer.Option(None, "--max-pairs-per-identity", help="cap on the pairs of one identity (all kinds together)"),
    holdout_backend: Optional[str] = typer.Option(None, "--holdout-backend", help="generator families (NAME[,NAME], from fakes.csv) whose fakes no pair uses"),
):
    """Genuine / impostor / deepfake pairs (50/25/25 per identity), split by identity."""
    from ..data import TrainingDataset, check_writable
    from .families import check_holdout, fake_families, parse_holdout
    from .pairs import build_pairs, write_pairs_csv

    check_range("--val-fraction", val_fraction, 0.0, 1.0)
    check_range("--test-fraction", test_fraction, 0.0, 1.0)
    if val_fraction + test_fraction >= 1.0:
        fail(f"--val-fraction + --test-fraction must be < 1 (nothing left to train on), got {val_fraction + test_fraction:g}", 2)
    check_range("--max-pairs-per-identity", max_pairs_per_identity, 1)
    settle_dataset(dataset)
    ds = TrainingDataset.load(dataset)
    check_writable(out, "pairs CSV")
    families, holdout = fake_families(dataset), parse_holdout(holdout_backend)
    check_holdout(holdout, families, str(Path(dataset) / "fakes.csv"))
    if ds.missing_files:
        console.print(f"[yellow]{len(ds.missing_files)} keys of {ds.meta_path} have no file (e.g. {ds.missing_files[0]}); they are left out")
    pairs, summary = build_pairs(ds, seed=seed, val_fraction=val_fraction, max_pairs_per_identity=max_pairs_per_identity, test_fraction=test_fraction, families=families, holdout=holdout)
    if not pairs:
        fail(f"{dataset}: no pairs (every identity needs at least 2 real photos)")
    write_pairs_csv(pairs, out)
    console.print(summary_table(f"pairs -> {out}", summary.rows(), ["split", "identities", "genuine", "impostor", "deepfake", "total"]))
    if summary.without_fakes:
        more = " ..." if len(summary.without_fakes) > 8 else ""
        console.print(
            f"[yellow]{len(summary.without_fakes)} identities have no deepfakes (genuine + impostor pairs only): "
            f"{', '.join(summary.without_fakes[:8])}{more}"
        )
    if summary.too_few_reals:
        console.print(f"[yellow]{len(summary.too_few_reals)} identities have fewer than 2 real photos and give no pairs")


RUN_HELP = {  # help of the options generated from TrainConfig (defaults: the dataclass's)
    "weights": "pretrained weights file for the encoder",
    "models_dir": "folder with user-supplied weights",
    "detector": "mtcnn | scrfd:DIR",
    "seed": "seed of the pair split, batch order and flips",
    "val_fraction": "share of identities held apart for validation (when the pairs are built here)",
    "max_pairs_per_identity": "cap on the pairs of one identity",
    "holdout_backend": "leave-one-family-out: generator families (NAME[,NAME], the backend column of fakes.csv) kept out of training AND validation pairs",
    "batch_size": "pairs per optimizer step, over all processes",
    "accum_steps": "gradient accumulation: micro-batches per step",
    "lr": "AdamW learning rate",
    "weight_decay": "AdamW weight decay",
    "l2sp": "L2-SP strength: adds l2sp/2 * sum ||w - w_pretrained||^2, keeps the encoder near what it knew about real faces",
    "loss": "a registered pair loss: adaptive_margin | contrastive",
    "scale": "s in logit = s (cos - m_d y)",
    "margin_base": "m_b (the contrastive loss's margin)",
    "margin_alpha": "alpha in m_d = m_b + alpha (1 - cos)",
    "plateau_factor": "lr factor when the validation loss plateaus",
    "plateau_patience": "validations without improvement before the lr drops",
    "plateau_threshold": "relative improvement that counts for the plateau scheduler",
    "val_every": "validate (and checkpoint) every N steps",
    "max_steps": "stop after this many optimizer steps",
    "max_minutes": "wall-clock budget of this invocation",
    "epochs": "stop after this many epochs",
    "freeze_blocks": "freeze the first N blocks of the encoder",
    "tune": "all (every unfrozen parameter) | norm (only normalisation layers' scale and shift: keeps the pretrained features, GenD-like) | head (only the artefact head; the encoder stays as it is)",
    "hard_fakes": "hard-negative mining: the share of training deepfake pairs that the starting encoder finds most similar, shown twice per epoch",
    "artefact_corpus": (
        "a deepfake corpus in deepfakes-train's layout (DIR/images.csv with path,label,family at least; images under DIR): its "
        "images train the artefact head beside the dataset's own fakes (implies --artefact-head), balanced per family and per "
        "real group, each re-encoded and resized at random; checked before any work"
    ),
    "holdout_family": "corpus family kept out of training for the closing check against stock (default: the corpus family with most fakes not in the dataset; none: no hold-out)",
    "artefact_head": (
        "add an artefact head: a small classifier of blending/generation artefacts whose verdict scales the embedding, so any "
        "pair with a flagged photo scores low (inside the checkpoint and the exported ONNX)"
    ),
    "head_blocks": "dlib ResNet blocks the artefact head copies (1 to the network's residual blocks)",
    "head_lr": "AdamW learning rate of the artefact head",
    "head_batch": "single crops per step for the artefact head (half real, half fake)",
    "head_selfblend": (
        "share of the head's fakes self-blended on the fly from real training crops "
        "(default: 0.5, or one family's share with --artefact-corpus; 0: none; off when selfblend is held out)"
    ),
    "gate_eer_budget": "the guard's threshold: the strictest whose genuine-pair EER on validation rises by at most this (0.005 = 0.5 point)",
    "bn": "frozen (keep BatchNorm statistics) | train",
    "flip": "random horizontal flips",
    "device": "auto | cpu | cuda",
    "amp": "mixed precision (GPU only)",
    "val_batch_size": "crops per validation batch",
    "progress": "progress bar",
}


@app.command("run")
@config_options(TrainConfig, RUN_HELP, skip=("dataset", "out", "model", "pairs_csv"))
def run(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., help="training-layout folder (images/<id>/<file> + meta.json)"),
    out: Path = typer.Option(..., "--out", help="run folder: checkpoints/, metrics.csv, metrics.png, pairs.csv, run.json (the resolved config)"),
    model: str = model_option(field_default(TrainConfig, "model"), help=(
        "the encoder to fine-tune: a registry name (facenet, adaface_ir18/50/101) or a `train run` folder / "
        "checkpoint to go on from (ONNX models cannot be fine-tuned)"
    )),
    encoder: Optional[str] = encoder_alias_option(),
    pairs_csv: Optional[Path] = typer.Option(None, "--pairs", help="pairs.csv from `train pairs` (default: built here)"),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON of TrainConfig fields (or a run.json); options given here override it"),
    resume: bool = typer.Option(False, "--resume", help=(
        "continue the run in --out exactly from its last checkpoint; every option, limits included, comes from RUN_DIR/run.json; "
        "--max-steps/--max-minutes/--epochs/--device given here replace the saved ones"
    )),
    config_values: dict = None,
):
    """Fine-tune the encoder with the adaptive-margin loss (CPU, GPU, or DDP under torchrun)."""
    from ..data import check_writable
    from .checks import RANGES
    from .loop import train

    values = {}
    if config is not None:
        values = read_config_file(config, TrainConfig)
    for name, v in {**config_values, "model": chosen_model(model, encoder), "pairs_csv": str(pairs_csv) if pairs_csv else None}.items():
        if name not in values or given_on_command_line(ctx, "encoder" if name == "model" and encoder is not None else name):
            values[name] = v
    cfg = TrainConfig(**{**values, "dataset": str(dataset), "out": str(out)})
    for name, (lo, hi, lo_open) in RANGES.items():  # the option (or config-file field) out of range: before any work
        check_range("--" + name.replace("_", "-"), getattr(cfg, name), lo, hi, lo_open=lo_open)
    if cfg.artefact_corpus:  # CorpusError: one line naming the file, before any work
        from .corpus_crops import check_corpus, choose_holdout

        items = check_corpus(cfg.artefact_corpus)
        if cfg.holdout_family:
            choose_holdout(items, (), cfg.holdout_family)
    check_device(cfg.device)
    check_writable(out, "run folder", is_dir=True)
    settle_dataset(dataset)
    train(cfg, resume=resume)


if __name__ == "__main__":  # torchrun -m fakeproof.train.cli run ...
    app()
