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
from ..cli_options import (
    check_device, check_values, chosen_model, config_options, encoder_alias_option, field_default, field_specs, generated_options, given_on_command_line,
    model_option, read_config_file, settle_dataset,
)
from ..ui import console, summary_table
from .config import TrainConfig
from .losses import loss_option_names, loss_option_specs, resolve_loss_options

app = typer.Typer(no_args_is_help=True, cls=HandledGroup)
PAIR_OPTIONS = ("seed", "val_fraction", "max_pairs_per_identity", "holdout_backend")  # TrainConfig fields `train pairs` takes too


@app.command("pairs")
@generated_options(field_specs(TrainConfig), param="split", only=PAIR_OPTIONS, helps={"val_fraction": "share of identities held apart for validation"})
def pairs_cmd(
    dataset: Path = typer.Argument(..., help="training-layout folder (images/<id>/<file> + meta.json)"),
    out: Path = typer.Option(Path("pairs.csv"), "--out", help="CSV to write (split, kind, label, identity, a, b)"),
    test_fraction: float = typer.Option(0.0, "--test-fraction", help="share of identities held apart from training AND validation (split 'test', for a final evaluation) [>= 0 and <= 1]"),
    split: dict = None,
):
    """Genuine / impostor / deepfake pairs (50/25/25 per identity), split by identity."""
    from ..data import TrainingDataset, check_writable
    from .families import check_holdout, fake_families, parse_holdout
    from .pairs import build_pairs, write_pairs_csv

    seed, val_fraction, max_pairs_per_identity, holdout_backend = (split[k] for k in PAIR_OPTIONS)
    check_range("--test-fraction", test_fraction, 0.0, 1.0)
    if val_fraction + test_fraction >= 1.0:
        fail(f"--val-fraction + --test-fraction must be < 1 (nothing left to train on), got {val_fraction + test_fraction:g}", 2)
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


@app.command("run")
@config_options(TrainConfig, skip=("model", "pairs_csv", "loss_options"), extra=loss_option_specs)
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
    """Fine-tune the encoder with a pair loss (default: adaptive margin) on CPU, GPU, or DDP under torchrun."""
    from ..data import check_writable
    from .loop import train

    loss_names = loss_option_names()
    values = read_config_file(config, TrainConfig, extra=loss_names) if config is not None else {}
    # the loss's options: the command line's over the file's (top-level fields or its loss_options)
    from_file = {**{k: values.pop(k) for k in list(values) if k in loss_names}, **(values.pop("loss_options", None) or {})}
    given = {k: config_values.pop(k) for k in list(config_values) if k in loss_names}
    given = {k: v for k, v in given.items() if v is not None}
    for name, v in {**config_values, "model": chosen_model(model, encoder), "pairs_csv": str(pairs_csv) if pairs_csv else None}.items():
        if name not in values or given_on_command_line(ctx, "encoder" if name == "model" and encoder is not None else name):
            values[name] = v
    check_values(field_specs(TrainConfig), values)  # an option (or config-file field) out of range: before any work
    values["loss_options"], left_out = resolve_loss_options(values.get("loss", field_default(TrainConfig, "loss")), given, from_file)
    if left_out:
        console.print(f"[yellow]{config}: {', '.join(left_out)} not used (not options of --loss {values.get('loss')})", highlight=False)
    cfg = TrainConfig(**{**values, "dataset": str(dataset), "out": str(out)})
    if cfg.artefact_corpus:  # CorpusError: one line naming the file, before any work
        from .corpus_crops import check_corpus, choose_holdout

        items = check_corpus(cfg.artefact_corpus)
        if cfg.holdout_family:
            choose_holdout(items, (), cfg.holdout_family)
    if cfg.check_pairs:  # CheckPairsError: one line naming the file, before any work
        from .check_pairs import read_check_pairs

        read_check_pairs(cfg.check_pairs)
    check_device(cfg.device)
    check_writable(out, "run folder", is_dir=True)
    settle_dataset(dataset)
    train(cfg, resume=resume)


if __name__ == "__main__":  # torchrun -m fakeproof.train.cli run ...
    app()
