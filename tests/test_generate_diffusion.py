"""arc2face (and instantid) adapters on tiny random diffusers components saved in the real layouts."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from fakeproof.engine import load_rgb
from fakeproof.generate.backends.arc2face import Arc2FaceBackend
from fakeproof.generate.runner import generate_deepfakes

torch = pytest.importorskip("torch")

from _diffusion_fixtures import tiny_text_encoder, tiny_tokenizer, tiny_vae  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def arc2face_models(tmp_path_factory) -> Path:
    return build_arc2face_models(tmp_path_factory.mktemp("models"))


def build_arc2face_models(md: Path) -> Path:
    """MODELS/arc2face/{arc2face,encoder,arcface.onnx} + MODELS/stable-diffusion-v1-5, all tiny."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    from test_generate_swappers import make_recogniser

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4, norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=512, attention_head_dim=4,
    )
    base = StableDiffusionPipeline(
        vae=tiny_vae(), text_encoder=tiny_text_encoder(512, len(tok)), tokenizer=tok, unet=unet,
        scheduler=PNDMScheduler(skip_prk_steps=True), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    base.save_pretrained(md / "stable-diffusion-v1-5")
    unet.save_pretrained(md / "arc2face" / "arc2face")
    tiny_text_encoder(512, len(tok)).save_pretrained(md / "arc2face" / "encoder")
    make_recogniser(md / "arc2face" / "arcface.onnx", seed=7)
    return md


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory) -> Path:
    from fakeproof.sample_data import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("sample"), photos_per_identity=2, identities=2)


def test_arc2face_generates_deterministically(arc2face_models, sample_root):
    b = Arc2FaceBackend(steps=2)
    b.load(arc2face_models, "cpu")
    src = load_rgb(sample_root / "images" / "person_01" / "0.jpg").rgb
    a1 = b.make(src, None, seed=1)
    a2 = b.make(src, None, seed=1)
    a3 = b.make(src, None, seed=2)
    assert a1.shape == (16, 16, 3) and a1.dtype == np.uint8  # sample_size 8 x vae factor 2
    assert np.array_equal(a1, a2) and not np.array_equal(a1, a3)


def test_arc2face_identity_replaces_only_the_id_token(arc2face_models):
    b = Arc2FaceBackend(steps=2)
    b.load(arc2face_models, "cpu")
    rng = np.random.default_rng(0)
    e1, e2 = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 512)).astype(np.float32))
    p1, p2 = b.prompt_embeds(e1), b.prompt_embeds(e2)
    ids = b.pipe.tokenizer("photo of a id person", padding="max_length", max_length=16, truncation=True, return_tensors="pt").input_ids[0]
    pos = int((ids == b.id_token).nonzero()[0])
    assert p1.shape == (1, 16, 512)
    assert torch.allclose(p1[0, :pos], p2[0, :pos])  # causal text encoder: tokens before 'id' unchanged
    assert not torch.allclose(p1[0, pos:], p2[0, pos:])  # the identity enters at 'id' and after


def test_arc2face_in_the_runner(arc2face_models, sample_root, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(sample_root, root)
    rep = generate_deepfakes(root, ["arc2face"], per_identity=1, models_dir=arc2face_models, seed=0, progress=False, backend_kwargs={"arc2face": {"steps": 2}})
    assert rep.made == 2 and rep.failed == 0
    rows = list(csv.DictReader((root / "fakes.csv").open()))
    assert all(r["target_key"] == "" and r["backend"] == "arc2face" for r in rows)
    assert all("arcface.onnx:" in r["weights"] for r in rows)
    assert load_rgb(root / "images" / rows[0]["key"]).rgb.shape == (16, 16, 3)


def test_instantid_keypoint_condition_and_missing_weights(tmp_path):
    """The InstantID parts that run without SDXL: the IdentityNet keypoint image and fail-fast loading."""
    from fakeproof.generate.backends.base import MissingWeightsError
    from fakeproof.generate.backends.instantid import KPS_COLOURS, InstantIDBackend, canvas_size, draw_keypoints

    kps = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float32)
    img = draw_keypoints((100, 120), kps)
    assert img.shape == (120, 100, 3) and img.dtype == np.uint8
    for (x, y), c in zip(kps.astype(int), KPS_COLOURS):
        assert tuple(img[y, x]) == c  # a dot of the point's colour on each keypoint
    assert img[5, 5].sum() == 0
    assert canvas_size(480, 640, 1024, 64) == (1024, 768)
    with pytest.raises(MissingWeightsError) as ei:
        InstantIDBackend().load(tmp_path, "cpu")
    assert all(n in str(ei.value) for n in ("ControlNetModel", "ip-adapter.bin", "glintr100.onnx", "stable-diffusion-xl-base-1.0"))
