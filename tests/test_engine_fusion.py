"""``fusion:`` encoders and the engine's test-time flip, on real faces packages ship."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fakeproof.engine import FaceEngine, get_encoder
from fakeproof.engine.encoders import encoder_spec, resolve_encoder_name
from fakeproof.engine.encoders.fusion import FusionEncoder, parse_fusion


def test_parse_fusion_normalises_weights_and_rejects_bad_names():
    assert parse_fusion("fusion:0.3*facenet+0.7*facenet") == [("facenet", pytest.approx(0.3)), ("facenet", pytest.approx(0.7))]
    assert parse_fusion("fusion:facenet+onnx:/m/w600k_r50.onnx") == [("facenet", 0.5), ("onnx:/m/w600k_r50.onnx", 0.5)]
    for bad in ("fusion:facenet", "fusion:-1*facenet+facenet", "fusion:0*facenet+facenet", "fusion:+facenet"):
        with pytest.raises(ValueError):
            parse_fusion(bad)
    with pytest.raises(KeyError):
        get_encoder("fusion:facenet+no_such_encoder")


@pytest.fixture(scope="module")
def fusion():
    return get_encoder("fusion:0.25*facenet+0.75*facenet")


@pytest.fixture(scope="module")
def photos(group_photo, portrait_photo):
    import matplotlib.cbook

    return [group_photo, portrait_photo, matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)]


def test_fusion_cosine_is_the_weighted_mean_of_its_parts(fusion, photos):
    assert isinstance(fusion, FusionEncoder)
    s = fusion.spec
    assert s.embedding_dim == 1024 and s.input_size[0] >= 160
    eng = FaceEngine(fusion, device="cpu", use_cache=False, flip=False)
    emb = eng.embed_paths(photos, progress=False).embeddings
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    a, b = emb[[0, 0, 1]], emb[[1, 2, 2]]
    parts = fusion.part_cosines(a, b)
    np.testing.assert_allclose((a * b).sum(1), parts @ np.array(fusion.weights), atol=1e-5)
    # each part sees (nearly) the crop the engine would give it directly: resampled from the
    # super crop vs aligned straight from the photo
    direct = FaceEngine("facenet", device="cpu", use_cache=False, flip=False).embed_paths(photos, progress=False).embeddings
    np.testing.assert_allclose(parts[:, 0], (direct[[0, 0, 1]] * direct[[1, 2, 2]]).sum(1), atol=0.03)


@pytest.mark.slow
def test_fusion_trains_its_parts_and_exports_to_onnx(fusion, tmp_path):
    from fakeproof.infer.onnx_export import export_onnx

    crops = np.random.default_rng(0).integers(0, 256, (2, *fusion.spec.input_size, 3), dtype=np.uint8)
    model = get_encoder("fusion:0.25*facenet+0.75*facenet")
    model.train()
    e = torch.nn.functional.normalize(model(model.to_input(crops)), dim=1)
    (1 - e[0] @ e[1]).backward()
    assert all(p.grad is not None for p in model.parts[0].parameters() if p.requires_grad)
    rep = export_onnx(fusion, tmp_path / "fusion.onnx")
    assert rep.max_abs_diff <= 1e-4


def test_flip_averages_the_mirror_embedding(portrait_photo):
    on = FaceEngine("facenet", device="cpu", use_cache=False, flip=True)
    off = FaceEngine(on.encoder, device="cpu", use_cache=False, flip=False)
    recs, crops = off.crops([portrait_photo], progress=False)
    plain = off.embed_crops(crops)
    mirror = off.embed_crops([np.ascontiguousarray(crops[0][:, ::-1])])
    want = plain + mirror
    want /= np.linalg.norm(want)
    np.testing.assert_allclose(on.embed_crops(crops), want, atol=1e-5)
    assert float((plain @ mirror.T)[0, 0]) < 0.9999  # the mirror really is another view


def test_auto_names_a_concrete_encoder(tmp_path):
    name = resolve_encoder_name("auto", models_dir=tmp_path)  # an empty models folder: no AdaFace
    assert name != "auto" and encoder_spec(name) is not None
    assert encoder_spec("auto", models_dir=tmp_path).name == encoder_spec(name).name
