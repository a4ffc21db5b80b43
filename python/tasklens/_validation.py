"""Input validation shared by every public function.

Every public function passes its array arguments through :func:`check_array` (floating data) or
:func:`check_labels` (integer codes). Errors are ``TypeError`` (wrong kind or dtype) or ``ValueError``
(wrong shape or values); each message names the argument, its shape and dtype, and says how to fix it.
Validated arrays keep their kind: numpy in, numpy out; torch in, torch (same device) out.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

import numpy as np

FLOAT_DTYPES = ("float32", "float64")


def is_torch(x: Any) -> bool:
    """True for a torch.Tensor, without importing torch when the caller never did."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def dtype_name(x: Any) -> str:
    if is_torch(x):
        return str(x.dtype).replace("torch.", "")
    return str(np.asarray(x).dtype) if not isinstance(x, np.ndarray) else str(x.dtype)


def describe(x: Any) -> str:
    """'shape (3, 4), dtype float32, numpy.ndarray' — used in error messages."""
    if is_torch(x):
        return f"shape {tuple(x.shape)}, dtype {dtype_name(x)}, torch.Tensor on {x.device}"
    if isinstance(x, np.ndarray):
        return f"shape {x.shape}, dtype {x.dtype}, numpy.ndarray"
    return f"type {type(x).__name__}"


def check_devices(**arrays: Any) -> None:
    """Reject tensors on devices other than CPU and CUDA (``meta``, ``mps``, ...) with a TypeError naming the
    argument, before anything reads their values (reading a meta tensor fails inside torch)."""
    for name, x in arrays.items():
        if is_torch(x) and x.device.type not in ("cpu", "cuda"):
            raise TypeError(f"{name}: tasklens supports CPU and CUDA tensors, got a tensor on {x.device} "
                            f"({describe(x)}); move it with .cpu() or .cuda() first")


def _as_supported(x: Any, name: str):
    if is_torch(x):
        check_devices(**{name: x})
        return x
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__array__") or isinstance(x, (list, tuple, int, float)):
        try:
            return np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name}: could not convert {describe(x)} to an array ({exc})") from None
    raise TypeError(f"{name}: expected a numpy array or torch tensor, got {describe(x)}")


