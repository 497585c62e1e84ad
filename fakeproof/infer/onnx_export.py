"""Export an encoder to ONNX with its pre- and post-processing inside the graph.

The exported graph takes what the face engine produces, so any ONNX runtime can use it without
knowing the encoder's normalisation:

- input ``crops``: uint8, shape (N, H, W, 3), RGB, aligned to the encoder's 5-point template
  (``fakeproof.engine.template_for((H, W), margin, template)``, the template named in the
  metadata, ArcFace for most encoders); N is dynamic;
- output ``embedding``: float32 (N, D): L2-normalised for a model whose card compares by cosine
  (a dot product), the raw descriptor for one that compares by Euclidean distance (stock
  ``dlib_resnet``); ``fakeproof.metric`` says which.

Colour reordering (for BGR networks), the encoder's own normalisation and the L2 normalisation are
traced from the same torch code the engine runs. ``metadata_props`` record the format, encoder,
input geometry, normalisation formula, metric, calibration (the similarity scale), threshold and
the parity check done at export.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import FakeproofError
from ..engine import Encoder
from ..engine.onnx import FORMAT, INPUT_NAME, OUTPUT_NAME, session
OPSET = 17
PARITY_TOLERANCE = 1e-4


class RawCropEncoder(torch.nn.Module):
    """uint8 RGB NHWC crops -> embeddings (the encoder's normalisation baked in): L2-normalised for a
    cosine card, the raw descriptor for a Euclidean one (``normalised=False``)."""

    def __init__(self, encoder: Encoder, normalised: bool = True):
        super().__init__()
        self.encoder = encoder
        self.bgr = encoder.spec.color_order.upper() == "BGR"
        self.normalised = normalised

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            crops = crops[..., [2, 1, 0]]
        x = self.encoder.normalise(crops)
        e = self.encoder(x).float()
        return torch.nn.functional.normalize(e, dim=1) if self.normalised else e


@dataclass
class ExportReport:
    path: Path
    max_abs_diff: float  # ONNX Runtime vs torch on a random batch
    size_mb: float
    metadata: dict


def export_onnx(encoder: Encoder, out, threshold: float | None = None, source: str = "", opset: int = OPSET, check: bool = True) -> ExportReport:
    """Write ``encoder`` to ``out`` (written to a temporary name, then renamed). When ``check``, ONNX
    Runtime and torch embed the same random crops and the largest absolute difference is reported
    (and stored in the metadata); a difference above :data:`PARITY_TOLERANCE` raises ``RuntimeError``."""
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    enc = copy.deepcopy(encoder).to("cpu").eval()
    card = encoder.card
    normalised = card is None or card.normalised
    wrapper = RawCropEncoder(enc, normalised).eval()
    s = enc.spec
    h, w = s.input_size
    dummy = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, h, w, 3), dtype=np.uint8))
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # per process: parallel ranks may export at once
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation / tracer notes
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(tmp),
            dynamo=False,  # the torch.export-based exporter needs onnxscript, which is not a dependency
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    meta = {
        "fakeproof.format": FORMAT,
        "fakeproof.encoder": s.name,
        "fakeproof.source": str(source or s.name),
        "fakeproof.input": f"{INPUT_NAME}: uint8 (N, {h}, {w}, 3) RGB, aligned to the {s.template} 5-point template with margin {s.align_margin}",
        "fakeproof.input_size": json.dumps([h, w]),
        "fakeproof.color_order": "RGB",
        "fakeproof.network_color_order": s.color_order,
        "fakeproof.normalisation": f"inside the graph: {s.normalisation} (on {s.color_order} float pixels in 0..255)",
        "fakeproof.output": f"{OUTPUT_NAME}: float32 (N, {s.embedding_dim}), "
        + ("L2-normalised; cosine = dot product" if normalised else "the raw descriptor (not normalised); score = -euclidean distance"),
        "fakeproof.embedding_dim": str(s.embedding_dim),
        "fakeproof.align_margin": repr(float(s.align_margin)),
        "fakeproof.template": s.template,
        "fakeproof.licence": s.licence,
        "fakeproof.mirrors_itself": "1" if getattr(enc, "mirrors_itself", False) else "0",  # test-time flip inside the graph
        "fakeproof.upstream": s.source,
    }
    if card is not None:  # the similarity scale travels with the model; the threshold is then on that scale
        meta["fakeproof.calibration"] = json.dumps(card.calibration.to_dict())
        meta["fakeproof.metric"] = card.metric
    if threshold is not None:
        meta["fakeproof.threshold"] = repr(float(threshold))
    diff = float("nan")
    if check:
        diff = parity_diff(wrapper, tmp, (h, w))
        meta["fakeproof.parity_max_abs_diff"] = f"{diff:.3g}"
    m = onnx.load(str(tmp))
    onnx.helper.set_model_props(m, meta)
    m.producer_name = "fakeproof"
    onnx.save(m, str(tmp))
    tmp.replace(out)
    if check and not diff <= PARITY_TOLERANCE:
        raise FakeproofError(f"{out}: ONNX Runtime differs from torch by {diff:.3g} (> {PARITY_TOLERANCE}); the export is not faithful")
    return ExportReport(out, diff, out.stat().st_size / 2**20, meta)


@torch.no_grad()
def parity_diff(wrapper: torch.nn.Module, onnx_path, size: tuple[int, int], n: int = 4) -> float:
    """Largest |ONNX Runtime - torch| over the embeddings of ``n`` random uint8 crops (batch size n,
    different from the traced batch, so the dynamic axis is exercised too)."""
    x = np.random.default_rng(1).integers(0, 256, (n, size[0], size[1], 3), dtype=np.uint8)
    ref = wrapper(torch.from_numpy(x)).numpy()
    sess = session(onnx_path, "cpu")
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    return float(np.abs(got - ref).max())
