"""Access to the compiled module ``tasklens._C`` and to what it was built with."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def native():
    """Return the compiled module ``tasklens._C``, with a clear error when it is missing."""
    try:
        from tasklens import _C
    except ImportError as exc:  # pragma: no cover - only on broken installs
        raise ImportError(
            "tasklens' native module tasklens._C is not built. Install the package with "
            "`pip install .` (or run scripts/dev-build for a developer build)."
        ) from exc
    return _C


@functools.lru_cache(maxsize=None)
def cuda_device_count() -> int:
    """Number of CUDA devices the native module can use (0 when CUDA was not compiled or no GPU/driver)."""
    count, _reason = native().cuda_device_count()
    return int(count)


def cuda_compiled() -> bool:
    return bool(native().cuda_compiled)


def require_cuda(what: str) -> None:
    """Raise a clear error when a CUDA tensor reaches a build or machine that cannot run CUDA kernels."""
    if not cuda_compiled():
        raise RuntimeError(f"{what}: got a CUDA tensor, but tasklens was built without CUDA kernels; "
                           "rebuild with a CUDA compiler available (TASKLENS_CUDA=ON)")
    if cuda_device_count() == 0:
        _count, reason = native().cuda_device_count()
        raise RuntimeError(f"{what}: got a CUDA tensor, but the native module sees no CUDA device ({reason})")
