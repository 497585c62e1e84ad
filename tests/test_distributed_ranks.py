"""Rank plumbing without torchrun: slices, merging the gathered slices, per-machine caches, and a
generate run resumed by one process after a 2-rank run lost a rank."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.distributed.embed import merge_parts
from fakeproof.generate.distributed import RANKS_DIR, RankShard, rank_journal_path
from fakeproof.distributed.ranks import engine_cache_dir, shard_bounds
from fakeproof.engine import FaceRecord
from fakeproof.engine.paths import cache_home
from fakeproof.data.records import read_fakes_csv
from fakeproof.generate.runner import generate_deepfakes
from fakeproof.distributed.process_group import DistInfo


@pytest.mark.parametrize("n,world", [(0, 2), (1, 3), (7, 2), (100, 8), (5, 8)])
def test_shard_bounds_cover_everything_once(n, world):
    spans = [shard_bounds(n, r, world) for r in range(world)]
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    sizes = [hi - lo for lo, hi in spans]
    assert max(sizes) - min(sizes) <= 1


def test_merge_parts_puts_slices_back_in_order_and_refuses_a_gap():
    emb = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    recs = [FaceRecord(path=str(i), ok=True) for i in range(10)]
    parts = [(lo, hi, emb[lo:hi], recs[lo:hi], {"emb_hits": lo, "emb_misses": 1}) for lo, hi in (shard_bounds(10, r, 3) for r in range(3))]
    stats = {"emb_hits": 0, "emb_misses": 0}
    res = merge_parts(parts[::-1], 10, 3, stats)  # arrival order does not matter
    assert np.array_equal(res.embeddings, emb) and [r.path for r in res.records] == [str(i) for i in range(10)]
    assert stats == {"emb_hits": sum(p[0] for p in parts), "emb_misses": 3}
    with pytest.raises(RuntimeError, match="cover 7 of 10"):
        merge_parts(parts[:2], 10, 3)


def test_engine_cache_is_shared_on_one_machine_and_per_machine_on_several(monkeypatch):
    assert engine_cache_dir(DistInfo()) is None
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert engine_cache_dir(DistInfo(rank=3, world_size=4)) is None
    monkeypatch.setenv("GROUP_RANK", "1")
    assert engine_cache_dir(DistInfo(rank=5, world_size=8)) == cache_home() / "engine" / "node-001"


@pytest.mark.integration
def test_one_process_finishes_what_a_lost_rank_left(tmp_path):
    from fakeproof.sample_data import make_sample_dataset

    one = make_sample_dataset(tmp_path / "one", photos_per_identity=2, identities=3)
    two = tmp_path / "two"
    shutil.copytree(one, two)
    args = ["--backends", "classic", "--per-identity", "2", "--seed", "1", "--device", "cpu"]
    assert CliRunner().invoke(app, ["generate", "deepfakes", str(one), *args]).exit_code == 0
    # rank 1 of a 2-rank run made its share, then its run died before rank 0 merged anything
    shard = RankShard(1, 2, rank_journal_path(two, 1))
    rep = generate_deepfakes(two, ["classic"], 2, seed=1, progress=False, shard=shard)
    assert rep.made == rep.planned > 0 and shard.planned_total == 6 and shard.plan_s > 0
    assert all(v == 0 for v in json.loads((two / "meta.json").read_text()).values())  # ranks leave meta.json to rank 0
    res = CliRunner().invoke(app, ["generate", "deepfakes", str(two), *args])  # no torchrun now
    assert res.exit_code == 0, res.output
    assert f"{rep.made} fakes journalled by the ranks of an earlier (killed) run were merged" in " ".join(res.output.split())
    assert not (two / RANKS_DIR).exists()
    strip = lambda rows: sorted(tuple(v for k, v in r.items() if k not in ("seconds", "created")) for r in rows)  # noqa: E731
    assert strip(read_fakes_csv(two)) == strip(read_fakes_csv(one))
    assert json.loads((two / "meta.json").read_text()) == json.loads((one / "meta.json").read_text())
