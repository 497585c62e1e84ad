"""The encoder interface every registered face encoder implements.

An encoder is a torch module plus an :class:`EncoderSpec` that states, in one place, the crop it
expects (size, colour order) and how pixels are normalised. Nothing outside the encoder's own module
knows how its input is normalised: callers hand over aligned uint8 RGB crops of ``spec.input_size``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class WeightFile:
    """A weight file an encoder or generator needs: where it is expected and where to get it."""

    name: str
    path: Path | None
    licence: str
    source: str
    sha256: str | None = None
    ships_with: str | None = None  # the registry package that ships it, if any

    @property
    def present(self) -> bool:
        return self.path is not None and Path(self.path).exists()


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    input_size: tuple[int, int]  # (height, width) of the aligned crop
    color_order: str  # "RGB" or "BGR": the order the network's first layer expects
    normalisation: str  # human-readable formula, e.g. "(x/255-0.5)/0.5" or "per-image standardisation"
    embedding_dim: int
    licence: str
    source: str
    weights: tuple[WeightFile, ...] = field(default_factory=tuple)
    # extra context around the alignment template, as a fraction of the crop side (0 = tight template)
    align_margin: float = 0.0
    # the 5-point template the crop is aligned to: a name in fakeproof.engine.template.TEMPLATES
    template: str = "arcface"


def stack_crops(crops: Sequence[np.ndarray] | np.ndarray, spec: EncoderSpec) -> np.ndarray:
    """Aligned uint8 RGB crops (one (H, W, 3) or a sequence / (N, H, W, 3) array) as one contiguous
    (N, H, W, 3) array, checked against the encoder's input size."""
    arr = np.ascontiguousarray(np.stack(list(crops)) if not isinstance(crops, np.ndarray) else crops)
    if arr.ndim == 3:
        arr = arr[None]
    h, w = spec.input_size
    if arr.shape[1:3] != (h, w):
        raise ValueError(f"{spec.name} expects {h}x{w} crops, got {arr.shape[1]}x{arr.shape[2]}")
    return arr


def l2_normalise(e: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); all-zero rows stay zero."""
    e = np.asarray(e, np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def embed_in_batches(crops: Sequence[np.ndarray] | np.ndarray, batch_size: int, run: Callable[[Sequence[np.ndarray] | np.ndarray], np.ndarray], dim: int, normalise: bool = True) -> np.ndarray:
    """The one embedding loop of every encoder: ``run(batch)`` gives raw ``(n, D)`` embeddings of a
    batch of aligned crops; the result is float32 ``(N, D)``, L2-normalised unless ``normalise`` is
    False (the raw descriptor a Euclidean model card compares, :mod:`fakeproof.engine.cards`)."""
    arr = crops if isinstance(crops, np.ndarray) else list(crops)
    if isinstance(arr, np.ndarray) and arr.ndim == 3:
        arr = arr[None]
    out = []
    for i in range(0, len(arr), batch_size):
        batch = arr[i : i + batch_size]
        e = np.asarray(run(batch), np.float32).reshape(len(batch), -1)
        out.append(l2_normalise(e) if normalise else e)
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


class Encoder(torch.nn.Module):
    """Base class: subclasses implement :meth:`normalise` (uint8 RGB NHWC -> float NCHW) and
    :meth:`forward` (normalised NCHW -> raw embedding)."""

    spec: EncoderSpec
    # declared capabilities (read by fakeproof.engine.cards; subclasses override)
    is_onnx: bool = False  # runs on ONNX Runtime (inference only)
    mirrors_itself: bool = False  # averages the mirror image itself: the engine does not flip again
    fixed_geometry: bool = False  # its alignment margin cannot be changed
    card = None  # its ModelCard (fakeproof.engine.cards), attached by fakeproof.engine.resolve_model

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_input(self, crops: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Stack aligned uint8 RGB crops (H, W, 3) into the normalised NCHW tensor this encoder takes."""
        t = torch.from_numpy(stack_crops(crops, self.spec))
        if self.spec.color_order == "BGR":
            t = t.flip(-1)
        dev = next(self.parameters()).device
        return self.normalise(t.to(dev))

    @torch.no_grad()
    def embed(self, crops: Sequence[np.ndarray] | np.ndarray, batch_size: int = 32, normalise: bool = True) -> np.ndarray:
        """Float32 embeddings of aligned uint8 RGB crops, shape (N, D): L2-normalised, or the raw
        network output with ``normalise=False``."""
        was_training = self.training
        self.eval()
        try:
            return embed_in_batches(crops, batch_size, lambda b: self(self.to_input(b)).float().cpu().numpy(), self.spec.embedding_dim, normalise)
        finally:
            if was_training:
                self.train()
