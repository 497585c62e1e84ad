"""infer export-onnx: ONNX Runtime matches torch (max |diff| <= 1e-4) on real aligned faces, the
batch axis is dynamic, the normalisation is documented in the metadata; --model model.onnx runs."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from fakeproof.engine import FaceEngine, get_encoder
from fakeproof.infer.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def encoder():
    return get_encoder("facenet")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export per test session, through the CLI."""
    out = tmp_path_factory.mktemp("onnx") / "facenet.onnx"
    r = runner.invoke(app, ["export-onnx", "--model", "facenet", "--out", str(out)], terminal_width=200)
    assert r.exit_code == 0, r.output
    return out, r.output


@pytest.fixture(scope="module")
def real_crops(encoder, group_photo, portrait_photo):
    eng = FaceEngine(encoder, device="cpu", use_cache=False)
    _, crops = eng.crops([group_photo, portrait_photo], progress=False)
    assert all(c is not None for c in crops)
    return np.stack(crops + [c[:, ::-1] for c in crops])


def test_onnx_runtime_matches_torch(exported, encoder, real_crops):
    from fakeproof.engine.onnx import ExportedOnnx

    path, _ = exported
    ort_enc = ExportedOnnx(path)
    ref = encoder.embed(real_crops)
    for bs in (1, 3, 32):  # the batch axis is dynamic
        got = ort_enc.embed(real_crops, batch_size=bs)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_metadata_documents_the_input(exported):
    path, output = exported
    m = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["fakeproof.format"] == "fakeproof-onnx/1"
    assert "prewhiten" in meta["fakeproof.normalisation"] or "standardisation" in meta["fakeproof.normalisation"]
    assert meta["fakeproof.input_size"] == "[160, 160]" and "uint8" in meta["fakeproof.input"]
    assert float(meta["fakeproof.parity_max_abs_diff"]) <= 1e-4
    assert float(meta["fakeproof.threshold"]) > 0
    inp = m.graph.input[0]
    assert inp.name == "crops" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert "max |diff|" in output


def test_model_onnx_file_plugs_into_the_engine(exported, encoder, real_crops):
    from fakeproof.infer.model import load_model

    path, _ = exported
    m = load_model(str(path), device="cpu")
    assert m.runtime == "onnx" and m.threshold_source == "onnx metadata"
    eng = FaceEngine(m.encoder, device="cpu", use_cache=False, flip=False)
    assert eng.crop_size == (160, 160) and eng.margin == pytest.approx(encoder.spec.align_margin)
    assert np.abs(eng.embed_crops(list(real_crops)) - encoder.embed(real_crops)).max() <= 1e-4
    bad = path.with_name("plain.onnx")
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="not exported by"):
        load_model(str(bad))
