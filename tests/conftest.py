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

# A torchvision wheel that does not match the installed torch breaks every transformers/diffusers
# model import ("operator torchvision::nms does not exist"). Neither library needs it: hide it.
try:  # pragma: no cover - depends on the environment
    import torchvision  # noqa: F401
except Exception:
    import sys

    sys.modules.pop("torchvision", None)
    sys.modules["torchvision"] = None  # importlib.util.find_spec("torchvision") -> None
