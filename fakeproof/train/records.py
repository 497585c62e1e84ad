"""What a run reports (timm's ``update_summary``): ``metrics.csv`` + ``metrics.png`` after every
validation (cut back to the resumed step on ``--resume``), and the summary table at the end."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

from ..data import atomic_write_text
from ..ui import console, summary_table
from .plots import plot_metrics
from ..metrics import METRIC_FIELDS

METRICS_CSV_FIELDS = ("step", "epoch", "scheduled", "train_loss", "val_loss", *METRIC_FIELDS, "lr", "elapsed_s", "pairs_per_s")


class MetricsLog:
    """``RUN_DIR/metrics.csv`` (one row per validation) and its plot; only rank 0 writes."""

    def __init__(self, run_dir: Path, enabled: bool, log: Callable[[str], None]):
        self.path = Path(run_dir) / "metrics.csv"
        self.png = Path(run_dir) / "metrics.png"
        self.enabled, self.log = enabled, log

    def append(self, row: dict) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRICS_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        try:
            plot_metrics(self.path, self.png)
        except Exception as e:  # a plot must never kill a run
            self.log(f"[yellow]could not draw metrics.png: {e}")

    def truncate(self, step: int) -> None:
        """Drop rows logged after the checkpoint a resumed run restarts from."""
        if not self.enabled or not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if int(float(r["step"])) <= step]
        if len(keep) == len(rows):
            return
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=METRICS_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(keep)
        atomic_write_text(self.path, buf.getvalue())


def validation_line(row: dict) -> str:
    return (
        f"step {row['step']}: val loss {row['val_loss']:.4f}  EER {row['eer']:.4f}  deepfake err {row['error_real_deepfake']:.4f}"
        f"  impostor err {row['error_real_another_real']:.4f}  genuine EER {row['genuine_eer']:.4f}  lr {row['lr']:.2e}"
    )


def print_summary(s: dict, run_dir: Path) -> None:
    last = s["last"] or {}
    rows = [
        ["steps", s["steps"]],
        ["epochs", round(s["epochs"], 2)],
        ["stopped by", s["stopped_by"]],
        ["best validation EER", s["best_eer"] if s["best_eer"] is not None else "n/a"],
        ["best step", s["best_step"]],
        ["last EER", last.get("eer")],
        ["last error_real_deepfake", last.get("error_real_deepfake")],
        ["last error_real_another_real", last.get("error_real_another_real")],
        ["last genuine-pair EER", last.get("genuine_eer")],
        *[[f"best: attack acceptance, {f}", v] for f, v in (s.get("attack_acceptance_by_family") or {}).items()],
        ["best: genuine-pair EER", s.get("best_genuine_eer")],
        *[[f"stock encoder: attack acceptance, {f}", v] for f, v in (s.get("stock_attack_acceptance_by_family") or {}).items()],
        *([["stock encoder: genuine-pair EER", s.get("stock_genuine_eer")]] if "stock_genuine_eer" in s else []),
        ["images/s", round(s["images_per_s"], 2)],
        ["run folder", str(run_dir)],
    ]
    console.print(summary_table("train run", rows, ["", "value"]))
    if s.get("worse_than_stock"):
        fams = ", ".join(f"{f} {s['attack_acceptance_by_family'][f]:.1%} vs {s['stock_attack_acceptance_by_family'][f]:.1%}" for f in s["worse_than_stock"])
        console.print(f"[bold yellow]warning: the trained model accepts MORE deepfakes than the stock encoder on validation ({fams}); the stock encoder is the safer choice")
