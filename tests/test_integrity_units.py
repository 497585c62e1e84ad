"""The building blocks of the integrity guarantees: atomic writes and modes, the batch journal,
path safety, meta.json validation, curation bound to its dataset, key retirement, the size limit."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakeproof.curate.apply import plan
from fakeproof.data.records import retired_keys
from fakeproof.curate.decisions import from_flags_csv, resolve
from fakeproof.data import MetaError, OutputError, PathEscapeError, TrainingDataset, atomic_write_text, check_writable, json_text, read_meta, resolve_inside, write_meta
from fakeproof.data.move_journal import Batch, JournalError, recover, run_batch
from fakeproof.engine import load_rgb
from fakeproof.generate.runner import next_free_key
from test_integrity_kills import make_photo_dataset, write_decisions


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_rewrites_keep_the_file_mode_and_new_files_follow_the_umask(tmp_path):
    meta = tmp_path / "meta.json"
    write_meta(meta, {"a/1.jpg": 0})
    assert _mode(meta) == 0o666 & ~os.umask(os.umask(0o022))
    os.chmod(meta, 0o640)
    write_meta(meta, {"a/1.jpg": 1})
    assert _mode(meta) == 0o640 and read_meta(meta) == {"a/1.jpg": 1}
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "new.csv", "x\n")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "new.csv") == 0o600


def test_json_never_holds_nan():
    text = json_text({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32("nan"), "d": 0.5})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None, "d": 0.5}
    assert "NaN" not in text and "Infinity" not in text


def test_meta_json_duplicate_keys_and_bad_values_are_errors_naming_the_key(tmp_path):
    p = tmp_path / "meta.json"
    p.write_text('{"bob/1.jpg": 0, "ann/1.jpg": 1, "bob/1.jpg": 1}')
    with pytest.raises(MetaError, match=r"'bob/1.jpg' appears more than once"):
        read_meta(p)
    p.write_text('{"../x.jpg": 0}')
    with pytest.raises(MetaError, match="escapes"):
        read_meta(p)


def test_empty_identity_tag_is_reported():
    assert "without a name" in resolve("a/1.jpg", "a", {"identity:"}, None, None)
    assert "without a name" in resolve("a/1.jpg", "a", {"identity:  ", "mislabeled"}, None, None)


def test_check_writable_refuses_before_any_work(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_writable(f / "sub" / "out.csv")
    with pytest.raises(OutputError, match="is a folder"):
        check_writable(tmp_path)
    check_writable(tmp_path / "new" / "deeper" / "out.csv")  # creatable: fine, and nothing created
    assert not (tmp_path / "new").exists()
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.geteuid() != 0:  # root writes anywhere; /sys refuses everyone
            with pytest.raises(OutputError, match="not writable"):
                check_writable(ro / "out.csv")
        with pytest.raises(OutputError, match="not writable"):
            check_writable(Path("/sys/fakeproof-test/out.csv"))
    finally:
        os.chmod(ro, 0o755)


def test_symlinks_leaving_the_root_are_refused_unless_allowed(tmp_path, monkeypatch):
    root = make_photo_dataset(tmp_path / "ds", identities=2, photos=2)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((root / "images" / "id0" / "0.jpg").read_bytes())
    (root / "images" / "id0" / "9.jpg").symlink_to(outside)
    (root / "images" / "id1" / "inside.jpg").symlink_to(root / "images" / "id1" / "0.jpg")  # inside: fine
    with pytest.raises(PathEscapeError, match=r"id0/9.jpg: links to .*outside.jpg, outside .*allow-outside-links"):
        TrainingDataset.load(root)
    monkeypatch.setenv("FAKEPROOF_ALLOW_OUTSIDE_LINKS", "1")
    assert "id0/9.jpg" in TrainingDataset.load(root).unlisted_files
    monkeypatch.delenv("FAKEPROOF_ALLOW_OUTSIDE_LINKS")
    (root / "images" / "id0" / "9.jpg").unlink()
    (root / "images" / "evil").symlink_to(tmp_path)  # a folder link out of the dataset
    with pytest.raises(PathEscapeError, match="evil"):
        TrainingDataset.load(root)
    for bad in ("../x.jpg", "/etc/passwd", "a/../../x.jpg"):
        with pytest.raises(PathEscapeError):
            resolve_inside(root, bad)
    assert resolve_inside(root, "images/id0/0.jpg") == root / "images/id0/0.jpg"


def _batch(root: Path, label="b") -> Batch:
    meta = read_meta(root / "meta.json")
    moves = [("images/id0/0.jpg", "images/id9/0.jpg"), ("images/id0/1.jpg", "quarantine/id0/1.jpg")]
    text = json.dumps({"id9/0.jpg": 0, **{k: v for k, v in meta.items() if not k.startswith("id0/")}}, indent=1) + "\n"
    return Batch(label, moves, text, ".history/meta.json.test", "curation/history.jsonl", ['{"event": "x"}'], ["quarantine"])


def test_journal_rolls_forward_after_the_commit_and_back_before(tmp_path):
    root = make_photo_dataset(tmp_path / "ds", identities=2, photos=2)
    before = (root / "meta.json").read_bytes()
    b = _batch(root)
    run_batch(root, b, "pending.json")
    assert not (root / "pending.json").exists() and (root / "images/id9/0.jpg").exists()
    assert (root / ".history/meta.json.test").read_bytes() == before
    # a half-done batch: journal written, one move done, meta.json not yet -> back
    root2 = make_photo_dataset(tmp_path / "ds2", identities=2, photos=2)
    b2 = _batch(root2)
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    rec = {"format": "fakeproof-batch-journal/1", **b2.__dict__, "meta_before_sha256": sha(before), "meta_after_sha256": sha(b2.meta_text.encode()), "log_offset": 0}
    (root2 / "pending.json").write_text(json.dumps(rec))
    (root2 / "images/id9").mkdir()
    os.replace(root2 / "images/id0/0.jpg", root2 / "images/id9/0.jpg")
    assert "rolled back" in recover(root2, "pending.json")
    assert (root2 / "images/id0/0.jpg").exists() and not (root2 / "images/id9").exists() and (root2 / "meta.json").read_bytes() == before
    # the same, but meta.json already written and the log half-appended -> forward, log written once
    (root2 / "pending.json").write_text(json.dumps(rec))
    (root2 / "images/id9").mkdir()
    os.replace(root2 / "images/id0/0.jpg", root2 / "images/id9/0.jpg")
    (root2 / "meta.json").write_text(b2.meta_text)
    (root2 / "curation").mkdir()
    (root2 / "curation/history.jsonl").write_text('{"ev')
    assert "rolled forward" in recover(root2, "pending.json")
    assert (root2 / "quarantine/id0/1.jpg").exists() and (root2 / "curation/history.jsonl").read_text() == '{"event": "x"}\n'
    # meta.json edited by someone else meanwhile: nothing is touched
    (root2 / "pending.json").write_text(json.dumps(rec))
    (root2 / "meta.json").write_text("{}")
    with pytest.raises(JournalError, match="changed since"):
        recover(root2, "pending.json")
    assert (root2 / "pending.json").exists()


def test_apply_sets_aside_decisions_about_changed_photos(tmp_path):
    root = make_photo_dataset(tmp_path / "ds", identities=3, photos=2)
    flags = write_decisions(root, {"id0/0.jpg": "not_a_face", "id1/0.jpg": "identity:id2", "id2/1.jpg": "not_a_face"})
    decisions, errors = from_flags_csv(flags)
    assert not errors and all(d.digest for d in decisions)
    (root / "images/id1/0.jpg").write_bytes((root / "images/id2/0.jpg").read_bytes())  # replaced since clean
    meta = read_meta(root / "meta.json")
    meta["id2/1.jpg"] = 1  # relabelled as a deepfake since clean
    write_meta(root / "meta.json", meta)
    changes, skipped, stale = plan(root, decisions)
    assert [c.key for c in changes] == ["id0/0.jpg"] and not skipped
    assert sorted(s.split(":")[0] for s in stale) == ["id1/0.jpg", "id2/1.jpg"]
    assert "digest differs" in " ".join(stale) and "now labelled deepfake" in " ".join(stale)


def test_new_keys_never_reuse_a_retired_key(tmp_path):
    root = make_photo_dataset(tmp_path / "ds", identities=2, photos=2)
    (root / "quarantine/id0").mkdir(parents=True)
    os.replace(root / "images/id0/0.jpg", root / "quarantine/id0/0.jpg")
    (root / "curation").mkdir()
    (root / "curation/history.jsonl").write_text(json.dumps({"event": "change", "key": "id0/1.jpg", "to_key": "id1/1__from_id0.jpg"}) + "\n")
    retired = retired_keys(root)
    assert retired >= {"id0/0.jpg", "id0/1.jpg", "id1/1__from_id0.jpg"}
    assert next_free_key("id0", retired, root / "images") == "id0/2.jpg"


def test_one_size_limit_a_12000_pixel_jpeg_is_downscaled(tmp_path):
    p = tmp_path / "huge.jpg"
    Image.new("RGB", (12000, 12000), (120, 90, 60)).save(p, quality=30)
    img = load_rgb(p)
    assert max(img.rgb.shape[:2]) == 2048 and img.original_size == (12000, 12000)
    assert any("downscaled" in w for w in img.warnings)
