"""The infer stage: use a stock or fine-tuned encoder on new photos, fast, and measure it honestly.

- :mod:`.model`: what ``--model`` names (registry name, train run / checkpoint, exported .onnx) and
  its threshold; ``--runtime onnx``.
- :mod:`.scoring`: a finite similarity for every pair through the face engine (pool + batches + cache).
- :mod:`.evaluate`: EER (Kryptonite baseline formula), ROC AUC, TAR@FAR, per-group acceptance.
- :mod:`.compare`: similarity matrix of 2-10 photos, verdicts, a picture.
- :mod:`.onnx_export` / :mod:`.onnx_runtime`: ONNX with normalisation inside; its runtime encoder.
- :mod:`.throughput`: the benchmark behind ``infer benchmark`` and ``benchmarks/infer_throughput.py``.
"""
