"""``curate review``: a persistent FiftyOne dataset of the curation results, and the App on it.

One sample per image, with the fields of ``flags.csv`` (identity, is_deepfake, flagged, reason,
score, component, suggested_identity, ...), the embedding, and the identity-level merge candidate.
Flagged samples carry the tag ``needs_review``. Saved views: ``suspects`` (flagged, worst score
first), ``by_identity`` (flagged, grouped by identity), ``merge_candidates``.

Reviewers decide with tags (all editable in the App): ``keep``, ``mislabeled``, ``not_a_face``,
``accept_suggestion`` (relabel to ``suggested_identity``) and ``identity:<name>`` (relabel to that
identity), or by setting the ``corrected_identity`` field from Python. Re-running ``review`` after
another ``clean`` updates the fields and the ``needs_review`` tags but never the reviewers' tags.
"""
from __future__ import annotations

import hashlib
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, NotFoundError
from .binding import check_current
from .report import read_embeddings

NEEDS_REVIEW = "needs_review"
FIELD_TYPES = {
    "key": "StringField",
    "identity": "StringField",
    "is_deepfake": "BooleanField",
    "flagged": "BooleanField",
    "reason": "StringField",
    "score": "FloatField",
    "component": "IntField",
    "suggested_identity": "StringField",
    "suggested_cosine": "FloatField",
    "notes": "StringField",
    "merge_candidate": "StringField",
    "corrected_identity": "StringField",  # set by reviewers, never overwritten here
    "file_digest": "StringField",  # the photo's digest when clean saw it: apply checks it
    "embedding": "VectorField",
}


def dataset_name(root) -> str:
    """``fakeproof-<folder>-<8 hex of the absolute path>``: stable per dataset folder."""
    p = Path(root).resolve()
    folder = re.sub(r"[^A-Za-z0-9_-]+", "_", p.name)[:40] or "dataset"
    return f"fakeproof-{folder}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"


def read_flags(curation: Path) -> pd.DataFrame:
    path = Path(curation) / "flags.csv"
    if not path.exists():
        raise NotFoundError(f"{path}: not found; run `fakeproof curate clean {Path(curation).parent}` first")
    text = {c: str for c in ("key", "identity", "suggested_identity", "reason", "notes", "decision", "digest")}
    numbers = {c: [""] for c in ("score", "suggested_cosine", "component", "n_faces")}
    return pd.read_csv(path, dtype=text, keep_default_na=False, na_values=numbers)


def _num(v):
    if v is None or v == "":
        return None
    f = float(v)
    return None if math.isnan(f) else f