def _check_shape(x, name: str, ndim, shape) -> None:
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {want} array, got {describe(x)}")
    if shape is not None:
        if len(shape) != x.ndim or any(s is not None and s != d for s, d in zip(shape, x.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: expected shape {want}, got {describe(x)}")


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: str | None = None,
    finite: bool = True,
    min_rows: int = 0,
):
    """Validate a floating array and return it C-contiguous, of the same kind and device.

    Parameters
    ----------
    x : numpy.ndarray, torch.Tensor, or array-like (converted with ``np.asarray``)
    name : argument name used in error messages.
    ndim : required number of dimensions (or a tuple of allowed ones).
    shape : required shape; ``None`` entries match any size.
    dtype : ``"float32"`` or ``"float64"`` to cast to; ``None`` keeps float32/float64 as given and casts
        integer, bool and half-precision input to float64 (numpy) / float32 (torch half types).
    finite : reject NaN and infinity.
    min_rows : minimum size of the first dimension.

    A contiguous copy is made only when the input is not C-contiguous or needs a cast. torch tensors
    are detached only by the caller (autograd wrappers need the graph).
    """
    x = _as_supported(x, name)
    if is_torch(x):
        import torch

        if x.dtype in (torch.float32, torch.float64):
            target = None
        elif x.dtype in (torch.float16, torch.bfloat16):
            target = torch.float32
        elif x.dtype == torch.bool or not (x.dtype.is_floating_point or x.dtype.is_complex):
            target = torch.float64
        else:
            raise TypeError(f"{name}: expected a real floating tensor (float32 or float64), got {describe(x)}")
        if dtype is not None:
            target = getattr(torch, dtype)
        if target is not None and x.dtype != target:
            x = x.to(target)
        x = x.contiguous()
    else:
        kind = x.dtype.kind
        if kind == "f" and x.dtype.itemsize in (4, 8):
            target = None
        elif kind == "f" and x.dtype.itemsize == 2:
            target = np.float32
        elif kind in "biu":
            target = np.float64
        else:
            raise TypeError(f"{name}: expected a real floating array (float32 or float64), got {describe(x)}")
        if dtype is not None:
            target = np.dtype(dtype)
        if target is not None and x.dtype != target:
            x = x.astype(target)
        x = np.ascontiguousarray(x)
    _check_shape(x, name, ndim, shape)
    if x.ndim >= 1 and x.shape[0] < min_rows:
        raise ValueError(f"{name}: needs at least {min_rows} row(s), got {describe(x)}")
    if finite and not _all_finite(x):
        raise ValueError(f"{name}: contains NaN or infinite values ({describe(x)}); remove or impute them first")
    return x


def _all_finite(x) -> bool:
    if is_torch(x):
        import torch

        return bool(torch.isfinite(x.detach()).all())
    return bool(np.isfinite(x).all())


def check_labels(y: Any, name: str, *, n: int | None = None, ndim: int | Sequence[int] = 1,
                 num_classes: int | None = None, return_max: bool = False):
    """Validate integer labels (class codes) and return them as int64, same kind and device.

    Float arrays whose values are all integers are accepted; negative codes are rejected.
    ``n`` is the required length of the first dimension (the number of samples).
    ``return_max=True`` returns ``(labels, largest code)`` (-1 when empty), saving callers another pass.
    """
    y = _as_supported(y, name)
    if is_torch(y):
        import torch

        if y.dtype.is_floating_point:
            if not bool(torch.all(y == torch.round(y))) or not bool(torch.isfinite(y).all()):
                raise TypeError(f"{name}: expected integer class labels, got non-integer values ({describe(y)})")
        elif y.dtype.is_complex:
            raise TypeError(f"{name}: expected integer class labels, got {describe(y)}")
        y = y.to(torch.int64).contiguous()
        lo = int(y.min()) if y.numel() else 0
        hi = int(y.max()) if y.numel() else -1
    else:
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                raise TypeError(f"{name}: expected integer class labels, got non-integer values ({describe(y)})")
        elif y.dtype.kind not in "biu":
            raise TypeError(f"{name}: expected integer class labels, got {describe(y)}; "
                            "encode strings with np.unique(labels, return_inverse=True)")
        y = np.ascontiguousarray(y, dtype=np.int64)
        lo = int(y.min()) if y.size else 0
        hi = int(y.max()) if y.size else -1
    _check_shape(y, name, ndim, None)
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per sample), got {describe(y)}")
    if lo < 0:
        raise ValueError(f"{name}: labels must be non-negative class codes, found {lo} ({describe(y)})")
    if num_classes is not None and hi >= num_classes:
        raise ValueError(f"{name}: label {hi} is out of range for num_classes={num_classes} ({describe(y)})")
    return (y, hi) if return_max else y


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _number(value: Any, name: str, what: str):
    """A Python/numpy number or a one-element array/tensor as a Python number; bools are not numbers."""
    if is_torch(value) or isinstance(value, np.ndarray):
        if (value.numel() if is_torch(value) else value.size) != 1:
            raise TypeError(f"{name}: expected {what}, got {describe(value)}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected {what}, got {value!r} ({type(value).__name__})")
    return value


def check_int(value: Any, name: str, *, min: int | None = None, max: int | None = None,
              allow_none: bool = False) -> int | None:
    """Validate a whole number and return it as a Python int.

    Accepts Python and numpy integers and floats with an integral value (``3.0``); ``2.5``, ``nan``, strings and
    bools are errors, never truncated. ``min``/``max`` are inclusive bounds.
    """
    if value is None and allow_none:
        return None
    v = _number(value, name, "an int")
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v) or v != np.floor(v):
            raise TypeError(f"{name}: expected an int, got {value!r}; whole numbers only (never truncated)")
        v = int(v)
    v = int(v)
    if min is not None and v < min:
        raise ValueError(f"{name}: expected an int >= {min}, got {v}")
    if max is not None and v > max:
        raise ValueError(f"{name}: expected an int <= {max}, got {v}")
    return v


def check_scalar(value: Any, name: str, *, min: float | None = None, max: float | None = None,
                 min_inclusive: bool = True, max_inclusive: bool = True, allow_none: bool = False) -> float | None:
    """Validate a finite real number and return it as a Python float, with optional bounds."""
    if value is None and allow_none:
        return None
    v = float(_number(value, name, "a number"))
    if not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if min is not None and (v < min or (v == min and not min_inclusive)):
        raise ValueError(f"{name}: expected a number {'>=' if min_inclusive else '>'} {min}, got {value!r}")
    if max is not None and (v > max or (v == max and not max_inclusive)):
        raise ValueError(f"{name}: expected a number {'<=' if max_inclusive else '<'} {max}, got {value!r}")
    return v


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0 with ``allow_zero``) as a Python float."""
    return check_scalar(value, name, min=0.0, min_inclusive=allow_zero)
