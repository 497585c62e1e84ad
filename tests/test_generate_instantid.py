"""instantid adapter end to end on tiny random stand-ins saved in the real InstantID layout.

MODELS/stable-diffusion-xl-base-1.0 (diffusers SDXL folder: text_time UNet, VAE, two CLIP text
encoders + tokenizers, Euler scheduler), MODELS/instantid/ControlNetModel (an SDXL ControlNet),
MODELS/instantid/ip-adapter.bin (``{"image_proj": Resampler weights, "ip_adapter": "1.to_k_ip.weight",
...}`` with InstantID's own key names, written from a port of InstantID's ``Resampler``) and
MODELS/antelopev2/glintr100.onnx (1x3x112x112 -> 1x512)."""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from fakeproof.data import read_meta
from fakeproof.engine import load_rgb
from fakeproof.generate.runner import generate_deepfakes

torch = pytest.importorskip("torch")
nn = torch.nn

from _diffusion_fixtures import tiny_text_encoder, tiny_tokenizer, tiny_vae  # noqa: E402

pytestmark = pytest.mark.slow

TEXT_WIDTH = 32  # each CLIP text encoder; the UNet's cross-attention width is the two concatenated


# -- InstantID's ip_adapter/resampler.py (the module ip-adapter.bin's "image_proj" was saved from) ----
def _feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    inner = int(dim * mult)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(), nn.Linear(inner, dim, bias=False))


def _heads(x, heads: int):
    bs, length, _ = x.shape
    return x.view(bs, length, heads, -1).transpose(1, 2).reshape(bs, heads, length, -1)


class PerceiverAttention(nn.Module):
    def __init__(self, *, dim: int, dim_head: int = 64, heads: int = 8):
        super().__init__()
        self.dim_head, self.heads = dim_head, heads
        inner = dim_head * heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, latents):
        x = self.norm1(x)
        latents = self.norm2(latents)
        b, n, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)
        q, k, v = (_heads(t, self.heads) for t in (q, k, v))
        scale = 1 / math.sqrt(math.sqrt(self.dim_head))
        w = torch.softmax(((q * scale) @ (k * scale).transpose(-2, -1)).float(), dim=-1).type(q.dtype)
        return self.to_out((w @ v).permute(0, 2, 1, 3).reshape(b, n, -1))


class Resampler(nn.Module):
    def __init__(self, dim=1024, depth=8, dim_head=64, heads=16, num_queries=8, embedding_dim=768, output_dim=1024, ff_mult=4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            [nn.ModuleList([PerceiverAttention(dim=dim, dim_head=dim_head, heads=heads), _feed_forward(dim, ff_mult)]) for _ in range(depth)]
        )

    def forward(self, x):
        latents = self.latents.repeat(x.size(0), 1, 1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


def tiny_resampler(cross_attention_dim: int) -> Resampler:
    """InstantID's ``Resampler(dim=1280, depth=4, dim_head=64, heads=20, num_queries=16,
    embedding_dim=512, output_dim=unet cross_attention_dim)``, narrower (dim 16, 1 head)."""
    torch.manual_seed(3)
    r = Resampler(dim=16, depth=4, dim_head=64, heads=1, num_queries=16, embedding_dim=512, output_dim=cross_attention_dim, ff_mult=4)
    with torch.no_grad():
        for p in r.parameters():  # LayerNorms off their 1/0 init, so a wrong mapping shows
            p.add_(torch.randn_like(p) * 0.05)
    return r.eval()


def ip_adapter_weights(unet) -> dict:
    """The decoupled cross-attention of every attn2 processor, keyed by its index in
    ``unet.attn_processors`` (attn1 processors have no weights), as InstantID saves them."""
    g = torch.Generator().manual_seed(4)
    out = {}
    for i, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            hidden = unet.get_submodule(name[: -len(".processor")]).to_q.in_features
            ctx = unet.config.cross_attention_dim
            out[f"{i}.to_k_ip.weight"] = torch.randn(hidden, ctx, generator=g) * 0.2
            out[f"{i}.to_v_ip.weight"] = torch.randn(hidden, ctx, generator=g) * 0.2
    return out


def tiny_sdxl_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4, norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 2),
        cross_attention_dim=2 * TEXT_WIDTH, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + TEXT_WIDTH,  # 6 time ids x 8 + text_encoder_2's projection
    )


def build_instantid_models(md: Path) -> Resampler:
    """Write the four InstantID weight locations under ``md``; returns the resampler ip-adapter.bin holds."""
    from diffusers import ControlNetModel, EulerDiscreteScheduler, StableDiffusionXLPipeline

    from test_generate_swappers import make_recogniser

    tok = tiny_tokenizer()
    unet = tiny_sdxl_unet()
    StableDiffusionXLPipeline(
        vae=tiny_vae(), text_encoder=tiny_text_encoder(TEXT_WIDTH, len(tok), seed=0), tokenizer=tok,
        text_encoder_2=tiny_text_encoder(TEXT_WIDTH, len(tok), with_projection=True, projection_dim=TEXT_WIDTH, seed=1), tokenizer_2=tok,
        unet=unet, scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"),
    ).save_pretrained(md / "stable-diffusion-xl-base-1.0")

    # IdentityNet: an SDXL ControlNet; conditioning embedding downsamples by the VAE factor (2 here, 8 in SDXL)
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    torch.manual_seed(5)
    with torch.no_grad():  # a trained IdentityNet, not the zero-initialised one from_unet gives
        for m in [*cn.controlnet_down_blocks, cn.controlnet_mid_block, cn.controlnet_cond_embedding.conv_out]:
            for p in m.parameters():
                p.copy_(torch.randn_like(p) * 0.5)
    cn.save_pretrained(md / "instantid" / "ControlNetModel")

    resampler = tiny_resampler(unet.config.cross_attention_dim)
    torch.save({"image_proj": resampler.state_dict(), "ip_adapter": ip_adapter_weights(unet)}, md / "instantid" / "ip-adapter.bin")
    make_recogniser(md / "antelopev2" / "glintr100.onnx", seed=7)
    return resampler


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and spinning OpenMP workers on a busy
    machine make each 2-step generation 50x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def instantid_models(tmp_path_factory) -> tuple[Path, Resampler]:
    md = tmp_path_factory.mktemp("models")
    return md, build_instantid_models(md)


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory) -> Path:
    from fakeproof.sample_data import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("sample"), photos_per_identity=3, identities=3)


