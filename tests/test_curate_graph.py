"""The graph / suggestion logic of curate on controlled embeddings (no model)."""
from __future__ import annotations

import numpy as np

from fakeproof.curate.analyse import PhotoInfo, analyse
from fakeproof.curate.graph import identity_graph


def _unit(rng, n, d=64):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _cluster(rng, center, n, noise=0.05):
    e = center[None] + rng.standard_normal((n, len(center))).astype(np.float32) * noise
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_largest_component_wins_and_rest_is_flagged():
    rng = np.random.default_rng(0)
    a, b = _unit(rng, 2)
    emb = np.concatenate([_cluster(rng, a, 4), _cluster(rng, b, 2), _unit(rng, 1)])
    g = identity_graph("x", [f"x/{i}.jpg" for i in range(7)], emb, 0.5)
    assert list(g.component[:4]) == [0] * 4
    assert list(g.component[4:6]) == [1, 1]
    assert g.component[6] == -1
    assert list(g.flagged) == [False] * 4 + [True] * 3
    assert g.reason[4] == "outlier_component" and g.reason[6] == "isolated"
    # the score of an outlier is its mean cosine to the main component: low
    assert g.score[:4].min() > 0.8 and g.score[4:].max() < 0.4


def test_tiny_identities_and_ties():
    rng = np.random.default_rng(1)
    a, b = _unit(rng, 2)
    one = identity_graph("one", ["one/0.jpg"], _cluster(rng, a, 1), 0.5)
    assert not one.flagged.any() and one.reason == ["single_photo"]
    pair = identity_graph("pair", ["p/0.jpg", "p/1.jpg"], np.stack([a, b]), 0.5)
    assert pair.flagged.all() and set(pair.reason) == {"pair_disagrees"}
    # two components of 2: the more central one (closer to the fifth, isolated photo) is main
    emb = np.concatenate([_cluster(rng, a, 2, 0.01), _cluster(rng, b, 2, 0.01), _unit(rng, 1)])
    emb[4] = (a * 0.45 + _unit(rng, 1)[0] * 0.9)
    emb[4] /= np.linalg.norm(emb[4])
    g = identity_graph("tie", [f"t/{i}.jpg" for i in range(5)], emb, 0.5)
    assert g.tie
    assert g.main_size == 2 and g.component[0] == g.component[1] == 0  # the a-pair is closer to photo 4
    tied = [r for r in g.reason if r == "tied_component"]
    assert len(tied) == 2


def test_analyse_suggests_true_identity_and_merges():
    rng = np.random.default_rng(2)
    centers = _unit(rng, 4)
    emb, keys, ids = [], [], []
    for k in range(4):
        for i in range(5):
            emb.append(_cluster(rng, centers[k], 1)[0])
            ids.append(f"id{k}")
            keys.append(f"id{k}/{i}.jpg")
    # a photo of id0 labelled id1, an identity "id0b" that is id0 again, a deepfake of nobody
    emb.append(_cluster(rng, centers[0], 1)[0]); ids.append("id1"); keys.append("id1/wrong.jpg")
    for i in range(3):
        emb.append(_cluster(rng, centers[0], 1)[0]); ids.append("id0b"); keys.append(f"id0b/{i}.jpg")
    emb.append(_unit(rng, 1)[0]); ids.append("id2"); keys.append("id2/fake.jpg")
    fake = np.array([k.endswith("fake.jpg") for k in keys])
    info = [PhotoInfo(digest=f"d{i}") for i in range(len(keys))]
    a = analyse(keys, ids, fake, np.stack(emb), 0.5, info=info, progress=False)
    f = a.flags.set_index("key")
    assert bool(f.loc["id1/wrong.jpg", "flagged"])
    assert f.loc["id1/wrong.jpg", "suggested_identity"] in ("id0", "id0b")
    assert f.loc["id2/fake.jpg", "reason"] == "fake_unlike_identity"
    assert ("id0", "id0b") in {(m[0], m[1]) for m in a.merges}
    assert int(f.flagged.sum()) == 2
    assert len(a.flags) == len(keys)


def test_unreadable_and_no_face_and_exact_duplicates():
    rng = np.random.default_rng(3)
    centers = _unit(rng, 2)
    emb = np.concatenate([_cluster(rng, centers[0], 4), _cluster(rng, centers[1], 4)])
    emb[1] = np.nan
    keys = [f"a/{i}.jpg" for i in range(4)] + [f"b/{i}.jpg" for i in range(4)]
    ids = [k[0] for k in keys]
    info = [PhotoInfo(digest=f"d{i}") for i in range(8)]
    info[1] = PhotoInfo(ok=False, error="not an image (unknown format)")
    info[2] = PhotoInfo(fallback="whole_image", n_faces=0, digest="d2")
    info[7] = PhotoInfo(digest="d0", n_faces=2)  # same file content as a/0.jpg
    a = analyse(keys, ids, np.zeros(8, bool), emb, 0.5, info=info, progress=False)
    f = a.flags.set_index("key")
    assert f.loc["a/1.jpg", "reason"] == "unreadable" and "unknown format" in f.loc["a/1.jpg", "notes"]
    assert f.loc["a/2.jpg", "reason"] == "no_face"
    assert f.loc["b/3.jpg", "flagged"] and "same_file_as:a/0.jpg" in f.loc["b/3.jpg", "notes"]
    assert "several_faces(2)" in f.loc["b/3.jpg", "notes"]


