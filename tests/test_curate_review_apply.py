"""review (real FiftyOne + bundled MongoDB) and apply (moves, atomic meta, history, undo)."""
from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid

import pandas as pd
import pytest
from typer.testing import CliRunner

from _curate_fixtures import TRUE_IDENTITY, WRONG_KEY, build_mislabelled, tree_digest
from fakeproof.cli import app
from fakeproof.data import read_meta

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cleaned_src(tmp_path_factory):
    """A cleaned dataset; each test copies it so that apply/undo do not interfere."""
    cache = tmp_path_factory.getbasetemp() / "curate-sample-src"
    root = build_mislabelled(tmp_path_factory.mktemp("review") / "ds", cache)
    r = CliRunner().invoke(app, ["curate", "clean", str(root)])
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture
def dataset(cleaned_src, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(cleaned_src, root)
    # flags.csv's paths are keys (relative): the copy is self-contained
    return root


@pytest.fixture
def fo_name():
    import fiftyone as fo

    name = f"fakeproof-test-{uuid.uuid4().hex[:10]}"
    yield name
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


def _apply(*args):
    return CliRunner().invoke(app, ["curate", "apply", *map(str, args)])


def test_apply_from_flags_csv_dry_run_apply_and_undo(dataset):
    meta_before_bytes = (dataset / "meta.json").read_bytes()
    before = tree_digest(dataset)
    flags_path = dataset / "curation" / "flags.csv"
    f = pd.read_csv(flags_path, dtype=str, keep_default_na=False)
    f.loc[f.key == WRONG_KEY, "decision"] = "accept"
    f.loc[f.key == "person_03/0.jpg", "decision"] = "not_a_face"
    f.loc[f.key == "person_04/0.jpg", "decision"] = "keep"
    f.to_csv(flags_path, index=False)

    r = _apply(dataset, "--from", flags_path, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "dry run" in r.output and "relabel" in r.output and "quarantine" in r.output
    assert tree_digest(dataset, exclude=("curation", ".history")) == before

    r = _apply(dataset, "--from", flags_path)
    assert r.exit_code == 0, r.output
    meta = read_meta(dataset / "meta.json")
    assert WRONG_KEY not in meta and "person_03/0.jpg" not in meta and "person_04/0.jpg" in meta
    new_key = f"{TRUE_IDENTITY}/from_person_01.jpg"
    assert meta[new_key] == 0 and (dataset / "images" / new_key).exists()
    assert (dataset / "quarantine" / "person_03" / "0.jpg").exists()
    assert not (dataset / "images" / WRONG_KEY).exists()
    assert len(meta) == len(before) - 2  # before counts meta.json + images
    backups = list((dataset / ".history").glob("meta.json.*"))
    assert len(backups) == 1 and backups[0].read_bytes() == meta_before_bytes
    hist = [json.loads(x) for x in (dataset / "curation" / "history.jsonl").read_text().splitlines()]
    changes = [h for h in hist if h["event"] == "change"]
    assert {(h["action"], h["key"], h["to_key"]) for h in changes} == {("relabel", WRONG_KEY, new_key), ("quarantine", "person_03/0.jpg", None)}
    assert all(h["user"] and h["time"] and h["source"].endswith("flags.csv") for h in changes)

    # applying the same decisions again changes nothing (keys are gone from meta.json)
    r = _apply(dataset, "--from", flags_path)
    assert r.exit_code == 0 and "already applied" in r.output

    r = _apply(dataset, "--undo")
    assert r.exit_code == 0, r.output
    assert (dataset / "meta.json").read_bytes() == meta_before_bytes
    assert tree_digest(dataset) == before
    assert not (dataset / "quarantine").exists()
    r = _apply(dataset, "--undo")
    assert r.exit_code == 1 and "no applied batch" in r.output


def test_review_builds_the_fiftyone_dataset(dataset, fo_name):
    import fiftyone as fo

    r = CliRunner().invoke(app, ["curate", "review", str(dataset), "--no-launch", "--name", fo_name])
    assert r.exit_code == 0, r.output
    ds = fo.load_dataset(fo_name)
    assert ds.persistent and len(ds) == len(read_meta(dataset / "meta.json"))
    schema = ds.get_field_schema()
    for fld in ("key", "identity", "is_deepfake", "flagged", "reason", "score", "component", "suggested_identity", "embedding", "corrected_identity"):
        assert fld in schema, fld
    s = ds.match(fo.ViewField("key") == WRONG_KEY).first()
    assert s.flagged and "needs_review" in s.tags and s.suggested_identity == TRUE_IDENTITY
    from fakeproof.engine import encoder_spec

    assert s.embedding is not None and len(s.embedding) == encoder_spec("auto").embedding_dim  # the default encoder's
    assert set(ds.list_saved_views()) >= {"suspects", "by_identity", "merge_candidates"}
    assert ds.load_saved_view("suspects").first().key == WRONG_KEY
    assert len(ds.match_tags("needs_review")) == 1
    # re-running keeps reviewers' tags
    ds.match(fo.ViewField("key") == "person_05/1.jpg").tag_samples("keep")
    r = CliRunner().invoke(app, ["curate", "review", str(dataset), "--no-launch", "--name", fo_name])
    assert r.exit_code == 0, r.output
    assert "keep" in fo.load_dataset(fo_name).match(fo.ViewField("key") == "person_05/1.jpg").first().tags


def test_fiftyone_decisions_round_trip_through_apply_and_undo(dataset, fo_name):
    import fiftyone as fo
    from fiftyone import ViewField as F

    from fakeproof.curate.review import build_review_dataset

    before = tree_digest(dataset)
    meta_bytes = (dataset / "meta.json").read_bytes()
    ds = build_review_dataset(dataset, name=fo_name)
    # a reviewer: the suspect is person_01 (tag + corrected identity), one photo is no face,
    # one photo is mislabelled without knowing who it is, one is fine
    s = ds.match(F("key") == WRONG_KEY).first()
    s.tags.append("mislabeled")
    s["corrected_identity"] = TRUE_IDENTITY
    s.save()
    ds.match(F("key") == "person_03/1.jpg").tag_samples("not_a_face")
    ds.match(F("key") == "person_04/2.jpg").tag_samples("mislabeled")
    ds.match(F("key") == "person_05/0.jpg").tag_samples(["keep"])
    ds.match(F("key") == "person_06/0.jpg").tag_samples(["identity:tom_hanks"])
    ds.match(F("key") == "tom_hanks/0.jpg").tag_samples(["keep", "not_a_face"])  # contradiction

    r = _apply(dataset, "--from", "fiftyone", "--name", fo_name)
    assert r.exit_code == 0, r.output
    assert "contradictory" in r.output
    meta = read_meta(dataset / "meta.json")
    assert f"{TRUE_IDENTITY}/from_person_01.jpg" in meta
    assert "tom_hanks/0.jpg" in meta and "tom_hanks/0__from_person_06.jpg" in meta
    assert "person_03/1.jpg" not in meta and (dataset / "quarantine/person_03/1.jpg").exists()
    assert "person_04/2.jpg" not in meta and (dataset / "quarantine/person_04/2.jpg").exists()
    assert "person_05/0.jpg" in meta
    hist = [json.loads(x) for x in (dataset / "curation" / "history.jsonl").read_text().splitlines()]
    assert sum(h["event"] == "change" for h in hist) == 4 and hist[-1]["event"] == "apply" and hist[-1]["source"] == "fiftyone"

    r = _apply(dataset, "--undo")
    assert r.exit_code == 0, r.output
    assert tree_digest(dataset) == before
    assert (dataset / "meta.json").read_bytes() == meta_bytes
    assert fo.dataset_exists(fo_name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_review_app_serves_the_dataset(dataset, fo_name):
    import fiftyone as fo

    from fakeproof.curate.review import build_review_dataset, launch

    ds = build_review_dataset(dataset, name=fo_name)
    port = _free_port()
    session = launch(ds, view="suspects", port=port, remote=True, address="127.0.0.1", wait=False)
    try:
        body, last = None, None
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    body = resp.read().decode("utf-8", "replace")
                    if resp.status == 200:
                        break
            except OSError as e:
                last = e
                time.sleep(1)
        assert body is not None, f"App did not answer on port {port}: {last}"
        assert "<html" in body.lower() and "fiftyone" in body.lower()
        assert session.dataset.name == fo_name
    finally:
        session.close()
    assert isinstance(fo.list_datasets(), list)
