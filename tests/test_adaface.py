"""AdaFace IR encoders: loading AdaFace's Lightning checkpoint format, input convention, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fakeproof.engine.encoders import encoder_names, encoder_spec, get_encoder
from fakeproof.engine.encoders.adaface import AdaFaceEncoder, IRBackbone


class NotAllowed:
    """An arbitrary class: weights_only loading must refuse to unpickle it."""


def _lightning_ckpt(path, depth=18, seed=0, **extra) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = IRBackbone(depth)
    with torch.no_grad():  # non-trivial BN statistics, as a trained model has
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    sd = net.state_dict()
    state = {"model." + k: v for k, v in sd.items()}
    state["head.kernel"] = torch.randn(512, 10)
    torch.save({"epoch": 3, "global_step": 100, "pytorch-lightning_version": "1.8.6",
                "state_dict": state, "hyper_parameters": {"arch": f"ir_{depth}", "m": 0.4}, **extra}, path)
    return sd


def test_registered():
    assert {"adaface_ir18", "adaface_ir50", "adaface_ir101"} <= set(encoder_names())
    s = encoder_spec("adaface_ir101", models_dir="/nonexistent")
    assert s.input_size == (112, 112) and s.color_order == "BGR" and s.embedding_dim == 512
    assert str(s.weights[0].path) == "/nonexistent/adaface/adaface_ir101_webface12m.ckpt"
    assert not s.weights[0].present


def test_unit_counts():
    from fakeproof.engine.encoders.adaface import BasicBlockIR

    for depth, n in ((18, 8), (50, 24), (101, 49)):
        assert sum(isinstance(m, BasicBlockIR) for m in IRBackbone(depth).body) == n


def test_loads_lightning_checkpoint(tmp_path):
    path = tmp_path / "ir18.ckpt"
    sd = _lightning_ckpt(path)
    enc = get_encoder("adaface_ir18", weights=path)
    assert isinstance(enc, AdaFaceEncoder) and not enc.training
    got = enc.net.state_dict()
    assert got.keys() == sd.keys()  # strict: every key matched, head.* ignored
    assert all(torch.equal(got[k], sd[k]) for k in sd)

    crops = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    emb = enc.embed(crops, batch_size=2)
    assert emb.shape == (5, 512) and emb.dtype == np.float32
    assert np.isfinite(emb).all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

    with torch.no_grad():
        x = enc.to_input(crops)
        raw = enc(x)
        unit, norm = enc.forward_with_norm(x)
    assert raw.shape == (5, 512) and norm.shape == (5, 1)
    torch.testing.assert_close(unit * norm, raw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(unit.numpy(), emb, atol=1e-5)


def test_bgr_input_and_normalisation(tmp_path):
    path = tmp_path / "ir18.ckpt"
    _lightning_ckpt(path)
    enc = get_encoder("adaface_ir18", weights=path)
    red = np.zeros((1, 112, 112, 3), np.uint8)
    red[..., 0] = 255  # RGB red
    x = enc.to_input(red)
    assert x.shape == (1, 3, 112, 112)
    assert torch.all(x[:, 2] == 1.0) and torch.all(x[:, 0] == -1.0)  # channel 2 is R in BGR order


def test_plain_state_dict_and_trainable(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(IRBackbone(18).state_dict(), path)
    enc = get_encoder("adaface_ir18", weights=path).train()
    x = torch.randn(2, 3, 112, 112)
    enc(x).pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_missing_file_error(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        get_encoder("adaface_ir101", models_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "adaface" / "adaface_ir101_webface12m.ckpt") in msg
    assert "github.com/mk-minchul/AdaFace" in msg
    with pytest.raises(FileNotFoundError, match="adaface_ir50_ms1mv2.ckpt"):
        get_encoder("adaface_ir50", models_dir=tmp_path)


def test_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    _lightning_ckpt(path, extra_object=NotAllowed())
    with pytest.raises(ValueError, match="weights_only") as e:
        get_encoder("adaface_ir18", weights=path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_wrong_depth_is_reported(tmp_path):
    path = tmp_path / "ir18.ckpt"
    _lightning_ckpt(path)
    with pytest.raises(ValueError, match="does not fit AdaFace IR-50"):
        get_encoder("adaface_ir50", weights=path)
