"""Terminal output shared by every command: one console, one progress bar style, summary tables."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=False)
T = TypeVar("T")


def make_progress(transient: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


@contextmanager
def progress_task(description: str, total: int | None, enabled: bool = True):
    """Yields ``advance(n=1, rate=None)``; a no-op when disabled."""
    if not enabled:
        yield lambda n=1, rate=None: None
        return
    with make_progress() as prog:
        task = prog.add_task(description, total=total, rate="")

        def advance(n: int = 1, rate: str | None = None) -> None:
            prog.update(task, advance=n, **({"rate": rate} if rate is not None else {}))

        yield advance


def track(items: Sequence[T] | Iterable[T], description: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    with progress_task(description, total, enabled) as advance:
        for it in items:
            yield it
            advance()


def summary_table(title: str, rows: Sequence[Sequence[object]], columns: Sequence[str]) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold cyan")
    for c in columns:
        t.add_column(str(c))
    for r in rows:
        t.add_row(*[_fmt(v) for v in r])
    return t


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
