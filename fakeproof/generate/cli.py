"""``fakeproof generate``: celeba / deepfakes / check."""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("deepfakes")
def deepfakes(
    dataset: Path = typer.Argument(...),
    backends: str = typer.Option("available", "--backends", help="all | available | NAME[,NAME]"),
):
    """Make deepfakes that impersonate each identity."""
    raise typer.Exit(2)
