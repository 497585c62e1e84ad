"""Kill points for the fault-injection tests: where a ``kill -9`` is most likely to hurt.

Code that moves or writes user files calls :func:`kill_point` between its steps. It does nothing
unless ``FAKEPROOF_KILL_AT=N`` is set, in which case the process sends itself SIGKILL at the N-th
kill point it reaches (N=0: never, but the points are still counted, see :func:`reached`). The
tests draw N at random (seeded) from the points a clean run reaches, kill there, then check that
the next command recovers. Reading one environment variable per point costs nothing measurable.
"""
from __future__ import annotations

import os
import signal

ENV = "FAKEPROOF_KILL_AT"
_reached = 0
_names: list[str] = []


def kill_point(name: str) -> None:
    global _reached
    at = os.environ.get(ENV)
    if not at:
        return
    _reached += 1
    if len(_names) < 100_000:
        _names.append(name)
    if _reached == int(at):
        os.kill(os.getpid(), signal.SIGKILL)


def reached() -> int:
    """How many kill points this process passed since :func:`reset` (only counted while ENV is set)."""
    return _reached


def names() -> list[str]:
    return list(_names)


def reset() -> None:
    global _reached
    _reached = 0
    _names.clear()
