"""The face engine shared by every stage: image loading, detection, alignment, encoders, caches.

Typical use::

    from fakeproof.engine import FaceEngine
    eng = FaceEngine("facenet")
    res = eng.embed_paths(paths)          # (N, D) L2-normalised, NaN rows for unusable files
    recs, crops = eng.crops(paths)        # aligned uint8 RGB crops of the encoder's input size
"""
from .align import align_face, similarity_transform
from .detect import DETECTORS, Detector, Face, get_detector, pick_main_face
from .encoders import Encoder, EncoderSpec, encoder_spec, get_encoder, list_encoders
from .images import ImageLoadError, LoadedImage, decode_rgb, load_rgb
from .pipeline import EmbedResult, FaceEngine, FaceRecord, resolve_device
from .resolve import ResolvedModel, resolve_model
from .template import ARCFACE_TEMPLATE, template_for

__all__ = [
    "ARCFACE_TEMPLATE",
    "EmbedResult",
    "Encoder",
    "EncoderSpec",
    "DETECTORS",
    "Detector",
    "Face",
    "FaceEngine",
    "FaceRecord",
    "ImageLoadError",
    "LoadedImage",
    "ResolvedModel",
    "align_face",
    "decode_rgb",
    "encoder_spec",
    "get_detector",
    "get_encoder",
    "list_encoders",
    "load_rgb",
    "pick_main_face",
    "resolve_device",
    "resolve_model",
    "similarity_transform",
    "template_for",
]
