"""Terminal output shared by every command: one console, one progress bar style, and tables that
read well anywhere.

A table printed through :func:`summary_table` picks its form when it is drawn: a rich table on a
terminal wide enough for it, one block of ``column: value`` lines per row on a narrower terminal,
and plain aligned text (nothing truncated, one line per row, so ``grep`` finds a row) when stdout is
a pipe or a file. :func:`rows_as_json` is the ``--json`` form of a listing.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text



class _Console(Console):
    """Into a pipe or a file, lines are written whole (no wrapping, no cropping at 80 columns), so
    ``grep`` and ``cut`` see one record per line."""

    def print(self, *objects, soft_wrap=None, **kw):  # noqa: A003 - rich's name
        if soft_wrap is None and not self.is_terminal:
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **kw)


console = _Console(stderr=False)
err_console = _Console(stderr=True)  # notes and warnings that must not mix into piped results


def _hide_flag_metavars() -> None:
    """Typer's rich help prints a ``<bool>`` type after on/off flags (``--flip / --no-flip <bool>``),
    which reads as if the flag took a value; click's plain help does not. Show no type for flags."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover
        return
    if not hasattr(TyperOption, "display_type_rich"):  # another typer version: keep its own help
        return
    if getattr(TyperOption.display_type_rich, "_fakeproof", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._fakeproof = True
    TyperOption.display_type_rich = display_type_rich


_hide_flag_metavars()


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
        yield lambda n=1, rate=None, total=None: None
        return
    with make_progress() as prog:
        task = prog.add_task(description, total=total, rate="")

        def advance(n: int = 1, rate: str | None = None, total: int | None = None) -> None:
            """``total``: a new end (e.g. the step a time budget will stop at, as it becomes known)."""
            prog.update(task, advance=n, **({"rate": rate} if rate is not None else {}), **({"total": total} if total is not None else {}))

        yield advance


class SummaryTable:
    """A titled table of rows; drawn as a rich table, as records or as plain text (see module doc)."""

    def __init__(self, title: str, rows: Sequence[Sequence[object]], columns: Sequence[str]):
        self.title = title
        self.columns = [str(c) for c in columns]
        self.rows = [[_fmt(v) for v in r] for r in rows]
        # what the rich table shows (cells may carry rich markup such as "[green]0.98[/]"): the
        # plain and record forms print the same text, without the markup
        self.text_rows = [[_without_markup(v) for v in r] for r in self.rows]

    def rich_table(self) -> Table:
        t = Table(title=self.title, show_lines=False, header_style="bold cyan")
        for i, c in enumerate(self.columns):
            t.add_column(c, no_wrap=i == 0)  # the first column names the row: never cut
        for r in self.rows:
            t.add_row(*r)
        return t

    def natural_width(self) -> int:
        """Columns a rich table needs to show every cell on one line (borders and padding included)."""
        widths = [max([len(c)] + [max(map(len, r[i].split("\n"))) for r in self.text_rows if i < len(r)]) for i, c in enumerate(self.columns)]
        return sum(widths) + 3 * len(widths) + 1

    def plain_lines(self) -> list[str]:
        """One line per row, columns padded to the widest cell, nothing cut."""
        header = [c or " " for c in self.columns]
        widths = [max([len(header[i])] + [len(r[i]) for r in self.text_rows if i < len(r)]) for i in range(len(header))]
        lines = [self.title] if self.title else []
        for cells in [header, *self.text_rows]:
            lines.append("  ".join(_one_line(c).ljust(w) for c, w in zip(cells, widths)).rstrip())
        return lines

    def record_lines(self) -> list[str]:
        """One block per row: ``column: value`` lines (for a terminal too narrow for the table)."""
        lines = [self.title] if self.title else []
        label_w = max((len(c) for c in self.columns), default=0)
        for r in self.text_rows:
            lines.append("")
            for c, v in zip(self.columns, r):
                lines.append(f"{(c or '-').rjust(label_w)}: {_one_line(v)}")
        return lines

    def __rich_console__(self, con: Console, options: ConsoleOptions) -> RenderResult:
        if not con.is_terminal:
            for line in self.plain_lines():
                yield Text(line, no_wrap=True, overflow="ignore")
            return
        if self.natural_width() <= options.max_width:
            yield self.rich_table()
        else:
            yield Text("\n".join(self.record_lines()))


def summary_table(title: str, rows: Sequence[Sequence[object]], columns: Sequence[str]) -> SummaryTable:
    return SummaryTable(title, rows, columns)


def rows_as_json(rows: Sequence[Sequence[object]], columns: Sequence[str]) -> str:
    """The ``--json`` form of a listing: a list of ``{column: value}`` objects."""
    keys = [str(c).strip().lower().replace(" ", "_") for c in columns]
    from .data.atomic import json_text  # NaN -> null: strict JSON

    return json_text([dict(zip(keys, r)) for r in rows], default=str).rstrip("\n")


def _one_line(s: str) -> str:
    return " ".join(str(s).split("\n"))


def _without_markup(cell: str) -> str:
    """The text rich would show for ``cell`` (its markup removed); the cell itself when it is not
    valid markup."""
    from rich.errors import MarkupError

    try:
        return Text.from_markup(cell).plain
    except MarkupError:
        return cell


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def say_operating_point(card, threshold: float, raw: bool = False) -> None:
    """Print what a threshold (on the similarity scale; ``raw=True``: a raw cosine) means for the
    model of ``card`` (:class:`fakeproof.engine.cards.ModelCard`), on stderr, in yellow with a
    warning when it is far from the genuine/impostor boundary."""
    from .engine.cards import describe_threshold

    line, warn = describe_threshold(card, threshold, raw=raw)
    err_console.print(f"[yellow]warning:[/] {line}" if warn else line, highlight=False)
