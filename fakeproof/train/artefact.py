"""Training the artefact head of a guarded encoder (``train run --artefact-head``).

Each optimizer step also takes a batch of single crops for the head: half real photos of the
training identities, half fakes. The fakes are the dataset's own deepfakes of the training pairs
and, for a share ``--head-selfblend`` of them, Self-Blended Images made on the fly from a real
training crop with the very code of the ``selfblend`` generator (its random alterations and its
landmark-hull mask, the 68 points fitted once per crop). Both halves then get the same
post-processing at random: mirror, the selfblend generator's colour and blur/sharpen/down-up
alterations applied to the WHOLE crop, JPEG re-compression. So a global colour or sharpness change
says nothing; only a local one (a blend inside the face) does. The loss is binary cross-entropy, added to the pair loss.

Before every validation the gate is set the issue's way (:func:`choose_gate`): ``tau`` is the
strictest candidate (a share of validation real photos above it: the dataset's validation reals and
the artefact corpus's ``eval`` reals) whose gated genuine-pair EER on the validation identities' real
pairs rises by at most ``--gate-eer-budget`` (0.5 point) over the ungated encoder's
(:func:`fakeproof.detect_fakes.gate.choose_tau`), and that flags at most half the budget's share of
those real photos (:func:`fakeproof.detect_fakes.gate.worst_case_rate`: the EER rise stays within the
budget whatever the pairs' margins, where a dozen validation people cannot measure it). With ``--artefact-corpus`` the head also learns
from the corpus (:mod:`.corpus_crops`), every real group and fake family drawn with equal weight.

Batches are a pure function of (seed, step), like the pair batches, so ``--resume`` sees the same.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..engine.encoders.guard import GuardedEncoder
from ..engine.images import jpeg_roundtrip
from ..engine.template import encoder_template
from ..metrics import KIND_CODE
from .data import CropStore, PairTable

DEEPFAKE = KIND_CODE["deepfake"]
JPEG_RANGE = (60, 100)
GLOBAL_ALTERATION = 0.5  # share of head crops, real and fake alike, altered as a whole


def fake_rows(table: PairTable) -> np.ndarray:
    """Crop rows that are deepfakes: side b of every deepfake pair."""
    return np.unique(table.b[table.kind == DEEPFAKE])


def real_rows(table: PairTable) -> np.ndarray:
    """Crop rows of real photos: every row of the table that is not a deepfake."""
    return np.setdiff1d(table.rows(), fake_rows(table))


def face_box(spec) -> tuple[float, float, float, float]:
    """Where the face sits in the encoder's aligned crop (from its 5-point template): the box
    the 68-point predictor is given."""
    pts = encoder_template(spec)
    eyes, mouth = pts[:2], pts[3:]
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    cx, ey, my = float(eyes[:, 0].mean()), float(eyes[:, 1].mean()), float(mouth[:, 1].mean())
    return cx - iod, ey - 0.8 * iod, cx + iod, my + 0.7 * iod


def _alter_whole(img: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """The selfblend generator's alterations, on the whole crop instead of inside a face mask."""
    from ..forgery.selfblend import alter_colour, alter_frequency, choose_selfblend

    p = choose_selfblend(g)
    out = alter_frequency(alter_colour(img.astype(np.float32), p), p, img.shape[1] / 2.0)
    return np.clip(out, 0, 255).astype(np.uint8)


