"""The engine's large-faces-first detection (engine/detect.py): on real photos it finds the same main
face, with the same landmarks, as the exhaustive pass; a photo whose only face is small still gets it
(second pass); the pyramid it runs is the classic one without its finest levels."""
from __future__ import annotations

import numpy as np

from fakeproof.engine import get_detector, load_rgb, pick_main_face
from fakeproof.engine.detect import MAIN_FACE_FRACTION, detect_large_first


def test_large_first_same_main_face_and_small_faces_still_found(group_photo, portrait_photo):
    det = get_detector("mtcnn")
    for path in (group_photo, portrait_photo):
        rgb = load_rgb(path).rgb
        a = pick_main_face(det.detect(rgb), rgb.shape)
        b = pick_main_face(detect_large_first(det, rgb), rgb.shape)
        assert a is not None and b is not None
        iod = float(np.linalg.norm(a.landmarks[0] - a.landmarks[1]))
        # identical on most photos (benchmarks: median 0); NMS across the skipped levels can move a point a little
        assert np.abs(a.landmarks - b.landmarks).max() < 0.06 * iod
    # the portrait's face pasted small (~12% of the side) into a large grey canvas: no face of >= 20%
    face = load_rgb(portrait_photo).rgb
    canvas = np.full((900, 900, 3), 128, np.uint8)
    canvas[400 : 400 + face.shape[0], 380 : 380 + face.shape[1]] = face
    assert face.shape[0] < MAIN_FACE_FRACTION * 900
    found = detect_large_first(det, canvas)
    assert found and 380 <= pick_main_face(found, canvas.shape).bbox[0] <= 380 + face.shape[1]


def test_large_first_pyramid_is_the_classic_one_without_its_finest_levels():
    det = get_detector("mtcnn")
    full = det._scales(600, 800)
    part = det._scales(600, 800, min_face=0.2 * 600)
    assert len(part) < len(full) and np.allclose(part, full[len(full) - len(part) :])
