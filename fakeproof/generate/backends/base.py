"""The one interface every deepfake backend implements.

A backend declares the weight files it needs (:meth:`Backend.weight_files`), loads them once
(:meth:`Backend.load`) and then makes fakes: :meth:`Backend.make` takes the SOURCE photo (whose
identity the fake must carry) and the TARGET photo (pose, background and light for swappers; only
the face layout for keypoint-conditioned diffusion; ignored by prompt-only diffusion) and returns
an RGB uint8 image. ``last_info`` holds the per-fake settings the provenance table records.
"""
from __future__ import annotations

from ...errors import EXIT_MISSING, FakeproofError

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ...engine.encoders.base import WeightFile


class BackendError(FakeproofError, RuntimeError):
    """One fake could not be made (no face, bad weights...): the message says why in one line."""


class MissingWeightsError(FakeproofError, RuntimeError):
    """Weight files a backend needs are not in the models folder (exit 3)."""

    exit_code = EXIT_MISSING

    def __init__(self, missing: list[tuple[str, WeightFile]]):
        self.missing = missing
        lines = [f"  {b}: {w.name} expected at {w.path} -- get it from {w.source} (licence: {w.licence})" for b, w in missing]
        super().__init__("missing weight files:\n" + "\n".join(lines))


class Backend(ABC):
    """Base class. ``uses_target``: whether the target photo shapes the fake (False = prompt only)."""

    name: str = "?"
    description: str = ""
    uses_target: bool = True
    needs_weights: bool = True

    def __init__(self) -> None:
        self.last_info: dict = {}
        self.loaded = False

    # -- weights ---------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def weight_files(cls, models_dir: Path) -> list[WeightFile]:
        """Every file this backend needs under ``models_dir``, with licence and where to get it."""

    @classmethod
    def missing(cls, models_dir: Path) -> list[WeightFile]:
        return [w for w in cls.weight_files(Path(models_dir)) if not w.present]

    # -- work ------------------------------------------------------------------------------------
    @abstractmethod
    def load(self, models_dir: Path, device: str = "cpu") -> None:
        """Load the weights (raise :class:`MissingWeightsError` naming every missing file)."""

    @abstractmethod
    def make(self, source_rgb: np.ndarray, target_rgb: np.ndarray | None, seed: int) -> np.ndarray:
        """A fake with the identity of ``source_rgb``; deterministic for a given ``seed``."""

    def _require(self, models_dir: Path) -> list[WeightFile]:
        ws = self.weight_files(Path(models_dir))
        miss = [w for w in ws if not w.present]
        if miss:
            raise MissingWeightsError([(self.name, w) for w in miss])
        return ws


def ort_session(path: Path, device: str = "cpu"):
    """An ONNX Runtime session of a generator model (:func:`fakeproof.engine.onnx.session`)."""
    from ...engine.onnx import session

    try:
        return session(path, device)
    except ValueError as e:
        raise BackendError(str(e)) from None


def arcface_recogniser(path: Path, device: str = "cpu"):
    """The ArcFace recogniser a swapper or diffusion model was trained with (buffalo_l ``w600k_r50.onnx``,
    antelopev2 ``glintr100.onnx``, Arc2Face's ``arcface.onnx``): the engine's ``onnx:PATH`` encoder
    (:class:`fakeproof.engine.onnx.ArcFaceOnnx`), whose ``embed_face(rgb, landmarks5)`` gives the RAW
    embedding a generator's identity condition expects (Ghost's converter takes it unnormalised)."""
    from ...engine.onnx import ArcFaceOnnx

    try:
        return ArcFaceOnnx(path, device)
    except (ValueError, FileNotFoundError) as e:
        raise BackendError(str(e)) from None
