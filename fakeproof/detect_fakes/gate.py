"""The guarded pair score: identity similarity gated by how real both photos look.

Per photo a realness ``r = 1 - clip((s - tau) / width, 0, 1)`` in [0, 1] from the detector's logit
``s`` (exactly 1 below ``tau``, 0 from ``tau + width``: the guard's own liveness,
:mod:`fakeproof.engine.encoders.guard`), and the pair score ``sim * r_a * r_b``. Multiplying keeps it
composable with any similarity scale whose impostors sit near 0 (a calibrated scale) or below the
threshold. ``tau`` is chosen on validation pairs: the strictest candidate whose genuine-pair EER is at
most ``budget`` above the ungated score's on every validation set (:func:`choose_tau`).
"""
from __future__ import annotations

import numpy as np

from ..metrics import compute_eer

DEFAULT_WIDTH = 1.0
EER_BUDGET = 0.005  # the gate may raise the genuine-pair EER by at most 0.5 point
FLAG_RATES = (0.0, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)  # candidate shares of validation reals below full realness


def worst_case_rate(budget: float = EER_BUDGET) -> float:
    """The largest share of real photos a gate may flag whatever the pairs' margins: gating only lowers
    scores, so impostors are never helped and at most the genuine pairs holding a flagged photo (about
    twice the flag rate) are lost; flagging ``budget / 2`` raises the genuine-pair EER by at most
    ``budget``. ``train run`` caps its gate there: on a dozen validation people a measured EER cannot
    see a half-point rise (a gate that flagged 5.8% of real photos passed validation and cost +5.8 pt on
    celeba-pairs)."""
    return budget / 2


def realness(logits, tau: float, width: float = DEFAULT_WIDTH) -> np.ndarray:
    return 1.0 - np.clip((np.asarray(logits, np.float64) - tau) / width, 0.0, 1.0)


def gated(sim, r_a, r_b) -> np.ndarray:
    return np.asarray(sim) * np.asarray(r_a) * np.asarray(r_b)


def eer(sim, labels) -> tuple[float, float]:
    """(EER, threshold) by the Kryptonite formula."""
    e = compute_eer(np.asarray(labels), np.asarray(sim))
    return float(e.eer), float(e.threshold)


def choose_tau(val_real_logits, val_sets, budget: float = EER_BUDGET, width: float = DEFAULT_WIDTH, rates=FLAG_RATES, max_rate: float | None = None):
    """``val_sets``: list of (sim, labels, logit_a, logit_b) genuine/impostor pair sets. Returns
    (tau, flag rate, {set index: EER rise}) for the largest flag rate (at most ``max_rate``) within
    ``budget`` on every set; tau = +inf (gate off) when none is."""
    base = [eer(s, y)[0] for s, y, _, _ in val_sets]
    best = (float("inf"), 0.0, {k: 0.0 for k in range(len(val_sets))})
    for rate in (r for r in rates if max_rate is None or r <= max_rate + 1e-12):
        tau = float(np.quantile(val_real_logits, 1.0 - rate)) if rate > 0 else float(np.max(val_real_logits))
        rises = {k: eer(gated(s, realness(la, tau, width), realness(lb, tau, width)), y)[0] - base[k] for k, (s, y, la, lb) in enumerate(val_sets)}
        if all(v <= budget + 1e-12 for v in rises.values()):
            best = (tau, rate, rises)
    return best
