"""``fakeproof demo``: the whole pipeline end to end on data the project makes itself.

Every step runs the same ``fakeproof`` command a user would type (printed before it runs), in this
process. ``OUT/demo_state.json`` records the finished steps, so an interrupted demo continues
where it stopped (``train run`` itself resumes from its last checkpoint).

The held-apart identities are the validation split of ``train pairs``; training sees their photos
only for its single end-of-run validation (``--val-every`` is larger than the run), so neither
model selection nor the learning-rate schedule depends on them.

(Over 300 lines: the demo's own data, its scripted reviewer and its result table serve only the
steps here and read best next to them.)
"""
from __future__ import annotations

import csv
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer
from rich.markup import escape

from .cli_options import config_options, option
from .data import atomic_write_text, json_text
from .ui import console, summary_table

STATE = "demo_state.json"


def demo_curate_threshold(cfg) -> float:
    """The demo's photos of one person are variations of ONE photo, so they resemble each other far
    more than real photos do (genuine cosines >= 0.97 for dlib_resnet, where real pairs average 0.95)
    while different people of the same group photo come close to the real-pair EER point. The demo
    therefore curates at the default encoder's strict operating point (FAR 1e-3 on real pairs), on
    the similarity scale."""
    if cfg.threshold is not None:
        return float(cfg.threshold)
    from .engine.cards import STOCK_OPERATING_POINTS, stock_calibration
    from .engine.encoders import DEFAULT_ENCODER, resolve_encoder_name

    name = resolve_encoder_name(DEFAULT_ENCODER)
    op = STOCK_OPERATING_POINTS.get(name)
    return round(float(stock_calibration(name)(op.far1e3_threshold)), 3) if op else 0.5


@dataclass
class DemoConfig:
    out: Path
    identities: int | None = option(None, "use only the first N sample identities (default: all 9)", min=2)
    photos: int = option(8, "real photos per identity", min=2)
    noise: int = option(4, "photos moved to a wrong identity folder (what curate must find)", min=0)
    fakes: int = option(4, "deepfakes per identity", min=0)
    threshold: float | None = option(None, "curate clean's threshold on the similarity scale (default: the default encoder's FAR 1e-3 point)", min=-1.0, max=1.0)
    train_minutes: float = option(3.0, "wall-clock budget of the training step", min=0.0, lo_open=True)
    train_steps: int | None = option(None, "stop training after this many steps (default: the time budget only)", min=1)
    batch_size: int = option(16, "training pairs per step", min=1)
    freeze_blocks: int = option(14, "encoder blocks kept frozen", min=0)
    lr: float = option(5e-5, "training learning rate", min=0.0, lo_open=True)
    val_fraction: float = option(0.34, "share of identities held apart (the before/after comparison is on them)", min=0.0, max=0.9)
    seed: int = option(0, "seed of the sample data, noise, fakes and pairs")
    export_onnx: bool = option(True, "export the fine-tuned encoder to ONNX at the end")


class DemoState:
    def __init__(self, out: Path):
        self.path = out / STATE
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"done": {}, "times": {}}

    def done(self, step: str) -> bool:
        return step in self.data["done"]

    def mark(self, step: str, seconds: float, info=None) -> None:
        self.data["done"][step] = info if info is not None else True
        self.data["times"][step] = round(seconds, 1)
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")

    def info(self, step: str):
        return self.data["done"].get(step)


def fakeproof(stage: str, *args) -> None:
    """Run one ``fakeproof STAGE ...`` command in this process (through the stage's own command
    group, so the demo does not import the top-level CLI that imports it); a non-zero exit stops
    the demo."""
    from .stages import stage_app

    args = [str(a) for a in args]
    console.print(f"\n[bold cyan]$ fakeproof {stage} {escape(' '.join(shlex.quote(a) for a in args))}", soft_wrap=True, highlight=False)
    try:
        rc = stage_app(stage)(args, standalone_mode=False, prog_name=f"fakeproof {stage}")
    except SystemExit as e:  # typer.Exit inside a command
        rc = e.code
    if rc not in (None, 0):
        raise RuntimeError(f"`fakeproof {stage} {' '.join(args)}` exited with code {rc}")


# -- the demo's own data ---------------------------------------------------------------------------
def _forget_review_dataset(ds: Path) -> None:
    """A new demo dataset must not inherit the review tags of an earlier demo in the same folder."""
    from .fiftyone_env import import_fiftyone
    fo = import_fiftyone()

    from .curate.review import dataset_name

    if fo.dataset_exists(dataset_name(ds)):
        fo.delete_dataset(dataset_name(ds))


