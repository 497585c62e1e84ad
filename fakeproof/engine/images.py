"""Image loading that survives real files.

``load_rgb(path)`` returns an RGB uint8 array and never lets one bad file stop a run: every failure
is an :class:`ImageLoadError` whose message names the file and the reason in one line.
Handled: EXIF orientation, grayscale / palette / RGBA / LA / CMYK / 16-bit PNG, truncated JPEGs
(decoded as far as the data goes, with a warning), non-images and corrupt files, huge images
(JPEG draft decoding + downscale to ``max_side``).
"""
from __future__ import annotations

from ..errors import FakeproofError

import io
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# The one image-size limit: photos up to MAX_PIXELS (16384 x 16384 = 268 Mpx) are decoded (JPEGs at
# 1/2..1/8 scale) and downscaled to DEFAULT_MAX_SIDE; larger ones are refused with a one-line error.
# PIL's own "decompression bomb" guard (89 Mpx, e.g. a 12000 x 12000 photo) is moved to the same
# limit so that it never refuses an image this limit accepts.
MAX_PIXELS = 16384 * 16384
DEFAULT_MAX_SIDE = 2048
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_PIXELS)


class ImageLoadError(FakeproofError):
    """A file that cannot be used as a photo. ``str(err)`` is the one-line report."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass
class LoadedImage:
    rgb: np.ndarray  # HxWx3 uint8
    scale: float = 1.0  # rgb pixels per original pixel (<1 when downscaled)
    original_size: tuple[int, int] = (0, 0)  # (width, height) after EXIF rotation
    warnings: list[str] = field(default_factory=list)


def _to_uint8_rgb(img: Image.Image, notes: list[str]) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0
        scale = 255.0 / (65535.0 if hi > 255 else max(hi, 1.0)) if mode != "F" else 255.0 / max(hi, 1e-6)
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
        notes.append(f"{mode} image scaled to 8 bits")
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    if mode == "RGB":
        return np.asarray(img)
    return np.asarray(img.convert("RGB"))  # L, P, CMYK, YCbCr, 1


_TRUNCATED_LOCK = threading.Lock()


def _decode_truncated(data: bytes, path) -> np.ndarray | None:
    """Decode what a truncated JPEG/PNG holds (the missing rest stays grey); None if nothing."""
    with _TRUNCATED_LOCK:  # PIL's switch is global: flip it only around this one decode
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
            img.load()
            return _to_uint8_rgb(img, [])
        except Exception:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            return None if arr is None else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False


def decode_rgb(data: bytes, path="<bytes>", max_side: int | None = DEFAULT_MAX_SIDE) -> LoadedImage:
    notes: list[str] = []
    if not data:
        raise ImageLoadError(path, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS decides
            img = Image.open(io.BytesIO(data))
            w0, h0 = img.size
            if w0 * h0 > MAX_PIXELS:
                raise ImageLoadError(path, f"image too large ({w0}x{h0} pixels; the limit is {MAX_PIXELS // 1_000_000} Mpx)")
            if max_side and img.format == "JPEG" and max(w0, h0) > 2 * max_side:
                img.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 size: far faster
            draft_scale = img.size[0] / w0
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_uint8_rgb(img, notes)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image (unrecognised format)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageLoadError(path, f"image too large (over {MAX_PIXELS // 1_000_000} Mpx)") from None
    except OSError as e:
        if "truncated" in str(e).lower() or "broken data stream" in str(e).lower():
            rgb = _decode_truncated(data, path)
            if rgb is None:
                raise ImageLoadError(path, f"truncated image that cannot be decoded ({e})") from None
            notes.append("truncated file: decoded the readable part")
            w0, h0, draft_scale = rgb.shape[1], rgb.shape[0], 1.0
        else:
            raise ImageLoadError(path, f"corrupt image ({e})") from None
    except (ValueError, SyntaxError) as e:
        raise ImageLoadError(path, f"corrupt image ({e})") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 8:
        raise ImageLoadError(path, f"unusable image of shape {rgb.shape}")
    rgb = np.ascontiguousarray(rgb)
    oh, ow = rgb.shape[:2]
    orig = (round(ow / draft_scale), round(oh / draft_scale))
    scale = draft_scale
    if max_side and max(oh, ow) > max_side:
        f = max_side / max(oh, ow)
        rgb = cv2.resize(rgb, (max(1, round(ow * f)), max(1, round(oh * f))), interpolation=cv2.INTER_AREA)
        scale *= f
        notes.append(f"downscaled from {orig[0]}x{orig[1]}")
    return LoadedImage(rgb=rgb, scale=scale, original_size=orig, warnings=notes)


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """``rgb`` (uint8 RGB) encoded as JPEG at ``quality`` and decoded again: its compression artefacts."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else rgb


def load_rgb(path, max_side: int | None = DEFAULT_MAX_SIDE) -> LoadedImage:
    """Read ``path`` into an RGB uint8 image; raises :class:`ImageLoadError` with a one-line reason."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a directory") from None
    except OSError as e:
        raise ImageLoadError(path, f"cannot read ({e.strerror or e})") from None
    return decode_rgb(data, path, max_side=max_side)
