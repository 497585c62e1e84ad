"""The infer stage: use a stock or fine-tuned encoder on new photos, fast, and measure it honestly.

- :mod:`.model`: ``--model`` through the engine's one resolver (:mod:`fakeproof.engine.resolve`),
  plus ``--runtime onnx`` and ``--threshold``.
- :mod:`.scoring`: a finite similarity for every pair through the face engine (pool + batches + cache).
- :mod:`.evaluate`: EER (Kryptonite baseline formula), ROC AUC, TAR@FAR, per-group acceptance.
- :mod:`.compare`: similarity matrix of 2-10 photos, verdicts, a picture.
- :mod:`.onnx_export`: ONNX with normalisation inside (run by :class:`fakeproof.engine.onnx.ExportedOnnx`).
- :mod:`.throughput`: the benchmark behind ``infer benchmark`` and ``benchmarks/infer_throughput.py``.
"""
