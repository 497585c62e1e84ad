"""The selfblend and morph backends, weighted backend mixes, and `generate check`'s "as both"."""
from __future__ import annotations

import csv
import sys
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.data import read_meta
from fakeproof.engine import load_rgb
from fakeproof.generate.backends.morph import MorphBackend
from fakeproof.forgery.selfblend import choose_selfblend
from fakeproof.generate.backends.selfblend import SelfBlendBackend
from fakeproof.generate.registry import OFFLINE_MIX, mix_cycle, parse_mix, resolve_backends


def _photo(root: Path, ident: str, k: int) -> np.ndarray:
    return load_rgb(root / "images" / ident / f"{k}.jpg").rgb


def _changed(a: np.ndarray, b: np.ndarray, level: int = 12) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(2) > level


def test_selfblend_alters_only_the_face_and_records_its_draws(sample_dataset):
    b = SelfBlendBackend()
    b.load()
    src = _photo(sample_dataset, "person_01", 0)
    # a draw with a strong, full blend so the change is visible
    seed = next(s for s in range(200) if (lambda p: p["blend_ratio"] == 1.0 and p["colour"] == "rgb_shift" and max(map(abs, p["shift"])) > 12)(choose_selfblend(np.random.default_rng(s))))
    a = b.make(src, None, seed)
    info = dict(b.last_info)
    assert np.array_equal(a, b.make(src, None, seed))  # deterministic
    assert a.shape == src.shape and a.dtype == np.uint8
    face = b.finder.main_face(src)
    x1, y1, x2, y2 = face.bbox
    ch = _changed(a, src)
    fw = x2 - x1
    inside = ch[int(y1 + 0.3 * (y2 - y1)) : int(y2 - 0.2 * (y2 - y1)), int(x1 + 0.25 * fw) : int(x2 - 0.25 * fw)]
    assert inside.mean() > 0.3  # the face centre is altered
    far = np.ones_like(ch)
    far[max(0, int(y1 - fw)) : int(y2 + fw), max(0, int(x1 - fw)) : int(x2 + fw)] = False
    assert not ch[far].any()  # nothing far from the face is touched
    assert set(info) == {
        "altered", "colour", "shift", "brightness", "contrast", "freq", "freq_amount", "scale", "shift_xy",
        "mask", "hull_jitter", "hull_seed", "morph", "mask_blur", "blend_ratio", "jpeg_quality",
    }
    assert len({json.dumps(choose_selfblend(np.random.default_rng(s)), sort_keys=True) for s in range(20)}) == 20


def test_morph_mixes_two_faces_into_one_background(sample_dataset):
    b = MorphBackend()
    b.load()
    src = _photo(sample_dataset, "person_01", 0)
    tgt = _photo(sample_dataset, "person_03", 1)
    seed = next(s for s in range(100) if b.choose(np.random.default_rng(s))["background"] == "target")
    m = b.make(src, tgt, seed)
    info = dict(b.last_info)
    assert np.array_equal(m, b.make(src, tgt, seed))
    assert m.shape == tgt.shape and 0.55 <= info["weight"] <= 0.7  # the background (target) face gets the smaller share
    ch = _changed(m, tgt, 30)
    assert ch.sum() > 500  # a face-sized region changed
    assert not ch[:8].any() and not ch[-8:].any()  # the background photo's borders did not
    assert set(info) == {"weight", "background_share", "background", "mask", "feather", "colour", "jpeg_quality"}
    seed_s = next(s for s in range(100) if b.choose(np.random.default_rng(s))["background"] == "source")
    assert b.make(src, tgt, seed_s).shape == src.shape  # spliced into the source photo instead


def test_mix_parsing_and_interleaving(tmp_path):
    assert parse_mix("classic:2, selfblend ,morph:1") == {"classic": 2, "selfblend": 1, "morph": 1}
    assert mix_cycle({"classic": 2, "selfblend": 1, "morph": 1}) == ["classic", "selfblend", "morph", "classic"]
    assert Counter(mix_cycle({"a": 3, "b": 1})) == {"a": 3, "b": 1}
    for bad in ("classic:x", "classic:0", "classic:-1"):
        with pytest.raises(ValueError, match="classic"):
            parse_mix(bad)
    assert mix_cycle({"a": 3, "b": 1}) == ["a", "b", "a", "a"] or mix_cycle({"a": 3, "b": 1}) == ["a", "a", "b", "a"]
    assert Counter(resolve_backends("classic:2,morph", tmp_path)) == {"classic": 2, "morph": 1}
    assert Counter(resolve_backends("available", tmp_path)) == OFFLINE_MIX  # no weights downloaded: the offline mix
    with pytest.raises(KeyError, match="nope"):
        resolve_backends("classic:2,nope:1", tmp_path)


def test_weighted_mix_cli_and_check_reports_as_both(sample_dataset, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset, ds)
    r = CliRunner().invoke(app, ["generate", "deepfakes", str(ds), "--backends", "classic:2,selfblend:1,morph:1", "--per-identity", "4", "--device", "cpu"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "classic:2, selfblend:1, morph:1" in r.output
    rows = list(csv.DictReader((ds / "fakes.csv").open()))
    assert len(rows) == 16
    for ident in {r["identity"] for r in rows}:  # every identity follows the 2:1:1 mix exactly
        assert Counter(r["backend"] for r in rows if r["identity"] == ident) == {"classic": 2, "selfblend": 1, "morph": 1}
    meta = read_meta(ds / "meta.json")
    assert all(meta[r["key"]] == 1 for r in rows)
    for r in rows:
        params = json.loads(r["params"])
        if r["backend"] == "selfblend":
            assert r["target_key"] == "" and "hull_seed" in params  # one photo of the identity only
        if r["backend"] == "morph":
            assert r["target_key"].split("/")[0] != r["identity"] and "weight" in params
            assert params["partner_candidates"] == 3 and -1 <= params["partner_cos"] <= 1  # the look-alike of the 3 others
    r = CliRunner().invoke(app, ["generate", "deepfakes", str(ds), "--backends", "classic:two"])
    assert r.exit_code != 0 and "whole number" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["generate", "check", str(ds), "--device", "cpu"], terminal_width=250)
    assert r.exit_code == 0, r.output
    assert "as both" in r.output
    from fakeproof.generate.check import check_fakes

    rep = check_fakes(ds, device="cpu", progress=False)
    mo, sb = rep.backends["morph"], rep.backends["selfblend"]
    assert mo.with_target == mo.embedded == 4 and 0 <= mo.passes_as_both <= min(mo.impersonating, mo.passes_as_target)
    assert sb.with_target == 0 and np.isnan(sb.both_pass_rate)  # no second person in a self-blend


def test_speed_benchmark_fast_mode():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import generate_speed

    out = generate_speed.main(["--fast"])
    assert set(out) == {"classic", "selfblend", "morph"}
    for v in out.values():
        assert v["fakes"] >= 4 and v["wall_s"] > 0 and v["cpu_s"] > 0
