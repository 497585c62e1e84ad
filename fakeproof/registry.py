"""One small registry for everything fakeproof looks up by name: encoders, face detectors,
deepfake backends and pair losses (timm's ``register_model`` / ``list_models`` idea).

    LOSSES = Registry("loss")
    @LOSSES.register("contrastive")
    class ContrastiveCosineLoss: ...
    LOSSES.get("contrastive"); LOSSES.names()

An entry may take an argument after its name (``scrfd:DIR``, ``onnx:PATH``): register it with
``arg="DIR"`` and :meth:`Registry.split` separates the two. Registering a name twice is an error
(nothing is silently replaced); looking up an unknown name raises :class:`UnknownNameError` (a
``KeyError`` and a ``ValueError``) listing the known forms. ``load`` is called before the first look-up: it imports the modules whose decorators fill
the registry.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import FakeproofError

T = TypeVar("T")


class DuplicateNameError(FakeproofError, ValueError):
    """A name registered twice."""


class UnknownNameError(FakeproofError, KeyError, ValueError):
    """A name nothing is registered under (a ``KeyError`` and a ``ValueError``; prints plainly)."""


class Registry(Generic[T]):
    def __init__(self, kind: str, load: Callable[[], None] | None = None):
        self.kind = kind
        self._load = load
        self._loaded = load is None
        self._entries: dict[str, T] = {}
        self._args: dict[str, str] = {}  # name -> what follows "name:" (entries that take one)

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True  # before calling: the modules it imports register into this registry
            self._load()

    def register(self, name: str, obj: T | None = None, *, arg: str | None = None):
        """``register(name, obj)`` or ``@register(name)``; ``arg`` names the argument an entry
        takes after ``name:`` (``"DIR"`` for ``scrfd:DIR``)."""

        def add(o: T) -> T:
            if name in self._entries:
                raise DuplicateNameError(f"{self.kind} {name!r} is already registered ({_where(self._entries[name])}); pick another name")
            self._entries[name] = o
            if arg:
                self._args[name] = arg
            return o

        return add(obj) if obj is not None else add

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        self._ensure_loaded()
        return list(self._entries)

    def forms(self) -> list[str]:
        """How each entry is written on a command line: ``name`` or ``name:ARG``."""
        self._ensure_loaded()
        return [f"{n}:{self._args[n]}" if n in self._args else n for n in self._entries]

    def split(self, spec: str) -> tuple[str, str | None]:
        """``("scrfd", "/models/buffalo_l")`` for ``"scrfd:/models/buffalo_l"``; ``(spec, None)``
        when ``spec`` does not start with an argument-taking entry."""
        self._ensure_loaded()
        name, sep, rest = str(spec).partition(":")
        if sep and name in self._args:
            return name, rest
        return str(spec), None

    def get(self, name: str) -> T:
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {', '.join(self.forms())}") from None

    def takes_arg(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._args

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._ensure_loaded()
        return list(self._entries.items())


def _where(obj: object) -> str:
    mod, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"by {mod}.{name}" if mod and name else f"as {type(obj).__name__}"
