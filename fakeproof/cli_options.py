"""Options that mean the same in every command: ``--model`` (one name for a model everywhere, read
by :func:`fakeproof.engine.resolve_model`) and its deprecated spelling ``--encoder``; and options
generated from a config dataclass (its defaults stated once, there), with ``--config FILE``."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import typing
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from .errors import InputError
from .engine.encoders import DEFAULT_ENCODER


# the forms fakeproof.engine.resolve_model reads
MODEL_HELP = "a registry name (facenet, adaface_ir101, onnx:PATH, ...; `fakeproof models list`), a `train run` folder or checkpoint, or a .onnx from `infer export-onnx`"

_err = Console(stderr=True)


def model_option(default: str = DEFAULT_ENCODER, help: str = MODEL_HELP):
    return typer.Option(default, "--model", "-m", help=help)


def encoder_alias_option():
    """``--encoder``: the old name of ``--model`` (hidden; still accepted, with a warning)."""
    return typer.Option(None, "--encoder", hidden=True, help="deprecated spelling of --model")


def chosen_model(model: str, encoder_alias: Optional[str]) -> str:
    if encoder_alias is None:
        return model
    _err.print("[yellow]--encoder is deprecated: use --model (same values)[/]", highlight=False)
    return encoder_alias


# -- options generated from a config dataclass -------------------------------------------------
def field_default(cls, name: str):
    """The default of dataclass field ``name`` (so a Typer signature never restates it)."""
    f = cls.__dataclass_fields__[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def config_options(cls, helps: dict[str, str], skip: tuple[str, ...] = (), flags: dict[str, str] | None = None):
    """Decorator for a Typer command: one ``--field-name`` option per field of dataclass ``cls``
    (type and default from the dataclass, help from ``helps``; ``bool`` fields become
    ``--x/--no-x``), except ``skip`` and the command's own parameters. The command receives them as
    ``config_values: dict``."""
    hints = typing.get_type_hints(cls)
    flags = flags or {}

    def deco(fn):
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name != "config_values"]
        generated = []
        for f in dataclasses.fields(cls):
            if f.name in skip or f.name in sig.parameters:
                continue
            flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
            decl = f"{flag}/--no-{flag[2:]}" if hints[f.name] is bool else flag
            opt = typer.Option(field_default(cls, f.name), decl, help=helps.get(f.name, ""))
            generated.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=hints[f.name]))

        @functools.wraps(fn)
        def command(**kw):
            values = {p.name: kw.pop(p.name) for p in generated}
            return fn(config_values=values, **kw)

        command.__signature__ = sig.replace(parameters=own + generated)
        return command

    return deco


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name == "COMMANDLINE"


def read_config_file(path: Path, cls) -> dict:
    """``--config FILE``: a JSON object of ``cls`` fields (or a run folder's ``run.json``, whose
    ``config`` it takes). Unknown keys are an error naming them."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of {cls.__name__} fields")
    known = {f.name for f in dataclasses.fields(cls)}
    if "encoder" in data and "model" in known and "model" not in data:  # files written before --model
        data["model"] = data.pop("encoder")
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return data


def settle_dataset(dataset) -> None:
    """Finish or reverse an apply/undo a kill interrupted in ``dataset``, and say which; every command
    that reads or writes a dataset calls this before anything else (README: Guarantees)."""
    from .data.pending import settle_interrupted_batch
    from .ui import console

    msg = settle_interrupted_batch(dataset)
    if msg:
        console.print(f"[yellow]recovered:[/yellow] {msg}", highlight=False, soft_wrap=True)


def check_device(device: str) -> str:
    """``--device``: what it stands for here; a GPU that is not there is one line (exit 5) before any work."""
    from .engine.pipeline import resolve_device

    return resolve_device(device)
