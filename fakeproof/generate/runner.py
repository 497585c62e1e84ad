"""Planning, running and resuming deepfake generation, with a provenance table.

Each identity gets ``per_identity`` fakes spread round-robin over the chosen backends. A fake takes
its identity from one of the identity's REAL photos (source) and, for backends that use one, the
pose/background/light of a real photo of ANOTHER identity (target). Everything is drawn from the
seed, so a plan is reproducible.

Journal: each fake is written to a hidden temp file (``.<k>.jpg.tmp``, invisible to every
dataset reader), then its row goes to ``fakes.csv`` (fsynced), then the temp file is renamed to
its key. So a kill loses at most the fake in flight: the next run renames the temp files that
have a row, deletes those that have none, counts the rows, plans only what is missing and never
duplicates. ``meta.json`` is rewritten atomically (with a backup) at the end of a run and
re-synchronised from the journal at the start of the next. A new fake never takes a key that a
photo had before in this dataset (``curate apply`` history and quarantine included), so curation
results about the old photo can never be mistaken for the fake.
"""
from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..data import TrainingDataset, read_meta, write_meta
from ..data.atomic import named
from ..data.records import FAKES_CSV, read_fakes_csv, retired_keys
from ..faults import kill_point
from ..engine import ImageLoadError, load_rgb
from ..engine.encoders.base import WeightFile
from ..engine.paths import cache_home
from ..hashing import digest_file
from ..engine.paths import models_dir as default_models_dir
from ..ui import console, progress_task
from .backends.base import Backend, BackendError
from .fake_files import publish, recover_temps, save_jpeg, temp_path
from .registry import create_backend

ERRORS_LOG = "generate_errors.log"
COLUMNS = ["key", "identity", "backend", "source_key", "target_key", "seed", "weights", "seconds", "params", "created"]
ATTEMPTS = 3


@dataclass
class FakeJob:
    identity: str
    index: int  # the identity's n-th fake (0-based, counting fakes made by earlier runs)
    backend: str
    seed: int


@dataclass
class RunReport:
    planned: int = 0
    made: int = 0
    failed: int = 0
    already: int = 0
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    skipped_identities: list[str] = field(default_factory=list)
    per_identity: dict[str, int] = field(default_factory=dict)


def stable_int(*parts) -> int:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


# -- the journal ------------------------------------------------------------------------------------
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}  # the disk, not the image


class FakesJournal:
    """Append-only ``fakes.csv`` (or a rank's journal, ``path``); every row is flushed and fsynced
    before the next fake starts."""

    def __init__(self, root: Path, path: Path | None = None):
        self.path = Path(path) if path else Path(root) / FAKES_CSV
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.f = self.path.open("a", newline="", encoding="utf-8")
        self.w = csv.DictWriter(self.f, fieldnames=COLUMNS)
        if new:
            self.w.writeheader()

    def add(self, row: dict) -> None:
        try:
            self.w.writerow(row)
            self.f.flush()
            os.fsync(self.f.fileno())
        except OSError as e:
            raise named(e, self.path) from None

    def close(self) -> None:
        try:
            self.f.close()  # flushes the header of a new journal: a full disk may refuse it here
        except OSError as e:
            raise named(e, self.path) from None


# -- weight hashes (cached by path, size and mtime: SDXL folders are large) ----------------------
def weight_hashes(files: list[WeightFile]) -> str:
    cache_path = cache_home() / "generate" / "weight_sha256.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    out = []
    for w in files:
        if not w.present:
            continue
        p = Path(w.path)
        st = p.stat()
        ck = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if ck not in cache:
            cache[ck] = digest_file(p)
        digest = cache[ck]
        if w.sha256 and digest != w.sha256:
            console.print(f"[yellow]warning[/]: {p}: sha256 {digest[:12]}... differs from the published {w.sha256[:12]}...")
        out.append(f"{p.name}:{digest[:16]}")
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")  # ranks write it at once
    tmp.write_text(json.dumps(cache, indent=1))
    os.replace(tmp, cache_path)
    return ";".join(out)


