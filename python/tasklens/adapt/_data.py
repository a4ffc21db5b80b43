"""Image and label validation for the domain-adaptation estimators.

Images are ``(N, C, H, W)`` arrays (numpy or torch) with ``C`` in {1, 3}: uint8 in [0, 255] or floating in
[0, 1]. They become float32 torch tensors in [0, 1]; grayscale images are broadcast to three channels when the
model is RGB ("channels broadcast"), so grayscale and RGB domains mix.
"""

from __future__ import annotations

import numpy as np

from tasklens._validation import check_labels, describe, is_torch


def as_images(x, name: str, *, channels: int | None = None, size: tuple[int, int] | None = None):
    """Validate ``x`` and return a float32 CPU tensor ``(N, C, H, W)`` in [0, 1].

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor, shape (N, C, H, W), uint8 in [0, 255] or float in [0, 1].
    name : argument name used in error messages.
    channels : the model's channel count; 1-channel input is repeated to 3 when ``channels == 3``.
    size : the model's ``(H, W)``; other sizes are rejected.
    """
    import torch

    if not (is_torch(x) or isinstance(x, np.ndarray)):
        try:
            x = np.asarray(x)
        except Exception as exc:
            raise TypeError(f"{name}: expected a numpy array or torch tensor of images, got {describe(x)} ({exc})")
    if x.ndim != 4:
        hint = " (add a channel axis: x[:, None])" if x.ndim == 3 else ""
        raise ValueError(f"{name}: expected images of shape (N, C, H, W), got {describe(x)}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: needs at least one image, got {describe(x)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected 1 (grayscale) or 3 (RGB) channels on axis 1, got {describe(x)}")
    t = x.detach().cpu() if is_torch(x) else torch.from_numpy(np.ascontiguousarray(x))
    if t.dtype == torch.uint8:
        t = t.to(torch.float32) / 255.0
    elif t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = t.to(torch.float32)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: contains NaN or infinite pixels ({describe(x)})")
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: float pixels must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}] "
                             f"({describe(x)}); divide uint8 data by 255 or pass it as uint8")
    else:
        raise TypeError(f"{name}: expected uint8 or floating pixels, got {describe(x)}")
    if size is not None and tuple(t.shape[2:]) != tuple(size):
        raise ValueError(f"{name}: expected images of size {size[0]}x{size[1]} (the model's), got {describe(x)}")
    if channels is not None and t.shape[1] != channels:
        if t.shape[1] == 1 and channels == 3:
            t = t.expand(-1, 3, -1, -1)
        else:
            raise ValueError(f"{name}: the model was trained on {channels}-channel images, got {describe(x)}")
    return t.contiguous()


def check_geometry(h: int, w: int, name: str) -> None:
    if h != w or h % 4 or h < 8:
        raise ValueError(f"{name}: images must be square with a side divisible by 4 and >= 8 "
                         f"(e.g. 28x28 or 32x32), got {h}x{w}")


def as_labels(y, name: str, n: int, num_classes: int | None = None):
    """Validate integer labels of length ``n`` (and < ``num_classes``); return an int64 CPU tensor."""
    import torch

    y = check_labels(y, name, n=n)
    t = y.detach().cpu() if is_torch(y) else torch.from_numpy(np.ascontiguousarray(y))
    if num_classes is not None and n and int(t.max()) >= num_classes:
        raise ValueError(f"{name}: labels must lie in [0, {num_classes - 1}] (the model's classes), "
                         f"got max {int(t.max())} ({describe(y)})")
    return t.to(torch.int64)


def pair_domains(source_x, target_x, source_name: str = "source_x", target_name: str = "target_x"):
    """Validate two image sets that must share H x W; return both with a common channel count."""
    s = as_images(source_x, source_name)
    t = as_images(target_x, target_name)
    if s.shape[2:] != t.shape[2:]:
        raise ValueError(f"{target_name}: image size {tuple(t.shape[2:])} differs from {source_name}'s "
                         f"{tuple(s.shape[2:])}; resize one domain first ({describe(target_x)})")
    c = max(s.shape[1], t.shape[1])
    if s.shape[1] != c:
        s = s.expand(-1, c, -1, -1).contiguous()
    if t.shape[1] != c:
        t = t.expand(-1, c, -1, -1).contiguous()
    return s, t
