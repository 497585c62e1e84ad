"""Kill ``curate apply`` on a large dataset and check what the next command finds.

A synthetic dataset (tiny distinct JPEG-named files: apply never decodes them) of ``--photos``
photos over 100 identities and a flags.csv with ``--decisions`` decisions (2/3 relabels, 1/3
quarantines) is made; ``fakeproof curate apply`` runs in its own process and gets SIGKILL (or
SIGTERM) ``--delay`` seconds after ``quarantine/`` appears or after start. Then
``curate apply --undo`` runs: it must recover the interrupted batch (rolled back or forward), and
the dataset must be the old state or the new one - meta.json equal to the files, every photo's
bytes present exactly once. Target: 0 violations at every delay; recovery well under the apply time.

    .venv/bin/python benchmarks/apply_kill_scale.py [--photos 30000] [--decisions 20000] [--delays 0.2,1.0,3.0] [--signal KILL]
    .venv/bin/python benchmarks/apply_kill_scale.py --fast        # 2,000 photos: what the test runs
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_dataset(root: Path, photos: int, decisions: int, identities: int = 100) -> Path:
    from fakeproof.data import write_meta
    from fakeproof.data.digests import file_digest

    meta, rows = {}, []
    for n in range(photos):
        ident, k = f"id{n % identities:03d}", n // identities
        key = f"{ident}/{k}.jpg"
        data = f"photo {n}".encode() * 4
        p = root / "images" / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        meta[key] = 0
        if len(rows) < decisions:
            dec = "not_a_face" if n % 3 == 0 else f"identity:id{(n + 1) % identities:03d}"
            rows.append([key, ident, 0, True, dec, file_digest(data)])
    write_meta(root / "meta.json", meta)
    shutil.rmtree(root / ".history", ignore_errors=True)
    flags = root / "curation" / "flags.csv"
    flags.parent.mkdir(parents=True, exist_ok=True)
    with flags.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "identity", "is_deepfake", "flagged", "decision", "digest"])
        w.writerows(rows)
    return flags


def photo_digests(root: Path) -> list[str]:
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for base in ("images", "quarantine") if (root / base).is_dir() for p in (root / base).rglob("*") if p.is_file())


def cli(*args, env=None) -> subprocess.CompletedProcess:
    code = "import sys; from fakeproof.cli import app; app(sys.argv[1:], prog_name='fakeproof')"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True)


def kill_once(src: Path, flags_rel: str, delay: float, sig: int, after_quarantine: bool, env: dict) -> dict:
    """Copy ``src``, start apply, kill it; returns what happened and whether the invariants hold."""
    from fakeproof.data import read_meta

    work = Path(tempfile.mkdtemp(prefix="apply-kill-"))
    ds = work / "ds"
    shutil.copytree(src, ds)
    before_meta, photos = (ds / "meta.json").read_bytes(), photo_digests(ds)
    code = "import sys; from fakeproof.cli import app; app(sys.argv[1:], prog_name='fakeproof')"
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code, "curate", "apply", str(ds), "--from", str(ds / flags_rel)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while after_quarantine and p.poll() is None and not (ds / "quarantine").exists() and time.perf_counter() - t0 < 300:
        time.sleep(0.002)
    t_mark = time.perf_counter()
    while p.poll() is None and time.perf_counter() - t_mark < delay:
        time.sleep(0.002)
    killed = p.poll() is None
    p.send_signal(sig)
    p.wait()
    t1 = time.perf_counter()
    r = cli("curate", "apply", ds, "--undo", env=env)
    t_recover = time.perf_counter() - t1
    out = r.stdout + r.stderr
    outcome = "rolled back" if "rolled back" in out else "rolled forward" if "rolled forward" in out else "no journal"
    meta = read_meta(ds / "meta.json")
    files = {q.relative_to(ds / "images").as_posix() for q in (ds / "images").rglob("*") if q.is_file()}
    ok = (
        files == set(meta)
        and photo_digests(ds) == photos
        and not (ds / "curation" / "pending_batch.json").exists()
        and "Traceback" not in out
        and (ds / "meta.json").read_bytes() == before_meta  # rolled back, or rolled forward then undone
    )
    shutil.rmtree(work)
    return {"delay_s": delay, "killed": killed, "outcome": outcome, "undo_exit": r.returncode, "recover_and_undo_s": round(t_recover, 2), "invariants_ok": ok}


def run(photos: int, decisions: int, delays: list[float], sig: int = signal.SIGKILL, after_quarantine: bool = True) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    base = Path(tempfile.mkdtemp(prefix="apply-kill-src-"))
    try:
        flags = make_dataset(base / "ds", photos, decisions)
        return [kill_once(base / "ds", flags.relative_to(base / "ds").as_posix(), d, sig, after_quarantine, env) for d in delays]
    finally:
        shutil.rmtree(base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=30000)
    ap.add_argument("--decisions", type=int, default=20000)
    ap.add_argument("--delays", default="0.2,1.0,3.0", help="seconds after quarantine/ appears")
    ap.add_argument("--signal", default="KILL", choices=["KILL", "TERM"])
    ap.add_argument("--fast", action="store_true", help="2,000 photos, 1,200 decisions, delays 0 and 0.05")
    a = ap.parse_args()
    if a.fast:
        a.photos, a.decisions, a.delays = 2000, 1200, "0,0.05"
    rows = run(a.photos, a.decisions, [float(x) for x in a.delays.split(",")], getattr(signal, "SIG" + a.signal))
    print(f"curate apply killed with SIG{a.signal}: {a.photos} photos, {a.decisions} decisions")
    print(json.dumps(rows, indent=1))
    bad = sum(not r["invariants_ok"] for r in rows)
    print(f"kills: {len(rows)}, invariant violations: {bad}")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
