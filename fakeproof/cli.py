"""``fakeproof <stage> <command>``: one CLI for the four stages, the model registry and the demo."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

import typer  # noqa: E402

from .demo import demo_command  # noqa: E402
from .stages import STAGES, stage_app  # noqa: E402

app = typer.Typer(
    help="fakeproof: build face encoders that deepfakes cannot fool.\n\n"
    "curate -> generate -> train -> infer. Every stage uses the same face engine "
    "(MTCNN detection, ArcFace-template alignment, registered encoders).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for _name, (_module, _help) in STAGES.items():
    app.add_typer(stage_app(_name), name=_name, help=_help)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from . import __version__

        try:
            v = version("fakeproof")
        except PackageNotFoundError:  # running from a source tree that is not installed
            v = __version__
        print(f"fakeproof {v}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """fakeproof: build face encoders that deepfakes cannot fool."""


app.command("demo", help="Run the whole pipeline end to end on data the project makes itself.")(demo_command)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
