"""Deepfake backends: roop, ghost, arc2face, instantid (user weights) and classic (no weights)."""
from .base import Backend, BackendError, MissingWeightsError

__all__ = ["Backend", "BackendError", "MissingWeightsError"]
