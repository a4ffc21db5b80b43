"""Build and runtime facts, shown by ``tasklens info``."""

from __future__ import annotations

import platform
from importlib import metadata


def _version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def info() -> dict:
    """Version, build type, compilers, CUDA build and GPU visibility, and the CPU thread count."""
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
        "num_threads": int(C.num_threads()),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": _version_of("torch"),
    }
