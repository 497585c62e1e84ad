"""``fakeproof generate``: celeba / deepfakes / check."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..cli_errors import HandledGroup, check_range
from ..errors import EXIT_MISSING
from ..cli_options import MODEL_HELP, check_device, chosen_model, encoder_alias_option, settle_dataset
from ..engine_options import EngineOptions, engine_options
from ..ui import console, summary_table

app = typer.Typer(no_args_is_help=True, cls=HandledGroup)


@app.command("celeba")
def celeba(
    celeba_dir: Path = typer.Argument(..., help="CelebA root: img_celeba/ or img_align_celeba/ + identity_CelebA.txt"),
    out: Path = typer.Option(..., "--out", help="Training-layout dataset to write (images/<id>/<k>.jpg + meta.json)."),
    identities: Optional[int] = typer.Option(None, "--identities", help="How many identities (drawn with --seed); all by default."),
    min_photos: int = typer.Option(3, "--min-photos", help="Keep identities with at least this many photos."),
    seed: int = typer.Option(0, "--seed"),
):
    """CelebA's layout -> the training layout, with celeba_map.csv mapping keys back to CelebA files."""
    from ..data import check_writable
    from .celeba import MAP_NAME, convert_celeba

    check_range("--identities", identities, 1)
    check_range("--min-photos", min_photos, 1)
    check_writable(out, "output dataset folder", is_dir=True)
    settle_dataset(out)
    r = convert_celeba(celeba_dir, out, identities, min_photos, seed)
    for e in r.errors:
        console.print(f"[yellow]skipped[/]: {e}")
    if r.requested is not None and r.identities < r.requested:
        console.print(f"[yellow]--identities {r.requested}: only {r.identities} CelebA identities have >= {min_photos} photos; all of them were taken", highlight=False)
    rows = [
        ["identities", r.identities],
        ["photos in dataset", r.photos],
        ["copied now", r.copied],
        ["already there", r.skipped_existing],
        [f"identities with < {min_photos} photos (left out)", r.too_few_photos],
        ["listed but missing in CelebA", r.missing_in_celeba],
        ["unreadable photos", len(r.errors)],
    ]
    console.print(summary_table(f"CelebA -> {out}", rows, ["", "count"]))
    console.print(f"mapping back to CelebA: {Path(out) / MAP_NAME}")


@app.command("deepfakes")
def deepfakes(
    dataset: Path = typer.Argument(..., help="Training-layout dataset (images/ + meta.json)."),
    backends: str = typer.Option("available", "--backends", help=(
        "all | available | NAME[:WEIGHT][,NAME[:WEIGHT]] (roop, ghost, arc2face, instantid, classic, "
        "selfblend, morph), e.g. classic:2,selfblend:1,morph:1"
    )),
    per_identity: int = typer.Option(4, "--per-identity", help="Fakes per identity (spread over the backends)."),
    models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="Folder with generator weights (default $FAKEPROOF_MODELS)."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda[:N]"),
    max_fakes: Optional[int] = typer.Option(None, "--max-fakes", help="Stop after this many fakes (a trial run; rerun to continue)."),
):
    """Make deepfakes that impersonate each identity (resumable; provenance in fakes.csv)."""
    from .distributed import generate_across_ranks
    from ..distributed.ranks import torchrun_ranks
    from .backends.base import MissingWeightsError
    from .registry import resolve_backends
    from ..data.records import FAKES_CSV
    from .runner import ERRORS_LOG

    try:
        names = resolve_backends(backends, models_dir)
    except MissingWeightsError as e:  # a list, one block per file: more than the one-line handler prints
        console.print(f"[red]cannot start[/]: {len(e.missing)} weight file(s) missing for --backends {backends}:")
        for b, w in e.missing:
            console.print(f"  [bold]{b}[/]: {w.name}\n      expected at {w.path}\n      get it: {w.source}  [dim](licence: {w.licence})[/]", soft_wrap=True)
        raise typer.Exit(EXIT_MISSING)
    check_range("--per-identity", per_identity, 1)
    check_range("--max-fakes", max_fakes, 1)
    check_device(device)
    from ..data import TrainingDataset, check_writable

    settle_dataset(dataset)
    # the dataset must be readable, stay inside its root and take new files: before loading models
    TrainingDataset.load(dataset)
    check_writable(Path(dataset) / "images", "images folder", is_dir=True)
    check_writable(Path(dataset) / "meta.json", "meta.json")
    mix = Counter(names)  # the cycle repeats a backend as often as its weight
    with torchrun_ranks(device) as ranks:  # under torchrun: the plan is split over the ranks
        if ranks.is_main:
            console.print(f"backends: {', '.join(f'{b}:{w}' for b, w in mix.items())}  device: {ranks.device}" + (f"  ranks: {ranks.world_size}" if ranks.enabled else ""))
        run = generate_across_ranks(dataset, names, per_identity, models_dir, seed, device, max_fakes=max_fakes)
    if run is None:  # a rank other than 0: rank 0 reports for all
        return
    rep = run.total
    if run.fold_before.rows:
        console.print(f"{run.fold_before.rows} fakes journalled by the ranks of an earlier (killed) run were merged into {FAKES_CSV} first")
    if run.info.enabled:
        rank_rows = [[m["rank"], m["device"], m["planned"], m["made"], m["failed"], f"{m['seconds']:.1f}"] for m in run.ranks]
        console.print(summary_table("ranks", rank_rows, ["rank", "device", "planned", "made", "failed", "s"]))
        console.print(f"merged {run.fold_after.rows} journal rows of {run.fold_after.journals} ranks into {FAKES_CSV} and meta.json in {run.fold_after.seconds:.2f}s")
    rows = []
    for b in mix:
        s = rep.seconds.get(b, [])
        rows.append([b, len(s), f"{sum(s) / len(s):.3f}" if s else "-"])
    console.print(summary_table("fakes made this run", rows, ["backend", "fakes", "s/fake"]))
    short = [i for i, n in rep.per_identity.items() if n < per_identity]
    summary = [
        ["planned this run", rep.planned],
        ["made", rep.made],
        ["failed (logged)", rep.failed],
        ["already made by earlier runs", rep.already],
        [f"identities with {per_identity} fakes", len(rep.per_identity) - len(short)],
        ["identities short of fakes", len(short)],
        ["identities without real photos (skipped)", len(rep.skipped_identities)],
    ]
    console.print(summary_table(f"deepfakes in {dataset}", summary, ["", "count"]))
    console.print(f"provenance: {Path(dataset) / FAKES_CSV}" + (f"; failures: {Path(dataset) / ERRORS_LOG}" if rep.failed else ""))
    for e in rep.errors[:10]:
        console.print(f"[yellow]failed[/]: {e}")


