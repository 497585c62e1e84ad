"""``generate celeba`` and the CLI (fail-fast on missing weights, backend selection)."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.data import read_meta
from fakeproof.generate.registry import SEED_BACKENDS, list_backend_weights, resolve_backends
from fakeproof.generate.backends.base import MissingWeightsError


@pytest.fixture(scope="module")
def celeba_dir(tmp_path_factory, sample_dataset) -> Path:
    """A tiny folder in CelebA's layout made from the sample dataset's photos."""
    sample = sample_dataset
    root = tmp_path_factory.mktemp("celeba")
    (root / "img_celeba").mkdir()
    lines = []
    n = 0
    for ident_i, d in enumerate(sorted((sample / "images").iterdir())):
        for p in sorted(d.iterdir())[: 3 if ident_i else 2]:  # identity 0 has only 2 photos
            n += 1
            name = f"{n:06d}.jpg"
            shutil.copy(p, root / "img_celeba" / name)
            lines.append(f"{name} {100 + ident_i}")
    lines.append("999999.jpg 500")  # listed but absent
    (root / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celeba_to_training_layout_with_map_and_resume(celeba_dir, tmp_path):
    out = tmp_path / "ds"
    r = CliRunner().invoke(app, ["generate", "celeba", str(celeba_dir), "--out", str(out), "--min-photos", "3"])
    assert r.exit_code == 0, r.output
    meta = read_meta(out / "meta.json")
    assert len(meta) == 9 and set(meta.values()) == {0}
    assert {k.split("/")[0] for k in meta} == {"101", "102", "103"}  # 100 has too few photos
    rows = list(csv.DictReader((out / "celeba_map.csv").open()))
    assert len(rows) == 9
    for row in rows:
        assert (out / "images" / row["key"]).read_bytes() == (celeba_dir / "img_celeba" / row["celeba_file"]).read_bytes()
        assert row["key"].split("/")[0] == row["celeba_identity"]
    r2 = CliRunner().invoke(app, ["generate", "celeba", str(celeba_dir), "--out", str(out), "--min-photos", "3"])
    assert r2.exit_code == 0 and read_meta(out / "meta.json") == meta
    assert len(list(csv.DictReader((out / "celeba_map.csv").open()))) == 9


def test_celeba_identities_subset(celeba_dir, tmp_path):
    out = tmp_path / "ds"
    r = CliRunner().invoke(app, ["generate", "celeba", str(celeba_dir), "--out", str(out), "--identities", "2", "--min-photos", "2", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert len({k.split("/")[0] for k in read_meta(out / "meta.json")}) == 2


def test_celeba_bad_folder_is_one_line_error(tmp_path):
    r = CliRunner().invoke(app, ["generate", "celeba", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "identity_CelebA.txt" in r.output


def test_all_without_weights_fails_fast_naming_every_file(celeba_dir, tmp_path):
    out = tmp_path / "ds"
    CliRunner().invoke(app, ["generate", "celeba", str(celeba_dir), "--out", str(out)])
    models = tmp_path / "empty_models"
    models.mkdir()
    r = CliRunner().invoke(app, ["generate", "deepfakes", str(out), "--backends", "all", "--models-dir", str(models)], terminal_width=300)
    assert r.exit_code == 3
    for name in ("inswapper_128.onnx", "w600k_r50.onnx", "ghost_2_256.onnx", "crossface_ghost.onnx", "arcface.onnx", "ip-adapter.bin", "glintr100.onnx", "stable-diffusion-xl-base-1.0"):
        assert name in r.output
    assert str(models) in r.output
    assert not (out / "fakes.csv").exists()  # no work done


def test_backend_selection(tmp_path):
    assert sorted(resolve_backends("available", tmp_path)) == ["classic", "morph", "selfblend"]  # the offline mix
    assert resolve_backends("classic", tmp_path) == ["classic"]
    with pytest.raises(MissingWeightsError):
        resolve_backends("classic,roop", tmp_path)
    with pytest.raises(KeyError):
        resolve_backends("nope", tmp_path)
    names = {b for b, _ in list_backend_weights(tmp_path)}
    assert set(SEED_BACKENDS) | {"classic", "selfblend", "morph"} == names


def test_deepfakes_cli_classic(celeba_dir, tmp_path):
    out = tmp_path / "ds"
    CliRunner().invoke(app, ["generate", "celeba", str(celeba_dir), "--out", str(out)])
    r = CliRunner().invoke(app, ["generate", "deepfakes", str(out), "--backends", "classic", "--per-identity", "1"])
    assert r.exit_code == 0, r.output
    meta = read_meta(out / "meta.json")
    assert sum(meta.values()) == 3
    # and how well the encoder is fooled by them
    r = CliRunner().invoke(app, ["generate", "check", str(out), "--model", "facenet", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "classic" in r.output and (out / "fakes_check.csv").exists()
