"""curate clean end to end: real photos (sample dataset), the default encoder, one injected mislabel."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _curate_fixtures import TRUE_IDENTITY, WRONG_KEY, build_mislabelled, tree_digest
from fakeproof.cli import app
from fakeproof.curate.analyse import FLAG_COLUMNS


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "curate-sample-src"
    root = build_mislabelled(tmp_path_factory.mktemp("clean") / "ds", cache)
    before = tree_digest(root)
    r = CliRunner().invoke(app, ["curate", "clean", str(root)])  # the encoder's own EER threshold
    assert r.exit_code == 0, r.output
    return root, before, r.output


def test_a_threshold_means_the_same_on_every_calibrated_encoder_and_off_scale_ones_are_warned_about():
    from fakeproof.curate.thresholds import curation_thresholds
    from fakeproof.engine.cards import describe_threshold
    from fakeproof.engine import encoder_spec
    from fakeproof.engine.cards import card_from_spec

    dlib, facenet = card_from_spec(encoder_spec("dlib_resnet")), card_from_spec(encoder_spec("facenet"))
    op = dlib.operating_points
    assert not describe_threshold(dlib, 0.5)[1]  # 0.5 on the scale = the decision point: no warning
    line, warn = describe_threshold(dlib, 0.5, raw=True)  # a RAW -euclidean distance of 0.5: above even the same photo (0)
    assert warn and "far from" in line
    for card in (dlib, facenet):  # 0.5 on the scale is each encoder's own decision point, far apart as raw cosines
        t, fake, dup = curation_thresholds(card)
        assert t == pytest.approx(card.calibration.raw[2]) and card.operating_points.impostor_mean < fake < t < dup < card.same_photo_score
    # stock dlib's raw score is -euclidean distance (its decision point a distance near 0.66), facenet's a cosine near 0.3
    assert dlib.metric == "euclidean" and -0.8 < curation_thresholds(dlib)[0] < -0.5 and 0.1 < curation_thresholds(facenet)[0] < 0.5
    assert dlib.scale(op.impostor_mean) == pytest.approx(0.0, abs=0.05) and dlib.scale(0.0) == 1.0


def test_clean_flags_the_injected_mislabel_with_the_true_identity(cleaned):
    root, _, output = cleaned
    f = pd.read_csv(root / "curation" / "flags.csv", keep_default_na=False).set_index("key")
    row = f.loc[WRONG_KEY]
    assert str(row.flagged) == "True", row
    assert row.suggested_identity == TRUE_IDENTITY
    assert float(row.suggested_cosine) > float(row.score)
    # the other photos of the sample set are variations of one photo each: none should be flagged
    assert int((f.flagged.astype(str) == "True").sum()) == 1, f[f.flagged.astype(str) == "True"]
    # flagged rows come first in the file, worst score first
    assert pd.read_csv(root / "curation" / "flags.csv").key.iloc[0] == WRONG_KEY
    assert "curate clean" in output and "flagged" in output


def test_clean_writes_every_row_and_its_files(cleaned):
    root, _, _ = cleaned
    cur = root / "curation"
    f = pd.read_csv(cur / "flags.csv")
    meta_keys = set(pd.read_json(root / "meta.json", typ="series").index)
    assert list(f.columns) == FLAG_COLUMNS
    assert set(f.key) == meta_keys
    ids = pd.read_csv(cur / "identities.csv", keep_default_na=False).set_index("identity")
    assert int(ids.loc["person_02", "flagged"]) == 1 and int(ids.loc["person_02", "photos"]) == 6
    with np.load(cur / "similarity.npz") as z:
        names = list(z["identities"])
        j = names.index("person_02")
        keys, sim = list(z[f"keys_{j}"]), z[f"sim_{j}"]
    assert WRONG_KEY in keys and sim.shape == (6, 6)
    assert np.allclose(np.diag(sim), 0.0, atol=1e-4)  # raw scores of the default card's metric: -euclidean distance, 0 = the same photo
    assert (cur / "heatmaps" / "person_02.png").stat().st_size > 1000
    assert not (cur / "heatmaps" / "person_03.png").exists()


def test_clean_never_modifies_the_dataset(cleaned):
    root, before, _ = cleaned
    assert tree_digest(root) == before
    assert not (root / ".history").exists()


def test_rerun_with_another_threshold_uses_the_cache(cleaned, tmp_path):
    from fakeproof.curate.clean import run_clean
    from fakeproof.engine import FaceEngine

    root, before, _ = cleaned
    eng = FaceEngine()  # the default encoder, as the CLI run above
    res = run_clean(root, 0.95, engine=eng, out=tmp_path / "out", progress=False)
    assert eng.stats["emb_misses"] == 0 and eng.stats["emb_hits"] == len(res.analysis.flags)
    assert res.summary["threshold"] == 0.95
    assert (tmp_path / "out" / "flags.csv").exists()
    assert tree_digest(root) == before


def test_clean_reports_a_bad_meta_in_one_line(tmp_path):
    (tmp_path / "meta.json").write_text("{not json")
    r = CliRunner().invoke(app, ["curate", "clean", str(tmp_path)])
    assert r.exit_code == 1
    assert "meta.json" in r.output and "invalid JSON" in r.output
