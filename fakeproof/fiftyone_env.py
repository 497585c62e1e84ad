"""Everything FiftyOne needs before it is imported, in one place.

FiftyOne's bundled MongoDB (``fiftyone-db`` 0.4.5) is linked against ``libcrypto.so.1.1``, which
current Debian/Ubuntu no longer ship. ``make install`` (``scripts/fetch_libssl11.sh``) unpacks
Debian bullseye's ``libssl1.1`` into ``.cache/libssl11/`` without touching the system; mongod is a
child process of the Python process that imports FiftyOne, so putting that folder on
``LD_LIBRARY_PATH`` here, before the import, is enough. ``FAKEPROOF_LIBSSL_DIR`` points elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_LIB_SUBDIR = Path("root") / "usr" / "lib" / "x86_64-linux-gnu"


def libssl_dirs() -> list[Path]:
    from .engine.paths import cache_home

    roots = [os.environ.get("FAKEPROOF_LIBSSL_DIR"), REPO / ".cache" / "libssl11", cache_home() / "libssl11"]
    return [Path(r) / _LIB_SUBDIR for r in roots if r]


def prepare_fiftyone_env() -> Path | None:
    """Set the environment FiftyOne and its mongod need; returns the libcrypto folder used (if any)."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")  # the bundled MongoDB 4.4 is old but works
    found = next((d for d in libssl_dirs() if (d / "libcrypto.so.1.1").exists()), None)
    if found is not None and str(found) not in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        os.environ["LD_LIBRARY_PATH"] = ":".join(p for p in (str(found), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    return found


def import_fiftyone():
    """``import fiftyone`` after :func:`prepare_fiftyone_env`."""
    prepare_fiftyone_env()
    import fiftyone

    return fiftyone
