"""``fusion:`` encoders: several encoders behind one, their L2-normalised embeddings concatenated.

``fusion:0.3*facenet+0.7*dlib_resnet`` embeds a face with each part and returns
``concat(sqrt(w_i) * e_i)`` with the weights summing to 1, so the result is unit-length and its
cosine similarity is exactly the weighted mean of the parts' cosines. Weights default to equal
(``fusion:facenet+dlib_resnet``).

Parts want different crops (FaceNet 160 px with a margin on the ArcFace template, dlib a 150 px
chip of its own geometry). The engine still makes ONE aligned crop per photo: a "super crop" on the
ArcFace template, wide and sharp enough for every part, and each part's crop is resampled from it
inside :meth:`FusionEncoder.forward` through a fixed sampling grid (``grid_sample``, bilinear).
Both are similarity warps fitted to the same five landmarks, so the composition is the fixed
similarity between the two templates; this keeps caching, training (the torch parts are trained
together) and ONNX export (the grid is a constant) one-crop-per-photo.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import InputError
from ..align import similarity_transform
from ..template import ARCFACE_TEMPLATE, ARCFACE_TEMPLATE_SIZE, encoder_template, template_for
from .base import Encoder, EncoderSpec

PREFIX = "fusion:"


def parse_fusion(name: str) -> list[tuple[str, float]]:
    """``fusion:0.3*a+0.7*b`` -> ``[("a", 0.3), ("b", 0.7)]`` (weights normalised to sum 1)."""
    if not name.startswith(PREFIX):
        raise InputError(f"not a fusion encoder name: {name!r}")
    parts = []
    for chunk in name[len(PREFIX):].split("+"):
        weight, _, part = chunk.strip().rpartition("*") if "*" in chunk else ("1", "", chunk.strip())
        try:
            w = float(weight)
        except ValueError:
            w = float("nan")
        if not part.strip() or not math.isfinite(w) or w <= 0:
            raise InputError(f"{name!r}: cannot read part {chunk!r} (expected [WEIGHT*]ENCODER with a positive weight, e.g. fusion:0.3*facenet+0.7*dlib_resnet)")
        parts.append((part.strip(), w))
    if len(parts) < 2:
        raise InputError(f"{name!r}: a fusion needs at least two parts joined by '+'")
    total = sum(w for _, w in parts)
    return [(n, w / total) for n, w in parts]


def fusion_name(parts: list[tuple[str, float]]) -> str:
    """The canonical name of a fusion (weights with up to 3 decimals)."""
    return PREFIX + "+".join(f"{w:.3g}*{n}" for n, w in parts)


def super_crop_geometry(specs: list[EncoderSpec]) -> tuple[int, float]:
    """(side, margin) of the ArcFace-template crop that contains every part's crop at no lower
    resolution than the part's own."""
    need_margin, need_scale = 0.0, 0.0
    for s in specs:
        h, w = s.input_size
        # part crop px -> ArcFace template px (112 space)
        m = similarity_transform(encoder_template(s), ARCFACE_TEMPLATE)
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
        half = np.abs(corners - ARCFACE_TEMPLATE_SIZE / 2.0).max()
        need_margin = max(need_margin, half / ARCFACE_TEMPLATE_SIZE - 0.5)
        need_scale = max(need_scale, 1.0 / scale)  # part px per template px
    margin = round(max(need_margin, 0.0) + 0.02, 3)
    side = int(math.ceil(need_scale * ARCFACE_TEMPLATE_SIZE * (1 + 2 * margin) / 8.0) * 8)
    return side, margin


def sampling_grid(part: EncoderSpec, side: int, margin: float) -> torch.Tensor:
    """The (1, H, W, 2) ``grid_sample`` grid that resamples a part's crop out of the super crop."""
    h, w = part.input_size
    m = similarity_transform(encoder_template(part), template_for(side, margin))  # part px -> super px
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    pts = np.stack([xs, ys, np.ones_like(xs)], -1) @ m.T  # pixel centres
    grid = (2.0 * pts + 1.0) / side - 1.0  # align_corners=False convention
    return torch.from_numpy(grid.astype(np.float32))[None]


class FusionEncoder(Encoder):
    """Weighted concatenation of several encoders' L2-normalised embeddings (see module docstring)."""

    fixed_geometry = True  # the sampling grids assume the super crop's own margin

    def __init__(self, parts: list[tuple[Encoder, float]], name: str | None = None):
        super().__init__()
        if len(parts) < 2:
            raise InputError("a fusion needs at least two encoders")
        self.parts = torch.nn.ModuleList([e for e, _ in parts])
        self.weights = [float(w) for _, w in parts]
        specs = [e.spec for e, _ in parts]
        side, margin = super_crop_geometry(specs)
        for i, s in enumerate(specs):
            self.register_buffer(f"grid{i}", sampling_grid(s, side, margin), persistent=False)
        self.spec = EncoderSpec(
            name=name or fusion_name([(s.name, w) for s, w in zip(specs, self.weights)]),
            input_size=(side, side),
            color_order="RGB",
            normalisation="; ".join(f"{s.name}: {s.normalisation}" for s in specs),
            embedding_dim=sum(s.embedding_dim for s in specs),
            licence=" | ".join(dict.fromkeys(s.licence for s in specs)),
            source=" + ".join(s.source for s in specs),
            weights=tuple(wf for s in specs for wf in s.weights),
            align_margin=margin,
        )

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 RGB NHWC super crops -> float NCHW pixels (each part normalises its own crop)."""
        return crops.to(torch.float32).permute(0, 3, 1, 2).contiguous()

    def part_input(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Part ``i``'s normalised input, resampled from float NCHW super-crop pixels ``x``."""
        grid = getattr(self, f"grid{i}").to(x.device, x.dtype).expand(x.shape[0], -1, -1, -1)
        crop = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        nhwc = crop.permute(0, 2, 3, 1)
        part = self.parts[i]
        if part.spec.color_order == "BGR":
            nhwc = nhwc.flip(-1)
        return part.normalise(nhwc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for i, (part, w) in enumerate(zip(self.parts, self.weights)):
            e = F.normalize(part(self.part_input(i, x)).float(), dim=1)
            outs.append(e * math.sqrt(w))
        return torch.cat(outs, 1)

    def part_cosines(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per-part cosines (N, parts) of two batches of fusion embeddings (rows of ``embed``)."""
        out, start = [], 0
        for part, w in zip(self.parts, self.weights):
            d = part.spec.embedding_dim
            out.append((a[:, start:start + d] * b[:, start:start + d]).sum(1) / w)
            start += d
        return np.stack(out, 1)
