"""The closing check of ``train run``: is the trained model better than the stock encoder, and which
one should ``--model RUN`` load?

Three models are scored on the same data: the **stock** encoder the run started from, the
**trained** encoder (the selected checkpoint, its guard switched off) and, when an artefact head was
trained, **trained+guard** (the checkpoint as saved, its gate set under the 0.5-point EER budget).
Three measures, each with a 95% interval that resamples whole identities of the validation split
and whole people/videos of the held-out family (:func:`fakeproof.metrics.group_bootstrap`, paired
across the models):

- ``genuine_eer``: EER of the validation split's genuine against impostor real pairs;
- ``val_attack``: share of the validation split's deepfake pairs (a real photo of X against a fake of
  X from the dataset) accepted at the genuine-pair EER threshold of the same score;
- ``heldout_attack``: the same for the held-out corpus family, a family no part of the run trained
  on. Its fakes have no second real photo of their person, so each fake stands in for the second
  photo of every validation genuine pair, with that pair's identity similarity (a perfect
  impersonation: an encoder alone accepts it as often as the genuine pair; only the gate can refuse it).

The rule (``decision.json``), built so that following it never makes things worse than stock:

- a model is **worse** than stock when its genuine-pair EER rises by more than the budget (the point
  estimate: a rise is not excused by a wide interval on few validation pairs) on the validation split
  or on the ``--check-pairs`` set of many people when one is given (:mod:`.check_pairs`; a dozen
  validation identities cannot see a half-point rise), or when it accepts more deepfakes beyond noise
  (the difference's interval above 0);
- ``heldout_attack`` is read for a guarded model only: for an encoder alone it is the share of
  genuine pairs accepted at its own EER threshold, about 1 - EER, so it only moves when the EER does
  (a WORSE encoder would look safer);
- the trained encoder is recommended only when it is not worse and accepts fewer of the dataset's
  validation deepfakes than stock beyond noise (the interval below 0);
- the guard, besides, stays on only when trained+guard is not worse, was checked on ``--check-pairs``
  (its gate is set on the validation split's photos; photos unlike those, e.g. small ones, are flagged
  more often: on the issue's run a gate flagging 0.25% of validation reals flagged 5.3% of celeba-pairs'
  photos and cost +6.9 pt EER there), accepts fewer deepfakes than stock beyond noise, and (with a
  held-out family) its head ranks that family's fakes above real photos of their capture group beyond
  noise (ROC AUC interval above 0.5).

Otherwise the stock encoder is recommended and ``--model RUN`` loads it;
``--model RUN/checkpoints/best`` forces the trained weights.
"""
from __future__ import annotations

import numpy as np

from ..detect_fakes.gate import EER_BUDGET, realness
from ..metrics import KIND_CODE, compute_eer, group_bootstrap

N_BOOT = 1000
DECISION_FILE = "decision.json"
MODELS = ("stock", "trained", "trained+guard")
MEASURES = {
    "genuine_eer": "genuine-pair EER (validation)",
    "val_attack": "attack acceptance, dataset fakes (validation)",
    "heldout_attack": "attack acceptance, held-out family",
}
CHECK = "check_eer"  # the genuine-pair EER on --check-pairs (train/check_pairs.py), when given
CHECK_LABEL = "genuine-pair EER (--check-pairs)"


def pair_eer(scores, labels) -> tuple[float, float]:
    """(EER, threshold) of scored pairs; NaN when one kind is missing (a bootstrap draw may hold one)."""
    labels = np.asarray(labels)
    if len(labels) == 0 or labels.min() == labels.max():
        return float("nan"), float("nan")
    e = compute_eer(labels, scores)
    return float(e.eer), float(e.threshold)


def interval(vals) -> list[float]:
    """The 95% percentile interval of bootstrap values (NaN draws left out; NaNs when none is left)."""
    v = np.asarray(vals, np.float64)
    v = v[np.isfinite(v)]
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else [float("nan")] * 2


class Scored:
    """One model on the validation pairs (``E``: identity embeddings of the pairs' crops, ``L``:
    artefact logits or None, ``tau``: the gate) and the held-out fakes' logits ``hl``."""

    def __init__(self, E, ia, ib, L=None, tau=None, hl=None):
        cos = (E[ia] * E[ib]).sum(1).astype(np.float64)
        self.guarded = L is not None and tau is not None and np.isfinite(tau)
        if self.guarded:
            r = realness(L, tau)
            self.ra, self.rb = r[ia], r[ib]
            self.score = cos * self.ra * self.rb
            self.rf = realness(hl, tau) if hl is not None else None
        else:
            self.ra = self.rb = np.ones(len(cos))
            self.score = cos
            self.rf = None
        self.cos = cos


