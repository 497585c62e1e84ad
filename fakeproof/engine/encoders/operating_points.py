"""Where each stock encoder's cosine thresholds sit on REAL photos: its operating points.

A cosine threshold means different things for different encoders (FaceNet's impostors sit near 0.1,
a fusion's elsewhere), so a user's ``--threshold 0.5`` is translated into what it does for the
encoder in use: the share of impostor pairs it would accept and where it lies against the
encoder's EER point. The numbers are measured by ``benchmarks/verify_peers.py`` on every genuine
pair and as many impostor pairs of ../shared/data (celeba-mini + five-celebrities, real in-the-wild
photos), with the engine's defaults (MTCNN, the encoder's own alignment, test-time flip), and
written here by hand with the date; re-measure them when an encoder or the engine changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatingPoints:
    eer: float  # real-pair EER at the engine's defaults
    eer_threshold: float  # cosine at the EER
    far1e3_threshold: float  # lowest cosine accepting <= 0.1% of impostor pairs
    impostor_mean: float  # mean impostor cosine
    genuine_mean: float  # mean genuine cosine
    measured: str  # what, when


_MEASURED = "benchmarks/verify_peers.py, ../shared/data (2,254 genuine + 2,254 impostor real pairs), flip on, 2026-11-25"
OPERATING_POINTS: dict[str, OperatingPoints] = {
    # dlib's descriptors share a cone: impostor cosines sit near 0.83, so its thresholds are high
    "dlib_resnet": OperatingPoints(eer=0.0293, eer_threshold=0.900, far1e3_threshold=0.928, impostor_mean=0.835, genuine_mean=0.948, measured=_MEASURED),
    "facenet": OperatingPoints(eer=0.0603, eer_threshold=0.311, far1e3_threshold=0.571, impostor_mean=0.085, genuine_mean=0.628, measured=_MEASURED),
}


def operating_points(encoder_name: str) -> OperatingPoints | None:
    return OPERATING_POINTS.get(encoder_name)


def curation_thresholds(encoder_name: str, threshold: float | None = None, fake_threshold: float | None = None,
                        dup_threshold: float | None = None) -> tuple[float, float, float]:
    """``curate clean``'s (edge, deepfake, near-duplicate) cosine thresholds for an encoder, each
    taken from the caller where given, else placed on the encoder's own scale:

    - edge: the EER threshold on real pairs (an edge = "same person" at equal error rates);
    - deepfake rows below the midpoint between the mean impostor cosine and the edge threshold
      are "not like their identity";
    - near-duplicates: 85% of the way from the mean genuine cosine to 1 (0.94 for FaceNet, 0.99
      for dlib's compressed cosines).
    Encoders without measured operating points keep the historical 0.5 / threshold/2 / 0.95."""
    op = operating_points(encoder_name)
    if threshold is None:
        threshold = op.eer_threshold if op else 0.5
    if fake_threshold is None:
        fake_threshold = (op.impostor_mean + threshold) / 2 if op else threshold / 2
    if dup_threshold is None:
        dup_threshold = op.genuine_mean + 0.85 * (1 - op.genuine_mean) if op else 0.95
    return float(threshold), float(fake_threshold), float(dup_threshold)


def closer_margin(encoder_name: str, facenet_margin: float = 0.1) -> float:
    """How much closer (in mean cosine) another identity must be than a photo's own before clean
    flags it ``closer_to_other_identity``: 0.1 on FaceNet's scale, scaled by the encoder's
    genuine-impostor spread (dlib's cosines are ~5x more compressed)."""
    op, ref = operating_points(encoder_name), operating_points("facenet")
    if op is None or ref is None:
        return facenet_margin
    return facenet_margin * (op.genuine_mean - op.impostor_mean) / (ref.genuine_mean - ref.impostor_mean)


def describe_threshold(encoder_name: str, threshold: float) -> tuple[str, bool]:
    """(one line saying what ``threshold`` means for the encoder, whether to warn).

    Warns when the threshold is outside the band between the encoder's mean impostor and mean
    genuine cosine (it would accept nearly everything or nearly nothing), or when it is closer to
    one of those means than to the EER point by a wide margin."""
    if not math.isfinite(threshold):
        return f"threshold {threshold} is not a finite number", True
    op = operating_points(encoder_name)
    if op is None:
        return f"{encoder_name}: no measured operating points; threshold {threshold:g} is not calibrated", False
    where = "at" if abs(threshold - op.eer_threshold) < 0.02 else ("above" if threshold > op.eer_threshold else "below")
    line = (
        f"{encoder_name}: threshold {threshold:g} is {where} its EER point {op.eer_threshold:.2f} "
        f"(EER {100 * op.eer:.1f}% on real pairs); FAR 1e-3 at {op.far1e3_threshold:.2f}; "
        f"mean cosine impostor {op.impostor_mean:.2f} / genuine {op.genuine_mean:.2f}"
    )
    warn = not (op.impostor_mean < threshold < op.genuine_mean)
    if warn:
        line += " - far from this encoder's genuine/impostor boundary: results will be mostly wrong"
    return line, warn
