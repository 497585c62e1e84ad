"""Model cards and the one similarity scale (fakeproof.engine.cards): the calibration is monotone and
invertible, every --model form resolves to a card, and the card travels with checkpoints and ONNX."""
from __future__ import annotations

import numpy as np
import pytest

from fakeproof.engine.cards import DECISION, IDENTITY, STOCK_CALIBRATIONS, Calibration, stock_calibration


def test_calibration_is_monotone_invertible_and_anchored():
    cal = Calibration.from_points(0.83, 0.9, "test")
    x = np.linspace(-1, 1, 2001)
    y = cal(x)
    assert np.all(np.diff(y) > 0)  # strictly increasing: rankings and EERs are those of the raw cosine
    assert cal(0.83) == pytest.approx(0.0) and cal(0.9) == pytest.approx(DECISION) and cal(1.0) == 1.0 and cal(-1.0) == -1.0
    assert np.allclose(cal.inverse(y), x, atol=1e-9)
    assert np.isnan(cal(np.array([np.nan, 0.5]))[0])
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert IDENTITY(0.37) == pytest.approx(0.37) and IDENTITY.is_identity
    with pytest.raises(ValueError, match="increasing"):
        Calibration((-1.0, 0.5, 0.4, 1.0), (-1.0, 0.0, 0.5, 1.0))


def test_calibration_fit_puts_impostors_near_0_and_the_eer_point_at_half():
    rng = np.random.default_rng(0)
    gen, imp = rng.normal(0.95, 0.02, 3000), rng.normal(0.83, 0.03, 3000)
    scores, labels = np.r_[gen, imp], np.r_[np.ones(3000), np.zeros(3000)]
    cal = Calibration.fit(scores, labels, "synthetic")
    s = cal(scores)
    assert abs(np.median(s[labels == 0])) < 1e-3 and abs(s[labels == 0].mean()) < 0.1 and s[labels == 1].mean() > 0.6
    far, frr = np.mean(s[labels == 0] >= DECISION), np.mean(s[labels == 1] < DECISION)
    assert abs(far - frr) < 0.01  # 0.5 = the EER point


def test_fusion_calibration_is_derived_from_its_parts():
    cal = stock_calibration("fusion:0.3*facenet+0.7*dlib_resnet")
    # a fusion compares L2-normalised parts by cosine: it is derived from dlib's COSINE knots, not its euclidean card's
    f, d = STOCK_CALIBRATIONS["facenet"], stock_calibration("dlib_resnet", "cosine")
    assert d.metric == "cosine" and STOCK_CALIBRATIONS["dlib_resnet"].metric == "euclidean"
    assert cal.metric == "cosine" and cal.raw[2] == pytest.approx(0.3 * f.raw[2] + 0.7 * d.raw[2])
    assert stock_calibration("onnx:/x.onnx").is_identity


def test_every_model_form_resolves_to_a_card_and_the_engine_scores_with_it(tmp_path):
    from fakeproof.engine import FaceEngine, get_encoder, resolve_model
    from fakeproof.infer.onnx_export import export_onnx
    from fakeproof.train.checkpoint_writer import encoder_config, save_best

    m = resolve_model("facenet", device="cpu")
    card = m.card
    assert card is m.encoder.card and card.calibrated and card.trainable and not card.is_onnx
    assert card.input_size == (160, 160) and card.metric == "cosine" and m.threshold == DECISION
    assert m.raw_threshold == pytest.approx(STOCK_CALIBRATIONS["facenet"].raw[2])
    a, b = np.eye(4, dtype=np.float32)[:2], np.eye(4, dtype=np.float32)[[0, 2]]
    assert card.similarity(a, b, raw=True).tolist() == [1.0, 0.0] and card.similarity(a, b)[0] == 1.0
    assert FaceEngine(m.encoder, device="cpu", use_cache=False).card is card
    bare = get_encoder("facenet")  # built outside the resolver: the engine gives it its stock card
    assert FaceEngine(bare, device="cpu", use_cache=False).card.calibration == card.calibration

    # a fine-tuned checkpoint carries its own calibration
    own = Calibration.from_points(0.1, 0.45, "validation split")
    save_best(tmp_path / "run", bare, {**encoder_config(bare, "facenet", None, "mtcnn", bare.spec.align_margin), "threshold": 0.45, "calibration": own.to_dict()})
    ck = resolve_model(str(tmp_path / "run"), device="cpu")
    assert ck.card.calibration == own and ck.threshold == DECISION and ck.raw_threshold == pytest.approx(0.45)

    # ... and so does an exported ONNX model
    export_onnx(ck.encoder, tmp_path / "m.onnx", threshold=ck.threshold, source="test")
    ox = resolve_model(str(tmp_path / "m.onnx"), device="cpu")
    assert ox.card.is_onnx and not ox.card.trainable and ox.card.calibration == own and ox.threshold == DECISION


