"""benchmarks/curate_scale.py --clean --fast: `curate clean` itself on a Kryptonite-format dataset of
stand-in images whose embeddings sit in the engine cache: every embedding is a cache hit (none is
computed) and the graph stage is timed against its 10 s target."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_curate_clean_at_scale_fast(tmp_path):
    meta = {f"{p:06d}/{k}.jpg": int(k >= 6) for p in range(120) for k in range(9)}  # Kryptonite layout: 6 real + 3 fakes each
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    env = {**os.environ, "COLUMNS": "200", "FAKEPROOF_HOME": os.environ.get("FAKEPROOF_HOME", str(Path.home() / ".cache" / "fakeproof"))}
    cmd = [sys.executable, "benchmarks/curate_scale.py", "--clean", "--fast", "--meta", str(tmp_path / "meta.json"), "--work", str(tmp_path / "w")]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["keys"] == len(meta) and res["cache"]["emb_hits"] == len(meta) and res["cache"]["emb_misses"] == 0
    assert 0 < res["graph_s"] <= 10 and res["clean_s"] > res["graph_s"]
    assert (tmp_path / "w" / "dataset" / "curation" / "flags.csv").exists()
    assert "graph and flagging (target <= 10 s)" in p.stdout
