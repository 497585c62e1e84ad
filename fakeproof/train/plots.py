"""``metrics.png``: losses, EERs, the two error rates at the EER threshold, and the learning rate."""
from __future__ import annotations

from ..data.atomic import replacing

from pathlib import Path

import pandas as pd


def plot_metrics(csv_path: Path, png_path: Path) -> Path | None:
    """Draw the curves of ``metrics.csv``; None when there is nothing to draw yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.read_csv(csv_path)
    if df.empty:
        return None
    fig, ax = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    panels = [
        (ax[0, 0], "loss", [("train_loss", "train"), ("val_loss", "validation")]),
        (ax[0, 1], "EER (validation)", [("eer", "all pairs"), ("genuine_eer", "genuine vs impostor")]),
        (ax[1, 0], "errors at the EER threshold", [
            ("error_real_deepfake", "deepfake accepted"),
            ("error_real_another_real", "impostor accepted"),
            ("attack_acceptance", "deepfake accepted at genuine thr"),
        ]),
        (ax[1, 1], "learning rate", [("lr", "lr")]),
    ]
    for a, title, cols in panels:
        for col, label in cols:
            if col in df and df[col].notna().any():
                a.plot(df["step"], df[col], marker="o", ms=3, label=label)
        a.set_title(title)
        a.set_xlabel("step")
        a.grid(alpha=0.3)
        if a.lines:
            a.legend(fontsize=8)
    if "lr" in df and df["lr"].notna().any() and (df["lr"] > 0).all():
        ax[1, 1].set_yscale("log")
    try:
        with replacing(png_path, ".tmp.png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return Path(png_path)