def test_member_above_threshold_still_flagged_when_another_identity_is_closer():
    """A photo of B filed under A that joins A's main component (its mean to A is even above the
    threshold) is flagged when B's main component is closer by more than the margin; an atypical
    photo of A with no better identity stays in."""
    rng = np.random.default_rng(4)
    a, u = _unit(rng, 2)
    u = u - (u @ a) * a
    u /= np.linalg.norm(u)
    b = 0.6 * a + 0.8 * u  # cos(a, b) = 0.6: two look-alike people
    emb, keys, ids = [], [], []
    for name, c in (("A", a), ("B", b)):
        for i in range(6):
            emb.append(_cluster(rng, c, 1, 0.02)[0]); ids.append(name); keys.append(f"{name}/{i}.jpg")
    x = 0.25 * a + 0.97 * b  # a photo of B, filed under A
    emb.append(x / np.linalg.norm(x)); ids.append("A"); keys.append("A/moved.jpg")
    r = _unit(rng, 1)[0]
    r -= (r @ a) * a + (r @ u) * u
    odd = 0.6 * a + 0.8 * r / np.linalg.norm(r)  # an atypical photo of A (profile, old photo): like nobody else
    emb.append(odd / np.linalg.norm(odd)); ids.append("A"); keys.append("A/odd.jpg")
    emb = np.stack(emb)
    own_mean = float((emb[:6] @ emb[12]).mean())
    assert own_mean >= 0.5  # above the threshold: the rule before looked only below it
    assert float(emb[6:12].mean(0) @ emb[12]) > own_mean + 0.1
    f = analyse(keys, ids, np.zeros(len(keys), bool), emb, 0.5, progress=False).flags.set_index("key")
    assert f.loc["A/moved.jpg", "reason"] == "closer_to_other_identity" and f.loc["A/moved.jpg", "flagged"]
    assert f.loc["A/moved.jpg", "suggested_identity"] == "B"
    assert not f.loc["A/odd.jpg", "flagged"], f.loc["A/odd.jpg"].to_dict()
    assert int(f.flagged.sum()) == 1
    # the margin is read on the similarity scale when one is given: a scale that squeezes the
    # difference below it keeps the photo
    f = analyse(keys, ids, np.zeros(len(keys), bool), emb, 0.5, progress=False, scale=lambda v: np.asarray(v) * 0.1).flags.set_index("key")
    assert not f.loc["A/moved.jpg", "flagged"]


def test_main_group_score_matches_score_to_groups():
    """The own score the closer rule uses is in the units the other identities are scored in:
    minus the RMS distance to the main component's other members (euclidean), the mean cosine (cosine)."""
    from fakeproof.curate.graph import main_group_score
    from fakeproof.engine.cards import group_stats, raw_score_matrix, score_to_groups

    rng = np.random.default_rng(5)
    e = rng.standard_normal((6, 8))
    main = np.array([0, 1, 2, 4])
    for metric in ("euclidean", "cosine"):
        x = e if metric == "euclidean" else e / np.linalg.norm(e, axis=1, keepdims=True)
        got = main_group_score(raw_score_matrix(metric, x), main, metric)
        for i in range(6):
            rest = [j for j in main if j != i]
            m, sp = group_stats(x[rest])
            want = score_to_groups(metric, x[i : i + 1], m[None], [sp])[0, 0]
            assert abs(got[i] - want) < 1e-5, (metric, i)


def _moved_lookalike(rng):
    """Two look-alike people A and B (6 photos each) and a photo of B filed under A that joins A's main
    component; returns keys, identities, embeddings and the photo's mean cosine to B."""
    a, u = _unit(rng, 2)
    u = u - (u @ a) * a
    u /= np.linalg.norm(u)
    b = 0.6 * a + 0.8 * u
    emb, keys, ids = [], [], []
    for name, c in (("A", a), ("B", b)):
        for i in range(6):
            emb.append(_cluster(rng, c, 1, 0.02)[0]); ids.append(name); keys.append(f"{name}/{i}.jpg")
    x = 0.25 * a + 0.97 * b
    emb.append(x / np.linalg.norm(x)); ids.append("A"); keys.append("A/moved.jpg")
    emb = np.stack(emb)
    return keys, ids, emb, float(emb[6:12].mean(0) @ emb[12])


def test_closer_rule_needs_the_other_identity_past_its_floor():
    """``closer_floor``: a main-component photo is moved out only when the other identity's mean reaches
    it (``curate clean``: a little above the decision point), not on a near-tie with the threshold."""
    keys, ids, emb, to_b = _moved_lookalike(np.random.default_rng(4))
    assert to_b >= 0.5
    fake = np.zeros(len(keys), bool)
    for floor, want in ((None, True), (to_b - 0.01, True), (to_b + 0.01, False)):
        f = analyse(keys, ids, fake, emb, 0.5, progress=False, closer_floor=floor).flags.set_index("key")
        assert bool(f.loc["A/moved.jpg", "flagged"]) is want, (floor, f.loc["A/moved.jpg"].to_dict())


