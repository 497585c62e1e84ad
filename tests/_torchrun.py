"""Launch a fakeproof command under ``torchrun --nproc_per_node=2`` (gloo, CPU) and kill one of its ranks."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).parent / "torchrun")


def env_for(home: Path) -> dict[str, str]:
    """The test environment with its own FAKEPROOF_HOME (so caches start empty) and one thread per rank."""
    return {**os.environ, "FAKEPROOF_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}


def fresh_home(shared: Path, dest: Path) -> Path:
    """A FAKEPROOF_HOME sharing ``shared``'s converted weights but with empty engine caches."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in shared.iterdir():
        if p.name != "engine" and not (dest / p.name).exists():
            (dest / p.name).symlink_to(p)
    return dest


def torchrun(args: list[str], home: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "fakeproof.cli", *map(str, args)]
    p = subprocess.run(cmd, cwd=REPO, env=env_for(home), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


class Launched:
    """A torchrun run in the background, in its own session so a failed test can stop all of it."""

    def __init__(self, args: list[str], home: Path, log: Path):
        self.log = log
        cmd = [TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "fakeproof.cli", *map(str, args)]
        self.f = log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env_for(home), stdout=self.f, stderr=subprocess.STDOUT, start_new_session=True)

    def rank_pid(self, rank: int, timeout: float = 120) -> int:
        """The pid of the worker torchrun started with ``RANK=rank``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            for c in psutil.Process(self.proc.pid).children(recursive=True):
                try:
                    if c.environ().get("RANK") == str(rank) and c.environ().get("TORCHELASTIC_RUN_ID") is not None:
                        return c.pid
                except psutil.Error:
                    continue
            time.sleep(0.02)
        raise AssertionError(f"no rank {rank} within {timeout}s")

    def wait_until(self, cond, timeout: float = 180, what: str = "") -> None:
        end = time.monotonic() + timeout
        while not cond():
            assert self.proc.poll() is None, f"torchrun ended before {what}:\n" + self.log.read_text()[-3000:]
            assert time.monotonic() < end, f"timed out waiting for {what}:\n" + self.log.read_text()[-3000:]
            time.sleep(0.02)

    def kill_rank(self, pid: int, timeout: float = 120) -> int:
        """SIGKILL one rank; torchrun then stops the others and fails. Returns torchrun's exit status."""
        os.kill(pid, signal.SIGKILL)
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.f.close()
