"""Validation of paired integer codes shared by :func:`tasklens.hgr.dtm` and :func:`tasklens.hgr.ace`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_labels, describe, is_torch


@dataclass(frozen=True)
class Codes:
    x: object  # int64 codes, numpy array or torch tensor (caller's device)
    y: object
    num_x: int
    num_y: int
    used_x: int  # distinct x codes that occur
    used_y: int
    kind: str  # "numpy" or "torch"
    device: str

    @property
    def num_modes(self) -> int:
        """Number of nontrivial HGR modes: min(distinct x, distinct y) - 1."""
        return min(self.used_x, self.used_y) - 1


def _size(value, name: str, needed: int) -> int:
    if value is None:
        return needed
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int alphabet size, got {value!r}")
    if value < needed:
        raise ValueError(f"{name}={value} is too small: the codes go up to {needed - 1}; pass at least {needed}")
    return int(value)


def check_codes(x, y, num_x=None, num_y=None) -> Codes:
    """Validate two 1-D integer code vectors of equal, non-zero length (numpy or torch, not mixed)."""
    if is_torch(x) != is_torch(y):
        raise TypeError(f"x and y must be the same kind: x is {describe(x)}, y is {describe(y)}")
    x = check_labels(x, "x", ndim=1)
    y = check_labels(y, "y", ndim=1, n=x.shape[0])
    if x.shape[0] == 0:
        raise ValueError(f"x: needs at least one sample, got {describe(x)}")
    if is_torch(x):
        import torch

        if x.device != y.device:
            raise ValueError(f"x and y are on different devices ({describe(x)}; {describe(y)})")
        nx = _size(num_x, "num_x", int(x.max()) + 1)
        ny = _size(num_y, "num_y", int(y.max()) + 1)
        used_x = int((torch.bincount(x, minlength=nx) > 0).sum())
        used_y = int((torch.bincount(y, minlength=ny) > 0).sum())
        device = str(x.device) if x.device.type == "cuda" else "cpu"
        if device == "cuda":
            device = f"cuda:{torch.cuda.current_device()}"
        return Codes(x, y, nx, ny, used_x, used_y, "torch", device)
    nx = _size(num_x, "num_x", int(x.max()) + 1)
    ny = _size(num_y, "num_y", int(y.max()) + 1)
    used_x = int(np.count_nonzero(np.bincount(x, minlength=nx)))
    used_y = int(np.count_nonzero(np.bincount(y, minlength=ny)))
    return Codes(x, y, nx, ny, used_x, used_y, "numpy", "cpu")


def out(a: np.ndarray, codes: Codes):
    """A float64 numpy result in the caller's kind (torch on the caller's device)."""
    if codes.kind == "numpy":
        return a
    import torch

    return torch.from_numpy(np.ascontiguousarray(a)).to(codes.device)
