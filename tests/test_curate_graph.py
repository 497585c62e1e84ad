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
