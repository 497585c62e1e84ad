"""``fakeproof infer``: score-folders / score-pairs / evaluate / compare / export-onnx / benchmark.

The face-engine options (``--model``, ``--runtime``, ``--device``, ``--batch-size``, ...) are
described once, in :class:`fakeproof.engine_options.EngineOptions`; each command takes the ones that
apply to it. The work itself lives in the modules each command imports.

``--model`` takes every form :func:`fakeproof.engine.resolve_model` reads (registry string, ``train
run`` folder or checkpoint, ``.onnx`` from ``export-onnx``); ``--runtime onnx`` runs any of them on
ONNX Runtime.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from ..cli_errors import HandledGroup, check_range, fail
from ..engine_options import EngineOptions, engine_options
from ..ui import say_operating_point, console, summary_table

app = typer.Typer(no_args_is_help=True, cls=HandledGroup)



def _writable(*outputs) -> None:
    """Fail before any model work when an output file cannot be written."""
    from ..data import check_writable

    for o in outputs:
        check_writable(o, "output file")


def _load(opts: EngineOptions, device: str, threshold=None):
    """The model ``--model`` names (torch or ONNX Runtime, per ``--runtime``), its line printed."""
    from .threads import configure_cpu_threads

    configure_cpu_threads()  # before torch is imported
    from ..cli_options import check_device
    from .model import load_model

    check_device(device)
    m = load_model(opts.model, device=device, runtime=opts.runtime, weights=opts.weights, models_dir=opts.models_dir, threshold=threshold)
    console.print(f"model: {escape(m.describe())}", highlight=False)
    return m


# options of these commands that are not engine options (those: fakeproof.engine_options)
_threshold = typer.Option(None, "--threshold", help=(
    "decision threshold on the similarity scale (default: the model's, 0.5 on a calibrated model); "
    "with --raw, a raw score of the model's metric (cosine; -euclidean distance for stock dlib_resnet) [>= -1 and <= 1]"))
_raw = typer.Option(False, "--raw", help=(
    "report the raw score of the model's metric (cosine; -euclidean distance for stock dlib_resnet) instead of "
    "the calibrated similarity (0 = typical different people, 0.5 = decision point, 1 = same photo)"))


def _face_summary(scores) -> None:
    c = scores.counts()
    rows = [[k, c.get(k, 0)] for k in ("detected", "pre_aligned", "whole_image", "unreadable", "missing") if c.get(k, 0)]
    console.print(summary_table("photo sides", rows, ["face", "count"]))
    if scores.n_unscorable:
        first = next(e for e in scores.error if e)
        console.print(f"[yellow]{scores.n_unscorable} pairs have an unusable side and get similarity 0.0 (e.g. {first})", highlight=False)


@app.command("pairs", hidden=True, help="Old name of `score-folders` (still accepted).")
@app.command("score-folders")
@engine_options()
def pairs_cmd(
    test_dir: Path = typer.Argument(..., help="Kryptonite test layout: TEST_DIR/<pair_id>/0.jpg, 1.jpg"),
    out: Path = typer.Option(Path("submission.csv"), "--out", help="CSV with pair_id,similarity"),
    report: Optional[Path] = typer.Option(None, "--report", help="side report: pair_id,face_a,face_b,error (default: OUT with .faces.csv)"),
    raw: bool = _raw,
    engine: EngineOptions = None,
):
    """One similarity per pair folder, in sorted order; every pair scored (fallbacks in the side report)."""
    import pandas as pd

    from ..data import atomic_write_text, read_pair_folders
    from ..distributed.ranks import engine_cache_dir, main_first, torchrun_ranks
    from .scoring import score_pairs

    folders = read_pair_folders(test_dir)
    if not folders:
        fail(f"{test_dir}: no pair folders inside")
    report = report or out.with_name(out.stem + ".faces.csv")
    _writable(out, report)
    with torchrun_ranks(engine.device) as ranks:  # under torchrun: each rank embeds a slice, rank 0 writes
        with main_first(ranks):
            m = _load(engine, ranks.device)
        eng = engine.face_engine(m.encoder, ranks.device, engine_cache_dir(ranks))
        scores = score_pairs(eng, [(f.a, f.b) for f in folders], batch_size=engine.batch_size, progress=engine.progress)
    if scores is None:  # a rank other than 0
        return
    errors = [("; ".join(x for x in (f.problem, e) if x)) for f, e in zip(folders, scores.error)]
    sim = scores.raw if raw else scores.similarity
    sub = pd.DataFrame({"pair_id": [f.pair_id for f in folders], "similarity": sim})
    side = pd.DataFrame({"pair_id": sub.pair_id, "similarity": sim, scores.raw_column: scores.raw, "face_a": scores.face_a, "face_b": scores.face_b, "error": errors})
    atomic_write_text(out, sub.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(report, side.to_csv(index=False, float_format="%.6f"))
    _face_summary(scores)
    console.print(f"[green]{len(sub)} pairs[/] -> {out} (side report: {report})", highlight=False)


@app.command("score-pairs")
@engine_options()
def score_pairs_cmd(
    pairs_csv: Path = typer.Argument(..., help="CSV with path_a,path_b (relative to --root) and any other columns"),
    root: Path = typer.Option(Path("."), "--root", help="folder the paths are relative to"),
    out: Path = typer.Option(Path("scores.csv"), "--out", help="input columns + similarity, face_a, face_b, error"),
    column_a: str = typer.Option("path_a", "--column-a"),
    column_b: str = typer.Option("path_b", "--column-b"),
    raw: bool = _raw,
    engine: EngineOptions = None,
):
    """Score every row of a pairs CSV; the output keeps every input column and adds the scores
    (``similarity`` on the calibrated scale, ``cosine`` raw)."""
    import pandas as pd

    from ..data import atomic_write_text
    from ..distributed.ranks import engine_cache_dir, main_first, torchrun_ranks
    from .scoring import score_pairs

    from ..data import PathEscapeError, resolve_inside

    if not root.is_dir():
        fail(f"{root}: --root is not a folder")
    from ..cli_options import settle_dataset

    settle_dataset(root)  # --root may be a dataset with an interrupted curate batch
    try:
        df = pd.read_csv(pairs_csv, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as e:
        fail(f"{pairs_csv}: cannot read as CSV ({e})")
    for col in (column_a, column_b):
        if col not in df.columns:
            fail(f"{pairs_csv}: no column {col!r} (columns: {', '.join(df.columns)})")

    def side(v: str, row: int, col: str):
        v = str(v).strip()
        if not v:
            return None
        try:
            return resolve_inside(root, v, "path")
        except PathEscapeError as e:
            fail(f"{pairs_csv}: row {row + 2}, column {col}: {e}")

    sides = [(side(a, i, column_a), side(b, i, column_b)) for i, (a, b) in enumerate(zip(df[column_a], df[column_b]))]
    _writable(out)
    from .scoring import RAW_COLUMNS

    added = [c for c in ("similarity", *RAW_COLUMNS, "face_a", "face_b", "error") if c in df.columns]
    if added:
        console.print(f"[yellow]{pairs_csv}: existing column(s) {', '.join(added)} are replaced by the new scores")
    with torchrun_ranks(engine.device) as ranks:  # under torchrun: each rank embeds a slice, rank 0 writes
        with main_first(ranks):
            m = _load(engine, ranks.device)
        eng = engine.face_engine(m.encoder, ranks.device, engine_cache_dir(ranks))
        scores = score_pairs(eng, sides, batch_size=engine.batch_size, progress=engine.progress)
    if scores is None:  # a rank other than 0
        return
    df = df.drop(columns=[c for c in RAW_COLUMNS if c in df.columns])
    df["similarity"] = scores.raw if raw else scores.similarity
    df[scores.raw_column] = scores.raw
    df["face_a"], df["face_b"], df["error"] = scores.face_a, scores.face_b, scores.error
    atomic_write_text(out, df.to_csv(index=False, float_format="%.6f"))
    _face_summary(scores)
    console.print(f"[green]{len(df)} pairs[/] -> {out}", highlight=False)


@app.command("evaluate")
def evaluate_cmd(
    scores_csv: Path = typer.Argument(..., help="scores CSV (e.g. from score-pairs)"),
    label_column: str = typer.Option("expected_accept", "--label-column", help="1/true = the pair should be accepted"),
    score_column: str = typer.Option("similarity", "--score-column"),
    group_column: Optional[str] = typer.Option("group", "--group-column", help="per-group acceptance at the EER threshold (used when present); e.g. backend = per generator family"),
    kind_column: Optional[str] = typer.Option("kind", "--kind-column", help="genuine / impostor rows (real pairs) set the genuine-pair EER threshold each group is also judged at (used when present)"),
    ci_column: Optional[str] = typer.Option(None, "--ci-column", help=(
        "95 percent intervals by resampling this column's values with replacement, e.g. identity "
        "(train pairs output): a person's pairs are not independent"
    )),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="resamples behind the --ci-column intervals"),
    unscorable: str = typer.Option("refuse", "--unscorable", help=(
        "rows whose 'error' column is set (score-pairs could not use a side; their similarity is 0.0): "
        "refuse (stop and say so) | drop (leave them out) | reject (count them as rejected pairs, as a submission would)"
    )),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="where the JSON and ROC PNG go (default: beside SCORES.csv)"),
    raw: bool = typer.Option(False, "--raw", help="evaluate the raw score (the `cosine` or `neg_euclidean` column of score-pairs, named after the model's metric) instead of --score-column"),
):
    """EER (Kryptonite baseline formula), ROC AUC, TAR@FAR, per-group acceptance (with 95% intervals
    by --ci-column); JSON + ROC PNG."""
    from ..data import check_writable
    from .evaluate import FARS, evaluate_csv, plot_roc, write_json

    if raw:
        from .scoring import raw_score_column

        score_column = raw_score_column(scores_csv)
    ev = evaluate_csv(scores_csv, label_column, score_column, group_column, kind_column, ci_column, bootstrap, unscorable)
    if ev.unscorable["rows"]:
        how = "left out" if unscorable == "drop" else "counted as rejected pairs (similarity 0.0)"
        console.print(f"[yellow]{ev.unscorable['rows']} row(s) with an error: {how} (--unscorable {unscorable})", highlight=False)
    out_dir = out_dir or scores_csv.parent
    check_writable(out_dir, "output folder", is_dir=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    js = write_json(ev, out_dir / f"{scores_csv.stem}.eval.json", {"scores_csv": str(scores_csv), "unscorable": ev.unscorable})
    png = plot_roc(ev, out_dir / f"{scores_csv.stem}.roc.png", title=scores_csv.name)

    def ci(v) -> str:
        return f" [{v[0]:.2%}, {v[1]:.2%}]" if v else ""

    rows = [
        ["pairs (accept / reject)", f"{ev.n} ({ev.positives} / {ev.negatives})"],
        ["EER", f"{ev.eer:.4f} ({ev.eer:.2%}){ci(ev.eer_ci)}"],
        ["EER threshold", f"{ev.threshold:.4f}"],
        ["ROC AUC", f"{ev.auc:.4f}"],
    ]
    rows += [[f"TAR @ FAR {f:g}", ev.tar_text(f)] for f in FARS]
    if ev.genuine_eer is not None:
        rows += [["genuine-pair EER (real pairs only)", f"{ev.genuine_eer:.4f} ({ev.genuine_eer:.2%}){ci(ev.genuine_eer_ci)}"], ["genuine-pair EER threshold", f"{ev.genuine_threshold:.4f}"]]
    title = f"evaluate {scores_csv.name}" + (f" (95% intervals: {ev.ci['clusters']} {ev.ci['column']} values resampled {ev.ci['resamples']} times)" if ev.ci else "")
    console.print(summary_table(title, rows, ["metric", "value"]))
    if ev.groups:
        real = ev.genuine_threshold is not None
        grows = [[g.group, g.n, g.positives, f"{g.acceptance_rate:.2%}{ci(g.acceptance_ci)}"] + ([f"{g.attack_acceptance:.2%}{ci(g.attack_acceptance_ci)}"] if real else []) for g in ev.groups]
        cols = ["group", "pairs", "expected accept", "accepted"] + ([f"accepted @ genuine-pair thr. {ev.genuine_threshold:.4f}"] if real else [])
        console.print(summary_table(f"acceptance at the EER threshold {ev.threshold:.4f}", grows, cols))
    console.print(f"-> {js}\n-> {png}", highlight=False)


@app.command("compare")
@engine_options(("model", "runtime", "device", "weights", "models_dir", "detector", "cache", "margin"))
def compare_cmd(
    photos: List[Path] = typer.Argument(..., help="2 to 10 photos"),
    out: Path = typer.Option(Path("compare.png"), "--out", help="PNG: aligned faces along the axes, similarities in the cells"),
    threshold: Optional[float] = _threshold,
    raw: bool = _raw,
    engine: EngineOptions = None,
):
    """Similarity matrix of 2-10 photos, a verdict per pair at the model's threshold, and a PNG."""
    from .compare import MAX_PHOTOS, MIN_PHOTOS, compare_photos, matrix_rows, plot_comparison

    if not MIN_PHOTOS <= len(photos) <= MAX_PHOTOS:
        fail(f"compare takes {MIN_PHOTOS} to {MAX_PHOTOS} photos, got {len(photos)}")
    for p in photos:  # before any model loads: a missing photo is an error, not an "unreadable" cell
        if not p.is_file():
            fail(f"{p}: no such photo" if not p.exists() else f"{p}: not a file")
    check_range("--threshold", threshold, -1.0, 1.0)
    _writable(out)
    m = _load(engine, engine.device, threshold)
    eng = engine.face_engine(m.encoder)
    thr = (m.threshold if threshold is not None else m.raw_threshold) if raw else m.threshold
    say_operating_point(m.card, thr, raw=raw)
    c = compare_photos(eng, photos, thr, raw=raw)
    for p, r in zip(c.paths, c.records):
        if not r.ok:
            console.print(f"[red]{p}: {r.error}", highlight=False)
        elif r.fallback:
            console.print(f"[yellow]{p}: no face detected; used the {r.fallback.replace('_', ' ')} as the face", highlight=False)
    scale = m.card.raw_score_name if raw else "similarity"
    console.print(summary_table(f"{scale} (threshold {thr:.3f}, {m.threshold_source})", matrix_rows(c), ["photo", *c.labels]))
    vrows = [[c.labels[i], c.labels[j], "n/a" if v == "unreadable" else f"{s:.3f}", v] for i, j, s, v in c.verdicts()]
    console.print(summary_table("verdicts", vrows, ["photo", "photo", "similarity", "verdict"]))
    plot_comparison(c, out, title=m.describe())
    console.print(f"-> {out}", highlight=False)


