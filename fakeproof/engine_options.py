"""The face-engine options every command that embeds photos shares, described once.

:class:`EngineOptions` is the one place where ``--model``, ``--runtime``, ``--device``,
``--weights``, ``--models-dir``, ``--detector``, ``--workers``, ``--batch-size``, ``--cache`` and
``--margin`` get their default, help and range; a command takes the ones that apply to it with
:func:`engine_options` (``only=``) and receives them as one ``EngineOptions`` value, ranges already
checked. The ``infer`` commands, ``curate clean`` and ``generate check`` use it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from .cli_options import MODEL_HELP, field_specs, generated_options, option
from .engine.encoders import DEFAULT_ENCODER
from .engine.runtime import DEFAULT_RUNTIME


@dataclass
class EngineOptions:
    model: str = option(DEFAULT_ENCODER, MODEL_HELP, flags=("--model", "-m"))
    runtime: str = option(DEFAULT_RUNTIME, "auto (ONNX Runtime on CPU, torch on CUDA) | torch | onnx (ONNX Runtime; torch models are exported once and cached)")
    device: str = option("auto", "auto | cpu | cuda[:N]")
    weights: str | None = option(None, "weights file for a registry encoder")
    models_dir: str | None = option(None, "folder with user-supplied weights (default $FAKEPROOF_MODELS)")
    detector: str = option("mtcnn", "mtcnn | scrfd:DIR")
    workers: int | None = option(None, "decode/detect/align worker threads (default: CPU count, max 8)", min=1)
    batch_size: int = option(32, "crops per encoder batch", min=1)
    cache: bool = option(True, "reuse cached crops and embeddings (keyed by file content)")
    margin: float | None = option(None, "alignment margin (default: the encoder's)", min=0.0, max=1.0)
    progress: bool = option(True, "progress bar")

    def face_engine(self, encoder, device: str | None = None, cache_dir=None):
        """The :class:`fakeproof.engine.FaceEngine` these options describe, around a loaded ``encoder``
        (``device``: the one a torchrun rank was given, default ``self.device``)."""
        from .engine import FaceEngine

        return FaceEngine(encoder, detector=self.detector, device=device or self.device, workers=self.workers,
                          use_cache=self.cache, margin=self.margin, cache_dir=cache_dir)


ENGINE_OPTIONS = tuple(f.name for f in fields(EngineOptions))


def engine_options(only: tuple[str, ...] = ENGINE_OPTIONS, *, param: str = "engine", defaults: dict | None = None, helps: dict | None = None):
    """Decorator for a command that embeds: the :class:`EngineOptions` named in ``only`` become its
    options (``defaults`` / ``helps`` say what differs for this command), and the command receives
    them checked, as ``EngineOptions`` in parameter ``param`` (the others at their defaults)."""
    unknown = set(only) - set(ENGINE_OPTIONS)
    if unknown:
        raise ValueError(f"not engine options: {', '.join(sorted(unknown))}")
    return generated_options(field_specs(EngineOptions), param=param, convert=lambda values: EngineOptions(**values), defaults=defaults, helps=helps, only=tuple(only))
