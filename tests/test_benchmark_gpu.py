"""benchmarks/gpu.py in its CPU fast mode, as it will run on a bare GPU machine: rich, typer, PIL,
pandas and safetensors made unimportable (the script must need only torch, numpy, opencv and
onnxruntime), MTCNN weights from FAKEPROOF_MTCNN_DIR; JSON and markdown written; a missing GPU fails
clearly."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCK = "import sys; [sys.modules.__setitem__(m, None) for m in ('rich', 'typer', 'PIL', 'pandas', 'safetensors')]; "


def _run(args, tmp_path, env_extra=None):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env_extra or {})}
    code = BLOCK + "import runpy; sys.argv = ['benchmarks/gpu.py', *sys.argv[1:]]; runpy.run_path('benchmarks/gpu.py', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_gpu_benchmark_cpu_fast_mode_with_only_the_gpu_machines_packages(tmp_path, group_photo, portrait_photo):
    from fakeproof.engine.detect import mtcnn_weights
    from fakeproof.engine.encoders.dlib_resnet import CACHE_NAME, converted_state_dict
    from fakeproof.engine.paths import cache_home

    converted_state_dict()  # the converted weights exist in FAKEPROOF_HOME, as the lead carries them
    weights = cache_home() / "weights" / CACHE_NAME
    mtcnn = tmp_path / "mtcnn"
    mtcnn.mkdir()
    for p in mtcnn_weights().values():
        shutil.copy(p, mtcnn / p.name)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(group_photo, photos / "group.jpg")
    shutil.copy(portrait_photo, photos / "portrait.png")
    out = tmp_path / "out"
    p = _run(["--fast", "--device", "cpu", "--out", str(out), "--photos", str(photos), "--weights", str(weights)], tmp_path, {"FAKEPROOF_MTCNN_DIR": str(mtcnn)})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads((out / "gpu.json").read_text())
    kinds = {(r["what"], r.get("batch")) for r in res["rows"]}
    assert {("aligned crops", 1), ("aligned crops", 8), ("full pipeline", 8), ("training step", 4)} <= kinds
    pipe = next(r for r in res["rows"] if r["what"] == "full pipeline")
    assert pipe["photos"] == 2 and pipe["faces"] == 2 and pipe["img_s"] > 0
    assert all(r["img_s"] > 0 for r in res["rows"])
    assert "| aligned crops | fp32 | 8 |" in (out / "gpu.md").read_text()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_gpu_benchmark_says_clearly_when_there_is_no_gpu(tmp_path):
    p = _run(["--out", str(tmp_path / "o")], tmp_path)
    assert p.returncode == 2 and "sees no CUDA device" in p.stderr and not (tmp_path / "o").exists()
