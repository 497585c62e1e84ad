"""`infer benchmark` and benchmarks/infer_throughput.py share fakeproof.infer.throughput: interleaved
rounds, face_recognition in the same rounds on the same photos, resized photo sets, --json, and a
refusal (not a rate) when a photo does not decode."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.infer.throughput import PEER, peer_available

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _folder(tmp_path, group_photo, portrait_photo) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(group_photo, folder / "group.jpg")
    shutil.copy(portrait_photo, folder / "portrait.png")
    return folder


def test_infer_benchmark_json_interleaved_rounds_and_peer(tmp_path, group_photo, portrait_photo):
    folder = _folder(tmp_path, group_photo, portrait_photo)
    r = runner.invoke(app, ["infer", "benchmark", str(folder), "--model", "facenet", "--sizes", "160,400", "--repeats", "2", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output[r.output.index("{"):])
    rows = {(x["photos"], x["variant"]): x for x in rep["rows"]}
    assert rep["runtime"] == "onnx" and rep["repeats"] == 2
    for size in ("160 px", "400 px"):
        for v in ("fakeproof full pipeline, onnx", "fakeproof full pipeline, torch"):
            row = rows[(size, v)]
            assert row["images"] == 2 and len(row["seconds"]) == 2 and all(s > 0 for s in row["seconds"])
            assert row["min_img_s"] <= row["median_img_s"] <= row["max_img_s"]
    assert ("aligned crops", "aligned crops, onnx, batch 32") in rows
    assert [p["photos"] for p in rep["profile"]] == ["160 px", "400 px"]
    assert all(p["detect"] > 0 and p["embed"] > 0 for p in rep["profile"])
    assert rep["settings"]["cpus"] == os.cpu_count() and len(rep["settings"]["load_average"]) == 3
    if peer_available():
        assert [x["photos"] for x in rep["vs_peer"]] == ["160 px", "400 px"]
        for x in rep["vs_peer"]:
            ours, peer = rows[(x["photos"], "fakeproof full pipeline, onnx")], rows[(x["photos"], PEER)]
            per_round = [p / o for o, p in zip(ours["seconds"], peer["seconds"])]  # same photos: ratio of rates
            assert abs(x["ratio"] - float(np.median(per_round))) < 1e-6
    else:
        assert rep["vs_peer"] == [] and any(PEER in n for n in rep["notes"])


def test_infer_benchmark_refuses_unreadable_photos(tmp_path, group_photo, portrait_photo):
    folder = _folder(tmp_path, group_photo, portrait_photo)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    r = runner.invoke(app, ["infer", "benchmark", str(folder), "--model", "facenet"])
    assert r.exit_code != 0
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.jpg" in lines[0] and "img/s" not in r.output


def test_infer_benchmark_bad_sizes(tmp_path, group_photo, portrait_photo):
    folder = _folder(tmp_path, group_photo, portrait_photo)
    r = runner.invoke(app, ["infer", "benchmark", str(folder), "--sizes", "250,big"])
    assert r.exit_code != 0 and "--sizes" in r.output


def test_benchmark_script_fast_mode(tmp_path, group_photo, portrait_photo):
    folder = _folder(tmp_path, group_photo, portrait_photo)
    out = tmp_path / "bench.json"
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "benchmarks/infer_throughput.py", "--fast", "--photos", str(folder), "--model", "facenet", "--json", str(out)]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "where the time goes" in p.stdout and "load average" in p.stdout and "fakeproof full pipeline, onnx" in p.stdout
    rep = json.loads(out.read_text())
    assert {x["photos"] for x in rep["rows"]} >= {"250 px", "600 px"}