def make_data(cfg: DemoConfig, ds: Path) -> dict:
    """The sample dataset plus ``cfg.noise`` known label errors: photos moved to another identity."""
    from .data.meta import read_meta, write_meta
    from .sample_data import make_sample_dataset

    _forget_review_dataset(ds)
    make_sample_dataset(ds, photos_per_identity=cfg.photos, seed=cfg.seed, identities=cfg.identities)
    meta = read_meta(ds / "meta.json")
    ids = sorted({k.split("/")[0] for k in meta})
    rng = np.random.default_rng(cfg.seed + 17)
    victims = rng.permutation(ids)[: min(cfg.noise, len(ids))]
    injected = {}
    for src in victims:
        dst = ids[(ids.index(src) + 1 + int(rng.integers(0, len(ids) - 1))) % len(ids)]
        k = int(rng.integers(0, cfg.photos))
        old, new = f"{src}/{k}.jpg", f"{dst}/{cfg.photos + len([v for v in injected.values() if v['into'] == dst])}.jpg"
        (ds / "images" / old).rename(ds / "images" / new)
        meta.pop(old)
        meta[new] = 0
        injected[new] = {"true_identity": src, "into": dst, "was": old}
    write_meta(ds / "meta.json", dict(sorted(meta.items())))
    atomic_write_text(ds.parent / "injected_noise.json", json.dumps(injected, indent=1) + "\n")
    console.print(f"sample dataset: {len(ids)} identities x {cfg.photos} photos -> {ds}; injected {len(injected)} label errors (ground truth: {ds.parent / 'injected_noise.json'})")
    return {"identities": len(ids), "injected": len(injected)}


def curation_score(ds: Path, injected: dict) -> dict:
    """How many injected errors `curate clean` flagged, and how many with the true identity suggested."""
    import pandas as pd

    flags = pd.read_csv(ds / "curation" / "flags.csv", keep_default_na=False)
    flagged = flags[flags["flagged"].astype(str).str.lower().isin(["true", "1"])]
    found = [k for k in injected if k in set(flagged["key"])]
    right = [k for k in found if flagged.set_index("key").loc[k, "suggested_identity"] == injected[k]["true_identity"]]
    return {"injected": len(injected), "found": len(found), "right_identity": len(right), "flagged": len(flagged), "false_flags": int(len(flagged) - len(found))}


def review_as_a_reviewer(ds: Path) -> dict:
    """What a person would do in the App: accept the suggested identity of each flagged real photo
    that has one, mark the rest mislabeled (quarantine). Tags go on the real FiftyOne dataset."""
    from .fiftyone_env import import_fiftyone
    fo = import_fiftyone()

    from .curate.review import dataset_name

    fo_ds = fo.load_dataset(dataset_name(ds))
    n_acc = n_mis = 0
    for s in fo_ds.match_tags("needs_review"):
        if s["is_deepfake"]:
            continue
        if s["suggested_identity"]:
            s.tags.append("accept_suggestion")
            n_acc += 1
        else:
            s.tags.append("mislabeled")
            n_mis += 1
        s.save()
    console.print(f"reviewer (scripted): {n_acc} x accept_suggestion, {n_mis} x mislabeled on FiftyOne dataset {fo_ds.name!r}")
    return {"accept_suggestion": n_acc, "mislabeled": n_mis, "fiftyone_dataset": fo_ds.name}


def held_apart_pairs(ds: Path, pairs_csv: Path, out: Path) -> dict:
    """The validation rows of pairs.csv as an `infer score-pairs` input, grouped by kind and generator."""
    from .data.records import read_fakes_csv
    from .train.pairs import read_pairs_csv

    backend = {r["key"]: r["backend"] for r in read_fakes_csv(ds)}
    rows = []
    for p in read_pairs_csv(pairs_csv):
        if p.split != "val":
            continue
        group = p.kind if p.kind != "deepfake" else f"deepfake:{backend.get(p.b, backend.get(p.a, 'unknown'))}"
        rows.append({"path_a": f"images/{p.a}", "path_b": f"images/{p.b}", "expected_accept": int(p.label), "group": group, "identity": p.identity})
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path_a", "path_b", "expected_accept", "group", "identity"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return {"pairs": len(rows), "identities": sorted({r["identity"] for r in rows})}