@app.command("export-onnx")
@engine_options(("model", "weights", "models_dir"))
def export_onnx_cmd(
    out: Path = typer.Option(Path("model.onnx"), "--out"),
    opset: int = typer.Option(17, "--opset", help="ONNX opset [>= 11 and <= 21]"),
    engine: EngineOptions = None,
):
    """ONNX with dynamic batch: uint8 RGB aligned crops in, embeddings out (L2-normalised; the raw
    descriptor for a Euclidean card such as stock dlib_resnet), normalisation inside the graph, metric
    and calibration in the metadata; checked against torch."""
    from .onnx_export import PARITY_TOLERANCE, export_onnx

    check_range("--opset", opset, 11, 21)
    _writable(out)
    engine.runtime = "torch"
    m = _load(engine, "cpu")
    if m.runtime == "onnx":
        fail(f"{engine.model} already runs on ONNX Runtime; nothing to export")
    rep = export_onnx(m.encoder, out, threshold=m.threshold, source=m.name, opset=opset)
    rows = [[k.removeprefix("fakeproof."), v] for k, v in rep.metadata.items()]
    rows += [["file size", f"{rep.size_mb:.1f} MB"], ["ONNX Runtime vs torch, max |diff|", f"{rep.max_abs_diff:.2e} (limit {PARITY_TOLERANCE:g})"]]
    console.print(summary_table(f"exported -> {out}", rows, ["field", "value"]))


