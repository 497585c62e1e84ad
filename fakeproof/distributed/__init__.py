"""Past one machine: ``generate deepfakes``, ``curate clean``, ``infer pairs`` and ``infer score-pairs``
under torchrun, with the same result as one process.

- :mod:`.process_group`: torchrun / DDP plumbing (``DistInfo``, init, barrier, gather), also what
  ``train run`` uses.
- :mod:`.ranks`: joining the process group for the stages that are not training (always gloo),
  deterministic shards, gathering to rank 0, per-machine engine caches.
- :mod:`.embed`: each rank embeds a contiguous slice of the photos; rank 0 gets every embedding
  back in the original order and does the rest (graph, CSV).

The generate stage's own use of ranks (each rank journals its fakes; rank 0 folds the journals
into ``fakes.csv``) is :mod:`fakeproof.generate.distributed`: a lower layer never imports a stage.
Without torchrun (no ``WORLD_SIZE``) every function here falls back to the one-process path.
Import from the submodules (this package imports nothing, so ``curate`` does not load ``train``).
"""
