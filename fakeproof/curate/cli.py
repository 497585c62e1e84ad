"""``fakeproof curate``: clean / review / apply."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..cli_errors import HandledGroup, check_range, fail
from ..errors import EXIT_STALE
from ..cli_options import MODEL_HELP, check_device, chosen_model, encoder_alias_option, settle_dataset
from ..engine_options import EngineOptions, engine_options
from ..ui import console, say_operating_point, summary_table

app = typer.Typer(no_args_is_help=True, cls=HandledGroup)


@app.command("clean")
@engine_options(("model", "weights", "models_dir", "device", "detector", "workers", "cache", "margin"), helps={"model": "the encoder that embeds the photos: " + MODEL_HELP})
def clean(
    dataset: Path = typer.Argument(..., help="Dataset root: images/<identity>/<file> + meta.json"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help=(
        "Similarity for an edge between two photos, on the calibrated scale "
        "(0.5 = the model's decision point, the default; what it means is printed)."
    )),
    encoder: Optional[str] = encoder_alias_option(),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default DATASET/curation)."),
    fake_threshold: Optional[float] = typer.Option(None, "--fake-threshold", help=(
        "Deepfake rows below this mean similarity to their identity are flagged "
        "(default: half of --threshold, on the similarity scale)."
    )),
    max_heatmaps: int = typer.Option(100, "--max-heatmaps", help="at most this many per-identity similarity heatmaps [>= 0]"),
    engine: EngineOptions = None,
):
    """Flag photos that do not belong to their identity (graph of cosine similarities). Read-only."""
    from ..data import TrainingDataset, check_writable
    from ..distributed.ranks import engine_cache_dir, main_first, torchrun_ranks
    from ..engine import FaceEngine
    from .clean import curation_dir, run_clean

    check_range("--threshold", threshold, -1.0, 1.0)
    check_range("--fake-threshold", fake_threshold, -1.0, 1.0)
    check_range("--max-heatmaps", max_heatmaps, 0)
    check_device(engine.device)
    settle_dataset(dataset)  # under torchrun only rank 0 finishes an interrupted apply
    # a bad meta.json, an escaping link or an unwritable output: said before any model work
    TrainingDataset.load(dataset)
    check_writable(curation_dir(dataset, out), "curation folder", is_dir=True)
    with torchrun_ranks(engine.device) as ranks:  # under torchrun: each rank embeds a slice, rank 0 analyses
        with main_first(ranks):  # converted weights are written once
            eng = FaceEngine.from_names(
                chosen_model(engine.model, encoder), detector=engine.detector, device=ranks.device, weights=engine.weights, models_dir=engine.models_dir,
                cache_dir=engine_cache_dir(ranks), workers=engine.workers, use_cache=engine.cache, margin=engine.margin,
            )
        threshold = 0.5 if threshold is None else threshold
        if ranks.is_main:
            say_operating_point(eng.card, threshold)
        res = run_clean(dataset, threshold, out=out, engine=eng, fake_threshold=fake_threshold, max_heatmaps=max_heatmaps)
    if res is None:  # a rank other than 0
        return
    s, a = res.summary, res.analysis
    rows = [
        ("images", s["images"]),
        ("real / deepfake", f"{s['real']} / {s['deepfakes']}"),
        ("identities", s["identities"]),
        ("flagged", s["flagged"]),
        *[(f"  {k}", v) for k, v in s["reasons"].items()],
        ("merge candidates", s["merge_candidates"]),
        ("missing / unlisted files", f"{len(s['missing_files'])} / {len(s['unlisted_files'])}" + _examples(s["missing_files"], s["unlisted_files"])),
        ("encoder", f"{s['encoder']} (threshold {threshold:g} on the similarity scale = {eng.card.raw_score_name} {s['threshold_cosine']:.3f}; "
                    f"deepfake {s['fake_threshold']:.3g}, duplicate {s['dup_threshold']:.3g} {eng.card.raw_score_name})"),
        ("time", f"embed {s['timings']['embed_s']:.1f}s, graphs {s['timings']['graphs_s']:.2f}s, total {s['timings']['total_s']:.1f}s"),
        ("output", str(res.out)),
    ]
    console.print(summary_table("curate clean", rows, ["", "value"]))
    top = a.flagged.sort_values("score", na_position="first").head(15)
    if len(top):
        console.print(
            summary_table(
                f"worst flagged photos, similarity on the model's scale (full list with raw scores, {eng.card.raw_score_name}: flags.csv)",
                [(r.key, r.reason, float(eng.card.scale(r.score)), r.suggested_identity, float(eng.card.scale(r.suggested_cosine))) for r in top.itertuples()],
                ["key", "reason", "similarity to own", "suggested", "similarity to suggested"],
            )
        )
    for m in a.merges[:10]:
        console.print(f"merge candidate: {m[0]} ~ {m[1]} (mean similarity {float(eng.card.scale(m[2])):.3f}, {eng.card.raw_score_name} {m[2]:.3f})")


@app.command("review")
def review(
    dataset: Path = typer.Argument(..., help="Dataset root that `curate clean` ran on."),
    port: int = typer.Option(5151, "--port"),
    remote: bool = typer.Option(False, "--remote", help="Serve the App for a browser on another machine."),
    address: Optional[str] = typer.Option(None, "--address", help="Address to bind (default FiftyOne's)."),
    no_launch: bool = typer.Option(False, "--no-launch", help="Only build/update the FiftyOne dataset."),
    curation: Optional[Path] = typer.Option(None, "--curation", help="Folder with flags.csv (default DATASET/curation)."),
    name: Optional[str] = typer.Option(None, "--name", help="FiftyOne dataset name (default fakeproof-<folder>-<hash>)."),
    view: str = typer.Option("suspects", "--view", help="Saved view to open: suspects, by_identity, merge_candidates."),
):
    """Build or update the persistent FiftyOne dataset and open the App on the suspects."""
    from .review import build_review_dataset, check_port_free, launch

    check_range("--port", port, 1, 65535)
    if not no_launch:
        check_port_free(port, address)
    settle_dataset(dataset)
    ds = build_review_dataset(dataset, curation, name)
    n_flag = len(ds.match_tags("needs_review"))
    console.print(
        summary_table(
            "curate review",
            [("FiftyOne dataset", ds.name), ("samples", len(ds)), ("needs_review", n_flag), ("saved views", ", ".join(ds.list_saved_views()))],
            ["", "value"],
        )
    )
    console.print("Tag samples keep / mislabeled / not_a_face / accept_suggestion / identity:<name>, then run "
                  f"`fakeproof curate apply {dataset} --from fiftyone`.")
    if not no_launch:
        console.print(f"App on port {port} (Ctrl-C to stop)")
        launch(ds, view=view, port=port, remote=remote, address=address, wait=True)


def _examples(missing: list, unlisted: list) -> str:
    """Which files (a few of each): keys of meta.json without a file, files without a key."""
    parts = [f"{what} e.g. {', '.join(map(str, xs[:3]))}{' ...' if len(xs) > 3 else ''}" for what, xs in (("missing", missing), ("unlisted", unlisted)) if xs]
    return f" ({'; '.join(parts)})" if parts else ""


SHOW_SKIPPED = 10  # skipped decisions listed one per line; the rest are counted


def _say_skipped(what: str, lines: list[str]) -> None:
    for e in lines[:SHOW_SKIPPED]:
        console.print(f"[yellow]{what}:[/yellow] {e}", highlight=False)
    if len(lines) > SHOW_SKIPPED:
        console.print(f"[yellow]{what}:[/yellow] ... and {len(lines) - SHOW_SKIPPED} more", highlight=False)


def _check_apply_writable(dataset: Path) -> None:
    """meta.json, its history folder, the identity folders and quarantine/ must take new files."""
    from ..data import check_writable

    check_writable(dataset / "meta.json", "meta.json")
    check_writable(dataset / ".history", "history folder", is_dir=True)
    check_writable(dataset / "curation", "curation folder", is_dir=True)
    check_writable(dataset / "quarantine", "quarantine folder", is_dir=True)
    check_writable(dataset / "images", "images folder", is_dir=True)


@app.command("apply")
def apply(
    dataset: Path = typer.Argument(..., help="Dataset root."),
    source: str = typer.Option("fiftyone", "--from", help="fiftyone, or a flags.csv with a filled `decision` column."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, change nothing."),
    undo_: bool = typer.Option(False, "--undo", help="Reverse the latest applied batch."),
    only_unchanged: bool = typer.Option(False, "--only-unchanged", help="Apply the decisions about photos unchanged since `curate clean` and skip the others (default: refuse them all)."),
    name: Optional[str] = typer.Option(None, "--name", help="FiftyOne dataset name (default fakeproof-<folder>-<hash>)."),
):
    """Move relabelled photos, quarantine rejected ones, rewrite meta.json atomically, log history."""
    from . import apply as ap
    from .decisions import from_fiftyone, from_flags_csv

    if not (Path(dataset) / "meta.json").exists():
        fail(f"{Path(dataset) / 'meta.json'}: file not found")
    settle_dataset(dataset)
    if not dry_run:  # before any plan is printed: every place apply writes must take new files
        _check_apply_writable(Path(dataset))
    if undo_:
        r = ap.undo(dataset)
        if r is None:
            fail(f"{ap.history_path(dataset)}: no applied batch to undo")
        head, changes, how = r
        console.print(f"undid batch {head['batch']} ({len(changes)} changes); meta.json {how}")
        return
    if source == "fiftyone":
        decisions, errors = from_fiftyone(dataset, name)
    else:
        decisions, errors = from_flags_csv(Path(source))
    changes, skipped, stale = ap.plan(dataset, decisions)
    if stale and not only_unchanged:
        fail(f"{len(stale)} decision(s) are about photos that changed since `curate clean` (e.g. {stale[0]}); "
             f"re-run `fakeproof curate clean {dataset}` and review again, or apply the rest with --only-unchanged", EXIT_STALE)
    _say_skipped("skipped", errors + skipped)
    _say_skipped("skipped (changed since clean)", stale)
    keeps = sum(d.action == "keep" for d in decisions)
    console.print(
        summary_table(
            "curate apply" + (" (dry run)" if dry_run else ""),
            [(c.action, c.path_from, c.path_to, c.decision) for c in changes],
            ["action", "from", "to", "decision"],
        )
    )
    console.print(f"{len(changes)} changes, {keeps} kept, {len(errors) + len(skipped) + len(stale)} skipped")
    if dry_run or not changes:
        return
    batch = ap.execute(dataset, changes, source=source)
    console.print(f"applied batch {batch}; history in {ap.history_path(dataset)}; undo with `fakeproof curate apply {dataset} --undo`")
