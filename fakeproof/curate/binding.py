"""Curation results are bound to the dataset they were computed on.

``clean`` writes the sha256 of meta.json into ``summary.json`` and each photo's digest into
``flags.csv``. ``review`` refuses to build the FiftyOne view from results whose meta.json or
flagged photos changed since (:func:`check_current`), and ``apply`` sets aside decisions about
photos that changed (:func:`fakeproof.curate.apply.plan`). In both cases the fix is to re-run
``curate clean`` (fast: embeddings come from the content cache).
"""
from __future__ import annotations

from ..errors import EXIT_STALE, FakeproofError

import json
from pathlib import Path

from ..data.digests import meta_digest, path_digest


class StaleCurationError(FakeproofError, ValueError):
    exit_code = EXIT_STALE

    """Curation results computed on a different state of the dataset (one-line message)."""


def rerun_hint(root) -> str:
    return f"re-run `fakeproof curate clean {root}`"


def check_current(root, curation, flags) -> str | None:
    """Raise :class:`StaleCurationError` when ``curation`` (with ``flags`` = flags.csv as a frame)
    no longer matches ``root``; returns meta.json's digest."""
    root, curation = Path(root), Path(curation)
    summary_path = curation / "summary.json"
    try:
        recorded = json.loads(summary_path.read_text(encoding="utf-8")).get("meta_sha256")
    except (OSError, ValueError):
        recorded = None
    now = meta_digest(root / "meta.json")
    if not recorded or "digest" not in flags.columns:
        raise StaleCurationError(f"{curation}: made by an older fakeproof without dataset digests; {rerun_hint(root)}")
    if recorded != now:
        raise StaleCurationError(f"{root / 'meta.json'} changed since `curate clean` wrote {curation} (photos added, moved or relabelled); {rerun_hint(root)}")
    flagged = flags[flags.flagged.astype(str).str.lower() == "true"]
    for key, dig in zip(flagged.key, flagged.digest):
        if path_digest(root / "images" / key) != (dig or None):
            raise StaleCurationError(f"{root / 'images' / key}: changed since `curate clean` saw it; {rerun_hint(root)}")
    return now
