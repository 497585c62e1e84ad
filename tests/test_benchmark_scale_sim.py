"""The scale simulation benchmark in its fast mode: 2 gloo ranks, 20 -> 200 identities x 4 fakes,
500 -> 5,000 stand-in embeddings; no duplicate, everything merged, growth ratios reported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def test_scale_sim_fast(tmp_path):
    out = tmp_path / "scale.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "160"}
    p = subprocess.run([sys.executable, "benchmarks/scale_sim.py", "--fast", "--json", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "scale simulation: 2 gloo ranks" in p.stdout
    res = json.loads(out.read_text())
    small, large = res["results"]
    for r, n in ((small, 20), (large, 200)):
        assert r["identities"] == n and r["rows"] == r["made"] == r["expected"] == 4 * n
        assert r["duplicates"] == 0 and r["rows_match_meta"] and r["missing_or_unlisted"] == 0 and not r["rank_journals_left"]
        assert r["merged_rows"] == 4 * n and r["plan_s"] > 0 and r["merge_s"] > 0
        assert r["embed_duplicates"] == 0 and r["embed_in_order"] and r["embed_max_abs_diff"] == 0.0
    assert set(res["growth"]) >= {"plan s (slowest rank)", "merge s (rank 0)", "embed gather+merge s (rank 0)"}
    assert all(v.endswith("x") or "x /" in v for v in res["growth"].values())
