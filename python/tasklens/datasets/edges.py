"""Edge-map images of grayscale images: the "edges" domain of cross-domain image mapping.

Hou et al. (CDLM, §4.1 and §4.3) translate between images and their edge maps ("we get the edges produced by
canny detector"). :func:`edge_maps` builds such a domain from any grayscale set (e.g. Fashion-MNIST):

- ``method="sobel"`` (default): the gradient magnitude ``sqrt(G_x^2 + G_y^2)`` of the 3 x 3 Sobel operator,
  ``G_x = [1, 2, 1]^T [-1, 0, 1] * I`` and ``G_y = [-1, 0, 1]^T [1, 2, 1] * I`` (correlation), with the image
  extended by mirror reflection at the border (``d c b a | a b c d | d c b a``, scipy.ndimage's "reflect"). The
  magnitude is scaled to [0, 1] by ``normalize``: "max" divides each map by its own maximum (flat images give
  all-zero maps), "bound" by ``2 sqrt(5)``, the largest magnitude an image in [0, 1] can reach (the magnitude is
  convex in the 3 x 3 patch, so its maximum is at a binary patch, e.g. ``[[0, 0, b], [0, *, 1], [a, 1, 1]]`` with
  ``G_x = 3 + b - a``, ``G_y = 3 + a - b`` and ``G_x^2 + G_y^2 <= 20``), which keeps maps comparable across images.
- ``method="canny"``: scikit-image's Canny detector (``skimage.feature.canny``, Gaussian ``sigma``, hysteresis
  thresholds ``low_threshold`` / ``high_threshold`` on the [0, 1] image's gradient), giving binary maps 0.0 / 1.0.

Both are deterministic (no randomness).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import _as_supported, check_choice, check_scalar, describe, is_torch
from .images import check_images

__all__ = ["edge_maps", "sobel_magnitude", "SOBEL_BOUND"]

#: Largest Sobel gradient magnitude of an image with pixels in [0, 1] (see the module docstring): sqrt(20).
SOBEL_BOUND = 2.0 * math.sqrt(5.0)


def sobel_magnitude(images: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of float64 ``(N, H, W)`` images (mirror-reflected border), float64 ``(N, H, W)``."""
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
    h, w = images.shape[1], images.shape[2]

    def at(di: int, dj: int) -> np.ndarray:  # the pixel at offset (di, dj) of each position
        return p[:, 1 + di:1 + di + h, 1 + dj:1 + dj + w]

    gx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    gy = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
    return np.sqrt(gx * gx + gy * gy)


def edge_maps(images: Any, *, method: str = "sobel", normalize: str = "max", sigma: float = 1.0,
              low_threshold: float | None = None, high_threshold: float | None = None):
    """Edge-map images of grayscale images (see the module docstring).

    Parameters
    ----------
    images : array or tensor (N, H, W) or (N, 1, H, W)
        uint8 (0..255) or floating pixels in [0, 1]; numpy or torch. RGB batches are rejected: convert them with
        :func:`tasklens.datasets.match_channels` ``(x, 1)`` first.
    method : "sobel" (gradient magnitude in [0, 1]) or "canny" (binary maps; needs scikit-image).
    normalize : "max" (each Sobel map divided by its own maximum) or "bound" (divided by 2 sqrt(5), the largest
        possible magnitude); Sobel only.
    sigma, low_threshold, high_threshold : Canny only: Gaussian smoothing and hysteresis thresholds on the
        [0, 1] scale (``None``: scikit-image's defaults, 0.1 and 0.2).

    Returns
    -------
    float32 edge maps in [0, 1] with the input's shape, numpy for numpy input, torch (same device) for torch input.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.datasets import edge_maps
    >>> x = np.zeros((1, 6, 6), np.uint8); x[0, :, 3:] = 255    # a vertical step
    >>> edge_maps(x)[0, 2]
    array([0., 0., 1., 1., 0., 0.], dtype=float32)
    """
    method = check_choice(method, "method", ("sobel", "canny"))
    normalize = check_choice(normalize, "normalize", ("max", "bound"))
    images = _as_supported(images, "images")
    rank = images.ndim
    x4 = check_images(images, "images")
    if x4.shape[1] != 1:
        raise ValueError(f"images: expected grayscale images (N, H, W) or (N, 1, H, W), got {describe(images)}; "
                         "convert RGB with tasklens.datasets.match_channels(images, 1)")
    device = None
    if is_torch(x4):
        device = x4.device
        x4 = x4.detach().cpu().numpy()
    gray = x4[:, 0].astype(np.float64)
    if x4.dtype == np.uint8:
        gray /= 255.0
    if method == "sobel":
        mag = sobel_magnitude(gray)
        if normalize == "bound":
            out = mag / SOBEL_BOUND
        else:
            peak = mag.max(axis=(1, 2), keepdims=True)
            out = np.divide(mag, peak, out=np.zeros_like(mag), where=peak > 0)
        out = np.clip(out, 0.0, 1.0)
    else:
        sigma = check_scalar(sigma, "sigma", min=0.0)
        low = check_scalar(low_threshold, "low_threshold", min=0.0, allow_none=True)
        high = check_scalar(high_threshold, "high_threshold", min=0.0, allow_none=True)
        if low is not None and high is not None and low > high:
            raise ValueError(f"low_threshold: {low} is above high_threshold {high}")
        try:
            from skimage.feature import canny
        except ImportError:
            raise ImportError("method='canny' needs scikit-image (pip install scikit-image); "
                              "method='sobel' needs nothing else") from None
        out = np.stack([canny(g, sigma=sigma, low_threshold=low, high_threshold=high) for g in gray])
    out = out.astype(np.float32)
    out = np.ascontiguousarray(out if rank == 3 else out[:, None])
    if device is not None:
        import torch

        return torch.from_numpy(out).to(device)
    return out