def test_euclidean_card_scale_same_photo_is_1_and_typical_impostor_is_0():
    """Stock dlib compares raw descriptors by -euclidean distance: the same photo (distance 0) is 1 on
    the scale, the median impostor pair 0; the matrix form gives the pairwise numbers."""
    from fakeproof.engine.cards import ModelCard, card_from_spec
    from fakeproof.engine.encoders.dlib_resnet import dlib_resnet_spec

    card = card_from_spec(dlib_resnet_spec())
    assert card.metric == "euclidean" and not card.normalised and card.same_photo_score == 0.0
    cal = card.calibration
    assert cal.raw[-1] == 0.0 and cal(0.0) == 1.0 and cal(cal.raw[1]) == pytest.approx(0.0) and cal(cal.raw[2]) == pytest.approx(DECISION)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (6, 128))
    assert np.allclose(card.similarity(x, x), 1.0)  # same photo -> 1
    m = card.similarity_matrix(x)
    pair = np.array([[card.similarity(x[i], x[j]) for j in range(6)] for i in range(6)])
    assert np.allclose(m, pair) and np.allclose(np.diag(m), 1.0)
    raw = card.similarity_matrix(x, raw=True)
    assert np.allclose(raw[0, 1], -np.linalg.norm(x[0] - x[1]))
    # a calibration in one metric never reads the other's scores
    with pytest.raises(ValueError, match="cannot read"):
        ModelCard(**{**card.__dict__, "calibration": Calibration.from_points(0.8, 0.9, "cos")})
    # synthetic impostor/genuine distances: the fit puts the impostor median at 0 and the EER point at 0.5
    gen, imp = -np.abs(rng.normal(0.45, 0.08, 3000)), -np.abs(rng.normal(0.82, 0.08, 3000))
    scores, labels = np.r_[gen, imp], np.r_[np.ones(3000), np.zeros(3000)]
    fit = Calibration.fit(scores, labels, "synthetic", metric="euclidean")
    s = fit(scores)
    assert abs(np.median(s[labels == 0])) < 1e-3 and s[labels == 1].mean() > 0.6 and fit(0.0) == 1.0
    assert Calibration.from_dict(fit.to_dict()) == fit


def test_curation_group_scores_are_exact_means_of_the_pairwise_scores():
    """curate summarises an identity by (mean, spread): for cosine the photo-to-group score is the
    mean pairwise cosine, for euclidean minus the RMS pairwise distance (both exact)."""
    from fakeproof.engine.cards import group_stats, raw_score_matrix, score_rows_to_groups, score_to_groups

    rng = np.random.default_rng(1)
    x, g, h = rng.normal(size=(5, 8)), rng.normal(size=(4, 8)), rng.normal(size=(3, 8))
    (mg, sg), (mh, sh) = group_stats(g), group_stats(h)
    d2 = lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1)
    assert np.allclose(score_to_groups("euclidean", x, mg[None], [sg])[:, 0], -np.sqrt(d2(x, g).mean(1)))
    assert np.allclose(score_to_groups("euclidean", mh[None], mg[None], [sg], x_spreads=[sh])[0, 0], -np.sqrt(d2(h, g).mean()))
    assert np.allclose(score_rows_to_groups("euclidean", x, np.repeat(mg[None], 5, 0), np.full(5, sg)), score_to_groups("euclidean", x, mg[None], [sg])[:, 0])
    n = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    xn, gn = n(x), n(g)
    mgn, sgn = group_stats(gn)
    assert np.allclose(score_to_groups("cosine", xn, mgn[None], [sgn])[:, 0], raw_score_matrix("cosine", xn, gn).mean(1))


def test_stock_dlib_scores_by_euclidean_end_to_end_and_its_onnx_export_gives_the_same_numbers(tmp_path, group_photo, portrait_photo):
    """The default encoder's card says euclidean: the engine keeps the raw descriptor (flip = the mean
    of the raw descriptors), its cache never hands a normalised vector to it, and an exported ONNX
    model carries the metric and calibration and scores the same pairs to the same numbers."""
    from fakeproof.engine import FaceEngine, resolve_model
    from fakeproof.infer.onnx_export import export_onnx

    m = resolve_model("dlib_resnet", device="cpu")
    assert m.card.metric == "euclidean" and m.card.calibration.metric == "euclidean" and m.raw_threshold < 0
    photos = [group_photo, portrait_photo]
    eng = FaceEngine(m.encoder, device="cpu", cache_dir=tmp_path / "cache")
    emb = eng.embed_paths(photos, progress=False).embeddings
    assert np.all(np.linalg.norm(emb, axis=1) > 1.05)  # raw descriptors (dlib's norms sit near 1.5), not unit vectors
    _, crops = eng.crops(photos, progress=False)
    raw = m.encoder.embed(crops, normalise=False)
    mirrored = m.encoder.embed([np.ascontiguousarray(c[:, ::-1]) for c in crops], normalise=False)
    assert np.allclose(emb, (raw + mirrored) / 2, atol=1e-5)  # what benchmarks/verify_peers.py measured
    # a cosine engine over the same cache must not read these raw vectors
    cos_card = m.card.with_(metric="cosine", calibration=Calibration.from_points(0.85, 0.9, "t"))
    enc2 = resolve_model("dlib_resnet", device="cpu").encoder
    enc2.card = cos_card
    eng2 = FaceEngine(enc2, device="cpu", cache_dir=tmp_path / "cache")
    assert np.allclose(np.linalg.norm(eng2.embed_paths(photos, progress=False).embeddings, axis=1), 1.0, atol=1e-5)
    sim = m.card.similarity_matrix(emb)
    assert np.allclose(np.diag(sim), 1.0) and sim[0, 1] < DECISION  # two different people

    ox_path = tmp_path / "dlib.onnx"
    rep = export_onnx(m.encoder, ox_path, threshold=m.threshold, source="test")
    assert rep.metadata["fakeproof.metric"] == "euclidean" and "raw descriptor" in rep.metadata["fakeproof.output"]
    ox = resolve_model(str(ox_path), device="cpu")
    assert ox.card.metric == "euclidean" and ox.card.calibration == m.card.calibration and ox.threshold == m.threshold
    eng_ox = FaceEngine(ox.encoder, device="cpu", use_cache=False)
    emb_ox = eng_ox.embed_paths(photos, progress=False).embeddings
    assert np.abs(emb_ox - emb).max() <= 1e-4
    assert np.allclose(ox.card.similarity_matrix(emb_ox), sim, atol=1e-4)
