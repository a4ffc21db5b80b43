"""Image batches: validation, conversion to float in [0, 1], channel matching and bilinear resizing.

Batches are ``(N, C, H, W)`` (or ``(N, H, W)`` for grayscale), uint8 in 0..255 or floating in [0, 1],
numpy arrays or torch tensors. numpy in gives numpy out; torch in gives torch out on the same device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import _as_supported, describe, is_torch

# ITU-R BT.601 luma weights, used to turn RGB into one gray channel.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _is_uint8(x) -> bool:
    if is_torch(x):
        import torch

        return x.dtype == torch.uint8
    return x.dtype == np.uint8


def _is_float(x) -> bool:
    if is_torch(x):
        return x.dtype.is_floating_point
    return x.dtype.kind == "f"


def check_images(x: Any, name: str, *, min_images: int = 1, channels=None):
    """Validate an image batch and return it as ``(N, C, H, W)``, dtype and kind unchanged.

    Accepts uint8 (any values) or floating images in [0, 1] of rank 3 ``(N, H, W)`` (given one channel)
    or 4 ``(N, C, H, W)``. Rejects other dtypes, other ranks, NaN or infinite pixels, floats outside
    [0, 1], fewer than ``min_images`` images and, when ``channels`` is given (an int or a tuple of ints),
    other channel counts. Every message names ``name`` and the array's shape and dtype.
    """
    x = _as_supported(x, name)
    if not (_is_uint8(x) or _is_float(x)):
        raise TypeError(f"{name}: expected uint8 images (0..255) or floating images in [0, 1], got {describe(x)}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise ValueError(f"{name}: expected images of shape (N, C, H, W) or (N, H, W), got {describe(x)}")
    if x.shape[0] < min_images:
        raise ValueError(f"{name}: needs at least {min_images} image(s), got {describe(x)}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name}: images have zero height or width ({describe(x)})")
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        if x.shape[1] not in allowed:
            want = " or ".join(map(str, allowed))
            raise ValueError(f"{name}: expected {want} channel(s) in axis 1 of (N, C, H, W), got {describe(x)}")
    n_values = x.numel() if is_torch(x) else x.size
    if _is_float(x) and n_values:
        if is_torch(x):
            import torch

            xd = x.detach()
            finite = bool(torch.isfinite(xd).all())
            lo, hi = (float(xd.min()), float(xd.max())) if finite else (0.0, 0.0)
        else:
            finite = bool(np.isfinite(x).all())
            lo, hi = (float(x.min()), float(x.max())) if finite else (0.0, 0.0)
        if not finite:
            raise ValueError(f"{name}: contains NaN or infinite pixels ({describe(x)})")
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: floating images must lie in [0, 1], found values in [{lo:g}, {hi:g}] "
                             f"({describe(x)}); divide 0..255 data by 255 or pass uint8")
    return x


def to_float_images(x: Any, name: str = "x", *, min_images: int = 1, channels=None):
    """Validate images (see :func:`check_images`) and return float32 ``(N, C, H, W)`` in [0, 1].

    uint8 is divided by 255; floating input is cast to float32. numpy in, numpy out; torch in, torch
    out on the same device (gradients flow through floating tensors).
    """
    x = check_images(x, name, min_images=min_images, channels=channels)
    if is_torch(x):
        import torch

        if x.dtype == torch.uint8:
            return x.to(torch.float32).div_(255.0)
        return x.to(torch.float32).contiguous()
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(x, dtype=np.float32)


def to_uint8_images(x: Any, name: str = "x", *, min_images: int = 1, channels=None):
    """Validate images and return uint8 ``(N, C, H, W)``: floats in [0, 1] are scaled by 255 and rounded."""
    x = check_images(x, name, min_images=min_images, channels=channels)
    if _is_uint8(x):
        return x.contiguous() if is_torch(x) else np.ascontiguousarray(x)
    if is_torch(x):
        import torch

        return torch.round(x.detach() * 255.0).to(torch.uint8).contiguous()
    return np.rint(x * 255.0).astype(np.uint8)


def match_channels(x: Any, channels: int, name: str = "x"):
    """Convert ``(N, C, H, W)`` images between 1 and 3 channels.

    1 -> 3 repeats the gray channel; 3 -> 1 takes the BT.601 luma ``0.299 R + 0.587 G + 0.114 B``
    (uint8 rounded back to uint8). Same channel count: returned unchanged. dtype and kind are kept.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels: expected 1 or 3, got {channels!r}")
    x = check_images(x, name, min_images=0, channels=(1, 3))
    c = x.shape[1]
    if c == channels:
        return x
    if channels == 3:
        return x.repeat(1, 3, 1, 1) if is_torch(x) else np.repeat(x, 3, axis=1)
    if is_torch(x):
        import torch

        w = torch.tensor(LUMA_WEIGHTS, dtype=torch.float32 if x.dtype == torch.uint8 else x.dtype, device=x.device)
        gray = torch.einsum("nchw,c->nhw", x.to(w.dtype), w)[:, None]
        return torch.round(gray).clamp_(0, 255).to(torch.uint8) if x.dtype == torch.uint8 else gray
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float64 if x.dtype == np.uint8 else x.dtype)
    gray = np.einsum("nchw,c->nhw", x.astype(w.dtype, copy=False), w)[:, None]
    if x.dtype == np.uint8:
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return gray.astype(x.dtype, copy=False)


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Rows of linear-interpolation weights with half-pixel centres (``align_corners=False``), edges clamped."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    m = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(m, (np.arange(n_out), i0), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), i1), frac)
    return m


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise TypeError(f"size: expected an int or a pair (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive sizes, got {size!r}")
    return h, w


def resize(images: Any, size, name: str = "images"):
    """Bilinear resize of an image batch to ``size`` (int or ``(height, width)``).

    Pixel centres sit at half-integer positions and edges are clamped, as in
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)``; when
    shrinking by more than 2x, no low-pass filter is applied. Accepts ``(N, H, W)`` or ``(N, C, H, W)``
    and returns the same rank, dtype and kind (uint8 is rounded back to uint8).
    """
    h, w = _size_pair(size)
    x = _as_supported(images, name)
    rank3 = x.ndim == 3
    x = check_images(x, name, min_images=0)
    if x.shape[2:] == (h, w):
        return x[:, 0] if rank3 else x
    ry, rx = _interp_matrix(x.shape[2], h), _interp_matrix(x.shape[3], w)
    if is_torch(x):
        import torch

        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        ry_t = torch.as_tensor(ry, dtype=work, device=x.device)
        rx_t = torch.as_tensor(rx, dtype=work, device=x.device)
        out = torch.einsum("ih,nchw,jw->ncij", ry_t, x.to(work), rx_t)
        if x.dtype == torch.uint8:
            out = torch.round(out).clamp_(0, 255).to(torch.uint8)
        else:
            out = out.clamp_(0.0, 1.0).to(x.dtype)  # a convex blend; clamp float rounding past 1
    else:
        work = np.float64 if x.dtype == np.float64 else np.float32
        out = np.einsum("ih,nchw,jw->ncij", ry.astype(work), x.astype(work, copy=False), rx.astype(work),
                        optimize=True)
        if x.dtype == np.uint8:
            out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        else:
            out = np.clip(out, 0.0, 1.0).astype(x.dtype, copy=False)  # clamp float rounding past 1
    return out[:, 0] if rank3 else out
