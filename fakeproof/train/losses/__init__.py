"""Pair losses on cosine similarity, one file each: a new loss is one module in this folder.

A loss is a ``torch.nn.Module`` registered with ``@LOSSES.register("name")``; ``loss(cos, y,
reduction="mean")`` scores cosines ``cos`` of pairs labelled ``y`` (1 = two real photos of the
same person, 0 otherwise). Its constructor declares its options: each keyword parameter with a
default, typed ``Annotated[T, Opt(help, min=..., max=...)]`` (:class:`fakeproof.cli_options.Opt`),
becomes a ``train run`` option (``margin_base`` -> ``--margin-base``) and a ``--config FILE`` field,
its range checked before any work. Nothing else needs to know about it: :class:`~fakeproof.train.
config.TrainConfig` keeps the chosen loss's values in ``loss_options``. Two losses may share an
option name (one option, each loss reads it with its own default).

    @LOSSES.register("focal")
    class FocalPairLoss(torch.nn.Module):
        def __init__(self, gamma: Annotated[float, Opt("focusing exponent", min=0.0)] = 2.0): ...
"""
from __future__ import annotations

import importlib
import pkgutil

from ...cli_options import OptionSpec, signature_specs
from ...errors import UsageError
from ...registry import Registry


def _load_all() -> None:
    """Import every loss module of this package (their decorators fill :data:`LOSSES`)."""
    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")


LOSSES: Registry = Registry("loss", load=_load_all)
DEFAULT_LOSS = "adaptive_margin"


def options_of(name: str) -> list[OptionSpec]:
    """The options loss ``name``'s constructor declares."""
    return signature_specs(LOSSES.get(name).__init__)


def loss_option_specs() -> list[OptionSpec]:
    """One command-line option per option name of every registered loss (default None: the chosen
    loss's own default), its help saying which losses read it."""
    by_name: dict[str, list[tuple[str, OptionSpec]]] = {}
    for loss in LOSSES.names():
        for s in options_of(loss):
            by_name.setdefault(s.name, []).append((loss, s))
    out = []
    for name, uses in by_name.items():
        first = uses[0][1]
        text = "; ".join(f"--loss {loss}: {s.opt.help} (default {s.default:g})" if isinstance(s.default, (int, float)) else f"--loss {loss}: {s.opt.help} (default {s.default})" for loss, s in uses)
        opt = type(first.opt)(text, first.opt.min, first.opt.max, first.opt.lo_open, first.opt.flags, first.opt.hidden)
        out.append(OptionSpec(name, first.annotation | None, None, opt))
    return out


def loss_option_names() -> set[str]:
    return {s.name for s in loss_option_specs()}


def resolve_loss_options(name: str, given: dict, from_file: dict | None = None) -> tuple[dict, list[str]]:
    """Every option of loss ``name``, from ``given`` (the command line: one that the loss does not
    take is an error naming it) over ``from_file`` (a config file or a saved run: values the loss
    does not take are left out and listed) over the loss's defaults; each checked against its range.
    Returns ``(options, left out)``."""
    specs = {s.name: s for s in options_of(name)}
    wrong = sorted(set(given) - set(specs))
    if wrong:
        takes = ", ".join("--" + n.replace("_", "-") for n in specs) or "no options"
        raise UsageError(f"--{wrong[0].replace('_', '-')} does not apply to --loss {name} (it takes {takes})")
    from_file = from_file or {}
    left_out = sorted(set(from_file) - set(specs))
    out = {}
    for n, s in specs.items():
        v = given[n] if n in given else from_file.get(n, s.default)
        s.check(v)
        out[n] = v
    return out, left_out


def make_loss(name: str = DEFAULT_LOSS, options: dict | None = None):
    """The registered loss ``name`` built with ``options`` (the missing ones at its defaults)."""
    opts, _ = resolve_loss_options(name, {}, options)
    return LOSSES.get(name)(**opts)