def model_figures(scores_csv: Path) -> dict:
    """The pair metrics ``train run`` validates with (:func:`fakeproof.metrics.pair_metrics`: EER,
    genuine-pair EER, deepfakes accepted at the EER threshold and at the genuine-pair EER
    threshold), plus AUC and acceptance per generator, from a scores CSV."""
    import pandas as pd

    from .infer.evaluate import evaluate_csv
    from .metrics import pair_metrics

    ev = evaluate_csv(scores_csv, "expected_accept", "similarity", "group")
    df = pd.read_csv(scores_csv, keep_default_na=False)
    cos = df["similarity"].astype(float).to_numpy()
    kinds = df["group"].str.split(":").str[0].to_numpy()  # deepfake:classic -> deepfake
    m = pair_metrics(cos, df["expected_accept"].astype(int).to_numpy(), kinds)
    genuine = cos[kinds == "genuine"]
    return {
        "eer": m["eer"],
        "threshold": m["threshold"],
        "auc": ev.auc,
        "genuine_eer": m["genuine_eer"],
        "deepfake_acceptance": m["error_real_deepfake"],  # at the EER threshold
        "attack_acceptance": m["attack_acceptance"],  # at the genuine-pair EER threshold
        "impostor_acceptance": m["error_real_another_real"],
        "genuine_acceptance": float((genuine >= m["threshold"]).mean()) if len(genuine) else float("nan"),
        "per_generator": {g.group: g.acceptance_rate for g in ev.groups if g.group.startswith("deepfake")},
        "mean_cos": {k: float(df[df["group"].str.startswith(k)]["similarity"].astype(float).mean()) for k in ("genuine", "impostor", "deepfake")},
    }


# -- the demo --------------------------------------------------------------------------------------
def run_demo(cfg: DemoConfig) -> dict:
    out = cfg.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ds, pairs_csv, run_dir, ev_dir = out / "dataset", out / "pairs.csv", out / "run", out / "eval"
    st = DemoState(out)
    t_all = time.perf_counter()

    def step(name: str, fn):
        if st.done(name):
            console.print(f"[dim]{name}: done in an earlier run (see {st.path})")
            return st.info(name)
        t = time.perf_counter()
        info = fn()
        st.mark(name, time.perf_counter() - t, info)
        return info

    if not st.done("data") and ds.exists():  # a half-written dataset from a killed run: start it again
        import shutil

        shutil.rmtree(ds)
    step("data", lambda: make_data(cfg, ds))
    injected = json.loads((out / "injected_noise.json").read_text())

    step("curate clean", lambda: fakeproof("curate", "clean", ds, "--threshold", demo_curate_threshold(cfg), "--device", "cpu"))
    found = step("curation score", lambda: curation_score(ds, injected))
    console.print(f"[bold]curate clean found {found['found']} of {found['injected']} injected label errors "
                  f"({found['right_identity']} with the true identity suggested); {found['false_flags']} other photos flagged")
    step("curate review", lambda: fakeproof("curate", "review", ds, "--no-launch"))
    step("review decisions", lambda: review_as_a_reviewer(ds))
    step("curate apply", lambda: fakeproof("curate", "apply", ds, "--from", "fiftyone"))
    step("generate deepfakes", lambda: fakeproof("generate", "deepfakes", ds, "--backends", "available", "--per-identity", cfg.fakes, "--seed", cfg.seed, "--device", "cpu"))
    step("train pairs", lambda: fakeproof("train", "pairs", ds, "--out", pairs_csv, "--seed", cfg.seed, "--val-fraction", cfg.val_fraction))

    def train():
        args = ["train", "run", ds, "--out", run_dir, "--pairs", pairs_csv, "--model", "facenet", "--batch-size", cfg.batch_size,
                "--lr", cfg.lr, "--freeze-blocks", cfg.freeze_blocks, "--val-every", 10**9, "--seed", cfg.seed, "--device", "cpu",
                "--epochs", 1000, "--max-minutes", cfg.train_minutes]
        if cfg.train_steps is not None:
            args += ["--max-steps", cfg.train_steps]
        if (run_dir / "checkpoints" / "last.json").exists():
            args.append("--resume")
        fakeproof(*args)

    step("train run", train)
    held = step("held-apart pairs", lambda: held_apart_pairs(ds, pairs_csv, ev_dir / "held_apart_pairs.csv"))
    # the fine-tuned checkpoint itself (`--model RUN` would follow the run's closing-check recommendation, decision.json)
    models = {"stock facenet": "facenet", "fine-tuned": str(run_dir / "checkpoints" / "best")}
    for label, model in models.items():
        name = "stock" if model == "facenet" else "trained"
        step(f"score {name}", lambda m=model, n=name: fakeproof("infer", "score-pairs", ev_dir / "held_apart_pairs.csv", "--root", ds, "--out", ev_dir / f"{n}.csv", "--model", m, "--device", "cpu"))
        step(f"evaluate {name}", lambda n=name: fakeproof("infer", "evaluate", ev_dir / f"{n}.csv", "--group-column", "group"))
    if cfg.export_onnx:
        step("export onnx", lambda: fakeproof("infer", "export-onnx", "--model", run_dir / "checkpoints" / "best", "--out", out / "model.onnx"))
    before, after = model_figures(ev_dir / "stock.csv"), model_figures(ev_dir / "trained.csv")
    result = {"curation": found, "held_apart": held, "before": before, "after": after, "seconds": round(time.perf_counter() - t_all, 1), "step_seconds": st.data["times"]}
    atomic_write_text(out / "demo_result.json", json_text(result))
    print_result(result, out, cfg)
    return result


