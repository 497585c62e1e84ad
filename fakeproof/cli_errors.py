"""How every ``fakeproof`` command reports an error: one line naming the file and the reason, no traceback.

Commands raise :class:`fakeproof.errors.FakeproofError` (exit codes are listed there); :func:`report`
is the one handler, run by the top-level command group (:mod:`fakeproof.cli`) and by the demo around
every command. An exception that is neither a ``FakeproofError`` nor an ``OSError`` from the system is
a bug: its traceback is printed with a "please report it" line.
"""
from __future__ import annotations

import math
import sys
import traceback
from typing import NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from .errors import EXIT_BUG, EXIT_ERROR, EXIT_USAGE, FakeproofError

def one_line(message) -> str:
    """``message`` on one line (whatever an exception said), markup-free."""
    return " ".join(str(message).split())


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Stop the command with ``error: <message>`` (one line) and exit status ``code``."""
    raise FakeproofError(one_line(message), exit_code=code)


def os_error_text(e: OSError) -> str:
    """``FILE: reason`` for an error from the system; the message alone for one raised with text."""
    if e.errno is None:  # raised by fakeproof with a message (FileExistsError("X: already exists"))
        return str(e)
    names = [n for n in (e.filename, e.filename2) if n]
    where = " -> ".join(str(n) for n in names) if names else "(file not named by the system)"
    return f"{where}: {e.strerror or e}"


def report(exc: BaseException) -> int:
    """Print what ``exc`` means for the user and return the exit status (the one error handler)."""
    from rich.markup import escape

    from .ui import console, err_console

    if isinstance(exc, FakeproofError):
        console.print(f"[red]error:[/red] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    if isinstance(exc, OSError):
        console.print(f"[red]error:[/red] {escape(one_line(os_error_text(exc)))}", highlight=False, soft_wrap=True)
        return EXIT_ERROR
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    err_console.print(
        f"[red]error:[/red] this is a bug in fakeproof ({escape(type(exc).__name__)}: {escape(one_line(exc))[:200]}); "
        f"please report it, with the traceback above, as an issue of the fakeproof project",
        highlight=False, soft_wrap=True,
    )
    return EXIT_BUG


class HandledGroup(TyperGroup):
    """A command group whose commands' errors go through :func:`report` (the top-level group and each
    stage's group use it, so ``fakeproof ...``, ``python -m fakeproof.train.cli ...`` under torchrun
    and the demo's in-process commands all end the same way)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException, KeyboardInterrupt):  # typer's own ends and usage errors
            raise
        except Exception as e:  # noqa: BLE001 - the one handler
            raise typer.Exit(report(e)) from None


def check_range(name: str, value, lo=None, hi=None, *, finite: bool = True, lo_open: bool = False) -> None:
    """Fail with ``EXIT_USAGE`` unless ``lo <= value <= hi`` (``lo < value`` with ``lo_open``) and finite.

    ``None`` values (an option left at its default of "not set") pass."""
    if value is None:
        return
    if isinstance(value, float) and finite and not math.isfinite(value):
        fail(f"{name} must be a finite number, got {value}", EXIT_USAGE)
    low_bad = lo is not None and (value <= lo if lo_open else value < lo)
    if low_bad or (hi is not None and value > hi):
        lo_txt = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
        hi_txt = "" if hi is None else f"<= {hi:g}"
        rng = " and ".join(t for t in (lo_txt, hi_txt) if t)
        fail(f"{name} must be {rng}, got {value:g}", EXIT_USAGE)
