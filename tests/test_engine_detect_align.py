"""Detection and alignment on real photos that an installed dependency ships (insightface's t1.jpg)."""
from __future__ import annotations

import numpy as np
import pytest

from fakeproof.engine import ARCFACE_TEMPLATE, align_face, get_detector, load_rgb, pick_main_face, similarity_transform, template_for
from fakeproof.engine.detect import Face


@pytest.fixture(scope="module")
def detector():
    return get_detector("mtcnn")


@pytest.fixture(scope="module")
def group(group_photo):
    return load_rgb(group_photo).rgb


def test_mtcnn_finds_the_six_people(detector, group):
    faces = [f for f in detector.detect(group) if f.score > 0.95]
    assert len(faces) >= 6
    for f in faces:
        x1, y1, x2, y2 = f.bbox
        lm = f.landmarks
        assert (lm[:, 0] > x1 - 5).all() and (lm[:, 0] < x2 + 5).all() and (lm[:, 1] > y1 - 5).all() and (lm[:, 1] < y2 + 5).all()
        assert lm[0, 0] < lm[1, 0]  # left eye is left of right eye
        assert lm[2, 1] > lm[0, 1] and lm[3, 1] > lm[2, 1]  # nose below eyes, mouth below nose


def test_alignment_puts_landmarks_on_the_template(detector, group):
    faces = [f for f in detector.detect(group) if f.score > 0.95]
    for f in faces[:3]:
        crop = align_face(group, f.landmarks, 112)
        assert crop.shape == (112, 112, 3)
        # detect again inside a padded version of the aligned crop: landmarks land near the template
        pad = 40
        again = detector.detect(np.pad(crop, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
        assert again, "the aligned crop still shows a face"
        best = min(again, key=lambda g: np.abs(g.landmarks - pad - ARCFACE_TEMPLATE).mean())
        assert np.abs(best.landmarks - pad - ARCFACE_TEMPLATE).mean() < 6.0  # px; a wrong axis order gives > 15


def test_template_scales_with_size_and_margin():
    assert np.allclose(template_for(112), ARCFACE_TEMPLATE)
    assert np.allclose(template_for(224), ARCFACE_TEMPLATE * 2)
    t = template_for(160, margin=0.25)  # 1.5x the template box squeezed into 160 px
    centre = np.array([80, 80])
    assert np.allclose(t - centre, (ARCFACE_TEMPLATE - 56) * 160 / 168, atol=1e-4)


def test_similarity_transform_recovers_a_known_warp():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = np.deg2rad(17), 1.7, np.array([12.0, -4.0])
    r = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ r.T + t
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], r, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_main_face_prefers_large_and_central():
    def face(x1, y1, x2, y2):
        return Face(np.array([x1, y1, x2, y2], np.float32), 0.99, np.zeros((5, 2), np.float32))

    small_centre, big_corner, big_centre = face(90, 90, 110, 110), face(0, 0, 60, 60), face(70, 70, 130, 130)
    assert pick_main_face([small_centre, big_corner, big_centre], (200, 200)) is big_centre
    assert pick_main_face([], (200, 200)) is None


def test_engine_records_faces_and_fallbacks(tmp_path, group_photo, portrait_photo):
    from fakeproof.engine.pipeline import FaceEngine

    eng = FaceEngine.__new__(FaceEngine)  # detection/alignment only: no encoder needed here
    eng.detector_name, eng._detector, eng.margin, eng.crop_size, eng.template = "mtcnn", None, 0.0, (112, 112), "arcface"
    eng.detect_max_side, eng.fallback, eng.device = 1024, "auto", "cpu"
    rec, crop = eng.detect_and_align(group_photo.read_bytes(), group_photo)
    # the engine looks for large faces first (>= 20% of the shorter side, to the nearest pyramid level)
    assert rec.ok and rec.fallback is None and rec.n_faces >= 5 and crop.shape == (112, 112, 3)
    main = rec.bbox
    eng.large_first = 0.0  # one exhaustive pass: all six, and the same main face
    rec, crop = eng.detect_and_align(group_photo.read_bytes(), group_photo)
    assert rec.ok and rec.n_faces >= 6 and np.abs(np.array(rec.bbox) - main).max() < 0.02 * (main[2] - main[0])
    del eng.large_first
    # an aligned 112x112 crop (Kryptonite style) works: detected, or taken as already aligned
    rec, crop = eng.detect_and_align(portrait_photo.read_bytes(), portrait_photo)
    assert rec.ok and rec.fallback in (None, "pre_aligned")
    noise = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    import cv2

    p = tmp_path / "noise.png"
    cv2.imwrite(str(p), noise)
    rec, crop = eng.detect_and_align(p.read_bytes(), p)
    assert rec.ok and rec.fallback == "whole_image" and rec.n_faces == 0
    eng.fallback = "none"
    rec, crop = eng.detect_and_align(p.read_bytes(), p)
    assert not rec.ok and rec.error == "no face detected" and crop is None
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    rec, crop = eng.detect_and_align(bad.read_bytes(), bad)
    assert not rec.ok and "not an image" in rec.error
