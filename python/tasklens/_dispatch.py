"""The one seam between the public functions and the native kernels.

Every public function follows the same four steps:

1. validate its inputs with :mod:`tasklens._validation` (``check_array``, ``check_labels``, ``check_int``, ...);
2. decide the backend once with :func:`backend_of` and carry the :class:`Backend` through the call;
3. run a native op with :func:`call` (CPU: numpy views; CUDA: device pointers, the dtype code and the current
   stream), the CUDA allocation and launch glue living in the area's ``_cuda.py``;
4. return ``backend.out(result)``: the one output rule.

The output rule
---------------
numpy in -> numpy out; torch in -> torch out, on the input's device. Arrays keep the dtype the function documents
(float64 for metrics and distances, the input's dtype for box operations). A scalar result is a Python ``float``
for numpy input and a 0-d tensor for torch input. Tuples, lists and dicts are converted element by element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._native import native, require_cuda
from ._validation import describe, is_torch


@dataclass(frozen=True)
class Backend:
    """Where a call runs and what it returns: ``kind`` ("numpy" | "torch"), ``device`` ("cpu" | "cuda:<i>") and the
    common floating ``dtype`` ("float32" | "float64"; float64 when no input is floating)."""

    kind: str
    device: str
    dtype: str

    @property
    def is_torch(self) -> bool:
        return self.kind == "torch"

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_index(self) -> int:
        return int(self.device.split(":")[1]) if self.is_cuda else -1

    def out(self, result):
        """The output rule (module docstring): ``result`` (numpy, Python scalars, torch, or containers of them)
        in the caller's kind and device."""
        if isinstance(result, tuple):
            return tuple(self.out(r) for r in result)
        if isinstance(result, list):
            return [self.out(r) for r in result]
        if isinstance(result, dict):
            return {k: self.out(v) for k, v in result.items()}
        if result is None or isinstance(result, (str, bool)):
            return result
        if self.kind == "numpy":
            if is_torch(result):
                result = result.detach().cpu().numpy()
            if isinstance(result, (int, float, np.generic)) or np.ndim(result) == 0:
                value = np.asarray(result)
                return float(value) if value.dtype.kind == "f" else value.item()
            return result
        import torch

        if isinstance(result, torch.Tensor):
            return result if str(result.device) == self._torch_device() else result.to(self.device)
        if isinstance(result, (int, float, np.generic)) or np.ndim(result) == 0:
            value = np.asarray(result)
            dtype = torch.float64 if value.dtype.kind == "f" else None
            return torch.tensor(value.item(), dtype=dtype, device=self.device)
        return torch.from_numpy(np.ascontiguousarray(result)).to(self.device)

    def _torch_device(self) -> str:
        return self.device if self.is_cuda else "cpu"

    def empty(self, shape, dtype: str | None = None):
        """An uninitialised array of the backend's kind and device (``dtype`` defaults to the backend's)."""
        dtype = dtype or self.dtype
        if self.kind == "numpy":
            return np.empty(shape, dtype=dtype)
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype), device=self.device)

    def cast(self, x):
        """``x`` (validated floating array of this backend) in the backend's dtype; no copy when it matches."""
        return cast(x, self)


def _device_of(x) -> str:
    if is_torch(x):
        if x.device.type == "cuda":
            index = x.device.index
            if index is None:
                import torch

                index = torch.cuda.current_device()
            return f"cuda:{index}"
        if x.device.type != "cpu":
            raise TypeError(f"tasklens supports CPU and CUDA tensors, got a tensor on {x.device} ({describe(x)}); "
                            "move it with .cpu() or .cuda() first")
        return "cpu"
    return "cpu"


def backend_of(**arrays: Any) -> Backend:
    """The common backend of validated arrays, floating or integer (``None`` values are skipped).

    Mixing numpy arrays and torch tensors, or tensors on different devices, is an error naming the arguments. The
    dtype is float64 when any floating input is float64 or when no input is floating, else float32.
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
    floats = [str(v.dtype).replace("torch.", "") for _, v in items if _is_floating(v)]
    dtype = "float32" if floats and all(f != "float64" for f in floats) else "float64"
    return Backend(kinds.pop(), devices.pop(), dtype)


def _is_floating(x) -> bool:
    if is_torch(x):
        return x.dtype.is_floating_point
    return np.asarray(x).dtype.kind == "f"


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


def to_host(x) -> np.ndarray:
    """A numpy array of any array or tensor (a device-to-host copy for CUDA tensors)."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ------------------------------------------------------------------------------------------------ native ops

def dtype_code(dtype):
    """The native dtype tag ``_C.DType.float32`` / ``_C.DType.float64`` of a dtype name, array or tensor."""
    name = str(getattr(dtype, "dtype", dtype)).replace("torch.", "")
    return getattr(native().DType, name)


def call(op: str, backend: Backend, *args, dtype: Any = None):
    """Run the native op ``_C.<op>`` (CPU) or ``_C.<op>_cuda`` (CUDA) for ``backend``.

    CPU: arrays and tensors are passed as numpy views and numpy results come back as the backend's kind (torch
    CPU tensors share the memory). CUDA: tensors are passed as device pointers, prefixed by the ``DType`` code of
    ``dtype`` when given and followed by the device index and the current stream; outputs are preallocated by
    the caller (the area's ``_cuda.py``), and the op's own return value is passed back.
    """
    C = native()
    if backend.is_cuda:
        require_cuda(f"tasklens._C.{op}")
        device, stream = cuda_args(backend)
        conv = [int(a.data_ptr()) if is_torch(a) else a for a in args]
        head = [dtype_code(dtype)] if dtype is not None else []
        return getattr(C, f"{op}_cuda")(*head, *conv, device, stream)
    res = getattr(C, op)(*[_cpu_view(a) for a in args])
    if backend.kind == "numpy" or res is None:
        return res
    import torch

    def wrap(r):
        return torch.from_numpy(r) if isinstance(r, np.ndarray) else r

    return tuple(wrap(r) for r in res) if isinstance(res, tuple) else wrap(res)


def _cpu_view(a):
    if is_torch(a):
        # numpy's copy of a non-contiguous (e.g. expanded) tensor is cheaper than torch's for these sizes
        return np.ascontiguousarray(a.detach().numpy())
    return a


def cuda_args(where) -> tuple[int, int]:
    """(device index, current CUDA stream handle) of a :class:`Backend` or a CUDA tensor."""
    import torch

    if isinstance(where, Backend):
        device = torch.device(where.device)
    else:
        device = where.device
    index = device.index if device.index is not None else torch.cuda.current_device()
    return index, int(torch.cuda.current_stream(index).cuda_stream)


def ptr(x) -> int:
    """Raw data pointer of a contiguous tensor (CUDA launches); 0 for ``None``."""
    return 0 if x is None else int(x.data_ptr())

