"""The dataset model: the training layout (identity folders + meta.json), CelebA, pair folders."""
from .celeba import CelebA
from .meta import MetaError, atomic_write_text, backup_meta, read_meta, validate_key, write_meta
from .pairs import PairFolder, read_pair_folders
from .training import IMAGE_EXTS, Item, TrainingDataset

__all__ = [
    "CelebA",
    "IMAGE_EXTS",
    "Item",
    "MetaError",
    "PairFolder",
    "TrainingDataset",
    "atomic_write_text",
    "backup_meta",
    "read_meta",
    "read_pair_folders",
    "validate_key",
    "write_meta",
]
