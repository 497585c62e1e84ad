"""``fakeproof <stage> <command>``: one CLI for the four stages, the model registry and the demo."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

import typer  # noqa: E402

from .cli_errors import HandledGroup  # noqa: E402

from .demo import demo_command  # noqa: E402
from .stages import STAGES, stage_app  # noqa: E402

app = typer.Typer(
    cls=HandledGroup,
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
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    allow_outside_links: bool = typer.Option(
        False, "--allow-outside-links", help="Follow symlinks that lead outside the dataset / --root (refused by default)."
    ),
) -> None:
    """fakeproof: build face encoders that deepfakes cannot fool."""
    from .data.safe_paths import ENV_ALLOW

    if allow_outside_links:
        os.environ[ENV_ALLOW] = "1"


app.command("demo", help="Run the whole pipeline end to end on data the project makes itself.")(demo_command)


def main() -> None:  # pragma: no cover
    """The console script (errors are reported by :class:`~fakeproof.cli_errors.HandledGroup`)."""
    app(standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    main()
