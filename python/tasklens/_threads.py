"""Thread count of the CPU kernels."""

from __future__ import annotations

from ._native import native
from ._validation import check_int


def get_num_threads() -> int:
    """Number of threads the CPU kernels use.

    Defaults to the environment variable ``TASKLENS_NUM_THREADS`` (a whole number from 1 to
    ``tasklens._C.max_threads``; any other value is reported with a ``RuntimeWarning`` when the native module is
    first loaded, and ignored) or else the usable cores.
    """
    return int(native().num_threads())


def set_num_threads(n: int | None) -> None:
    """Set the number of threads the CPU kernels use; ``None`` or ``0`` restores the default.

    Results do not depend on the thread count: kernels split work into fixed blocks and reduce
    them in a fixed order. ``n`` is a whole number from 0 to ``tasklens._C.max_threads`` (4096).
    """
    limit = int(native().max_threads)
    n = check_int(n, "set_num_threads: n", min=0, max=limit, allow_none=True)
    native().set_num_threads(0 if n is None else n)
