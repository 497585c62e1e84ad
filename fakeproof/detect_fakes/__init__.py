"""A deepfake detector trained on real neural deepfakes (issue #20), kept apart from the identity encoder.

- :mod:`.corpus`: the training corpora (``images.csv`` in deepfakes-train's layout, a ``generate``
  training layout, deepfakes-dev's pairs), validated up front with one-line errors.
- :mod:`.crops`: the detector's input, a larger and less processed crop than the identity chip
  (ArcFace template, margin :data:`~.crops.CROP_MARGIN`), with the random re-encoding and resizing
  that keeps file format and source size from carrying the label.
- :mod:`.pack`: face crops, identity embeddings and labels of every image in one ``.npz``.
- :mod:`.features`: the frequency / noise-print baseline, local consistency (inner face vs the ring around
  it) and frozen features of the shipped encoders.
- :mod:`.residual_cnn`: a small CNN trained from scratch on high-pass residuals.
- :mod:`.dlib_finetune`: the shipped dlib face ResNet's lower blocks fine-tuned end to end as a detector.
- :mod:`.training`: augmentation on the device, training and scoring of those two.
- :mod:`.gate`: per-photo realness in [0, 1] and the gated pair score ``cos * r_a * r_b``.
"""