def build_review_dataset(root, curation=None, name: str | None = None):
    """Create or update the persistent FiftyOne dataset for ``root``; returns it."""
    from ..fiftyone_env import import_fiftyone

    root = Path(root).resolve()
    curation = Path(curation) if curation else root / "curation"
    flags = read_flags(curation)
    meta_sha = check_current(root, curation, flags)  # before FiftyOne starts its database
    fo = import_fiftyone()
    emb = read_embeddings(curation)
    idents = pd.read_csv(curation / "identities.csv", dtype=str, keep_default_na=False) if (curation / "identities.csv").exists() else None
    merge_of = dict(zip(idents.identity, idents.merge_candidate)) if idents is not None else {}
    name = name or dataset_name(root)

    ds = fo.load_dataset(name) if fo.dataset_exists(name) else fo.Dataset(name)
    ds.persistent = True
    paths = {str(root / "images" / k): k for k in flags.key}
    have = dict(zip(ds.values("filepath"), ds.values("id"))) if len(ds) else {}
    gone = [sid for fp, sid in have.items() if fp not in paths]
    if gone:
        ds.delete_samples(gone)
    new = [fp for fp in paths if fp not in have]
    if new:
        ds.add_samples([fo.Sample(filepath=fp) for fp in new])
    schema = ds.get_field_schema()
    for fld, kind in FIELD_TYPES.items():
        if fld not in schema:
            ds.add_sample_field(fld, getattr(fo, kind))

    rows = flags.set_index("key")
    by_fp = {fp: rows.loc[k] for fp, k in paths.items()}
    str_or_none = lambda v: (str(v) if isinstance(v, str) and v else None)  # noqa: E731
    columns = {
        "key": lambda fp, r: paths[fp],
        "identity": lambda fp, r: r["identity"],
        "is_deepfake": lambda fp, r: bool(int(r["is_deepfake"])),
        "flagged": lambda fp, r: str(r["flagged"]).lower() == "true",
        "reason": lambda fp, r: str_or_none(r["reason"]),
        "score": lambda fp, r: _num(r["score"]),
        "component": lambda fp, r: None if _num(r["component"]) is None else int(_num(r["component"])),
        "suggested_identity": lambda fp, r: str_or_none(r["suggested_identity"]),
        "suggested_cosine": lambda fp, r: _num(r["suggested_cosine"]),
        "notes": lambda fp, r: str_or_none(r["notes"]),
        "merge_candidate": lambda fp, r: str_or_none(merge_of.get(r["identity"], "")),
        "file_digest": lambda fp, r: str_or_none(r["digest"]),
    }
    for fld, get in columns.items():
        ds.set_values(fld, {fp: get(fp, r) for fp, r in by_fp.items()}, key_field="filepath")
    vecs = {}
    for fp, k in paths.items():
        e = emb.get(k)
        vecs[fp] = e if e is not None and np.isfinite(e).all() else None
    ds.set_values("embedding", vecs, key_field="filepath")

    ds.untag_samples(NEEDS_REVIEW)
    flagged_fps = [fp for fp, r in by_fp.items() if str(r["flagged"]).lower() == "true"]
    if flagged_fps:
        ds.select_by("filepath", flagged_fps).tag_samples(NEEDS_REVIEW)

    from fiftyone import ViewField as F

    ds.save_view("suspects", ds.match_tags(NEEDS_REVIEW).sort_by("score"), description="flagged photos, least like their identity first", overwrite=True)
    ds.save_view("by_identity", ds.match_tags(NEEDS_REVIEW).sort_by([("identity", 1), ("score", 1)]), description="flagged photos grouped by identity", overwrite=True)
    ds.save_view("merge_candidates", ds.match(F("merge_candidate") != None).sort_by("identity"), description="identities that look like another identity", overwrite=True)  # noqa: E711
    show_review_fields(ds, fo)
    ds.info["fakeproof"] = {"dataset": str(root), "curation": str(curation.resolve()), "meta_sha256": meta_sha, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    ds.save()
    return ds


REVIEW_FIELDS = ("tags", "reason", "suggested_identity", "score", "identity")  # on every tile, in this order


def show_review_fields(ds, fo) -> None:
    """What a reviewer needs on the tiles without touching the sidebar: the App's active fields
    (the sidebar checkboxes that put a field's value on each tile) are the review fields, shown
    first in an expanded "review" group, and tiles are coloured by value (each reason its colour).
    Stored in the dataset (``dataset.app_config``), so every App session opens this way."""
    cfg = ds.app_config
    cfg.active_fields = fo.ActiveFields(paths=list(REVIEW_FIELDS))
    groups = [g for g in fo.DatasetAppConfig.default_sidebar_groups(ds) if g.name != "review"]
    for g in groups:
        g.paths = [p for p in (g.paths or []) if p not in REVIEW_FIELDS]
    cfg.sidebar_groups = [fo.SidebarGroupDocument(name="review", paths=list(REVIEW_FIELDS), expanded=True), *groups]
    cfg.color_scheme = fo.ColorScheme(color_by="value")
    ds.save()


def check_port_free(port: int, address: str | None = None) -> None:
    """Refuse a port something else listens on, before any work (FiftyOne itself would wait ~75 s
    for its server and then print tracebacks)."""
    import socket

    host = address or "127.0.0.1"
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise InputError(f"--port {port}: cannot serve the App on {host}:{port} ({e.strerror or e}); choose another --port") from None


def launch(ds, view: str = "suspects", port: int = 5151, remote: bool = False, address: str | None = None, wait: bool = True):
    """Open the App on a saved view; with ``wait`` blocks until the App is closed (Ctrl-C)."""
    from ..fiftyone_env import import_fiftyone
    fo = import_fiftyone()

    v = ds.load_saved_view(view) if view in ds.list_saved_views() else ds.view()
    session = fo.launch_app(v, port=port, remote=remote, address=address, auto=not remote)
    if wait:
        try:
            session.wait()
        finally:
            session.close()
    return session
