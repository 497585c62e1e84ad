"""The stage command groups by name: what ``fakeproof <stage>`` dispatches to (:mod:`fakeproof.cli`)
and what the demo runs its steps through, without either importing the other."""
from __future__ import annotations

import importlib

# stage -> (module with a Typer ``app``, one-line help)
STAGES: dict[str, tuple[str, str]] = {
    "curate": ("fakeproof.curate.cli", "Find mislabelled photos, review them in FiftyOne, apply decisions."),
    "generate": ("fakeproof.generate.cli", "CelebA to training layout; deepfakes through adapters."),
    "train": ("fakeproof.train.cli", "Pairs and adaptive-margin fine-tuning (CPU, GPU, torchrun)."),
    "infer": ("fakeproof.infer.cli", "Score pairs, evaluate, compare photos, export ONNX, benchmark."),
    "models": ("fakeproof.models_cli", "The encoder and generator weight registry."),
}


def stage_app(name: str):
    """The Typer app of stage ``name``."""
    return importlib.import_module(STAGES[name][0]).app
