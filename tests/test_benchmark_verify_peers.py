"""The peer benchmark in its fast mode (it prints SKIP and exits 0 where ../shared/data is absent).

- celeba-pairs (the default protocol): a few pairs of each of the 10 folds, face_recognition on its own
  HOG boxes and on our MTCNN boxes (when installed: it is not a dependency, and the rows say so when
  absent), a fakeproof encoder with the 10-fold figures, paired bootstrap intervals and the calibration check;
- wild: celeba-mini + five-celebrities pairs and the MTCNN agreement check."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def _run(args, tmp_path):
    out = tmp_path / "peers.json"
    cmd = [sys.executable, "benchmarks/verify_peers.py", "--fast", "--encoders", "facenet", "--flip", "on",
           "--cache", str(tmp_path / "cache"), "--json", str(out), *args]
    p = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p, (None if "SKIP" in p.stdout else json.loads(out.read_text()))


def test_verify_peers_celeba_pairs_fast(tmp_path):
    p, res = _run(["--bootstrap", "50", "--reference", "fakeproof facenet +flip"], tmp_path)
    if res is None:
        return
    assert res["protocol"] == "celeba-pairs" and res["pairs"] == 40
    rows = {r["method"]: r for r in res["rows"]}
    ours = rows["fakeproof facenet +flip"]
    assert 0 <= ours["EER % (pooled)"] < 50 and "+-" in ours["accuracy %"] and ours["EER - ref. (pt) [95%]"] == "reference"
    peers = [m for m in rows if m.startswith("face_recognition")]
    assert len(peers) in (0, 2) and all("[" in rows[m]["EER - ref. (pt) [95%]"] for m in peers)
    cal = res["calibration"]["fakeproof facenet +flip"]
    assert 0 <= cal["FAR @0.5 % (held out)"] <= 100 and cal["mean sim. impostor"] < cal["mean sim. genuine"]
    assert "| method" in p.stdout and "Similarity scale" in p.stdout


def test_verify_peers_wild_fast(tmp_path):
    _, res = _run(["--protocol", "wild", "--no-peer", "--time-photos", "4"], tmp_path)
    if res is None:
        return
    ours = [r for r in res["rows"] if r["method"].startswith("fakeproof facenet")]
    assert len(ours) == 1 and 0 <= ours[0]["EER %"] < 50 and ours[0]["img/s"] > 0
    assert res["mtcnn"]["both detected"] > 0 and res["mtcnn"]["mean landmark distance / inter-ocular"] is not None
