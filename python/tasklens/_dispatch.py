"""Routing validated arrays to the CPU or CUDA kernels and returning the caller's kind of array.

A :class:`Backend` records what the caller passed (numpy, torch on CPU, torch on a CUDA device) and the
common floating dtype. CPU kernels run on numpy views of the data (torch CPU tensors share memory with
them); CUDA kernels receive raw device pointers and the current torch CUDA stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import describe, is_torch


@dataclass(frozen=True)
class Backend:
    kind: str  # "numpy" or "torch"
    device: str  # "cpu" or "cuda:<index>"
    dtype: str  # "float32" or "float64"

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_index(self) -> int:
        return int(self.device.split(":")[1]) if self.is_cuda else -1


def _device_of(x) -> str:
    if is_torch(x):
        if x.device.type == "cuda":
            return f"cuda:{x.device.index if x.device.index is not None else 0}"
        if x.device.type != "cpu":
            raise TypeError(f"tasklens supports CPU and CUDA tensors, got a tensor on {x.device}")
        return "cpu"
    return "cpu"


def backend_of(**arrays: Any) -> Backend:
    """The common backend of validated floating arrays (``None`` values are skipped).

    Mixing numpy arrays and torch tensors, or tensors on different devices, is an error. The dtype is
    float64 when any input is float64, else float32; use :func:`cast` to bring inputs to it.
    """
    items = [(k, v) for k, v in arrays.items() if v is not None]
    if not items:
        raise ValueError("backend_of: no arrays given")
    kinds = {("torch" if is_torch(v) else "numpy") for _, v in items}
    if len(kinds) > 1:
        listing = "; ".join(f"{k}: {describe(v)}" for k, v in items)
        raise TypeError(f"mix of numpy arrays and torch tensors ({listing}); pass all as one kind")
    devices = {_device_of(v) for _, v in items}
    if len(devices) > 1:
        listing = "; ".join(f"{k}: {describe(v)}" for k, v in items)
        raise ValueError(f"arrays are on different devices ({listing}); move them to one device")
    wide = any(str(getattr(v, "dtype", "")).endswith("float64") for _, v in items)
    return Backend(kinds.pop(), devices.pop(), "float64" if wide else "float32")


def cast(x, backend: Backend):
    """Cast a validated floating array to the backend's dtype (no copy when it already matches)."""
    if x is None:
        return None
    if is_torch(x):
        import torch

        want = getattr(torch, backend.dtype)
        return x if x.dtype == want else x.to(want).contiguous()
    return x if x.dtype == backend.dtype else x.astype(backend.dtype)


def to_numpy(x) -> np.ndarray:
    """A numpy view of a CPU array or tensor (no copy; torch tensors are detached)."""
    if is_torch(x):
        if x.device.type != "cpu":
            raise ValueError(f"to_numpy: expected a CPU tensor, got {describe(x)}")
        return x.detach().numpy()
    return np.asarray(x)


def like(result, backend: Backend):
    """Return a numpy result in the caller's kind (a torch tensor on the caller's device for torch)."""
    if backend.kind == "numpy" or result is None:
        return result
    import torch

    if isinstance(result, torch.Tensor):
        return result
    if np.isscalar(result) or np.ndim(result) == 0:
        return torch.tensor(result, device=backend.device)
    return torch.from_numpy(np.ascontiguousarray(result)).to(backend.device)


def cuda_args(x) -> tuple[int, int]:
    """(device index, current CUDA stream handle) for launching a kernel on the tensor's device."""
    import torch

    index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    return index, int(torch.cuda.current_stream(x.device).cuda_stream)


def ptr(x) -> int:
    """Raw data pointer of a contiguous tensor (CUDA launches)."""
    return int(x.data_ptr())