@app.command("check")
@engine_options(("model", "device"), helps={"model": "the encoder that judges the fakes: " + MODEL_HELP})
def check(
    dataset: Path = typer.Argument(..., help="Training-layout dataset with fakes (and fakes.csv)."),
    encoder: Optional[str] = encoder_alias_option(),
    engine: EngineOptions = None,
):
    """Per backend: how often the encoder accepts the fake as its identity, and how close it stays to the target."""
    from ..data import TrainingDataset, check_writable
    from .check import CHECK_CSV, CHECK_PNG, check_fakes

    check_device(engine.device)
    settle_dataset(dataset)
    # before any model work: a usable dataset, and a folder the report can go to
    TrainingDataset.load(dataset)
    check_writable(Path(dataset) / CHECK_CSV, "check report")
    rep = check_fakes(dataset, chosen_model(engine.model, encoder), engine.device)
    rows = []
    for name, bc in sorted(rep.backends.items()):
        m = lambda v: f"{np.mean(v):.3f}" if v else "-"  # noqa: E731
        rows.append([
            name, bc.n, bc.embedded, f"{bc.impersonation_rate:.1%}", f"{bc.pair_accept_rate:.1%}",
            m(bc.cos_identity), m(bc.cos_source), m(bc.cos_target),
            f"{bc.target_pass_rate:.1%}" if bc.with_target else "-", f"{bc.both_pass_rate:.1%}" if bc.with_target else "-",
        ])
    cols = ["backend", "fakes", "embedded", "imperson.", "pair acc.", "cos id", "cos src", "cos tgt", "as target", "as both"]
    console.print(summary_table(f"fake quality ({rep.encoder}; genuine threshold {rep.threshold:.3f} = EER threshold on real photos, EER {rep.real_eer:.1%})", rows, cols))
    console.print(
        "imperson. = mean cosine to the identity's other real photos >= threshold; pair acc. = share of (fake, real) pairs "
        "accepted; as target = still accepted as the target person; as both = accepted as the identity AND the target "
        "person (a morph's goal)",
        soft_wrap=True,
    )
    if rep.unembeddable:
        console.print(f"[yellow]{len(rep.unembeddable)} fake(s) without a detectable face[/] (listed in {CHECK_CSV})")
    console.print(f"per fake: {Path(dataset) / CHECK_CSV}; plot: {Path(dataset) / CHECK_PNG}")

