"""``generate deepfakes`` across ranks: one plan, split by identity, one journal per rank, one merge.

Every rank computes the same plan from the dataset and the seed (:func:`fakeproof.generate.runner.plan_jobs`)
and keeps the jobs of its identities (:func:`split_by_identity`: whole identities, balanced by job
count). All fakes of an identity are made by one rank, in plan order, so the keys
(``<identity>/<n>.jpg``), sources, targets and seeds are those one process would give.

Each rank appends its rows to ``DATASET/fakes.ranks/rank-NNNNN.csv`` (fsynced per fake, like
``fakes.csv``). Rank 0 folds every rank journal into ``fakes.csv`` and ``meta.json`` with
:func:`fold_rank_journals` (atomic replace of both, then the rank journals are removed) before the
run starts - so the leftovers of a killed run are counted, whatever world size made them - and again
once every rank is done. A killed run is resumed by running the same command again.
"""
from __future__ import annotations

import csv
import heapq
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..data.atomic import replacing
from ..data import read_meta, write_meta
from .fake_files import recover_temps
from ..data.records import FAKES_CSV, read_fakes_csv
from .runner import COLUMNS, FakeJob, RunReport, generate_deepfakes
from ..distributed.process_group import DistInfo, barrier, gather_objects
from ..distributed.ranks import join_ranks

RANKS_DIR = "fakes.ranks"


def rank_journal_path(root: Path, rank: int) -> Path:
    return Path(root) / RANKS_DIR / f"rank-{rank:05d}.csv"


def rank_journals(root: Path) -> list[Path]:
    d = Path(root) / RANKS_DIR
    return sorted(d.glob("rank-*.csv")) if d.is_dir() else []


def split_by_identity(jobs: list[FakeJob], world: int) -> list[list[FakeJob]]:
    """Jobs per rank: each identity's jobs go whole to the rank with the fewest jobs so far (ties:
    lowest rank), identities in plan order. Deterministic; ranks differ by at most one identity."""
    per_id: dict[str, list[FakeJob]] = defaultdict(list)
    for j in jobs:
        per_id[j.identity].append(j)
    heap = [(0, r) for r in range(world)]
    out: list[list[FakeJob]] = [[] for _ in range(world)]
    for ident, js in per_id.items():
        load, r = heapq.heappop(heap)
        out[r].extend(js)
        heapq.heappush(heap, (load + len(js), r))
    return out


@dataclass
class RankShard:
    """What :func:`generate_deepfakes` needs to know to take part as one rank (its ``shard=``)."""

    rank: int
    world_size: int
    journal_path: Path
    started: float = field(default_factory=time.perf_counter)
    plan_s: float | None = None  # reading the dataset + journals and planning, seconds
    planned_total: int = 0  # the whole plan, all ranks

    def select(self, jobs: list[FakeJob]) -> list[FakeJob]:
        self.planned_total = len(jobs)
        mine = split_by_identity(jobs, self.world_size)[self.rank]
        self.plan_s = time.perf_counter() - self.started
        return mine


@dataclass
class FoldReport:
    journals: int = 0  # rank journals folded
    rows: int = 0  # rows new to fakes.csv
    duplicates: int = 0  # rows whose key fakes.csv (or an earlier rank journal) already had
    meta_added: int = 0
    seconds: float = 0.0


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        # a row cut short (a kill in the middle of a write) lacks its last column: dropped, the fake is made again
        rows = [row for row in r if row.get("key") and all(row.get(c) is not None for c in COLUMNS) and row["created"].endswith("Z")]
        return list(r.fieldnames or []), rows


