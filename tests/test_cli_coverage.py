"""Every command of the ``fakeproof`` CLI is run by some test (enumerated from the Typer app, so a
new command without a test fails here), and every command's ``--help`` renders."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fakeproof.cli import app

TESTS = Path(__file__).parent
STAGE_MODULES = {"models": "fakeproof.models_cli"}  # stage -> module whose `app` tests may invoke directly


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):  # a group (typer ships its own click)
            out += _commands(cmd, prefix + (name,))
        else:
            out.append(prefix + (name,))
    return out


COMMANDS = _commands(typer.main.get_command(app))


def _invocations(path: tuple[str, ...]) -> list[re.Pattern]:
    """Ways a test file runs ``fakeproof *path``: the top-level app, the stage's own app, torchrun."""
    q = [re.escape(f'"{p}"') for p in path]
    pats = [re.compile(r"invoke\(\s*app,\s*\[\s*" + r",\s*".join(q))]
    if len(path) == 2:
        stage, cmd = path
        module = STAGE_MODULES.get(stage, f"fakeproof.{stage}.cli")
        pats.append(re.compile(re.escape(f"from {module} import app") + r"[\s\S]*invoke\(\s*app,\s*\[\s*" + q[1]))
        pats.append(re.compile(re.escape(f'"{module}"') + r",\s*" + q[1]))  # python -m / torchrun
    return pats


def test_commands_are_enumerated():
    assert ("infer", "benchmark") in COMMANDS and ("models", "list") in COMMANDS and ("demo",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_is_run_by_a_test(path):
    sources = {p.name: p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name}
    pats = _invocations(path)
    runners = [name for name, text in sources.items() if any(p.search(text) for p in pats)]
    assert runners, f"no test runs `fakeproof {' '.join(path)}`: add one (CliRunner().invoke(app, {list(path)!r} ...))"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path):
    r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output and "<bool>" not in r.output
