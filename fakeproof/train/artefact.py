"""Training the artefact head of a guarded encoder (``train run --artefact-head``).

Each optimizer step also takes a batch of single crops for the head: half real photos of the
training identities, half fakes. The fakes are the dataset's own deepfakes of the training pairs
and, for a share ``--head-selfblend`` of them, Self-Blended Images made on the fly from a real
training crop with the very code of the ``selfblend`` generator (its random alterations and its
landmark-hull mask, the 68 points fitted once per crop). Both halves then get the same
post-processing at random: mirror, the selfblend generator's colour and blur/sharpen/down-up
alterations applied to the WHOLE crop, JPEG re-compression. So a global colour or sharpness change
says nothing; only a local one (a blend inside the face) does. The loss is binary cross-entropy, added to the pair loss.

Before every validation the head is calibrated on the validation identities' real photos: ``tau``
is the logit that a share ``--head-false-alarm`` of them exceed (see
:meth:`fakeproof.engine.encoders.guard.GuardedEncoder.calibrate`).

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
from .data import CropStore, PairTable, embed_rows

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

    def __init__(self, store: CropStore, train: PairTable, spec, batch_size: int, selfblend_share: float, seed: int):
        self.store, self.batch, self.share, self.seed = store, int(batch_size), float(selfblend_share), int(seed)
        self.reals, self.fakes = real_rows(train), fake_rows(train)
        if not len(self.reals):
            raise InputError("the artefact head needs real photos in the training pairs")
        if not len(self.fakes) and self.share <= 0:
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

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        g = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF, 0xA27E, int(step)]))
        n_real = self.batch // 2
        n_fake = self.batch - n_real
        crops = [np.asarray(self.store.crops[r]) for r in g.choice(self.reals, n_real)]
        labels = [0.0] * n_real
        n_sb = n_fake if not len(self.fakes) else int(g.binomial(n_fake, min(1.0, max(0.0, self.share))))
        for r in g.choice(self.reals, n_sb):
            sb = self._selfblend(r, g)
            if sb is not None:
                crops.append(sb)
                labels.append(1.0)
        if len(self.fakes):
            crops += [np.asarray(self.store.crops[r]) for r in g.choice(self.fakes, self.batch - len(crops))]
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
def calibrate(guard: GuardedEncoder, store: CropStore, val: PairTable, false_alarm: float, batch_size: int = 64) -> float | None:
    """Set the guard's ``tau`` from the validation real photos; ``None`` when there are none."""
    rows = real_rows(val)
    if not len(rows):
        return None
    was = guard.training
    guard.eval()
    try:
        logits = embed_rows(store, rows, lambda crops: guard.artefact_logit(guard.to_input(crops)).float().cpu().numpy(), batch_size)
    finally:
        guard.train(was)
    return guard.calibrate(logits, false_alarm)
