"""Build and runtime facts, shown by ``tasklens info``."""

from __future__ import annotations

import platform
from importlib import metadata


def _version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def gpu_status(compiled: bool, devices: int, reason: str | None) -> str:
    """One plain sentence on what the CUDA kernels can use (``info()["gpu"]``)."""
    if not compiled:
        return "no GPU support: this build of tasklens has no CUDA kernels (CPU only)"
    if devices == 0:
        return f"no GPU/driver: CUDA kernels are built but no usable GPU was found ({reason or 'no device'}); CPU only"
    return f"{devices} GPU{'s' if devices > 1 else ''} usable by the CUDA kernels"


def info() -> dict:
    """Version, build type, compilers, CUDA build and GPU visibility (``gpu``: one plain sentence), and the CPU
    thread count."""
    import numpy

    from . import __version__
    from ._native import native

    C = native()
    gpus, reason = C.cuda_device_count()
    return {
        "version": __version__,
        "build_type": C.build_type,
        "cxx_compiler": C.cxx_compiler,
        "cuda_compiled": bool(C.cuda_compiled),
        "cuda_compiler": C.cuda_compiler or None,
        "cuda_architectures": [a for a in C.cuda_architectures.split(",") if a],
        "cuda_devices": int(gpus),
        "cuda_note": reason or None,
        "gpu": gpu_status(bool(C.cuda_compiled), int(gpus), reason or None),
        "num_threads": int(C.num_threads()),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": _version_of("torch"),
    }
