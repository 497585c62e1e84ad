"""The dataset model: the training layout (identity folders + meta.json), CelebA, pair folders."""
from .atomic import OutputError, atomic_write_bytes, atomic_write_text, check_writable, json_text
from .celeba import CelebA
from .meta import MetaError, backup_meta, read_meta, validate_key, write_meta
from .safe_paths import PathEscapeError, resolve_inside
from .pair_folders import PairFolder, read_pair_folders
from .training import IMAGE_EXTS, Item, TrainingDataset

__all__ = [
    "CelebA",
    "IMAGE_EXTS",
    "Item",
    "MetaError",
    "OutputError",
    "PathEscapeError",
    "PairFolder",
    "TrainingDataset",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "json_text",
    "backup_meta",
    "read_meta",
    "read_pair_folders",
    "resolve_inside",
    "validate_key",
    "write_meta",
]
