"""The fault suite (issue 23): every command against an interrupted batch left by another command,
a full disk and a missing GPU.

* interrupted batch: ``curate apply`` is SIGKILLed half-way (a real kill at a journal kill point, in a
  forked child); then each command that reads or writes the dataset runs on a copy and must roll the
  batch forward or back first (``recovered: ...``), leaving meta.json equal to the files - or refuse
  when meta.json was edited since, touching nothing.
* full disk: a real one, a small tmpfs, when this process may mount one (root); everywhere else the
  same writes fail at a chosen byte through ``RLIMIT_FSIZE`` (the kernel refuses the write: EFBIG),
  which needs no privileges. Either way: exit 1, one line naming the file, no temp file left, the
  old content intact.
* missing GPU: ``--device cuda`` on a machine without CUDA: one line, exit 5, before any work.
"""
from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _fault_harness import count_points, run_forked
from test_integrity_kills import DECISIONS, _consistent, make_photo_dataset, write_decisions
from fakeproof.cli import app
from fakeproof.data import read_meta
from fakeproof.errors import EXIT_DEVICE

JOURNAL = Path("curation") / "pending_batch.json"


def _cli(*args) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert "Traceback" not in r.output, r.output
    return r.exit_code, r.output


def _one_error_line(out: str) -> str:
    lines = [x for x in out.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, out
    return lines[0]


# -- an interrupted batch left by another command ---------------------------------------------------
def _apply(root: Path):
    def fn():
        from fakeproof.curate import apply as ap
        from fakeproof.curate.decisions import from_flags_csv

        decisions, _ = from_flags_csv(root / "curation" / "flags.csv")
        changes, _, _ = ap.plan(root, decisions)
        ap.execute(root, changes, source="flags.csv")

    return fn


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> tuple[Path, dict]:
    """A dataset whose ``curate apply`` was killed after some photos moved, before meta.json was
    rewritten: the files and meta.json disagree until the batch is rolled back."""
    base = tmp_path_factory.mktemp("interrupted")
    src = make_photo_dataset(base / "src")
    write_decisions(src, DECISIONS)
    meta0 = read_meta(src / "meta.json")
    shutil.copytree(src, base / "probe")
    assert count_points(_apply(base / "probe")) > 4
    ds = base / "ds"
    shutil.copytree(src, ds)
    assert run_forked(_apply(ds), 4) == "killed"  # journal written, 3 photos moved
    assert (ds / JOURNAL).exists()
    files = {p.relative_to(ds / "images").as_posix() for p in (ds / "images").rglob("*") if p.is_file()}
    assert files != set(read_meta(ds / "meta.json")), "the kill must leave a half-moved dataset"
    return ds, meta0


def _commands(ds: Path, tmp: Path) -> list[list]:
    """Every command that reads or writes a dataset, each stopped cheaply right after it settled
    the batch (a bad later argument) or run for real where that is cheap."""
    (tmp / "nocols.csv").write_text("a,b\n1,2\n")
    (tmp / "escape.csv").write_text("split,kind,label,identity,a,b\ntrain,genuine,1,id0,/etc/passwd,id0/2.jpg\n")
    empty = tmp / "empty_curation"
    empty.mkdir(exist_ok=True)
    return [
        ["curate", "clean", ds, "--out", tmp / "nocols.csv"],  # stops at the output check
        ["curate", "review", ds, "--no-launch", "--curation", empty],  # stops: no flags.csv there
        ["curate", "apply", ds, "--undo"],  # rolled back: nothing to undo
        ["curate", "apply", ds, "--from", ds / "curation" / "flags.csv", "--dry-run"],
        ["generate", "celeba", tmp / "no-celeba", "--out", ds],  # stops: no CelebA there
        ["generate", "deepfakes", ds, "--backends", "selfblend", "--max-fakes", "1", "--device", "cpu"],  # runs
        ["generate", "check", ds, "--model", "nope"],
        ["train", "pairs", ds, "--out", tmp / "pairs.csv"],  # runs
        ["train", "run", ds, "--out", tmp / "run", "--pairs", tmp / "escape.csv", "--max-steps", "1"],  # stops at the escaping pair
        ["infer", "score-pairs", tmp / "nocols.csv", "--root", ds],  # stops: no path_a column
    ]


def test_every_dataset_command_settles_an_interrupted_batch_first(interrupted, tmp_path):
    src, meta0 = interrupted
    problems = []
    for n in range(len(_commands(src, tmp_path))):
        ds = tmp_path / f"ds{n}"
        shutil.copytree(src, ds)
        args = _commands(ds, tmp_path)[n]
        name = " ".join(map(str, args[:2]))
        code, out = _cli(*args)
        if (ds / JOURNAL).exists() or "recovered:" not in out or "rolled back" not in out:
            problems.append(f"{name} (exit {code}) did not settle the batch first: {out[-300:]!r}")
            continue
        try:
            _consistent(ds)
            meta = read_meta(ds / "meta.json")
            assert {k: meta.get(k) for k in meta0} == meta0, "the photos' keys are not as before the batch"
        except AssertionError as e:
            problems.append(f"{name}: {e}")
    assert not problems, "\n".join(problems)


def test_an_interrupted_batch_that_cannot_be_settled_is_refused_by_every_command(interrupted, tmp_path):
    """meta.json edited after the kill: nothing may be touched (generate would otherwise write a
    meta.json over the half-moved dataset and make the batch unrecoverable)."""
    src, _ = interrupted
    for args in (["generate", "deepfakes", "{ds}", "--backends", "classic", "--max-fakes", "1"], ["train", "pairs", "{ds}", "--out", "{tmp}/p.csv"],
                 ["generate", "check", "{ds}"], ["train", "run", "{ds}", "--out", "{tmp}/run", "--max-steps", "1"]):
        ds = tmp_path / f"ds-{uuid.uuid4().hex[:6]}"
        shutil.copytree(src, ds)
        meta = ds / "meta.json"
        meta.write_text(meta.read_text().replace('"id5/3.jpg": 0', '"id5/3.jpg": 1'))
        before = {p: p.read_bytes() for p in ds.rglob("*") if p.is_file()}
        code, out = _cli(*[a.format(ds=ds, tmp=tmp_path) for a in args])
        assert code == 1 and "pending_batch.json" in _one_error_line(out) and "resolve by hand" in out, out
        after = {p: p.read_bytes() for p in ds.rglob("*") if p.is_file()}
        assert after == before, f"{args[:2]} changed the dataset"


# -- a full disk --------------------------------------------------------------------------------------
def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path(f"/tmp/fakeproof-tmpfs-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(probe)], capture_output=True)
    probe.rmdir()
    return ok


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs (a real full disk); skipped where mounting is not allowed (the RLIMIT test
    below covers those machines)."""
    if not _can_mount():
        pytest.skip("cannot mount a tmpfs here (not root); test_writes_fail_at_a_chosen_byte covers full-disk handling")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(disk: Path, leave: int) -> None:
    """Fill the disk until ``leave`` bytes are free."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    filler = disk / f"filler-{uuid.uuid4().hex[:6]}"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def _unfill(disk: Path) -> None:
    for f in disk.glob("filler-*"):
        f.unlink()


def _temps(root: Path) -> list[str]:
    return sorted(str(p) for p in Path(root).rglob("*") if ".tmp" in p.name or p.name.endswith(".tmp"))


def test_every_writing_command_on_a_full_disk(small_disk, tmp_path):
    ds = make_photo_dataset(small_disk / "ds", identities=4, photos=3, size=48)
    write_decisions(ds, {"id0/0.jpg": "identity:id1", "id1/1.jpg": "not_a_face"})
    meta_before = (ds / "meta.json").read_bytes()
    (tmp_path / "scores.csv").write_text("similarity,expected_accept\n0.9,1\n0.1,0\n0.8,1\n0.2,0\n")
    cases = [
        (["curate", "apply", ds, "--from", ds / "curation" / "flags.csv"], 0, "pending_batch.json"),
        (["train", "pairs", ds, "--out", small_disk / "pairs.csv"], 0, "pairs.csv"),
        (["infer", "evaluate", tmp_path / "scores.csv", "--out-dir", small_disk / "ev"], 0, "scores.eval.json"),
        (["curate", "clean", ds, "--device", "cpu"], 0, "curation"),
        (["generate", "deepfakes", ds, "--backends", "selfblend", "--max-fakes", "2", "--device", "cpu"], 0, str(ds)),
        # the crop store (4 x 3 photos x 160 x 160 x 3 = 0.9 MB) does not fit into 0.3 MB ...
        (["train", "run", ds, "--out", small_disk / "run1", "--model", "facenet", "--max-steps", "1", "--batch-size", "4", "--device", "cpu", "--no-progress"], 300_000, "crops.npy"),
        # ... it fits into 2 MB, FaceNet's 90 MB checkpoint does not
        (["train", "run", ds, "--out", small_disk / "run2", "--model", "facenet", "--max-steps", "1", "--batch-size", "4", "--device", "cpu", "--no-progress"], 2_000_000, "model.safetensors"),
    ]
    problems = []
    for args, leave, named in cases:
        _fill(small_disk, leave)
        try:
            code, out = _cli(*args)
        finally:
            _unfill(small_disk)
        name = " ".join(map(str, args[:2]))
        try:
            line = _one_error_line(out)
            assert code == 1, f"exit {code}"
            assert "No space left on device" in line or "no space" in line.lower(), line
            assert named in line, f"{line!r} does not name {named}"
            assert not _temps(small_disk), f"temp files left: {_temps(small_disk)}"
            assert not [p for p in (ds / ".history").glob("*") if p.stat().st_size == 0] if (ds / ".history").exists() else True, "an empty backup was left"
            assert (ds / "meta.json").read_bytes() == meta_before, "meta.json changed"
            assert not (ds / JOURNAL).exists() or name != "curate apply", "a journal was left"
            assert not list(small_disk.rglob("step-*")), "a half checkpoint folder was left"
        except AssertionError as e:
            problems.append(f"{name}: {e}\n{out[-600:]}")
    assert not problems, "\n\n".join(problems)


def _limited(fn, limit: int):
    """Run ``fn`` in a forked child whose writes fail past ``limit`` bytes per file (RLIMIT_FSIZE:
    the kernel's own refusal, EFBIG, at a chosen byte); returns the child's exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
            code = fn()
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def test_writes_fail_at_a_chosen_byte_name_the_file_and_leave_nothing(tmp_path):
    """Everywhere (no root needed): atomic writes, ``replacing`` (np.savez / savefig / copies) and the
    crop store's reservation, each failing at byte 1000, name their target and leave nothing behind."""
    import numpy as np

    from fakeproof.data import atomic_write_text
    from fakeproof.data.atomic import replacing
    from fakeproof.train.data import _allocated_memmap

    target = tmp_path / "meta.json"
    target.write_text("old")

    def atomic():
        try:
            atomic_write_text(target, "x" * 5000)
        except OSError as e:
            return 10 if (e.errno == errno.EFBIG and e.filename == str(target)) else 11
        return 12

    def savez():
        try:
            with replacing(tmp_path / "similarity.npz", ".tmp.npz") as tmp:
                np.savez(tmp, a=np.zeros(5000))
        except OSError as e:
            return 10 if e.filename == str(tmp_path / "similarity.npz") else 11
        return 12

    def crops():
        try:
            _allocated_memmap(tmp_path / "crops.npy.tmp", (10, 160, 160, 3))
        except OSError as e:
            return 10 if "crops.npy" in str(e.filename) else 11
        return 12

    for fn in (atomic, savez, crops):
        assert _limited(fn, 1000) == 10, fn.__name__
    assert target.read_text() == "old"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "meta.json" and p.name != "crops.npy.tmp")
    assert left == [], left


# -- a missing GPU --------------------------------------------------------------------------------------
def test_device_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ds = make_photo_dataset(tmp_path / "ds", identities=2, photos=2, size=48)
    photo = ds / "images" / "id0" / "0.jpg"
    pairs = tmp_path / "pairs"
    (pairs / "p0").mkdir(parents=True)
    shutil.copy(photo, pairs / "p0" / "0.jpg")
    shutil.copy(photo, pairs / "p0" / "1.jpg")
    (tmp_path / "sp.csv").write_text("path_a,path_b\nid0/0.jpg,id0/1.jpg\n")
    cases = [
        ["curate", "clean", ds, "--device", "cuda"],
        ["generate", "deepfakes", ds, "--backends", "classic", "--device", "cuda"],
        ["generate", "check", ds, "--device", "cuda"],
        ["train", "run", ds, "--out", tmp_path / "run", "--max-steps", "1", "--device", "cuda"],
        ["infer", "score-folders", pairs, "--out", tmp_path / "s.csv", "--device", "cuda"],
        ["infer", "score-pairs", tmp_path / "sp.csv", "--root", ds / "images", "--out", tmp_path / "s2.csv", "--device", "cuda:1"],
        ["infer", "compare", photo, photo, "--out", tmp_path / "c.png", "--device", "cuda"],
        ["infer", "benchmark", ds / "images", "--device", "cuda"],
    ]
    for args in cases:
        code, out = _cli(*args)
        line = _one_error_line(out)
        assert code == EXIT_DEVICE and "--device cuda" in line and "no CUDA device" in line, (args[:2], out)
        assert not (tmp_path / "run").exists() and not (ds / "curation").exists() and not (tmp_path / "c.png").exists()
    assert read_meta(ds / "meta.json") == {k: 0 for k in read_meta(ds / "meta.json")}
    code, out = _cli("infer", "compare", photo, photo, "--device", "gpu")
    assert code == 2 and "--device must be" in _one_error_line(out)