def closing_check(models: dict[str, Scored], kind: np.ndarray, label: np.ndarray, identity: np.ndarray,
                  heldout_units: np.ndarray | None, n_boot: int = N_BOOT, seed: int = 0, budget: float = EER_BUDGET, head_auc: dict | None = None) -> dict:
    """Point estimates, intervals and paired differences against stock of every measure, and the
    recommendation (see the module docstring)."""
    kind, label = np.asarray(kind), np.asarray(label).astype(int)
    real = (kind == KIND_CODE["genuine"]) | (kind == KIND_CODE["impostor"])
    gen, df = kind == KIND_CODE["genuine"], kind == KIND_CODE["deepfake"]
    n_f = 0 if heldout_units is None else len(heldout_units)
    thr, accept_df, accept_ho, point = {}, {}, {}, {}
    for name, m in models.items():
        e, t = pair_eer(m.score[real], label[real])
        thr[name] = t
        accept_df[name] = (m.score >= t).astype(np.float64)  # per pair (deepfake pairs read)
        if n_f:
            if m.guarded and m.rf is not None:  # the fake replaces side b: cos(a, b) * r_a * r_fake
                accept_ho[name] = ((m.cos[gen] * m.ra[gen])[:, None] * m.rf[None, :] >= t).astype(np.float32)
            else:
                accept_ho[name] = np.repeat((m.score[gen] >= t).astype(np.float32)[:, None], n_f, 1)
        point[name] = {
            "genuine_eer": e,
            "threshold": t,
            "val_attack": float(accept_df[name][df].mean()) if df.any() else float("nan"),
            "heldout_attack": float(accept_ho[name].mean()) if n_f and gen.any() else float("nan"),
        }
    # paired bootstrap: the same resampled identities (and held-out units) for every model
    boots = {name: {k: [] for k in MEASURES} for name in models}
    gen_pos = np.cumsum(gen) - 1  # index of a genuine pair among the genuine pairs
    unit_iter = group_bootstrap(heldout_units, n_boot, seed + 1) if n_f else None
    for idx in group_bootstrap(identity, n_boot, seed):
        f_idx = next(unit_iter) if unit_iter is not None else None
        r_idx, d_idx, g_idx = idx[real[idx]], idx[df[idx]], idx[gen[idx]]
        cg = np.bincount(gen_pos[g_idx], minlength=int(gen.sum())).astype(np.float32) if n_f else None
        cf = np.bincount(f_idx, minlength=n_f).astype(np.float32) if n_f else None
        for name, m in models.items():
            b = boots[name]
            b["genuine_eer"].append(pair_eer(m.score[r_idx], label[r_idx])[0])
            b["val_attack"].append(accept_df[name][d_idx].mean() if len(d_idx) else np.nan)
            b["heldout_attack"].append(float(cg @ accept_ho[name] @ cf) / max(cg.sum() * cf.sum(), 1) if n_f and cg.sum() else np.nan)

    out = {"n_boot": n_boot, "thresholds": thr, "models": {}, "vs_stock": {}, "pairs": {"real": int(real.sum()), "genuine": int(gen.sum()), "deepfake": int(df.sum()), "heldout_fakes": n_f}}
    for name in models:
        out["models"][name] = {k: {"value": point[name][k], "ci": interval(boots[name][k])} for k in MEASURES}
        if name != "stock":
            out["vs_stock"][name] = {
                k: {"diff": point[name][k] - point["stock"][k], "ci": interval(np.asarray(boots[name][k]) - np.asarray(boots["stock"][k]))} for k in MEASURES
            }
    out.update(recommend(out, budget, head_auc))
    return out


def _attack_measures(guarded: bool) -> tuple[str, ...]:
    """The attack measures that say something about a model (module docstring: ``heldout_attack`` of an
    unguarded encoder only follows its EER)."""
    return ("val_attack", "heldout_attack") if guarded else ("val_attack",)


def _worse(d: dict, budget: float, guarded: bool) -> list[str]:
    """The measures on which a model is worse than stock: an EER rise above the budget (point estimate),
    or more deepfakes accepted beyond noise."""
    why = []
    for k, what in (("genuine_eer", "genuine-pair EER"), (CHECK, "genuine-pair EER on --check-pairs")):
        e = d.get(k)
        if e is not None and np.isfinite(e["diff"]) and e["diff"] > budget:
            why.append(f"{what} {e['diff'] * 100:+.2f} pt [{e['ci'][0] * 100:+.2f}, {e['ci'][1] * 100:+.2f}] (budget +{budget * 100:.1f} pt)")
    for k in _attack_measures(guarded):
        if np.isfinite(d[k]["diff"]) and d[k]["ci"][0] > 0:
            why.append(f"{MEASURES[k]} {d[k]['diff'] * 100:+.1f} pt [{d[k]['ci'][0] * 100:+.1f}, {d[k]['ci'][1] * 100:+.1f}]")
    return why


def _better(d: dict, guarded: bool) -> bool:
    return any(np.isfinite(d[k]["diff"]) and d[k]["ci"][1] < 0 for k in _attack_measures(guarded))


