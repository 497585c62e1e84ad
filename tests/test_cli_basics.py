"""The CLI as a new user meets it: --version, `models list` in a pipe / a narrow terminal / --json,
no `<bool>` after on/off flags (`infer benchmark` runs in test_infer_benchmark.py)."""
from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from fakeproof import __version__
from fakeproof.cli import app
from fakeproof.ui import SummaryTable

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"fakeproof {__version__}"


def test_models_list_piped_keeps_every_name_on_one_line():
    r = runner.invoke(app, ["models", "list"])  # CliRunner's stdout is not a terminal: plain layout
    assert r.exit_code == 0, r.output
    rows = [line for line in r.output.splitlines() if re.search(r"\bfacenet\b", line)]
    assert rows and rows[0].split()[0] == "facenet"
    assert "…" not in r.output and "┃" not in r.output
    assert any(line.split()[0] == "adaface_ir101" for line in r.output.splitlines() if line.strip())


def test_models_list_json():
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    names = {row["name"] for row in rows}
    assert {"facenet", "adaface_ir18"} <= names
    assert {"input", "present", "where_to_get_it"} <= set(rows[0])


def test_models_prepare_and_the_old_option_name():
    r = runner.invoke(app, ["models", "prepare", "--model", "facenet"])
    assert r.exit_code == 0, r.output
    assert "ready" in r.output and "facenet (160x160, dim 512)" in r.output
    r = runner.invoke(app, ["models", "prepare", "--encoder", "facenet"])  # hidden, deprecated spelling
    assert r.exit_code == 0 and "ready" in r.output


def test_tables_in_a_narrow_terminal_become_records():
    from rich.console import Console

    t = SummaryTable("models", [["facenet_with_a_long_name", "x" * 60, "y" * 40]], ["name", "expected at", "source"])
    con = Console(width=80, force_terminal=True, record=True)
    con.print(t)
    text = con.export_text()
    assert "name: facenet_with_a_long_name" in text and "x" * 60 in text
    wide = Console(width=200, force_terminal=True, record=True)
    wide.print(t)
    assert "┃" in wide.export_text() or "│" in wide.export_text()


def test_flags_show_no_bool_metavar():
    for argv in (["train", "run", "--help"], ["infer", "score-pairs", "--help"], ["--help"]):
        r = runner.invoke(app, argv, env={"COLUMNS": "200"})
        assert r.exit_code == 0, r.output
        assert "<bool>" not in r.output, argv
    assert "--no-flip" in runner.invoke(app, ["train", "run", "--help"], env={"COLUMNS": "200"}).output
