"""Every command of the ``fakeproof`` CLI runs here (enumerated from the Typer app, so a new
command without an entry in :data:`RUNS` fails): its ``--help`` renders, and one minimal real
invocation's output is checked. Where a whole run is cheap (``models``, ``train pairs``, scoring
and evaluating a few pairs, ``compare``), the command does its real work on the shared sample
dataset; where it is not (training, curation, generation, the demo: their own test files run
them in full), the invocation is one whose input is wrong, and the command must say which file
and why in one line, before any expensive work, without a traceback."""
from __future__ import annotations

import csv
import inspect
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fakeproof.cli import app


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):  # a group (typer ships its own click)
            out += _commands(cmd, prefix + (name,))
        else:
            out.append(prefix + (name,))
    return out


COMMANDS = _commands(typer.main.get_command(app))


def invoke(*argv) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in argv], env={"COLUMNS": "200"})
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception  # a crash is a failure with its own traceback, not an exit code
    return r.exit_code, r.output


def one_line_error(code: int, out: str, *names: str) -> None:
    """A wrong input is refused with a non-zero exit and one ``error:`` line naming it."""
    assert code != 0, out
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and all(n in lines[0] for n in names), out
    assert "Traceback" not in out


@pytest.fixture(scope="module")
def pairs_with_paths(sample_dataset, tmp_path_factory) -> Path:
    """Genuine and impostor pairs of the sample dataset as ``infer score-pairs`` reads them."""
    people = sorted((sample_dataset / "images").iterdir())
    rows = []
    for i, d in enumerate(people):
        a, b = sorted(d.iterdir())[:2]
        other = sorted(people[(i + 1) % len(people)].iterdir())[0]
        rows += [(a, b, 1, "genuine"), (a, other, 0, "impostor")]
    path = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path_a", "path_b", "label", "kind"])
        w.writerows((x.relative_to(sample_dataset).as_posix(), y.relative_to(sample_dataset).as_posix(), lab, k) for x, y, lab, k in rows)
    return path


@pytest.fixture(scope="module")
def scored(pairs_with_paths, sample_dataset, tmp_path_factory) -> tuple[int, str, Path]:
    out = tmp_path_factory.mktemp("scored") / "scores.csv"
    code, text = invoke("infer", "score-pairs", pairs_with_paths, "--root", sample_dataset, "--model", "facenet", "--device", "cpu", "--out", out)
    return code, text, out


def run_models_list(tmp_path, **_):
    code, out = invoke("models", "list", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert "facenet" in {r["name"] for r in rows} and all(r["present"].lower() in ("yes", "no") for r in rows)


def run_models_prepare(tmp_path, **_):
    code, out = invoke("models", "prepare", "--model", "facenet")
    assert code == 0 and "ready: facenet" in out, out


def run_train_pairs(tmp_path, sample_dataset, **_):
    code, out = invoke("train", "pairs", sample_dataset, "--out", tmp_path / "pairs.csv")
    assert code == 0 and "pairs ->" in out, out
    with (tmp_path / "pairs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["kind"] for r in rows} == {"genuine", "impostor"}  # the sample has no fakes


def run_score_pairs(tmp_path, scored, **_):
    code, out, path = scored
    assert code == 0, out
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and all(r["similarity"] for r in rows)
    gen = [float(r["similarity"]) for r in rows if r["kind"] == "genuine"]
    imp = [float(r["similarity"]) for r in rows if r["kind"] == "impostor"]
    assert min(gen) > max(imp)  # variations of one photo against other people


def run_evaluate(tmp_path, scored, **_):
    code, out = invoke("infer", "evaluate", scored[2], "--label-column", "label", "--out-dir", tmp_path / "eval")
    assert code == 0 and "EER" in out, out


def run_compare(tmp_path, group_photo, portrait_photo, **_):
    code, out = invoke("infer", "compare", group_photo, portrait_photo, "--model", "facenet", "--device", "cpu", "--out", tmp_path / "c.png")
    assert code == 0 and "similarity (threshold 0.500" in out and "verdicts" in out and (tmp_path / "c.png").stat().st_size > 0, out


def run_curate_apply(tmp_path, dataset_copy, **_):
    one_line_error(*invoke("curate", "apply", dataset_copy, "--undo"), "no applied batch to undo")


def run_demo_refuses_a_file(tmp_path, **_):
    (tmp_path / "a_file").write_text("x")
    one_line_error(*invoke("demo", "--out", tmp_path / "a_file"), str(tmp_path / "a_file"), "folder")
    assert (tmp_path / "a_file").read_text() == "x"


def _missing(*argv_before, after=()):
    def run(tmp_path, **_):
        missing = tmp_path / "missing"
        one_line_error(*invoke(*argv_before, missing, *after), str(missing))

    return run


RUNS = {
    ("models", "list"): run_models_list,
    ("models", "prepare"): run_models_prepare,
    ("train", "pairs"): run_train_pairs,
    ("infer", "score-pairs"): run_score_pairs,
    ("infer", "evaluate"): run_evaluate,
    ("infer", "compare"): run_compare,
    ("curate", "apply"): run_curate_apply,
    ("curate", "clean"): _missing("curate", "clean"),
    ("curate", "review"): _missing("curate", "review", after=("--no-launch",)),
    ("generate", "celeba"): lambda tmp_path, **_: one_line_error(
        *invoke("generate", "celeba", tmp_path, "--out", tmp_path / "out"), str(tmp_path), "identity_CelebA.txt"
    ),
    ("generate", "check"): _missing("generate", "check"),
    ("generate", "deepfakes"): _missing("generate", "deepfakes"),
    ("infer", "benchmark"): _missing("infer", "benchmark"),
    ("infer", "export-onnx"): _missing("infer", "export-onnx", "--model"),
    ("infer", "pairs"): _missing("infer", "pairs"),
    ("infer", "score-folders"): _missing("infer", "score-folders"),
    ("train", "run"): lambda tmp_path, **_: one_line_error(
        *invoke("train", "run", tmp_path / "missing", "--out", tmp_path / "run"), str(tmp_path / "missing")
    ),
    ("demo",): run_demo_refuses_a_file,
}


def test_commands_are_enumerated():
    assert ("infer", "benchmark") in COMMANDS and ("models", "list") in COMMANDS and ("demo",) in COMMANDS


def test_every_command_has_a_run_here():
    assert sorted(set(COMMANDS) - set(RUNS)) == [], "add a minimal real invocation of the new command(s) to RUNS"
    assert sorted(set(RUNS) - set(COMMANDS)) == []


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_runs(path, request, tmp_path):
    run = RUNS[path]
    params = inspect.signature(run).parameters.values()
    wanted = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "tmp_path"]
    run(tmp_path=tmp_path, **{n: request.getfixturevalue(n) for n in wanted})


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path):
    r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output and "<bool>" not in r.output
