"""fakeproof: face encoders that deepfakes cannot fool.

Stages (subpackages): ``curate``, ``generate``, ``train``, ``infer``.
The shared face engine (loading, detection, alignment, encoders, caches) lives in
``fakeproof.engine`` and the dataset model in ``fakeproof.data``; stages only call them.
"""

__version__ = "0.1.0"
