"""A small CNN trained from scratch on high-pass residuals of the detector crop.

The first layer is fixed: a Laplacian and two first-difference filters on each colour channel (9
residual maps), so the network sees noise and blending traces, not the face's colours. Then four
strided 3x3 conv + batch-norm + ReLU stages, mean and max pooling, a linear logit. Small enough to
train in minutes on a CPU at 112 px; the same code runs on CUDA with ``--device cuda``.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _highpass_kernels() -> torch.Tensor:
    lap = torch.tensor([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=torch.float32) / 4
    dx = torch.tensor([[0, 0, 0], [0, -1, 1], [0, 0, 0]], dtype=torch.float32)
    dy = dx.T.contiguous()
    k = torch.zeros(9, 3, 3, 3)
    for c in range(3):
        for j, f in enumerate((lap, dx, dy)):
            k[c * 3 + j, c] = f
    return k


class ResidualCNN(nn.Module):
    def __init__(self, width: int = 24):
        super().__init__()
        self.register_buffer("highpass", _highpass_kernels())
        chans = [9, width, 2 * width, 4 * width, 4 * width]
        layers = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(2 * chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: uint8-valued RGB NHWC -> (N,) logits of "fake"."""
        x = x.permute(0, 3, 1, 2).float() / 255.0
        r = F.conv2d(x, self.highpass, padding=1) * 8.0
        h = self.body(r)
        return self.fc(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)).squeeze(1)


def _augment(batch: np.ndarray, rng: np.random.Generator, size: int, pool=None, p_degrade: float = 0.5) -> np.ndarray:
    """Random crop of ``size`` and mirror; an extra random resize + JPEG re-encoding for ``p_degrade`` of them
    (OpenCV releases the GIL: ``pool``, a thread pool, spreads them over cores)."""
    from .crops import degrade

    n, s = len(batch), batch.shape[1]
    out = np.empty((n, size, size, 3), np.uint8)
    seeds = rng.integers(0, 2**31, n)

    def one(i):
        r = np.random.default_rng(int(seeds[i]))
        im = batch[i]
        if r.random() < p_degrade:
            im = degrade(im, r, scale=(0.6, 1.0))
        y, x = r.integers(0, s - size + 1, 2)
        c = im[y:y + size, x:x + size]
        out[i] = c[:, ::-1] if r.random() < 0.5 else c

    list(pool.map(one, range(n))) if pool else [one(i) for i in range(n)]
    return out


def train_residual_cnn(crops: np.ndarray, labels: np.ndarray, weights: np.ndarray, steps: int, device: str = "cpu", seed: int = 0,
                       batch: int = 48, size: int = 112, lr: float = 2e-3, width: int = 24, progress=None, max_seconds: float | None = None,
                       workers: int = 1) -> ResidualCNN:
    """Train on ``crops`` (N, S, S, 3) uint8 (S >= size); ``weights``: sampling weights (balance families)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ResidualCNN(width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    p = weights / weights.sum()
    t0 = time.perf_counter()
    model.train()
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    for step in range(steps):
        idx = rng.choice(len(crops), size=batch, p=p)
        x = torch.from_numpy(_augment(crops[idx], rng, size, pool)).to(device)
        y = torch.from_numpy(labels[idx].astype(np.float32)).to(device)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress:
            progress()
        if max_seconds and time.perf_counter() - t0 > max_seconds:
            break
    if pool:
        pool.shutdown()
    return model.eval()


def predict(model: ResidualCNN, crops: np.ndarray, device: str = "cpu", size: int = 112, batch: int = 128) -> np.ndarray:
    """Logits on the central ``size`` crop and its mirror image, averaged."""
    s = crops.shape[1]
    o = (s - size) // 2
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            c = np.ascontiguousarray(crops[i:i + batch, o:o + size, o:o + size])
            x = torch.from_numpy(c).to(device)
            out.append(((model(x) + model(torch.flip(x, dims=[2]))) / 2).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
