"""meta.json validation, atomic writes with history, CelebA and pair-folder readers."""
from __future__ import annotations

import json
import os
import time

import pytest

from fakeproof.data import CelebA, MetaError, TrainingDataset, read_meta, read_pair_folders, write_meta


def _dataset(tmp_path, meta: dict, files: list[str]):
    for f in files:
        p = tmp_path / "images" / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


@pytest.mark.parametrize(
    "key,why",
    [("../evil.jpg", "escapes"), ("/abs/x.jpg", "absolute"), ("a/../../x.jpg", "escapes"), ("flat.jpg", "<identity>/<file>"), ("a\\b.jpg", "backslash")],
)
def test_bad_keys_rejected(tmp_path, key, why):
    (tmp_path / "meta.json").write_text(json.dumps({key: 0}))
    with pytest.raises(MetaError, match=why) as e:
        read_meta(tmp_path / "meta.json")
    assert str(tmp_path / "meta.json") in str(e.value)


@pytest.mark.parametrize("value", [2, -1, "0", None, True, 0.5])
def test_bad_values_rejected(tmp_path, value):
    (tmp_path / "meta.json").write_text(json.dumps({"a/1.jpg": value}))
    with pytest.raises(MetaError, match="0 \\(real\\) or 1"):
        read_meta(tmp_path / "meta.json")


def test_invalid_json_names_line(tmp_path):
    (tmp_path / "meta.json").write_text('{"a/1.jpg": 0,\n "b/2.jpg": }')
    with pytest.raises(MetaError, match="line 2"):
        read_meta(tmp_path / "meta.json")


def test_missing_and_unlisted_files_reported(tmp_path):
    root = _dataset(tmp_path, {"a/1.jpg": 0, "a/2.jpg": 1, "b/1.jpg": 0}, ["a/1.jpg", "a/2.jpg", "c/9.jpg"])
    ds = TrainingDataset.load(root)
    assert [it.key for it in ds.items] == ["a/1.jpg", "a/2.jpg"]
    assert ds.missing_files == ["b/1.jpg"]
    assert ds.unlisted_files == ["c/9.jpg"]
    assert [it.key for it in ds.fakes()] == ["a/2.jpg"]


def test_write_meta_is_atomic_and_keeps_history(tmp_path, monkeypatch):
    meta_path = tmp_path / "meta.json"
    meta_path.write_text(json.dumps({"a/1.jpg": 0}))
    before = meta_path.read_text()
    ino = os.stat(meta_path).st_ino
    backup = write_meta(meta_path, {"a/1.jpg": 0, "a/2.jpg": 1})
    assert backup is not None and backup.read_text() == before
    assert read_meta(meta_path) == {"a/1.jpg": 0, "a/2.jpg": 1}
    assert os.stat(meta_path).st_ino != ino  # replaced by rename, not edited in place
    time.sleep(0.01)
    write_meta(meta_path, {"a/1.jpg": 1})
    assert len(list((tmp_path / ".history").iterdir())) == 2

    # a failure half-way leaves the old file untouched and no temp file behind
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_meta(meta_path, {"a/1.jpg": 0})
    assert read_meta(meta_path) == {"a/1.jpg": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_meta_refuses_bad_keys(tmp_path):
    with pytest.raises(MetaError):
        write_meta(tmp_path / "meta.json", {"../x.jpg": 0})
    assert not (tmp_path / "meta.json").exists()


def test_large_meta_loads_fast(tmp_path):
    meta = {f"{i // 10}/{i % 10}.jpg": int(i % 2) for i in range(97_733)}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    t = time.perf_counter()
    assert len(read_meta(tmp_path / "meta.json")) == 97_733
    assert time.perf_counter() - t < 5  # generous: the real figure is in the benchmarks


def test_celeba_reader(tmp_path):
    (tmp_path / "img_celeba").mkdir()
    for f in ["000001.jpg", "000002.jpg", "000003.jpg"]:
        (tmp_path / "img_celeba" / f).write_bytes(b"x")
    (tmp_path / "identity_CelebA.txt").write_text("000001.jpg 10\n000002.jpg 2\n000003.jpg 10\n000004.jpg 2\n")
    c = CelebA.load(tmp_path)
    assert c.identities == {"2": ["000002.jpg"], "10": ["000001.jpg", "000003.jpg"]}
    assert c.missing == ["000004.jpg"]


def test_pair_folders_sorted_numerically(tmp_path):
    for pid in ["10", "2", "1"]:
        d = tmp_path / pid
        d.mkdir()
        (d / "0.jpg").write_bytes(b"x")
        if pid != "2":
            (d / "1.jpg").write_bytes(b"x")
    pairs = read_pair_folders(tmp_path)
    assert [p.pair_id for p in pairs] == ["1", "2", "10"]
    assert pairs[1].problem == "missing 1.jpg"
