"""Shared test setup: an isolated, persistent fakeproof home (converted weights, engine caches)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("FAKEPROOF_HOME", str(REPO / ".cache" / "test-home"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(REPO / ".cache" / "test-home" / "fiftyone-db"))
from fakeproof.fiftyone_env import prepare_fiftyone_env  # noqa: E402

prepare_fiftyone_env()  # tests import fiftyone directly too


def package_image(name: str) -> Path:
    """A real photo that an installed dependency ships (insightface's sample images)."""
    import insightface

    p = Path(insightface.__file__).parent / "data" / "images" / name
    assert p.exists(), p
    return p


@pytest.fixture(scope="session")
def group_photo() -> Path:
    return package_image("t1.jpg")


@pytest.fixture(scope="session")
def portrait_photo() -> Path:
    return package_image("Tom_Hanks_54745.png")


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> Path:
    """The shared small dataset in the training layout (4 identities x 3 real photos, made from the
    photos installed packages ship: :func:`fakeproof.sample_data.make_sample_dataset`). Read-only:
    a test that writes into a dataset takes ``dataset_copy``."""
    from fakeproof.sample_data import make_sample_dataset

    return make_sample_dataset(tmp_path_factory.mktemp("sample"), photos_per_identity=3, identities=4)


@pytest.fixture
def dataset_copy(sample_dataset, tmp_path) -> Path:
    """A private copy of :func:`sample_dataset` at ``tmp_path/ds`` that a test may change."""
    import shutil

    return Path(shutil.copytree(sample_dataset, tmp_path / "ds"))


@pytest.fixture(scope="session")
def train_dataset(tmp_path_factory) -> Path:
    """The shared training dataset: every sample identity x 3 real photos (192 px) + 1 deepfake each
    (``tests/train_helpers.make_train_dataset``), built once per session. Read-only (``train run``
    writes only into its --out); a test that changes it copies it first."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from train_helpers import make_train_dataset

    root, _ = make_train_dataset(tmp_path_factory.mktemp("train_ds") / "ds", photos=3, fakes=1)
    return root


@pytest.fixture(scope="session")
def two_family_dataset(tmp_path_factory) -> Path:
    """The sample identities x 3 real photos (192 px) + 2 deepfakes each from two offline generator
    families (classic, selfblend), with fakes.csv: what family-aware training and the artefact head
    need. Built once per session; read-only."""
    from fakeproof.generate.runner import generate_deepfakes
    from fakeproof.sample_data import make_sample_dataset

    root = make_sample_dataset(tmp_path_factory.mktemp("two_family") / "ds", photos_per_identity=3, seed=0, size=192)
    assert generate_deepfakes(root, ["classic", "selfblend"], per_identity=2, seed=0, progress=False).failed == 0
    return root


@pytest.fixture(scope="session")
def ir18_ckpt(tmp_path_factory) -> Path:
    """A random AdaFace IR-18 checkpoint in the AdaFace Lightning format ({"state_dict": {"model.<key>":
    tensor}}, seed 0): the quick trainable stand-in for a stock encoder."""
    import torch

    from fakeproof.engine.encoders.adaface import IRBackbone

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "adaface_ir18_random.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in IRBackbone(18).state_dict().items()}}, path)
    return path

# A torchvision wheel that does not match the installed torch breaks every transformers/diffusers
# model import ("operator torchvision::nms does not exist"). Neither library needs it: hide it.
try:  # pragma: no cover - depends on the environment
    import torchvision  # noqa: F401
except Exception:
    import sys

    sys.modules.pop("torchvision", None)
    sys.modules["torchvision"] = None  # importlib.util.find_spec("torchvision") -> None
