"""ONNX Runtime execution providers for a device string (the one place that maps ``cuda:N``)."""
from __future__ import annotations


def ort_providers(device: str) -> list:
    """CUDA (on GPU ``N`` of ``cuda:N``, 0 for ``cuda``) when asked for and installed, else CPU.

    Under torchrun every rank passes its own ``cuda:LOCAL_RANK``, so ranks do not pile onto GPU 0."""
    import onnxruntime as ort

    device = str(device)
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
