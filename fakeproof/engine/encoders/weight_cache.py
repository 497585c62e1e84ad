"""Converted weights cached once: a state dict built from a foreign weight file (FaceNet's frozen
TensorFlow graph, dlib's ``.dat``) is stored as safetensors under ``cache_home()/weights``.

The cache file's metadata records the source file's sha256 and the converter version; either
changing makes the next load convert again. Files are written to a temporary name and renamed,
so a crash never leaves a half-written cache, and an unreadable cache is converted again.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ...errors import InputError, WeightsNotInstalledError
from ...hashing import digest_file
from ..paths import cache_home

log = logging.getLogger(__name__)


def cached_conversion(
    source: Path,
    cache_name: str,
    converter_version: str,
    convert: Callable[[Path], dict[str, torch.Tensor]],
    default_source: Path | None = None,
) -> dict[str, torch.Tensor]:
    """The state dict ``convert(source)``, from ``cache_home()/weights/cache_name`` when that file
    was converted from a source with the same sha256 by the same ``converter_version``.

    A ``source`` other than ``default_source`` (the weight file a package ships) gets its own cache
    file, named after its location, replaced when its content changes."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = Path(source)
    if not source.exists():
        raise WeightsNotInstalledError(f"weight file not found: {source}")
    digest = digest_file(source)
    out_dir = cache_home() / "weights"
    name = cache_name
    if default_source is None or source.resolve() != Path(default_source).resolve():
        where = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
        name = f"{Path(cache_name).stem}-{where}.safetensors"
    target = out_dir / name
    if target.exists():
        try:
            with safe_open(str(target), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("source_sha256") == digest and meta.get("converter") == converter_version:
                return load_file(str(target))
        except Exception as e:  # noqa: BLE001 - a damaged cache file is converted again
            log.warning("ignoring unreadable weight cache %s: %s", target, e)
    t0 = time.perf_counter()
    state = {k: v.detach().contiguous().clone() for k, v in convert(source).items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".tmp", dir=out_dir)
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"source_sha256": digest, "converter": converter_version, "source": str(source)})
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("converted %s -> %s in %.1fs", source, target, time.perf_counter() - t0)
    return state


def load_safetensors_weights(path, what: str) -> dict[str, torch.Tensor]:
    """A converted or fine-tuned ``.safetensors`` state dict; keys saved from an encoder wrapper
    (``net.``-prefixed) are returned relative to the wrapped network."""
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsNotInstalledError(f"{what} weights not found: {path}")
    try:
        sd = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own types for a truncated/damaged file
        raise InputError(f"{path}: damaged or truncated {what} weights file ({(str(e).splitlines() or [type(e).__name__])[0][:160]})") from None
    return {k[4:] if k.startswith("net.") else k: v for k, v in sd.items()}


def convert_installed_or_given(path, installed, label: str, cache_name: str, version: str, convert) -> dict:
    """``cached_conversion`` of ``path`` (default: ``installed()``, the file a registry package
    ships), with one "not found" error naming ``label``; the shared body of every encoder's
    ``converted_state_dict``."""
    src = Path(path).expanduser() if path else installed()
    if not src.exists():
        raise WeightsNotInstalledError(f"{label} not found: {src}")
    try:
        default = installed()
    except FileNotFoundError:
        default = None
    return cached_conversion(src, cache_name, version, convert, default_source=default)


def shipped_or_given(weights, installed):
    """The weight file a spec names: ``weights`` when given, else the shipped one (None if absent)."""
    try:
        return Path(weights) if weights else installed()
    except FileNotFoundError:
        return None


def package_file(package: str, relative: str, install_hint: str) -> Path:
    """``relative`` inside the installed ``package`` (weights a registry package ships); a one-line
    :class:`WeightsNotInstalledError` naming ``install_hint`` when the package is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotInstalledError(install_hint)
    return Path(spec.submodule_search_locations[0]) / relative
