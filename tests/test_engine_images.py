"""Image loading survives real files: every bad kind gives a one-line reason, good kinds load as RGB."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fakeproof.engine.images import ImageLoadError, load_rgb


def _save(img: Image.Image, path, fmt, **kw):
    img.save(path, fmt, **kw)
    return path


@pytest.fixture
def face_img(group_photo) -> Image.Image:
    return Image.open(group_photo).convert("RGB").crop((40, 250, 200, 410))


def test_exif_orientation_is_applied(tmp_path, face_img):
    w, h = face_img.size
    img = face_img.resize((w, h // 2))  # landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    p = tmp_path / "rot.jpg"
    img.save(p, "JPEG", exif=exif.tobytes())
    out = load_rgb(p)
    assert out.rgb.shape[:2] == (w, h // 2)  # height and width swapped by the EXIF rotation


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA"])
def test_modes_become_rgb(tmp_path, face_img, mode):
    img = face_img.convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    p = _save(img, tmp_path / f"x.{fmt.lower()}", fmt)
    out = load_rgb(p)
    assert out.rgb.dtype == np.uint8 and out.rgb.ndim == 3 and out.rgb.shape[2] == 3


def test_rgba_transparency_composited_on_white(tmp_path):
    arr = np.zeros((32, 32, 4), np.uint8)  # fully transparent black
    p = _save(Image.fromarray(arr, "RGBA"), tmp_path / "t.png", "PNG")
    assert load_rgb(p).rgb.min() == 255


def test_16bit_png(tmp_path):
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(arr).save(p)
    out = load_rgb(p)
    assert out.rgb.dtype == np.uint8 and out.rgb.max() >= 250 and out.rgb.min() == 0
    assert any("8 bits" in w for w in out.warnings)


def test_truncated_jpeg_decodes_partially(tmp_path, face_img):
    buf = io.BytesIO()
    face_img.save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    p = tmp_path / "trunc.jpg"
    p.write_bytes(data[: len(data) * 2 // 3])
    out = load_rgb(p)
    assert out.rgb.shape[:2] == (face_img.size[1], face_img.size[0])
    assert any("truncated" in w for w in out.warnings)


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "empty file"), (b"hello, I am not a photo\n" * 10, "not an image"), (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "")],
)
def test_non_images_fail_with_one_line_reason(tmp_path, content, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageLoadError) as e:
        load_rgb(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg and reason in msg


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found"):
        load_rgb(tmp_path / "nope.jpg")


def test_huge_image_is_downscaled(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (3000, 5000, 3), dtype=np.uint8)
    p = tmp_path / "huge.jpg"
    Image.fromarray(arr).save(p, quality=60)
    out = load_rgb(p, max_side=1024)
    assert max(out.rgb.shape[:2]) == 1024
    assert out.original_size == (5000, 3000)
    assert out.scale == pytest.approx(1024 / 5000, rel=0.01)