class HeadBatches:
    """The head's single-crop batches: ``(crops uint8 NHWC, labels float32)`` for a step."""

    def __init__(self, store: CropStore, train: PairTable, spec, batch_size: int, selfblend_share: float | None, seed: int, corpus=None, row_family: dict | None = None):
        self.store, self.batch, self.seed = store, int(batch_size), int(seed)
        self.reals, self.fakes = real_rows(train), fake_rows(train)
        self.corpus = corpus  # a train.corpus_crops.CorpusCrops, or None
        # what a crop is drawn from, each with equal weight: real groups (the dataset's reals, each
        # corpus group) and fake families (the dataset's fakes by family, each corpus family)
        self.real_groups: list[tuple[str, np.ndarray]] = [("store", self.reals)] if len(self.reals) else []
        fams: dict[str, list[int]] = {}
        for r in self.fakes:
            fams.setdefault((row_family or {}).get(int(r), "dataset"), []).append(int(r))
        self.fake_families: list[tuple[str, np.ndarray]] = [("store", np.asarray(v)) for _, v in sorted(fams.items())]
        self.family_names = [f"dataset:{k}" for k in sorted(fams)]
        if corpus is not None:
            c_reals, c_fakes = corpus.train_groups()
            self.real_groups += [("corpus", v) for v in c_reals.values()]
            self.fake_families += [("corpus", v) for v in c_fakes.values()]
            self.family_names += [f"corpus:{k}" for k in c_fakes]
        if selfblend_share is None:  # default: half the fakes; with a corpus, one family's share
            selfblend_share = 0.5 if corpus is None else 1.0 / (len(self.fake_families) + 1)
        self.share = float(selfblend_share)
        if not len(self.reals):
            raise InputError("the artefact head needs real photos in the training pairs")
        if not self.fake_families and self.share <= 0:
            raise InputError("the artefact head needs fakes: the training pairs have no deepfakes and --head-selfblend is 0")
        self.box = face_box(spec)
        self._points: dict[int, np.ndarray | None] = {}
        self._landmarks = None
        if self.share > 0:  # the predictor, before any training step
            from ..forgery.landmarks68 import load_landmarks68

            try:
                self._landmarks = load_landmarks68()
            except FileNotFoundError as e:
                raise InputError(str(e)) from None

    def _hull_points(self, row: int) -> np.ndarray | None:
        """78 points (68 + lifted brows) of a real crop, fitted once; None if the fit fails."""
        if row not in self._points:
            from ..forgery.landmarks68 import with_forehead

            crop = np.asarray(self.store.crops[row])
            try:
                h, w = crop.shape[:2]
                self._points[row] = np.clip(with_forehead(self._landmarks(crop, self.box)), 0, [w - 1, h - 1])
            except Exception:  # dlib refuses a degenerate crop: that photo is never self-blended
                self._points[row] = None
        return self._points[row]

    def _selfblend(self, row: int, g: np.random.Generator) -> np.ndarray | None:
        from ..forgery.selfblend import choose_selfblend, self_blend

        pts = self._hull_points(int(row))
        if pts is None:
            return None
        try:
            return self_blend(np.asarray(self.store.crops[row]), pts, choose_selfblend(g))
        except Exception:  # a face region too small to blend
            return None

    def _draw(self, groups: list[tuple[str, np.ndarray]], n: int, g: np.random.Generator) -> list[np.ndarray]:
        """``n`` crops: a group uniformly, then a row of it uniformly."""
        out = []
        for k in g.integers(len(groups), size=n):
            src, rows = groups[int(k)]
            r = rows[int(g.integers(len(rows)))]
            out.append(np.asarray((self.store.crops if src == "store" else self.corpus.crops)[r]))
        return out

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        g = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF, 0xA27E, int(step)]))
        n_real = self.batch // 2
        n_fake = self.batch - n_real
        crops = self._draw(self.real_groups, n_real, g)
        labels = [0.0] * n_real
        n_sb = n_fake if not self.fake_families else int(g.binomial(n_fake, min(1.0, max(0.0, self.share))))
        for r in g.choice(self.reals, n_sb):
            sb = self._selfblend(r, g)
            if sb is not None:
                crops.append(sb)
                labels.append(1.0)
        if self.fake_families:
            crops += self._draw(self.fake_families, self.batch - len(crops), g)
            labels += [1.0] * (self.batch - len(labels))
        out = []
        for c in crops:  # the same post-processing for real and fake
            if g.random() < 0.5:
                c = c[:, ::-1]
            if g.random() < GLOBAL_ALTERATION:
                c = _alter_whole(c, g)
            if g.random() < 0.5:
                c = jpeg_roundtrip(c, g.integers(*JPEG_RANGE))
            out.append(np.ascontiguousarray(c))
        return np.stack(out), np.asarray(labels, np.float32)


def head_loss(guard: GuardedEncoder, crops: np.ndarray, labels: np.ndarray, head=None) -> torch.Tensor:
    """Binary cross-entropy of the head's logits (training mode: one view per crop); ``head``: the
    DistributedDataParallel wrapper of ``guard.head`` under torchrun."""
    x = guard.to_input(crops)
    y = torch.from_numpy(labels).to(x.device)
    return F.binary_cross_entropy_with_logits(guard.artefact_logit(x, head=head).float(), y)