@app.command("benchmark")
@engine_options(("model", "device", "workers", "runtime"))
def benchmark_cmd(
    images: Path = typer.Argument(..., help="folder of photos (searched recursively) to run the pipeline on"),
    limit: int = typer.Option(64, "--limit", help="photos to use"),
    sizes: str = typer.Option("", "--sizes", help="also resize the photos: longer side in pixels, e.g. 250,600,1600 (default: as given)"),
    repeats: int = typer.Option(3, "--repeats", help="interleaved rounds (median and min-max reported)"),
    peer: bool = typer.Option(True, "--peer/--no-peer", help="time face_recognition (HOG + dlib ResNet) on the same photos, when installed"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON (no tables, no progress bar)"),
    engine: EngineOptions = None,
):
    """Throughput on your photos, against face_recognition in the same run: the full pipeline (both
    runtimes), aligned-crop embedding (batch 1 / 32) and where the time goes, over interleaved rounds."""
    from .threads import configure_cpu_threads

    check_range("--limit", limit, 2)
    from ..cli_options import check_device

    check_device(engine.device)
    check_range("--repeats", repeats, 1)
    try:
        size_list = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        fail(f"--sizes: expected pixel sizes like 250,600,1600, not {sizes!r}")
    if any(not 16 <= x <= 8192 for x in size_list):
        fail(f"--sizes: each size must be 16..8192 pixels, got {sizes!r}")
    if not images.is_dir():
        fail(f"{images}: not a folder")
    configure_cpu_threads()
    from .throughput import IMAGE_GLOB_EXTS, check_photos, print_report, run_benchmark

    paths = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_GLOB_EXTS)[:limit]
    if len(paths) < 2:
        fail(f"{images}: fewer than 2 photos found")
    check_photos(paths)  # before any model is loaded
    rep = run_benchmark(paths, model=engine.model, device=engine.device, workers=engine.workers, runtime=engine.runtime, sizes=size_list, repeats=repeats, peer=peer, progress=not as_json)
    if as_json:
        from ..data.atomic import json_text

        print(json_text(rep.to_json(), default=str).rstrip("\n"))
    else:
        print_report(rep)
