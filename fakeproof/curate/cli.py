"""``fakeproof curate``: clean / review / apply."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("clean")
def clean(
    dataset: Path = typer.Argument(..., help="Dataset root: images/<identity>/<file> + meta.json"),
    threshold: float = typer.Option(0.5, "--threshold", help="Cosine similarity for an edge between two photos."),
    encoder: str = typer.Option("facenet", "--encoder"),
    out: Optional[Path] = typer.Option(None, "--out"),
):
    """Flag photos that do not belong to their identity (graph of cosine similarities)."""
    raise typer.Exit(2)
