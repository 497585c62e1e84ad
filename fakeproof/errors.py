"""One error type for everything a user can cause: :class:`FakeproofError` and its exit code.

A command raises a :class:`FakeproofError` (or a subclass) for an input that cannot be used; the one
handler in :mod:`fakeproof.cli` prints ``error: <message>`` on one line and exits with the error's
``exit_code``. Any other exception is a bug: the handler prints its traceback and a short "please
report it" line (exit :data:`EXIT_BUG`). ``OSError`` from the system (disk full, permission denied)
is reported like a :class:`FakeproofError`, naming the file.

Exit codes (the same for every stage):

===  =====================  ===============================================================
0    ok
1    ``EXIT_ERROR``         an input that cannot be used: a missing or invalid file or folder, a
                            meta.json or CSV that fails validation, a path that leaves its root,
                            an output location that cannot be written (or a full disk), an
                            interrupted batch that cannot be recovered
2    ``EXIT_USAGE``         an option value out of its range (click/typer use 2 for their own
                            usage errors too)
3    ``EXIT_MISSING``       model weights a command needs are not installed
4    ``EXIT_STALE``         curation results no longer match the dataset: re-run ``curate clean``
5    ``EXIT_DEVICE``        the requested device (``--device cuda``) is not available
70   ``EXIT_BUG``           an unexpected exception: a bug in fakeproof (traceback printed)
===  =====================  ===============================================================

Subclasses keep a built-in base (``ValueError``, ``FileNotFoundError``...) where code catches the
built-in one; ``str(err)`` is always the plain message (no ``KeyError`` quoting).
"""
from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_STALE = 4
EXIT_DEVICE = 5
EXIT_BUG = 70


class FakeproofError(Exception):
    """An error the user can fix; ``str(err)`` is the one-line report, ``exit_code`` the exit status."""

    exit_code: int = EXIT_ERROR

    def __init__(self, *args, exit_code: int | None = None):
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class InputError(FakeproofError, ValueError):
    """A file, folder or value that cannot be used (the message names it and says why)."""


class NotFoundError(FakeproofError, FileNotFoundError):
    """A file or folder the command needs does not exist."""


class UsageError(FakeproofError, ValueError):
    """An option value out of its range or that does not apply."""

    exit_code = EXIT_USAGE


class WeightsNotInstalledError(FakeproofError, FileNotFoundError):
    """Model weights a command needs are not installed (exit 3)."""

    exit_code = EXIT_MISSING


class DeviceError(FakeproofError, RuntimeError):
    """The requested device is not available (exit 5)."""

    exit_code = EXIT_DEVICE
