"""Running the closing check (:mod:`.closing`) at the end of ``train run``: embed the validation
crops with the stock encoder and the selected checkpoint, score the held-out family with the
checkpoint's artefact head, decide, write ``RUN_DIR/decision.json``, and print the table."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import atomic_write_text, json_text
from ..engine.encoders.guard import GuardedEncoder
from ..ui import console, summary_table
from .closing import DECISION_FILE, MODELS, Scored, add_check, closing_check, more_deepfakes_lines, table_rows


@torch.no_grad()
def identity_embeddings(enc, crops_of, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Unit identity embeddings with the mirror image averaged in (what the engine computes), for
    a plain or a guarded encoder (its base only)."""
    enc.eval()
    out = []
    for i in range(0, len(rows), batch_size):
        c = crops_of(rows[i : i + batch_size])
        if isinstance(enc, GuardedEncoder):
            e = enc.identity(enc.to_input(c))
        else:  # the crop and its mirror image (NHWC: width is axis 2)
            e = F.normalize(enc(enc.to_input(c)).float(), dim=1) + F.normalize(enc(enc.to_input(np.ascontiguousarray(c[:, :, ::-1]))).float(), dim=1)
        out.append(F.normalize(e.float(), dim=1).cpu().numpy())
    return np.concatenate(out)


def _auc_with_ci(fake: np.ndarray, real: np.ndarray, units: np.ndarray, n_boot: int = 1000) -> dict | None:
    """ROC AUC of the head (fake vs real logits), its interval resampling people/videos."""
    from sklearn.metrics import roc_auc_score

    from ..metrics import group_bootstrap

    if not len(fake) or not len(real):
        return None
    s, y = np.r_[fake, real], np.r_[np.ones(len(fake)), np.zeros(len(real))]
    vals = [roc_auc_score(y[i], s[i]) for i in group_bootstrap(units, n_boot, 7) if 0 < y[i].sum() < len(i)]
    return {"value": float(roc_auc_score(y, s)), "ci": [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))], "fakes": int(len(fake)), "reals": int(len(real))}


class CheckSet:
    """The --check-pairs photos aligned once by the run's face engine, scored by each model in turn."""

    def __init__(self, tr):
        from .check_pairs import read_check_pairs

        self.pairs = read_check_pairs(tr.cfg.check_pairs)
        _, crops = tr.engine.crops(self.pairs.paths, progress=tr.cfg.progress, desc="check pairs: aligning faces")
        self.rows = np.array([i for i, c in enumerate(crops) if c is not None], int)
        self.crops = np.stack([crops[i] for i in self.rows]) if len(self.rows) else None
        self._emb: dict[str, np.ndarray] = {}  # encoder key -> identity embeddings (trained and trained+guard share one)

    def scores(self, enc, key: str, guarded: bool, batch_size: int) -> np.ndarray:
        """The pair score of every pair (NaN where a photo has no crop): the identity cosine, times both
        photos' realness for a guarded model (the closing check's :class:`~.closing.Scored`); ``key``
        names the encoder, whose embeddings are computed once."""
        n = len(self.pairs.paths)
        if not len(self.rows):
            return np.full(len(self.pairs), np.nan)
        pos = np.arange(len(self.rows))
        of = lambda r: self.crops[r]  # noqa: E731
        if key not in self._emb:
            self._emb[key] = identity_embeddings(enc, of, pos, batch_size)
        e = self._emb[key]
        E = np.full((n, e.shape[1]), np.nan, np.float32)
        E[self.rows] = e
        if not guarded:
            return Scored(E, self.pairs.a, self.pairs.b).score
        from .artefact import head_logits

        L = np.full(n, np.nan, np.float32)
        L[self.rows] = head_logits(enc, of, pos, batch_size)
        return Scored(E, self.pairs.a, self.pairs.b, L, float(enc.tau)).score