# -- planning ---------------------------------------------------------------------------------------
def plan_jobs(done: dict[str, int], identities: list[str], backends: list[str], per_identity: int, seed: int) -> list[FakeJob]:
    """The fakes still to make: identity i's k-th fake uses backend (k + offset_i) mod n."""
    jobs = []
    for ident in identities:
        off = stable_int(seed, ident, "backend") % len(backends)
        for k in range(done.get(ident, 0), per_identity):
            jobs.append(FakeJob(ident, k, backends[(k + off) % len(backends)], stable_int(seed, ident, k)))
    return jobs


def pick_pair(job: FakeJob, attempt: int, reals: dict[str, list[str]], others: list[str]) -> tuple[str, str]:
    """(source key, target key) for one attempt at ``job``: a real photo of the identity, and a real
    photo of another identity."""
    rng = np.random.default_rng([job.seed, attempt])
    own = reals[job.identity]
    src = own[(job.index + int(rng.integers(len(own))) * (attempt > 0)) % len(own)]
    # a uniform pick among ``others`` without the job's identity, without building that list per
    # fake (which made a plan of N identities cost N^2): index i skips the identity's own position
    own_at = others.index(job.identity) if job.identity in others else len(others)
    n = len(others) - (own_at < len(others))
    if not n:
        return src, ""
    i = int(rng.integers(n))
    tid = others[i + (i >= own_at)]
    tgt = reals[tid][int(rng.integers(len(reals[tid])))]
    return src, tgt


def partner_pool(job: FakeJob, attempt: int, reals: dict[str, list[str]], others: list[str], n: int) -> list[str]:
    """``n`` real photos of other identities (one photo per identity, drawn from the job's seed) for
    a backend that chooses its second person itself (``morph``: a look-alike)."""
    rng = np.random.default_rng([job.seed, attempt, 0x9A27])
    pool = [o for o in others if o != job.identity]
    ids = [pool[i] for i in rng.permutation(len(pool))[:n]]
    return [reals[i][int(rng.integers(len(reals[i])))] for i in ids]


def next_free_key(identity: str, taken: set[str], images: Path) -> str:
    k = 0
    while True:
        key = f"{identity}/{k}.jpg"
        if key not in taken and not os.path.lexists(images / key) and not os.path.lexists(temp_path(images / key)):
            return key
        k += 1


