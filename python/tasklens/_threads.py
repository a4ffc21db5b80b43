"""Thread count of the CPU kernels."""

from __future__ import annotations

from ._native import native


def get_num_threads() -> int:
    """Number of threads the CPU kernels use.

    Defaults to the environment variable ``TASKLENS_NUM_THREADS`` or else the usable cores.
    """
    return int(native().num_threads())


def set_num_threads(n: int | None) -> None:
    """Set the number of threads the CPU kernels use; ``None`` or ``0`` restores the default.

    Results do not depend on the thread count: kernels split work into fixed blocks and reduce
    them in a fixed order.
    """
    if n is None:
        n = 0
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"set_num_threads: n must be a non-negative int or None, got {n!r}")
    native().set_num_threads(int(n))
