"""Options that mean the same in every command, each described once.

- :func:`option`: a dataclass field that is also a command-line option; its default, help and range
  (``min``/``max``) live in the field (Lightning's ``add_class_arguments`` reads signatures the same
  way). :func:`config_options` / :func:`generated_options` turn such fields, or a constructor's
  ``Annotated[T, Opt(...)]`` parameters (a loss's options), into a Typer command's options and check
  every value against its range (one line naming the option, exit 2) before the command runs.
  The face-engine group built on it: :mod:`fakeproof.engine_options`.
- ``--model`` (one name for a model everywhere, read by :func:`fakeproof.engine.resolve_model`) and
  its deprecated spelling ``--encoder``; ``--config FILE``; ``--device`` checked up front; an
  interrupted curate batch settled first.
"""
from __future__ import annotations

import dataclasses
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


def field_default(cls, name: str):
    """The default of dataclass field ``name`` (so a Typer signature never restates it)."""
    f = cls.__dataclass_fields__[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


# -- options generated from a config dataclass (or a constructor's signature) ----------------------
@dataclasses.dataclass(frozen=True)
class Opt:
    """What one option is, said once: its help, its range (``min``/``max``, numbers or callables
    returning one, read when checked; ``lo_open``: ``min`` itself excluded) and its flags (default
    ``--field-name``; ``bool`` fields get ``--x/--no-x``). Lives in a dataclass field's metadata
    (:func:`option`) or in an ``Annotated[...]`` constructor parameter (a loss's options)."""

    help: str = ""
    min: object = None
    max: object = None
    lo_open: bool = False
    flags: tuple[str, ...] = ()
    hidden: bool = False

    def range_text(self) -> str:
        lo, hi = _bound(self.min), _bound(self.max)
        parts = ([f"> {lo:g}" if self.lo_open else f">= {lo:g}"] if lo is not None else []) + ([f"<= {hi:g}"] if hi is not None else [])
        return " and ".join(parts)


def _bound(b):
    return b() if callable(b) else b


def option(default=dataclasses.MISSING, help: str = "", *, min=None, max=None, lo_open: bool = False, flags: tuple[str, ...] = (), hidden: bool = False):
    """A dataclass field that is also a command-line option: default, help and range in one place."""
    return dataclasses.field(default=default, metadata={"option": Opt(help, min, max, lo_open, tuple(flags), hidden)})


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One generated option: the parameter ``name``, its type, its default and its :class:`Opt`."""

    name: str
    annotation: object
    default: object
    opt: Opt

    @property
    def flag(self) -> str:
        """The option's main spelling, as errors name it."""
        return self.opt.flags[0] if self.opt.flags else "--" + self.name.replace("_", "-")

    def typer_option(self, default=dataclasses.MISSING, help: str | None = None):
        decls = list(self.opt.flags) or [self.flag]
        if self.annotation is bool and "/" not in decls[0]:
            decls[0] = f"{decls[0]}/--no-{decls[0][2:]}"
        text = self.opt.help if help is None else help
        rng = self.opt.range_text()
        if rng:
            text = f"{text} [{rng}]" if text else f"[{rng}]"
        return typer.Option(self.default if default is dataclasses.MISSING else default, *decls, help=text, hidden=self.opt.hidden)

    def check(self, value) -> None:
        """One line (exit 2) naming the option when ``value`` is out of its range."""
        from .cli_errors import check_range

        if self.opt.min is not None or self.opt.max is not None:
            check_range(self.flag, value, _bound(self.opt.min), _bound(self.opt.max), lo_open=self.opt.lo_open)


def field_specs(cls) -> list[OptionSpec]:
    """The options of dataclass ``cls``'s fields (those without a default are left out: they are
    the command's arguments)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            continue
        out.append(OptionSpec(f.name, hints[f.name], field_default(cls, f.name), f.metadata.get("option", Opt())))
    return out


def signature_specs(fn) -> list[OptionSpec]:
    """The options a constructor (or any callable) declares: its keyword parameters with a default,
    typed ``Annotated[T, Opt(...)]`` (a plain ``T`` gets no help)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self" or p.default is inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = hints.get(p.name, type(p.default))
        opt = Opt()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            opt = next((e for e in extras if isinstance(e, Opt)), opt)
        out.append(OptionSpec(p.name, hint, p.default, opt))
    return out


def check_values(specs, values: dict) -> None:
    """Every value in ``values`` that has a spec, checked against its range (before any work)."""
    for s in specs:
        if s.name in values:
            s.check(values[s.name])


class _GeneratedCommand:
    """A Typer command whose options are computed when Typer reads its signature (each time the
    CLI is built), so options declared by things registered after import (a loss) are there."""

    def __init__(self, fn, param: str, specs, defaults: dict, helps: dict, convert):
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(self, attr, getattr(fn, attr))
        self.__wrapped__ = fn  # where get_type_hints finds the command's module globals
        self._fn, self._param, self._specs, self._defaults, self._helps, self._convert = fn, param, specs, defaults, helps, convert

    def _generated(self) -> list[OptionSpec]:
        own = inspect.signature(self._fn).parameters
        return [s for s in self._specs() if s.name not in own]

    @property
    def __signature__(self) -> inspect.Signature:
        sig = inspect.signature(self._fn)
        hints = typing.get_type_hints(self._fn, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values() if p.name != self._param]
        gen = [
            inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.typer_option(self._defaults.get(s.name, dataclasses.MISSING), self._helps.get(s.name)), annotation=s.annotation)
            for s in self._generated()
        ]
        return sig.replace(parameters=own + gen)

    @property
    def __annotations__(self) -> dict:
        return {p.name: p.annotation for p in self.__signature__.parameters.values()}

    def __call__(self, **kw):
        specs = self._generated()
        values = {s.name: kw.pop(s.name) for s in specs if s.name in kw}
        check_values(specs, values)  # out of range: one line naming the option, before the command runs
        return self._fn(**{self._param: self._convert(values)}, **kw)


def generated_options(specs, *, param: str, convert=dict, defaults: dict | None = None, helps: dict | None = None, skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None):
    """Decorator for a Typer command: one option per :class:`OptionSpec` of ``specs`` (a list or a
    callable returning one, read whenever the CLI is built), except ``skip`` (or all but ``only``) and
    the command's own parameters; the command receives them, checked against their ranges, in
    parameter ``param`` as ``convert(values)`` (a dict by default). ``defaults`` / ``helps`` override a spec's for this command."""

    def chosen() -> list[OptionSpec]:
        all_specs = specs() if callable(specs) else specs
        return [s for s in all_specs if s.name not in skip and (only is None or s.name in only)]

    def deco(fn):
        return _GeneratedCommand(fn, param, chosen, defaults or {}, helps or {}, convert)

    return deco


def config_options(cls, skip: tuple[str, ...] = (), extra=None):
    """:func:`generated_options` from dataclass ``cls``'s fields (and ``extra()``'s specs), as a
    ``config_values`` dict."""
    return generated_options(lambda: field_specs(cls) + (list(extra()) if extra else []), param="config_values", skip=skip)


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name == "COMMANDLINE"


def read_config_file(path: Path, cls, extra: set[str] | frozenset = frozenset()) -> dict:
    """``--config FILE``: a JSON object of ``cls`` fields and ``extra`` names (or a run folder's
    ``run.json``, whose ``config`` it takes). Unknown keys are an error naming them."""
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
    known = {f.name for f in dataclasses.fields(cls)} | set(extra)
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