@torch.no_grad()
def identity_and_logits(guard: GuardedEncoder, crops_of, rows: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(unit identity embeddings, artefact logits) of ``rows`` (``crops_of(rows)`` gives their crops), in eval mode."""
    was = guard.training
    guard.eval()
    e, s = [], []
    try:
        for i in range(0, len(rows), batch_size):
            x = guard.to_input(crops_of(rows[i : i + batch_size]))
            e.append(guard.identity(x).float().cpu().numpy())
            s.append(guard.artefact_logit(x).float().cpu().numpy())
    finally:
        guard.train(was)
    if not e:
        return np.zeros((0, guard.base.spec.embedding_dim), np.float32), np.zeros(0, np.float32)
    return np.concatenate(e), np.concatenate(s)


@torch.no_grad()
def head_logits(guard: GuardedEncoder, crops_of, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    was = guard.training
    guard.eval()
    try:
        out = [guard.artefact_logit(guard.to_input(crops_of(rows[i : i + batch_size]))).float().cpu().numpy() for i in range(0, len(rows), batch_size)]
    finally:
        guard.train(was)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def corpus_reals_for_gate(corpus, limit: int = 400) -> np.ndarray:
    """The corpus's ``eval`` real rows the gate's candidates are drawn from (a fixed subset)."""
    rows = corpus.rows(label=0, split="eval", holdout=None) if corpus is not None else np.zeros(0, int)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(0).choice(rows, limit, replace=False))
    return rows


def choose_gate(guard: GuardedEncoder, store: CropStore, val: PairTable, budget: float, batch_size: int = 64, corpus=None, fallback: PairTable | None = None) -> dict | None:
    """Set the guard's ``tau`` under the genuine-pair EER budget on ``val``'s real pairs, flagging at most
    :func:`~fakeproof.detect_fakes.gate.worst_case_rate` of the real photos; returns
    ``{"tau", "flag_rate", "eer_rise", "val_reals"}`` or None when there are no real photos at all."""
    from ..detect_fakes.gate import choose_tau, worst_case_rate

    table = val if len(real_rows(val)) else fallback
    if table is None or not len(real_rows(table)):
        return None
    crops_of = lambda rows: np.asarray(store.crops[rows])  # noqa: E731  (rows: sorted)
    rows = table.rows()
    emb, logit = identity_and_logits(guard, crops_of, rows, batch_size)
    pos = {int(r): i for i, r in enumerate(rows)}
    reals = np.array([pos[int(r)] for r in real_rows(table)])
    pool = logit[reals]
    c_rows = corpus_reals_for_gate(corpus)
    if len(c_rows):
        pool = np.concatenate([pool, head_logits(guard, lambda r: np.asarray(corpus.crops[r]), c_rows, batch_size)])
    real_pair = (table.kind == KIND_CODE["genuine"]) | (table.kind == KIND_CODE["impostor"])
    ia = np.array([pos[int(r)] for r in table.a[real_pair]], int)
    ib = np.array([pos[int(r)] for r in table.b[real_pair]], int)
    y = table.label[real_pair]
    if len(y) and y.min() != y.max():
        sim = (emb[ia] * emb[ib]).sum(1)
        tau, rate, rises = choose_tau(pool, [(sim, y, logit[ia], logit[ib])], budget=budget, max_rate=worst_case_rate(budget))
    else:  # no genuine/impostor pairs to check a cost on: flag nothing seen real
        tau, rate, rises = float(np.max(pool)), 0.0, {}
    guard.tau.fill_(tau)
    return {"tau": float(tau), "flag_rate": float(rate), "eer_rise": float(rises.get(0, 0.0)), "gate_reals": int(len(pool))}


def calibrate(guard: GuardedEncoder, store: CropStore, val: PairTable, false_alarm: float, batch_size: int = 64) -> float | None:
    """Set ``tau`` at a fixed share of ``val``'s real photos flagged (``benchmarks/train_cross_generator.py
    --false-alarms``; ``train run`` itself uses :func:`choose_gate`); ``None`` when there are none."""
    rows = real_rows(val)
    if not len(rows):
        return None
    logits = head_logits(guard, lambda r: np.asarray(store.crops[r]), rows, batch_size)
    return guard.calibrate(logits, false_alarm)