def _atomic_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    with replacing(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def fold_rank_journals(root) -> FoldReport:
    """Merge every rank journal into ``fakes.csv`` and ``meta.json`` (rank 0 only; idempotent).

    ``fakes.csv`` is replaced atomically with its old rows followed by the new ones grouped by
    identity (the order one process writes), then ``meta.json`` gets every journalled fake whose
    image exists, then the rank journals are deleted. A kill at any point leaves a state the next
    fold completes."""
    t0 = time.perf_counter()
    root = Path(root)
    rep = FoldReport()
    files = rank_journals(root)
    meta_path = root / "meta.json"
    meta = read_meta(meta_path)
    rows = read_fakes_csv(root)
    seen = {r["key"] for r in rows}
    fields = list(COLUMNS)
    new: list[dict] = []
    for p in files:
        cols, got = _read_rows(p)
        fields += [c for c in cols if c not in fields]
        for r in got:
            if r["key"] in seen:
                rep.duplicates += 1
                continue
            seen.add(r["key"])
            new.append(r)
    rep.journals, rep.rows = len(files), len(new)
    if new:
        new.sort(key=lambda r: r["identity"])  # stable: each identity's rows keep their journal order
        _atomic_csv(root / FAKES_CSV, fields, rows + new)
    images = root / "images"
    for r in rows + new:
        if meta.get(r["key"]) != 1 and (images / r["key"]).exists():
            meta[r["key"]] = 1
            rep.meta_added += 1
    if rep.meta_added:
        write_meta(meta_path, meta)
    for p in files:
        p.unlink(missing_ok=True)
    if files:
        try:
            (root / RANKS_DIR).rmdir()
        except OSError:
            pass
    rep.seconds = time.perf_counter() - t0
    return rep


@dataclass
class RankRun:
    """What rank 0 reports after a run: the totals and each rank's share."""

    info: DistInfo
    total: RunReport
    ranks: list[dict]  # per rank: planned, made, failed, seconds, plan_s
    fold_before: FoldReport
    fold_after: FoldReport | None


def combine(reports: list[RunReport]) -> RunReport:
    """One report for the whole run from the ranks' reports (each identity belongs to one rank)."""
    out = RunReport()
    out.already = reports[0].already
    out.skipped_identities = reports[0].skipped_identities
    per: Counter = Counter()
    for r in reports:
        out.planned += r.planned
        out.made += r.made
        out.failed += r.failed
        out.errors += r.errors
        for b, s in r.seconds.items():
            out.seconds[b].extend(s)
        for i, n in r.per_identity.items():
            per[i] = max(per[i], n)
    out.per_identity = dict(per)
    return out


def generate_across_ranks(dataset, backends, per_identity=4, models_dir=None, seed=0, device="auto", max_fakes=None, progress=True, backend_kwargs=None) -> RankRun | None:
    """``generate_deepfakes`` on every rank torchrun started (or in this process alone).

    Returns the run's report on rank 0 and ``None`` on the other ranks. Call it inside
    :func:`fakeproof.distributed.torchrun_ranks` (or alone: it joins the ranks itself)."""
    info = join_ranks(device)
    root = Path(dataset)
    before = fold_rank_journals(root) if info.is_main else FoldReport()
    if info.is_main and info.enabled:  # fakes a kill left unpublished: before any rank makes new ones
        recover_temps(root, read_fakes_csv(root))
    barrier(info)
    shard = RankShard(info.rank, info.world_size, rank_journal_path(root, info.rank)) if info.enabled else None
    t0 = time.perf_counter()
    rep = generate_deepfakes(
        root, backends, per_identity, models_dir, seed, info.device, progress=progress and info.is_main,
        max_fakes=max_fakes, backend_kwargs=backend_kwargs, shard=shard,
    )
    mine = {
        "rank": info.rank, "device": info.device, "planned": rep.planned, "made": rep.made, "failed": rep.failed,
        "seconds": time.perf_counter() - t0, "plan_s": shard.plan_s if shard else None,
        "pid": os.getpid(),
    }
    everything = gather_objects(info, (rep, mine))
    after = fold_rank_journals(root) if info.is_main and info.enabled else None
    if not info.is_main:
        return None
    return RankRun(info, combine([r for r, _ in everything]), [m for _, m in everything], before, after)
