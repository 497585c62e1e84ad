"""Issue 23 (reliability round 2) and issue 22 item 1 (one error type, one handler): each failure of
the issue reproduced through the CLI, as a user meets it."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from _fault_harness import count_points, run_forked
from test_integrity_kills import make_photo_dataset, write_decisions
from fakeproof.cli import app
from fakeproof.data import read_meta


def _cli(*args) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r.exit_code, r.output


def _error(out: str) -> str:
    lines = [x for x in out.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out, out
    return lines[0]


# -- issue 22 item 1: one error type, one handler ---------------------------------------------------
def test_every_error_class_is_a_fakeproof_error_with_an_exit_code():
    from fakeproof.curate.binding import StaleCurationError
    from fakeproof.data.atomic import OutputError
    from fakeproof.data.move_journal import JournalError
    from fakeproof.data.meta import MetaError
    from fakeproof.data.safe_paths import PathEscapeError
    from fakeproof.engine.encoders.dlib_format import DlibFormatError
    from fakeproof.engine.images import ImageLoadError
    from fakeproof.errors import EXIT_MISSING, EXIT_STALE, FakeproofError
    from fakeproof.generate.backends.base import BackendError, MissingWeightsError
    from fakeproof.infer.evaluate import EvaluationError
    from fakeproof.registry import DuplicateNameError, UnknownNameError
    from fakeproof.train.config import TrainError

    classes = [StaleCurationError, OutputError, JournalError, MetaError, PathEscapeError, DlibFormatError, ImageLoadError,
               BackendError, MissingWeightsError, EvaluationError, DuplicateNameError, UnknownNameError, TrainError]
    assert len(classes) == 13 and all(issubclass(c, FakeproofError) for c in classes)
    assert StaleCurationError.exit_code == EXIT_STALE and MissingWeightsError.exit_code == EXIT_MISSING
    assert issubclass(UnknownNameError, KeyError) and issubclass(MetaError, ValueError)  # old catchers still work
    assert str(UnknownNameError("unknown encoder 'x'")) == "unknown encoder 'x'"  # no KeyError quoting


def test_an_unexpected_exception_is_reported_as_a_bug_an_expected_one_as_one_line(tmp_path, monkeypatch):
    ds = make_photo_dataset(tmp_path / "ds", identities=3, photos=2)
    import fakeproof.train.pairs as pairs_mod

    def broken(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(pairs_mod, "build_pairs", broken)  # a bug planted in the real command
    code, out = _cli("train", "pairs", ds, "--out", tmp_path / "p.csv")
    assert code == 70 and "Traceback" in out and "ZeroDivisionError" in out and "this is a bug in fakeproof" in out and "please report" in out, out
    monkeypatch.undo()
    code, out = _cli("models", "prepare", "--model", "nope")
    assert code == 1 and "'nope'" in _error(out)  # quotes kept whole (issue 23 item 13: `got '0`)


# -- item 2: resume keeps the run's limits -----------------------------------------------------------
def test_resume_as_the_readme_shows_it_keeps_the_max_steps_of_the_run(tmp_path, train_dataset, ir18_ckpt):
    ds, ckpt = train_dataset, ir18_ckpt
    run = tmp_path / "run"
    args = ["train", "run", ds, "--out", run, "--model", "adaface_ir18", "--weights", ckpt, "--max-steps", "4", "--val-every", "1",
            "--batch-size", "2", "--freeze-blocks", "11", "--no-progress", "--device", "cpu"]

    def start():
        torch.set_num_threads(1)
        code, out = _cli(*args)
        assert code == 0, out

    probe = tmp_path / "probe"
    total = count_points(lambda: (shutil.rmtree(run, ignore_errors=True), start(), shutil.move(str(run), str(probe))))
    assert run_forked(start, total // 2) == "killed"  # mid-run, after a checkpoint
    last = json.loads((run / "checkpoints" / "last.json").read_text())["step"]
    assert 1 <= last < 4
    code, out = _cli("train", "run", ds, "--out", run, "--resume", "--no-progress")  # README: no limits repeated
    assert code == 0, out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4, f"resumed to step {summary['steps']} instead of the run's --max-steps 4"
    assert json.loads((run / "run.json").read_text())["config"]["max_steps"] == 4


# -- item 5: --pairs may not leave the dataset ---------------------------------------------------------
@pytest.mark.parametrize("bad", ["../outside.jpg", "/etc/hostname"])
def test_train_run_refuses_pairs_outside_the_dataset(tmp_path, bad):
    ds = make_photo_dataset(tmp_path / "ds", identities=3, photos=2, size=48)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"split,kind,label,identity,a,b\ntrain,genuine,1,id0,id0/0.jpg,{bad}\nval,genuine,1,id1,id1/0.jpg,id1/1.jpg\n")
    code, out = _cli("train", "run", ds, "--out", tmp_path / "run", "--pairs", pairs, "--max-steps", "1", "--device", "cpu", "--no-progress")
    line = _error(out)
    assert code == 1 and f"{pairs}:2" in line and bad in line, out
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- item 6: no face never reads as a match -----------------------------------------------------------
def test_compare_never_calls_photos_without_a_face_the_same_person(tmp_path, portrait_photo):
    d = tmp_path / "photos"
    (d / "hanks").mkdir(parents=True)
    (d / "shapes").mkdir()
    shutil.copy(portrait_photo, d / "hanks" / "0.png")
    icon = np.full((24, 24, 3), 255, np.uint8)
    cv2.circle(icon, (12, 12), 8, (40, 40, 220), -1)
    cv2.imwrite(str(d / "shapes" / "icon.png"), icon)
    cv2.imwrite(str(d / "shapes" / "grey.png"), np.full((200, 200, 3), 128, np.uint8))
    cv2.imwrite(str(d / "shapes" / "blue.png"), np.tile(np.array([200, 60, 20], np.uint8), (200, 200, 1)))
    out_png = tmp_path / "c.png"
    code, out = _cli("infer", "compare", d / "hanks" / "0.png", d / "shapes" / "icon.png", d / "shapes" / "grey.png", d / "shapes" / "blue.png", "--out", out_png, "--device", "cpu")
    assert code == 0, out
    verdict_lines = [x for x in out.splitlines() if "shapes/grey.png" in x and "shapes/blue.png" in x]
    assert verdict_lines and "no face" in verdict_lines[-1] and "same person" not in verdict_lines[-1], out
    assert "same person" not in "\n".join(x for x in out.splitlines() if "shapes/" in x), out
    assert "hanks/0.png" in out  # labels keep the identity folder
    assert out_png.stat().st_size > 0 and out.count("model: ") == 1 and "auto -> " not in out.split("model: ")[0]


# -- item 7 ---------------------------------------------------------------------------------------------
def test_review_on_a_busy_port_is_refused_at_once(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        t0 = time.time()
        code, out = _cli("curate", "review", tmp_path, "--port", port)
        assert code == 1 and f"--port {port}" in _error(out) and time.time() - t0 < 10, out


def test_damaged_model_files_are_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(3000))
    code, out = _cli("infer", "export-onnx", "--model", f"onnx:{bad}", "--out", tmp_path / "o.onnx")
    assert code == 1 and str(bad) in _error(out), out
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text('{"format": ')
    (ck / "model.safetensors").write_bytes(b"\0" * 100)
    code, out = _cli("infer", "export-onnx", "--model", ck, "--out", tmp_path / "o.onnx")
    assert code == 1 and "config.json" in _error(out), out
    from fakeproof.engine.checkpoint_reader import FORMAT

    (ck / "config.json").write_text(json.dumps({"format": FORMAT, "encoder": "facenet"}))
    code, out = _cli("infer", "export-onnx", "--model", ck, "--out", tmp_path / "o.onnx")
    assert code == 1 and "model.safetensors" in _error(out) and ("truncated" in out or "damaged" in out), out
    code, out = _cli("infer", "export-onnx", "--model", "adaface_ir101", "--models-dir", tmp_path / "nomodels", "--out", tmp_path / "o.onnx")
    line = _error(out)
    assert code == 3 and "--weights" in line and "weights=PATH" not in line, out


# -- item 8: evaluate and rows score-pairs could not score -------------------------------------------
def test_evaluate_refuses_rows_with_an_error_unless_told_what_to_do(tmp_path):
    p = tmp_path / "scores.csv"
    p.write_text("similarity,expected_accept,error\n0.9,1,\n0.2,0,\n0.0,1,a.jpg: not an image\n0.8,1,\n0.1,0,\n")
    code, out = _cli("infer", "evaluate", p)
    assert code == 1 and "1 row(s)" in _error(out) and "--unscorable" in out, out
    code, out = _cli("infer", "evaluate", p, "--unscorable", "drop")
    assert code == 0 and json.loads((tmp_path / "scores.eval.json").read_text())["n"] == 4, out
    code, out = _cli("infer", "evaluate", p, "--unscorable", "reject")
    assert code == 0 and json.loads((tmp_path / "scores.eval.json").read_text())["n"] == 5, out


# -- item 9: a read-only dataset ------------------------------------------------------------------------
def test_apply_on_a_read_only_dataset_refuses_before_its_plan(tmp_path):
    import os

    ds = make_photo_dataset(tmp_path / "src", identities=3, photos=2)
    write_decisions(ds, {"id0/0.jpg": "identity:id1"})
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes through permission bits: a read-only bind mount is the real thing
        if subprocess.run(["mount", "--bind", str(ds), str(ro)], capture_output=True).returncode != 0:
            pytest.skip("cannot bind-mount here")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    else:
        shutil.rmtree(ro)
        shutil.copytree(ds, ro)
        for p in [ro, *ro.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        before = (ro / "meta.json").read_bytes()
        code, out = _cli("curate", "apply", ro, "--from", ro / "curation" / "flags.csv")
        assert code == 1 and out.lstrip().startswith("error:") and "not writable" in _error(out), out
        assert (ro / "meta.json").read_bytes() == before
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], capture_output=True)


# -- item 10: generate celeba ----------------------------------------------------------------------------
@pytest.fixture
def celeba(tmp_path) -> Path:
    root = tmp_path / "celeba"
    (root / "img_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for n in range(9):
        cv2.imwrite(str(root / "img_celeba" / f"{n:06d}.jpg"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        lines.append(f"{n:06d}.jpg {100 + n // 3}")
    (root / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    return root


def test_generate_celeba_refuses_to_merge_an_empty_result_and_says_when_fewer(celeba, tmp_path):
    other = make_photo_dataset(tmp_path / "other", identities=2, photos=2)
    before = read_meta(other / "meta.json")
    code, out = _cli("generate", "celeba", celeba, "--out", other)
    assert code == 1 and "refusing to merge" in _error(out) and read_meta(other / "meta.json") == before, out
    code, out = _cli("generate", "celeba", celeba, "--out", tmp_path / "empty", "--min-photos", "50")
    assert code == 1 and ">= 50 photos" in _error(out) and not (tmp_path / "empty" / "meta.json").exists(), out
    code, out = _cli("generate", "celeba", celeba, "--out", tmp_path / "few", "--identities", "10000")
    assert code == 0 and "--identities 10000: only 3" in out, out
    code, out = _cli("generate", "celeba", celeba, "--out", tmp_path / "few")  # re-running its own output continues
    assert code == 0, out


# -- item 12: the FiftyOne App shows what a reviewer needs -------------------------------------------
def test_review_dataset_shows_reason_suggestion_and_score_on_the_tiles(tmp_path):
    import fiftyone as fo

    from fakeproof.curate.review import REVIEW_FIELDS, build_review_dataset
    from _curate_fixtures import build_mislabelled

    root = build_mislabelled(tmp_path / "ds", tmp_path / "sample")
    code, out = _cli("curate", "clean", root, "--device", "cpu")
    assert code == 0, out
    name = f"fakeproof-test-{uuid.uuid4().hex[:10]}"
    try:
        build_review_dataset(root, name=name)
        ds = fo.load_dataset(name)  # what the App reads: the stored dataset
        cfg = ds.app_config
        assert cfg.active_fields is not None and list(cfg.active_fields.paths) == list(REVIEW_FIELDS)
        assert {"reason", "suggested_identity", "score"} <= set(cfg.active_fields.paths)
        assert cfg.sidebar_groups[0].name == "review" and cfg.sidebar_groups[0].expanded
        assert cfg.color_scheme.color_by == "value"
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


# -- item 13 -------------------------------------------------------------------------------------------
def test_reapplying_an_applied_flags_csv_prints_a_bounded_list(tmp_path):
    ds = make_photo_dataset(tmp_path / "ds", identities=6, photos=4)
    dec = {f"id{i}/{k}.jpg": "not_a_face" for i in range(6) for k in range(1, 4)}
    flags = write_decisions(ds, dec)
    code, out = _cli("curate", "apply", ds, "--from", flags)
    assert code == 0, out
    code, out = _cli("curate", "apply", ds, "--from", flags)
    skipped = [x for x in out.splitlines() if x.startswith("skipped")]
    assert len(skipped) <= 11 and "... and 8 more" in out, out


def test_heatmap_scale_follows_the_identity_and_centres_on_the_threshold():
    from fakeproof.curate.report import _scale

    sim = np.array([[1.0, 0.97, 0.86], [0.97, 1.0, 0.85], [0.86, 0.85, 1.0]])  # a compressed encoder
    norm = _scale(sim, 0.93)
    assert norm(0.93) == pytest.approx(0.5) and norm(0.85) == pytest.approx(0.0) and norm(0.97) == pytest.approx(1.0)


def test_training_bar_counts_to_what_the_time_budget_allows():
    """`--max-minutes 3` at 20 s a step: the bar ends near 9 steps, not at the 21000 of the epochs."""
    from types import SimpleNamespace

    from fakeproof.train.loop import Trainer

    now = time.time()
    me = SimpleNamespace(cfg=SimpleNamespace(max_minutes=3.0), step=3, t_start=now - 60)
    total = Trainer._bar_total(me, limit=21000, start_step=0, t_loop=now - 60)
    assert 8 <= total <= 10
    me.cfg.max_minutes = None
    assert Trainer._bar_total(me, limit=21000, start_step=0, t_loop=now - 60) is None


def test_compare_refuses_a_missing_photo_before_loading_a_model(tmp_path, portrait_photo):
    out_png = tmp_path / "c.png"
    code, out = _cli("infer", "compare", portrait_photo, tmp_path / "nope.jpg", "--out", out_png, "--device", "cpu")
    assert code != 0 and "nope.jpg: no such photo" in out and "Traceback" not in out
    assert not out_png.exists()
