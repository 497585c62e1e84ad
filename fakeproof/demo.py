"""``fakeproof demo``: the whole pipeline end to end on data the project makes itself."""
from __future__ import annotations

from pathlib import Path

import typer


def demo_command(out: Path = typer.Option(Path("demo_out"), "--out", help="Where the demo writes everything.")):
    """Run the pipeline end to end."""
    raise typer.Exit(2)