def recommend(res: dict, budget: float, head_auc: dict | None = None) -> dict:
    """``head_auc``: the head's ROC AUC on the held-out family against real photos of its capture
    group; when given, the guard also needs it above 0.5 beyond noise (a gate that flags photos at
    random also lowers the acceptance of a perfect impersonation, and costs little EER on few pairs)."""
    vs = res["vs_stock"]
    reasons = []
    if "trained+guard" in vs:
        g = vs["trained+guard"]
        w = _worse(g, budget, guarded=True)
        blind = head_auc is not None and not head_auc["ci"][0] > 0.5
        if w:
            reasons.append("trained+guard is worse than stock: " + "; ".join(w))
        elif CHECK not in g:
            reasons.append("the guard's cost on real pairs was measured on the validation split's people only, and a gate flags photos unlike "
                           "those more often (on celeba-pairs' small photos a gate set this way cost +6.9 pt EER): it stays off; "
                           "--check-pairs CSV (real pairs of many people like yours) can turn it on")
        elif not _better(g, guarded=True):
            reasons.append("the guard does not accept fewer deepfakes than stock beyond noise: it is switched off")
        elif blind:
            reasons.append(f"trained+guard accepts fewer deepfakes than stock beyond noise, but its head does not tell the held-out family from real photos "
                           f"(ROC AUC {head_auc['value']:.3f} [{head_auc['ci'][0]:.3f}, {head_auc['ci'][1]:.3f}]): the drop is what flagging photos at random gives; the guard is switched off")
        else:
            reasons.append("trained+guard accepts fewer deepfakes than stock beyond noise, within the EER budget")
            return {"recommended": "trained+guard", "guard": True, "reasons": reasons}
    t = vs.get("trained")
    if t is None:
        return {"recommended": "stock", "guard": False, "reasons": reasons + ["no trained encoder to compare"]}
    w = _worse(t, budget, guarded=False)
    if w:
        reasons.append("the trained encoder is worse than stock: " + "; ".join(w))
        return {"recommended": "stock", "guard": False, "reasons": reasons}
    if not _better(t, guarded=False):
        reasons.append("the trained encoder does not accept fewer of the dataset's deepfakes than stock beyond noise: stock is kept")
        return {"recommended": "stock", "guard": False, "reasons": reasons}
    reasons.append("the trained encoder accepts fewer of the dataset's deepfakes than stock beyond noise, within the EER budget")
    return {"recommended": "trained", "guard": False, "reasons": reasons}


def add_check(res: dict, check: dict, budget: float, head_auc: dict | None = None) -> dict:
    """``res`` with the --check-pairs EERs (:func:`fakeproof.train.check_pairs.check_pairs_measure`) as one
    more measure of every model, and the recommendation made again with it."""
    for name, m in check["models"].items():
        res["models"][name][CHECK] = m
    for name, d in check["vs_stock"].items():
        res["vs_stock"][name][CHECK] = d
    res["check_pairs"] = {k: check[k] for k in ("source", "pairs", "left_out", "genuine")}
    res.update(recommend(res, budget, head_auc))
    return res


def more_deepfakes_lines(res: dict, holdout: str | None) -> list[str]:
    """Plain sentences for every model that accepts more deepfakes than stock (point estimate)."""
    lines = []
    where = {"val_attack": "the dataset's validation fakes", "heldout_attack": f"the held-out family {holdout}"}
    for name, d in res["vs_stock"].items():
        for k in _attack_measures(guarded=name == "trained+guard"):
            x, label = d[k], where[k]
            if np.isfinite(x["diff"]) and x["diff"] > 0:
                noise = "beyond noise" if x["ci"][0] > 0 else "within noise"
                lines.append(
                    f"the {name} model accepts MORE deepfakes than stock on {label}: {res['models'][name][k]['value']:.1%} vs "
                    f"{res['models']['stock'][k]['value']:.1%} ({x['diff'] * 100:+.1f} pt [{x['ci'][0] * 100:+.1f}, {x['ci'][1] * 100:+.1f}], {noise})"
                )
    return lines


def table_rows(res: dict) -> list[list[str]]:
    """Rows of the closing summary table: a measure, then each model's value [95% CI]."""
    def fmt(v, scale=100, unit="%"):
        return "n/a" if not np.isfinite(v["value"]) else f"{v['value'] * scale:.1f}{unit} [{v['ci'][0] * scale:.1f}, {v['ci'][1] * scale:.1f}]"

    rows = []
    labels = {**MEASURES, CHECK: f"{CHECK_LABEL}, {res['check_pairs']['pairs']} pairs"} if "check_pairs" in res else MEASURES
    for k, label in labels.items():
        rows.append([label] + [fmt(res["models"][m][k]) if m in res["models"] else "-" for m in MODELS])
    return rows