# -- the run ----------------------------------------------------------------------------------------
def generate_deepfakes(
    dataset,
    backends: list[str],
    per_identity: int = 4,
    models_dir=None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    max_fakes: int | None = None,
    backend_kwargs: dict[str, dict] | None = None,
    shard=None,
) -> RunReport:
    """Make the missing fakes of ``dataset`` (a training-layout folder) with ``backends``.

    ``shard`` (a :class:`fakeproof.generate.distributed.RankShard`, under torchrun): make only this
    rank's share of the plan, journal it to the rank's own file and leave ``meta.json`` to rank 0."""
    root = Path(dataset)
    md = default_models_dir(models_dir)
    rep = RunReport()
    meta_path = root / "meta.json"
    meta = read_meta(meta_path)
    journal_rows = read_fakes_csv(root)
    # resync: publish fakes a kill left between journal row and rename; rows whose image exists are
    # done; add them to meta if a killed run never wrote it
    if shard is None:  # under torchrun rank 0 does it before the ranks start (they would race)
        recover_temps(root, journal_rows)
    images = root / "images"
    done_rows = [r for r in journal_rows if (images / r["key"]).exists()]
    meta_changed = False
    for r in done_rows:
        if meta.get(r["key"]) != 1:
            meta[r["key"]] = 1
            meta_changed = True
    ds = TrainingDataset.load(root)
    reals: dict[str, list[str]] = defaultdict(list)
    for it in ds.items:
        if not it.is_deepfake:
            reals[it.identity].append(it.key)
    all_ids = sorted({it.identity for it in ds.items} | set(reals))
    rep.skipped_identities = [i for i in all_ids if not reals.get(i)]
    identities = [i for i in all_ids if reals.get(i)]
    done = Counter(r["identity"] for r in done_rows)
    rep.already = sum(min(done[i], per_identity) for i in identities)
    jobs = plan_jobs(done, identities, backends, per_identity, seed)
    if max_fakes is not None:
        jobs = jobs[:max_fakes]
    if shard is not None:
        jobs, meta_changed = shard.select(jobs), False
    rep.planned = len(jobs)
    if not jobs:
        if meta_changed:
            write_meta(meta_path, meta)
        rep.per_identity = {i: done[i] for i in identities}
        return rep
    needed = sorted({j.backend for j in jobs})
    loaded: dict[str, Backend] = {}
    hashes: dict[str, str] = {}
    for name in needed:
        b = create_backend(name, **(backend_kwargs or {}).get(name, {}))
        with console.status(f"loading {name}..."):
            b.load(md, device)
        loaded[name] = b
        hashes[name] = weight_hashes(b.weight_files(md))

    taken = set(meta) | {r["key"] for r in journal_rows} | retired_keys(root)
    others = identities
    log_path = root / ERRORS_LOG
    journal = FakesJournal(root, shard.journal_path if shard is not None else None)
    counts = Counter(done)
    try:
        with progress_task("making deepfakes", len(jobs), progress) as advance:
            t_start = time.perf_counter()
            for n, job in enumerate(jobs, 1):
                backend = loaded[job.backend]
                last_err = None
                for attempt in range(ATTEMPTS):
                    src_key, tgt_key = pick_pair(job, attempt, reals, others)
                    if not backend.uses_target:
                        tgt_key = ""
                    try:
                        if tgt_key and hasattr(backend, "pick_partner"):
                            tgt_key = backend.pick_partner(images, src_key, partner_pool(job, attempt, reals, others, backend.partner_candidates))
                        src = load_rgb(images / src_key).rgb
                        tgt = load_rgb(images / tgt_key).rgb if tgt_key else None
                        fake_seed = stable_int(job.seed, attempt)
                        t0 = time.perf_counter()
                        rgb = backend.make(src, tgt, fake_seed)
                        secs = time.perf_counter() - t0
                        key = next_free_key(job.identity, taken, images)
                        save_jpeg(images / key, rgb, backend.last_info.get("jpeg_quality", 95))
                        kill_point("fake encoded")
                    except (BackendError, ImageLoadError) as e:
                        last_err = f"{job.backend} {job.identity}#{job.index} (source {src_key}, target {tgt_key or '-'}): {e}"
                        _log(log_path, last_err)
                        continue
                    except OSError as e:
                        if e.errno in DISK_ERRNOS:  # a full or read-only disk stops the run (named, one line)
                            raise named(e, images / job.identity) from None
                        last_err = f"{job.backend} {job.identity}#{job.index} (source {src_key}, target {tgt_key or '-'}): {type(e).__name__}: {e}"
                        _log(log_path, last_err + "\n" + traceback.format_exc())
                        continue
                    except Exception as e:  # a bug or a model failure on one image must not stop the run
                        last_err = f"{job.backend} {job.identity}#{job.index} (source {src_key}, target {tgt_key or '-'}): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        _log(log_path, last_err + "\n" + traceback.format_exc())
                        continue
                    taken.add(key)
                    meta[key] = 1
                    meta_changed = shard is None
                    journal.add(
                        {
                            "key": key,
                            "identity": job.identity,
                            "backend": job.backend,
                            "source_key": src_key,
                            "target_key": tgt_key,
                            "seed": fake_seed,
                            "weights": hashes[job.backend],
                            "seconds": f"{secs:.3f}",
                            "params": json.dumps(backend.last_info, sort_keys=True),
                            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        }
                    )
                    kill_point("fake journaled")
                    publish(images / key)
                    kill_point("fake published")
                    rep.made += 1
                    rep.seconds[job.backend].append(secs)
                    counts[job.identity] += 1
                    last_err = None
                    break
                if last_err is not None:
                    rep.failed += 1
                    rep.errors.append(last_err)
                advance(1, f"{n / max(time.perf_counter() - t_start, 1e-9):.2f} fakes/s")
    finally:
        journal.close()
        if meta_changed:
            write_meta(meta_path, meta)
    rep.per_identity = {i: counts[i] for i in identities}
    return rep


def _log(path: Path, line: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(f"{stamp} {line}\n")
    except OSError as e:
        raise named(e, path) from None
