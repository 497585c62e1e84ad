"""Training and scoring of the detectors that learn from pixels (:mod:`.residual_cnn`, :mod:`.dlib_finetune`).

Augmentation is split so that the accelerator never waits for the CPU: every crop gets ``variants``
versions once, before training (:func:`degraded_variants`: version 0 the crop as stored, the others
resized down and up and re-encoded at a random JPEG quality by :func:`.crops.degrade`), and each
step then picks a version, a random ``size`` window and a mirror on the device itself
(:func:`_device_batch`). Sampling weights balance families and real groups.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

P_DEGRADED = 0.5  # share of training samples drawn from a degraded version
CLIP_NORM = 1.0  # gradient-norm clip: without it, fine-tuning dlib collapsed to a constant logit in 2 of 11 GPU folds
VARIANT_SCALE = (0.6, 1.0)  # the extra down-scale range of the degraded versions (the pack's crops are already degraded once)


def degraded_variants(crops: np.ndarray, variants: int = 4, seed: int = 0, workers: int = 2) -> np.ndarray:
    """(N, variants, S, S, 3) uint8: version 0 = ``crops``; versions 1.. each their own seeded degradation
    (OpenCV releases the GIL: ``workers`` threads)."""
    from .crops import degrade

    n = len(crops)
    out = np.empty((n, max(variants, 1), *crops.shape[1:]), np.uint8)
    out[:, 0] = crops

    def one(i):
        r = np.random.default_rng([seed, i])
        for k in range(1, variants):
            out[i, k] = degrade(crops[i], r, scale=VARIANT_SCALE)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(one, range(n)))
    return out


def _device_batch(v: torch.Tensor, idx: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """A batch of random ``size`` windows of random versions of rows ``idx`` of ``v`` (N, K, S, S, 3), mirrored at random."""
    b, k, s = len(idx), v.shape[1], v.shape[2]
    dev = v.device
    degraded = torch.rand(b, generator=gen, device=dev) < P_DEGRADED
    ver = torch.where(degraded & (k > 1), torch.randint(1, max(k, 2), (b,), generator=gen, device=dev), torch.zeros(b, dtype=torch.long, device=dev))
    oy = torch.randint(0, s - size + 1, (b,), generator=gen, device=dev)
    ox = torch.randint(0, s - size + 1, (b,), generator=gen, device=dev)
    ar = torch.arange(size, device=dev)
    rows = (oy[:, None] + ar)[:, :, None]
    cols = (ox[:, None] + ar)[:, None, :]
    x = v[idx[:, None, None], ver[:, None, None], rows, cols]  # (b, size, size, 3)
    flip = torch.rand(b, generator=gen, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(2), x)


def train_detector(model: nn.Module, variants: torch.Tensor, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray, steps: int,
                   seed: int = 0, batch: int = 48, size: int = 112, lr: float = 2e-3, weight_decay: float = 1e-3, progress=None,
                   max_seconds: float | None = None) -> nn.Module:
    """Train ``model`` (uint8 RGB NHWC -> (N,) logits of "fake") on rows ``rows`` of ``variants`` (a tensor on the
    training device, see :func:`degraded_variants`); ``labels``/``weights`` are per row of ``rows``."""
    dev = variants.device
    torch.manual_seed(seed)
    gen = torch.Generator(device=dev).manual_seed(seed)
    model = model.to(dev).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    p = torch.as_tensor(weights / weights.sum(), dtype=torch.float32, device=dev)
    rows_t = torch.as_tensor(rows, dtype=torch.long, device=dev)
    y_all = torch.as_tensor(labels, dtype=torch.float32, device=dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        pick = torch.multinomial(p, batch, replacement=True, generator=gen)
        x = _device_batch(variants, rows_t[pick], size, gen)
        loss = F.binary_cross_entropy_with_logits(model(x), y_all[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        opt.step()
        sched.step()
        if progress:
            progress()
        if max_seconds and time.perf_counter() - t0 > max_seconds:
            break
    return model.eval()


def predict(model: nn.Module, crops: np.ndarray, device: str = "cpu", size: int = 112, batch: int = 256) -> np.ndarray:
    """Logits on the central ``size`` window of each crop and its mirror image, averaged."""
    s = crops.shape[1]
    o = (s - size) // 2
    out = []
    model = model.to(device).eval()
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            c = np.ascontiguousarray(crops[i:i + batch, o:o + size, o:o + size])
            x = torch.from_numpy(c).to(device)
            out.append(((model(x) + model(torch.flip(x, dims=[2]))) / 2).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
