"""Integer codes: validation of paired codes (:func:`tasklens.hgr.dtm`, :func:`tasklens.hgr.ace`) and renumbering
of sparse codes (also used by :func:`tasklens.metrics.hscore` for sparse labels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dispatch import Backend, backend_of
from .._validation import check_int, check_labels, describe, is_torch


@dataclass(frozen=True)
class Codes:
    x: object  # int64 codes, numpy array or torch tensor (caller's device)
    y: object
    num_x: int
    num_y: int
    used_x: int  # distinct x codes that occur
    used_y: int
    backend: Backend

    @property
    def num_modes(self) -> int:
        """Number of nontrivial HGR modes: min(distinct x, distinct y) - 1."""
        return min(self.used_x, self.used_y) - 1


def dense_alphabet(size: int, n: int) -> bool:
    """Whether an alphabet of ``size`` codes over ``n`` samples is small enough for per-code tables
    (``size <= 4 n + 65536``); larger (sparse) alphabets are handled by sorting the codes."""
    return size <= 4 * n + 65536


def _size(value, name: str, needed: int) -> int:
    if value is None:
        return needed
    value = check_int(value, name, min=1)
    if value < needed:
        raise ValueError(f"{name}={value} is too small: the codes go up to {needed - 1}; pass at least {needed}")
    return value


def _distinct(v, size: int, backend: Backend) -> int:
    """Number of distinct codes in ``v`` (codes < ``size``): a table count for dense alphabets, else a sort."""
    if backend.is_torch:
        import torch

        if dense_alphabet(size, v.shape[0]):
            return int((torch.bincount(v, minlength=size) > 0).sum())
        return int(torch.unique(v).numel())
    if dense_alphabet(size, v.shape[0]):
        return int(np.count_nonzero(np.bincount(v, minlength=size)))
    return int(np.unique(v).size)


def check_codes(x, y, num_x=None, num_y=None) -> Codes:
    """Validate two 1-D integer code vectors of equal, non-zero length (numpy or torch on one device, not mixed)
    and decide their backend once."""
    x = check_labels(x, "x", ndim=1)
    y = check_labels(y, "y", ndim=1, n=x.shape[0])
    backend = backend_of(x=x, y=y)
    if x.shape[0] == 0:
        raise ValueError(f"x: needs at least one sample, got {describe(x)}")
    nx = _size(num_x, "num_x", int(x.max()) + 1)
    ny = _size(num_y, "num_y", int(y.max()) + 1)
    return Codes(x, y, nx, ny, _distinct(x, nx, backend), _distinct(y, ny, backend), backend)


def unique_codes(v):
    """(sorted distinct codes, each element's index among them) of a 1-D numpy array or tensor."""
    if is_torch(v):
        import torch

        u, inv = torch.unique(v, sorted=True, return_inverse=True)
        return u, inv.to(torch.int64).contiguous()
    u, inv = np.unique(v, return_inverse=True)
    return u, np.ascontiguousarray(inv.reshape(-1), dtype=np.int64)


def renumber_codes(y):
    """Each column of integer codes (numpy or torch, (N,) or (N, T)) renumbered 0 .. distinct - 1 in increasing
    order; returns (codes, largest number of distinct codes in a column). O(N log N) per column and no table
    over the code range, so codes near 2**62 cost nothing extra."""
    if y.ndim == 1:
        out, used = renumber_codes(y.reshape(-1, 1))
        return out.reshape(-1), used
    cols = [unique_codes(y[:, j]) for j in range(y.shape[1])]
    used = max((int(u.shape[0]) for u, _ in cols), default=0)
    if is_torch(y):
        import torch

        return torch.stack([inv for _, inv in cols], 1).contiguous(), used
    return np.ascontiguousarray(np.stack([inv for _, inv in cols], 1)), used
