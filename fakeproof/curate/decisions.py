"""Reviewers' decisions, from FiftyOne tags or from the ``decision`` column of ``flags.csv``.

One vocabulary for both sources:

=====================  ==========================================================
``keep``               the photo stays where it is
``not_a_face``         quarantine (``quarantine`` is accepted as a synonym)
``mislabeled``         with a corrected identity: relabel; alone: quarantine
``accept_suggestion``  relabel to the suggested identity (``accept`` in the CSV)
``identity:<name>``    relabel to ``<name>`` (FiftyOne tag or CSV value; the CSV also
                       takes ``relabel:<name>``, FiftyOne the ``corrected_identity`` field)
=====================  ==========================================================

Contradictory decisions (e.g. ``keep`` + ``mislabeled``) are reported and not applied.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, NotFoundError
from ..data import validate_key


KNOWN = {"keep", "not_a_face", "quarantine", "mislabeled", "accept_suggestion"}


@dataclass(frozen=True)
class Decision:
    key: str
    action: str  # "keep" | "relabel" | "quarantine"
    target: str | None  # identity for "relabel"
    why: str  # what the reviewer said, e.g. "mislabeled+identity:bob"
    digest: str | None = None  # the photo's digest when `curate clean` saw it (flags.csv / FiftyOne)
    is_deepfake: int | None = None  # its label then


def resolve(key: str, identity: str, tags: set[str], corrected: str | None, suggested: str | None, digest: str | None = None, is_deepfake=None) -> Decision | str | None:
    """A Decision, a one-line error (contradiction / bad identity) or None (no decision)."""
    r = _resolve(key, identity, tags, corrected, suggested)
    if isinstance(r, Decision):
        label = None if is_deepfake in (None, "") else int(str(is_deepfake).lower() in ("1", "true"))
        return Decision(r.key, r.action, r.target, r.why, digest or None, label)
    return r


def _resolve(key: str, identity: str, tags: set[str], corrected: str | None, suggested: str | None) -> Decision | str | None:
    if any(t.strip().lower().startswith("identity:") and not t.split(":", 1)[1].strip() for t in tags if t):
        return f"{key}: 'identity:' without a name (write identity:<name>)"
    tags = {t.strip().lower() if not t.lower().startswith("identity:") else "identity:" + t.split(":", 1)[1].strip() for t in tags if t and t.strip()}
    tags = {t for t in tags if t in KNOWN or t.startswith("identity:")}  # other tags are the user's own
    targets = {t.split(":", 1)[1] for t in tags if t.startswith("identity:")}
    if corrected:
        targets.add(corrected.strip())
    if "accept_suggestion" in tags:
        if not suggested:
            return f"{key}: accept_suggestion but there is no suggested identity"
        targets.add(suggested)
    targets.discard("")
    why = "+".join(sorted(tags | ({f"corrected_identity:{corrected}"} if corrected else set())))
    keep, not_face, mis = "keep" in tags, bool(tags & {"not_a_face", "quarantine"}), "mislabeled" in tags
    if not (keep or not_face or mis or targets):
        return None
    if len(targets) > 1:
        return f"{key}: several identities given ({', '.join(sorted(targets))})"
    if keep and (not_face or mis or (targets and targets != {identity})):
        return f"{key}: contradictory decisions ({why})"
    if not_face and targets:
        return f"{key}: not_a_face and a new identity at once ({why})"
    if keep:
        return Decision(key, "keep", None, why)
    if not_face:
        return Decision(key, "quarantine", None, why)
    if targets:
        t = next(iter(targets))
        bad = validate_key(f"{t}/x.jpg")
        if bad or "/" in t:
            return f"{key}: identity {t!r} is not a valid folder name"
        if t == identity:
            return Decision(key, "keep", None, why)
        return Decision(key, "relabel", t, why)
    return Decision(key, "quarantine", None, why)  # mislabeled, nobody said who it is


def _csv_tags(value: str) -> set[str]:
    v = (value or "").strip()
    if not v:
        return set()
    low = v.lower()
    if low.startswith(("identity:", "relabel:")):
        return {"identity:" + v.split(":", 1)[1].strip()}
    if low in ("accept", "accept_suggestion", "suggested"):
        return {"accept_suggestion"}
    if low in ("not_a_face", "quarantine", "keep", "mislabeled"):
        return {low}
    return {f"unknown:{v}"}


def from_flags_csv(path) -> tuple[list[Decision], list[str]]:
    """Decisions from a ``flags.csv`` whose ``decision`` (and optional ``corrected_identity``) column a user filled."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: not found")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("key", "identity", "decision"):
        if col not in df.columns:
            raise InputError(f"{path}: no {col!r} column")
    out, errors = [], []
    blank = [""] * len(df)
    col = lambda name: df[name] if name in df.columns else blank  # noqa: E731
    for key, ident, dec, cor, sug, dig, lab in zip(df.key, df.identity, df.decision, col("corrected_identity"), col("suggested_identity"), col("digest"), col("is_deepfake")):
        tags = _csv_tags(dec)
        unknown = [t for t in tags if t.startswith("unknown:")]
        if unknown:
            errors.append(f"{path}: {key}: unknown decision {dec!r} (use keep, mislabeled, not_a_face, accept, identity:<name>)")
            continue
        r = resolve(key, ident, tags, cor or None, sug or None, dig, lab)
        if isinstance(r, str):
            errors.append(r)
        elif r is not None:
            out.append(r)
    return out, errors


def from_fiftyone(root, name: str | None = None) -> tuple[list[Decision], list[str]]:
    """Decisions from the tags / ``corrected_identity`` of the review dataset of ``root``."""
    from ..fiftyone_env import import_fiftyone
    fo = import_fiftyone()

    from .review import dataset_name

    name = name or dataset_name(root)
    if not fo.dataset_exists(name):
        raise NotFoundError(f"FiftyOne dataset {name!r} not found; run `fakeproof curate review {root}` first")
    ds = fo.load_dataset(name)
    schema = ds.get_field_schema()
    fields = ["key", "identity", "tags", "corrected_identity", "suggested_identity", "file_digest", "is_deepfake"]
    cols = [ds.values(f) if f in schema else [None] * len(ds) for f in fields]
    out, errors = [], []
    for key, ident, tags, cor, sug, dig, lab in zip(*cols):
        r = resolve(key, ident, set(tags or []) - {"needs_review"}, cor, sug, dig, None if lab is None else int(lab))
        if isinstance(r, str):
            errors.append(r)
        elif r is not None:
            out.append(r)
    return out, errors