def run_closing_check(tr) -> dict:
    """The closing check of a finished :class:`fakeproof.train.loop.Trainer` (rank 0)."""
    from ..engine import resolve_model
    from ..engine.checkpoint_reader import load_trained_encoder, resolve_checkpoint

    cfg, run_dir, data = tr.cfg, Path(tr.run_dir), tr.data
    val, store = data.val, data.store
    decision = {"format": "fakeproof-train-decision/1", "stock_model": cfg.model, "stock_weights": cfg.weights, "checkpoint": "checkpoints/best"}
    if not len(val):
        decision.update(recommended="trained", guard=True, reasons=["no validation pairs: nothing to compare the trained model with; the trained checkpoint is kept"])
        atomic_write_text(run_dir / DECISION_FILE, json_text(decision))
        return {"decision": decision}
    t0 = time.time()
    device = tr.info.device
    rows = val.rows()
    pos = np.searchsorted(rows, np.arange(int(rows.max()) + 1))
    ia, ib = pos[val.a], pos[val.b]
    crops_of = lambda r: np.asarray(store.crops[r])  # noqa: E731
    stock = resolve_model(cfg.model, device=device, weights=cfg.weights, models_dir=cfg.models_dir, announce=False).encoder
    models = {}
    corpus = tr.corpus
    ho_rows = corpus.rows(label=1, split=None, holdout=True) if corpus is not None and corpus.holdout else np.zeros(0, int)
    c_of = (lambda r: np.asarray(corpus.crops[r])) if corpus is not None else None  # noqa: E731
    ho_units = np.array([corpus.items[r].identity for r in ho_rows], dtype=object) if len(ho_rows) else None

    check = CheckSet(tr) if cfg.check_pairs else None
    check_scores: dict[str, np.ndarray] = {}

    val_emb: dict[str, np.ndarray] = {}  # encoder key -> identity embeddings of the validation crops

    def scored(enc, with_guard: bool, name: str) -> Scored:
        key = name.split("+")[0]  # "trained" and "trained+guard" are one encoder: embedded once
        if key not in val_emb:
            val_emb[key] = identity_embeddings(enc, crops_of, rows, cfg.val_batch_size)
        E = val_emb[key]
        guarded = with_guard and isinstance(enc, GuardedEncoder) and enc.calibrated
        if check is not None:
            check_scores[name] = check.scores(enc, key, guarded, cfg.val_batch_size)
        if not guarded:
            return Scored(E, ia, ib)
        from .artefact import head_logits

        L = head_logits(enc, crops_of, rows, cfg.val_batch_size)
        hl = head_logits(enc, c_of, ho_rows, cfg.val_batch_size) if len(ho_rows) else None
        return Scored(E, ia, ib, L, float(enc.tau), hl)

    models["stock"] = scored(stock, True, "stock")
    del stock
    best_dir = resolve_checkpoint(run_dir)
    trained, _ = load_trained_encoder(best_dir, device=device, models_dir=cfg.models_dir)
    models["trained"] = scored(trained, False, "trained")
    head_auc = None
    if isinstance(trained, GuardedEncoder):
        models["trained+guard"] = scored(trained, True, "trained+guard")
        if len(ho_rows):  # how well the head ranks the unseen family against real photos of its own capture group
            from .artefact import head_logits

            groups = {corpus.items[r].group for r in ho_rows}
            real_rows = np.array([r for r in corpus.rows(label=0, split="eval", holdout=None) if corpus.items[r].group in groups], int)
            fl = head_logits(trained, c_of, ho_rows, cfg.val_batch_size)
            rl = head_logits(trained, c_of, real_rows, cfg.val_batch_size) if len(real_rows) else np.zeros(0)
            units = np.array([corpus.items[r].identity for r in np.r_[ho_rows, real_rows]], dtype=object)
            head_auc = _auc_with_ci(fl, rl, units)
    identity = val.identity if val.identity is not None else np.arange(len(val))
    res = closing_check(models, val.kind, val.label, identity, ho_units, seed=cfg.seed, budget=cfg.gate_eer_budget, head_auc=head_auc)
    if check is not None:
        from .check_pairs import check_pairs_measure

        res = add_check(res, check_pairs_measure(check_scores, check.pairs, seed=cfg.seed), cfg.gate_eer_budget, head_auc)
    res["holdout_family"] = corpus.holdout if corpus is not None else None
    res["head_auc_heldout"] = head_auc
    res["seconds"] = round(time.time() - t0, 1)
    decision.update(recommended=res["recommended"], guard=res["guard"], reasons=res["reasons"], checkpoint=str(best_dir.relative_to(run_dir)) if best_dir.is_relative_to(run_dir) else str(best_dir))
    atomic_write_text(run_dir / DECISION_FILE, json_text(decision))
    res["decision"] = decision
    return res


def print_closing(res: dict, run_dir: Path) -> None:
    ho = res.get("holdout_family")
    cols = ["measure (95% CI)", *[m for m in MODELS if m in res["models"]]]
    rows = [r[: len(cols)] for r in table_rows(res)]
    rows = [[r[0].replace("held-out family", f"held-out family {ho}" if ho else "held-out family (none)")] + r[1:] for r in rows]
    auc = res.get("head_auc_heldout")
    if auc:
        rows.append([f"artefact head ROC AUC, {ho} vs its group's real photos"] + ["-"] * (len(cols) - 2) + [f"{auc['value']:.3f} [{auc['ci'][0]:.3f}, {auc['ci'][1]:.3f}]"])
    console.print(summary_table("closing check: stock vs trained", rows, cols))
    for line in more_deepfakes_lines(res, ho):
        console.print(f"[bold yellow]{line}")
    rec = res["recommended"]
    what = {
        "stock": "the STOCK encoder (training did not beat it)",
        "trained": "the trained encoder" + (" with its guard switched off" if "trained+guard" in res["models"] else ""),
        "trained+guard": "the trained encoder with its guard",
    }[rec]
    console.print(f"recommended: {what}. `--model {run_dir}` loads it (decision.json); `--model {run_dir / 'checkpoints' / 'best'}` forces the trained checkpoint as saved.")
    for r in res["reasons"]:
        console.print(f"  - {r}")