@pytest.fixture(scope="module")
def backend(instantid_models):
    from fakeproof.generate.backends.instantid import InstantIDBackend

    b = InstantIDBackend(steps=2)
    b.load(instantid_models[0], "cpu")
    return b


def _photo(root: Path, key: str) -> np.ndarray:
    return load_rgb(root / "images" / key).rgb


def test_ip_adapter_bin_becomes_diffusers_resampler_and_attention(instantid_models, backend):
    """load_ip_adapter turned InstantID's Resampler into the UNet's image projection (same function)
    and put the to_k_ip/to_v_ip weights into every cross-attention."""
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    md, reference = instantid_models
    unet = backend.pipe.unet
    proj = unet.encoder_hid_proj.image_projection_layers[0]
    x = torch.randn(2, 1, 512, generator=torch.Generator().manual_seed(0)) * 5
    with torch.no_grad():
        assert torch.allclose(proj(x), reference(x), atol=1e-5)
    saved = torch.load(md / "instantid" / "ip-adapter.bin", weights_only=True)["ip_adapter"]
    cross = [(i, p) for i, (n, p) in enumerate(unet.attn_processors.items()) if n.endswith("attn2.processor")]
    assert len(cross) == 8  # down 1x2 + mid 2 + up 2x2 transformer layers
    for i, p in cross:
        assert isinstance(p, IPAdapterAttnProcessor2_0) and p.scale == [backend.ip_scale]
        assert torch.equal(p.to_k_ip[0].weight, saved[f"{i}.to_k_ip.weight"]) and torch.equal(p.to_v_ip[0].weight, saved[f"{i}.to_v_ip.weight"])


def test_instantid_generates_deterministically(backend, sample_root):
    src, tgt = _photo(sample_root, "person_01/0.jpg"), _photo(sample_root, "person_02/0.jpg")
    a1 = backend.make(src, tgt, seed=1)
    a2 = backend.make(src, tgt, seed=1)
    a3 = backend.make(src, tgt, seed=2)
    assert a1.shape == (32, 32, 3) and a1.dtype == np.uint8  # longer side: sample_size 16 x vae factor 2
    assert a1.std() > 1  # an image, not a constant
    assert np.array_equal(a1, a2) and not np.array_equal(a1, a3)
    assert backend.last_info["size"] == "32x32" and backend.last_info["steps"] == 2


def test_source_identity_and_target_keypoints_shape_the_fake(backend, sample_root):
    from fakeproof.generate.backends.base import BackendError

    src, tgt = _photo(sample_root, "person_01/0.jpg"), _photo(sample_root, "person_02/0.jpg")
    base = backend.make(src, tgt, seed=1)
    other_source = backend.make(_photo(sample_root, "person_03/0.jpg"), tgt, seed=1)
    other_target = backend.make(src, _photo(sample_root, "person_03/1.jpg"), seed=1)
    assert np.abs(base.astype(int) - other_source).mean() > 0.5  # the ArcFace embedding enters
    assert np.abs(base.astype(int) - other_target).mean() > 0.1  # the target's keypoint image enters
    tall = backend.make(src, tgt[:, 32:224], seed=1)  # 256x192 target: the canvas keeps its aspect
    assert tall.shape == (32, 16, 3) and backend.last_info["size"] == "16x32"
    with pytest.raises(BackendError, match="target"):
        backend.make(src, None, seed=1)


def test_instantid_in_the_runner(instantid_models, sample_root, tmp_path):
    md, _ = instantid_models
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    rep = generate_deepfakes(root, ["instantid"], per_identity=1, models_dir=md, seed=0, progress=False, backend_kwargs={"instantid": {"steps": 2}})
    assert rep.made == 3 and rep.failed == 0, rep.errors
    rows = list(csv.DictReader((root / "fakes.csv").open()))
    assert len(rows) == 3 and all(r["backend"] == "instantid" for r in rows)
    meta = read_meta(root / "meta.json")
    for r in rows:
        assert meta[r["key"]] == 1 and r["key"].startswith(r["identity"] + "/")
        assert r["source_key"].startswith(r["identity"] + "/") and r["target_key"] and not r["target_key"].startswith(r["identity"] + "/")
        assert all(f in r["weights"] for f in ("diffusion_pytorch_model.safetensors:", "ip-adapter.bin:", "glintr100.onnx:", "model_index.json:"))
        assert json.loads(r["params"])["steps"] == 2
        assert load_rgb(root / "images" / r["key"]).rgb.shape == (32, 32, 3)
    assert sum(v == 0 for v in meta.values()) == 9  # the real photos are untouched
