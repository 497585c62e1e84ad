"""``fakeproof infer``: pairs / score-pairs / evaluate / compare / export-onnx / benchmark."""
from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
