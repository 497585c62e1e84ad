"""Helpers the diffusion backends share: dtype per device, a seeded generator, the id embedding."""
from __future__ import annotations

import numpy as np

from ..faces import shared_finder


def torch_dtype(device: str):
    import torch

    return torch.float16 if device.startswith("cuda") else torch.float32


def generator(seed: int):
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed) & 0x7FFFFFFF)


def identity_embedding(recogniser, source_rgb: np.ndarray, normalise: bool) -> tuple[np.ndarray, object]:
    """ArcFace embedding of the main face of ``source_rgb`` (and the face found)."""
    face = shared_finder().main_face(source_rgb, "source photo")
    e = recogniser.embed_face(source_rgb, face.landmarks)
    if normalise:
        e = e / max(float(np.linalg.norm(e)), 1e-12)
    return e.astype(np.float32), face


def to_uint8(image: np.ndarray) -> np.ndarray:
    """diffusers ``output_type="np"`` (H, W, 3) floats in [0, 1] -> uint8 RGB."""
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
