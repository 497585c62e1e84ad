"""``fakeproof train``: pairs / run."""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("run")
def run(dataset: Path = typer.Argument(...), out: Path = typer.Option(..., "--out")):
    """Fine-tune the encoder with the adaptive-margin loss."""
    raise typer.Exit(2)
