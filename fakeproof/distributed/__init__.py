"""Past one machine: ``generate deepfakes``, ``curate clean``, ``infer pairs`` and ``infer score-pairs``
under torchrun, with the same result as one process.

- :mod:`.ranks`: joining the process group torchrun describes (reusing :mod:`fakeproof.train.distributed`),
  deterministic shards, gathering to rank 0, per-machine engine caches.
- :mod:`.generate`: the plan is split by identity; each rank appends to its own journal under
  ``DATASET/fakes.ranks/``; rank 0 folds those into ``fakes.csv`` and ``meta.json`` (atomically) at
  the start and at the end of every run.
- :mod:`.embed`: each rank embeds a contiguous slice of the photos; rank 0 gets every embedding
  back in the original order and does the rest (graph, CSV).

Without torchrun (no ``WORLD_SIZE``) every function here falls back to the one-process path.
Import from the submodules (this package imports nothing, so ``curate`` does not load ``generate``).
"""