def print_result(r: dict, out: Path, cfg: DemoConfig) -> None:
    b, a = r["before"], r["after"]

    def pct(v):
        return "n/a" if v != v else f"{100 * v:.1f}%"

    rows = [
        ["EER, all held-apart pairs", pct(b["eer"]), pct(a["eer"])],
        ["genuine-pair EER (genuine vs impostor)", pct(b["genuine_eer"]), pct(a["genuine_eer"])],
        ["deepfakes accepted at the EER threshold", pct(b["deepfake_acceptance"]), pct(a["deepfake_acceptance"])],
        ["attack acceptance (deepfakes accepted at the genuine-pair EER threshold)", pct(b["attack_acceptance"]), pct(a["attack_acceptance"])],
        *[[f"  {g}", pct(b["per_generator"].get(g, float("nan"))), pct(v)] for g, v in sorted(a["per_generator"].items())],
        ["impostor acceptance at the EER threshold", pct(b["impostor_acceptance"]), pct(a["impostor_acceptance"])],
        ["genuine acceptance at the EER threshold", pct(b["genuine_acceptance"]), pct(a["genuine_acceptance"])],
        ["mean similarity genuine / impostor / deepfake", " / ".join(f"{b['mean_cos'][k]:.2f}" for k in ("genuine", "impostor", "deepfake")),
         " / ".join(f"{a['mean_cos'][k]:.2f}" for k in ("genuine", "impostor", "deepfake"))],
    ]
    held = r["held_apart"]
    console.print(summary_table(
        f"before / after fine-tuning: {held['pairs']} pairs of {len(held['identities'])} held-apart identities ({', '.join(held['identities'])})",
        rows, ["metric", "stock facenet", "fine-tuned"],
    ))
    c = r["curation"]
    arts = [
        ["injected label errors found by curate clean", f"{c['found']} / {c['injected']} (true identity suggested for {c['right_identity']}; {c['false_flags']} other flags)"],
        ["flags (every photo)", out / "dataset" / "curation" / "flags.csv"],
        ["similarity heatmaps", out / "dataset" / "curation" / "heatmaps"],
        ["curation history (undo with `curate apply --undo`)", out / "dataset" / "curation" / "history.jsonl"],
        ["deepfake provenance", out / "dataset" / "fakes.csv"],
        ["pairs", out / "pairs.csv"],
        ["checkpoint (best)", out / "run" / "checkpoints" / "best"],
        ["training metrics", out / "run" / "metrics.csv"],
        ["ROC, stock / fine-tuned", f"{out / 'eval' / 'stock.roc.png'} / {out / 'eval' / 'trained.roc.png'}"],
        ["evaluation JSON", f"{out / 'eval' / 'stock.eval.json'} / {out / 'eval' / 'trained.eval.json'}"],
        ["result", out / "demo_result.json"],
    ]
    if cfg.export_onnx:
        arts.insert(8, ["ONNX model", out / "model.onnx"])
    arts.append(["total time", f"{r['seconds']:.0f} s (this invocation)"])
    console.print(summary_table("artefacts", [[k, str(v)] for k, v in arts], ["", "path"]))


@config_options(DemoConfig)
def demo_command(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Where the demo writes everything (re-running continues an interrupted demo)."),
    fresh: bool = typer.Option(False, "--fresh", help="Delete OUT first instead of continuing."),
    config_values: dict = None,
):
    """Run the pipeline end to end on data the project makes itself (no download, no ../shared)."""
    if out.exists() and not out.is_dir():
        from .cli_errors import fail

        fail(f"{out}: --out must be a folder (it is a file)")
    if fresh and out.exists():
        import shutil

        shutil.rmtree(out)
    cfg = DemoConfig(out=out, **config_values)
    try:
        run_demo(cfg)
    except RuntimeError as e:
        console.print(f"[red]demo stopped:[/red] {e}. Fix it and run the same command again to continue.")
        raise typer.Exit(1)