def test_a_distinct_best_other_identity_overrides_weak_match():
    """A photo cut off from its identity's graph but like it a little (>= keep_floor) is kept as
    ``weak_match`` when no identity reaches the threshold, unless (``distinct_floor``) its best other
    identity reaches the floor AND stands out from every further one by ``distinct_margin``: then it is
    flagged with that suggestion. A photo vaguely like two strangers at once stays a weak match."""
    rng = np.random.default_rng(6)
    basis = np.linalg.qr(rng.standard_normal((64, 10)))[0].T.astype(np.float32)  # orthonormal rows
    emb, keys, ids = [], [], []
    for k, name in enumerate("ABCD"):
        for i in range(6):
            emb.append(_cluster(rng, basis[k], 1, 0.02)[0]); ids.append(name); keys.append(f"{name}/{i}.jpg")
    moved = 0.3 * basis[0] + 0.42 * basis[1] + np.sqrt(1 - 0.3**2 - 0.42**2) * basis[5]  # of B, filed under A
    vague = 0.3 * basis[0] + 0.42 * basis[1] + 0.40 * basis[2] + np.sqrt(1 - 0.3**2 - 0.42**2 - 0.4**2) * basis[6]
    for key, v in (("A/moved.jpg", moved), ("A/vague.jpg", vague)):
        emb.append(v); ids.append("A"); keys.append(key)
    emb, fake = np.stack(emb).astype(np.float32), np.zeros(len(keys), bool)
    base = analyse(keys, ids, fake, emb, 0.5, progress=False, keep_floor=0.0).flags.set_index("key")
    assert (base.loc[["A/moved.jpg", "A/vague.jpg"], "reason"] == "weak_match").all() and not base.flagged.any()
    f = analyse(keys, ids, fake, emb, 0.5, progress=False, keep_floor=0.0, distinct_floor=0.35, distinct_margin=0.1).flags.set_index("key")
    row = f.loc["A/moved.jpg"]
    assert row.flagged and row.reason == "isolated" and row.suggested_identity == "B" and "distinct_other_identity" in row.notes
    assert f.loc["A/vague.jpg", "reason"] == "weak_match" and not f.loc["A/vague.jpg", "flagged"]
    assert int(f.flagged.sum()) == 1
    # the floor is a floor: below it the distinct match is still a weak match
    f = analyse(keys, ids, fake, emb, 0.5, progress=False, keep_floor=0.0, distinct_floor=0.45, distinct_margin=0.1).flags.set_index("key")
    assert not f.flagged.any()


def test_clean_passes_the_floors_on_the_similarity_scale(monkeypatch, tmp_path):
    """``curate clean`` reads both floors off the card's scale around --threshold:
    closer_floor at threshold + CLOSER_FLOOR_MARGIN_SCALE, distinct_floor at threshold - DISTINCT_BELOW_SCALE."""
    from types import SimpleNamespace

    from PIL import Image

    from fakeproof.curate import clean
    from fakeproof.curate.thresholds import CLOSER_FLOOR_MARGIN_SCALE, DISTINCT_BELOW_SCALE, DISTINCT_MARGIN_SCALE
    from fakeproof.data import write_meta
    from fakeproof.engine import encoder_spec
    from fakeproof.engine.cards import card_from_spec

    (tmp_path / "images" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a" / "0.jpg")
    write_meta(tmp_path / "meta.json", {"a/0.jpg": 0})
    card = card_from_spec(encoder_spec("dlib_resnet"))
    seen = {}

    class Seen(Exception):
        pass

    def fake_analyse(*args, **kw):
        seen.update(kw)
        raise Seen

    rec = SimpleNamespace(ok=True, error=None, n_faces=1, fallback=None, digest="d")
    monkeypatch.setattr(clean, "analyse", fake_analyse)
    monkeypatch.setattr(clean, "embed_paths_across_ranks", lambda eng, paths, progress=True: SimpleNamespace(records=[rec] * len(paths), embeddings=np.zeros((len(paths), 128), np.float32)))
    engine = SimpleNamespace(card=card, spec=SimpleNamespace(name="dlib_resnet"), margin=0.0, stats={})
    for t in (0.5, 0.6):
        seen.clear()
        try:
            clean.run_clean(tmp_path, t, engine=engine, out=tmp_path / "cur", progress=False)
        except Seen:
            pass
        assert seen["closer_floor"] == card.raw_threshold(t + CLOSER_FLOOR_MARGIN_SCALE)
        assert seen["distinct_floor"] == card.raw_threshold(t - DISTINCT_BELOW_SCALE)
        assert seen["distinct_margin"] == DISTINCT_MARGIN_SCALE
        assert card.raw_threshold(t) < seen["closer_floor"] and seen["distinct_floor"] < card.raw_threshold(t)
