"""How every ``fakeproof`` command reports an error: one line naming the file and the reason, no traceback.

Exit codes (the same for every stage):

===  =====================  ===============================================================
0    ok
1    ``EXIT_ERROR``         an input that cannot be used: a missing or invalid file or folder, a
                            meta.json or CSV that fails validation, a path that leaves its root,
                            an output location that cannot be written, an interrupted batch that
                            cannot be recovered
2    ``EXIT_USAGE``         an option value out of its range (click/typer use 2 for their own
                            usage errors too)
3    ``EXIT_MISSING``       model weights a command needs are not installed
4    ``EXIT_STALE``         curation results no longer match the dataset: re-run ``curate clean``
===  =====================  ===============================================================
"""
from __future__ import annotations

import math
from typing import NoReturn

import typer

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_STALE = 4


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``error: <message>`` (one line, markup-free) and exit with ``code``."""
    from rich.markup import escape

    from .ui import console

    text = " ".join(str(message).strip().strip("'\"").split())  # one line, whatever the exception said
    console.print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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
