"""Full-reference image quality: SSIM, MSE and PSNR for batches of images.

Used to score cross-domain image mapping (Hou et al., "Cross-Domain Latent Modulation for Variational Transfer
Learning", §4.3 and Table 2, which report SSIM [40], MSE and PSNR of translated images against the true ones).

SSIM follows Wang, Bovik, Sheikh and Simoncelli, "Image Quality Assessment: From Error Visibility to Structural
Similarity" (IEEE TIP 2004), Eq. 13 with the local statistics of Eq. 14-16 taken under an 11 x 11 circular-symmetric
Gaussian window (standard deviation 1.5, normalised to unit sum), K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2,
C2 = (K2 L)^2 with L the dynamic range of the pixel values (``data_range``)::

    SSIM(x, y) = (2 mu_x mu_y + C1) (2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2))

The local moments are the population (weighted, not sample) ones, and the SSIM map is averaged over the window
positions that lie fully inside the image (Eq. 17, the mean SSIM): for an H x W image that is the
(H - 10) x (W - 10) "valid" region. Colour images are scored per channel and the channels averaged. This is what
scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=L)`` computes, which the tests use as an oracle.

MSE is the mean of the squared pixel differences of an image pair, in the images' own units; PSNR is
``10 log10(L^2 / MSE)`` in dB (``inf`` for identical images).

All three take batches ``(N, C, H, W)`` or ``(N, H, W)`` of numpy arrays or torch tensors (both arguments of the
same kind), compute in float64, and return one value per image (``reduction="none"``, shape ``(N,)``) or their mean
(``reduction="mean"``, the default: a Python float for numpy input, a 0-d float64 tensor for torch input). Torch
input is computed with torch on its device, and gradients flow through it (SSIM and MSE can serve as losses).
"""

from __future__ import annotations

from typing import Any

import math

import numpy as np

from .._dispatch import backend_of
from .._validation import _as_supported, check_choice, check_int, check_scalar, describe, is_torch

__all__ = ["ssim", "mse", "psnr", "gaussian_window"]

#: The constants of Wang et al. (2004), §III-C.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The 1-D Gaussian weights ``w_k ∝ exp(-k^2 / (2 sigma^2))``, ``k = -(size-1)/2 .. (size-1)/2``, summing to
    one (float64). The 2-D SSIM window of Wang et al. (2004) is their outer product."""
    size = check_int(size, "window", min=1)
    if size % 2 != 1:
        raise ValueError(f"window: expected an odd window size, got {size}")
    sigma = check_scalar(sigma, "sigma", min=0.0, min_inclusive=False)
    k = np.arange(size, dtype=np.float64) - (size - 1) / 2
    w = np.exp(-0.5 * (k / sigma) ** 2)
    return w / w.sum()


# -- validation -----------------------------------------------------------------------------------------------------

def _kind(a) -> str:
    """'uint8', 'int' (other integers), 'float' or 'other' for a numpy array or torch tensor."""
    if is_torch(a):
        import torch

        if a.dtype == torch.uint8:
            return "uint8"
        if a.dtype.is_floating_point:
            return "float"
        if a.dtype.is_complex or a.dtype == torch.bool:
            return "other"
        return "int"
    if a.dtype == np.uint8:
        return "uint8"
    return {"f": "float", "i": "int", "u": "int"}.get(a.dtype.kind, "other")


def _to_float64(a):
    if is_torch(a):
        import torch

        return a.to(torch.float64)
    return np.asarray(a, dtype=np.float64)


def _min_max(a) -> tuple[float, float]:
    if is_torch(a):
        d = a.detach()
        return float(d.min()), float(d.max())
    return float(a.min()), float(a.max())


def _finite(a) -> bool:
    if is_torch(a):
        import torch

        return bool(torch.isfinite(a.detach()).all())
    return bool(np.isfinite(a).all())


def _check_pair(x: Any, y: Any, data_range, *, need_range: bool):
    """Validate two image batches; return them as float64 ``(N, C, H, W)`` of the same kind, the backend and the
    data range (``None`` when ``need_range`` is false and none was given)."""
    x = _as_supported(x, "x")
    y = _as_supported(y, "y")
    if is_torch(x) != is_torch(y):
        raise TypeError(f"x, y: pass two numpy arrays or two torch tensors, got x {describe(x)} and y {describe(y)}")
    for name, a in (("x", x), ("y", y)):
        if _kind(a) == "other":
            raise TypeError(f"{name}: expected uint8, integer or real floating images, got {describe(a)}")
        if a.ndim not in (3, 4):
            hint = " (add a batch axis: img[None])" if a.ndim == 2 else ""
            raise ValueError(f"{name}: expected a batch of images (N, C, H, W) or (N, H, W), got {describe(a)}{hint}")
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError(f"y: shape {tuple(y.shape)} differs from x's {tuple(x.shape)} "
                         f"(x {describe(x)}; y {describe(y)}); compare images of the same shape")
    if x.shape[0] == 0:
        raise ValueError(f"x: needs at least one image, got {describe(x)}")
    kx, ky = _kind(x), _kind(y)
    if (kx == "float") != (ky == "float"):
        raise TypeError(f"x, y: one batch is floating and the other integer (x {describe(x)}; y {describe(y)}); "
                        "convert both to the same scale first (e.g. uint8 / 255 for floats in [0, 1])")
    for name, a in (("x", x), ("y", y)):
        if _kind(a) == "float" and not _finite(a):
            raise ValueError(f"{name}: contains NaN or infinite pixels ({describe(a)})")
    backend = backend_of(x=x, y=y)
    if data_range is not None:
        data_range = check_scalar(data_range, "data_range", min=0.0, min_inclusive=False)
    elif need_range:
        if kx == "uint8" and ky == "uint8":
            data_range = 255.0
        elif kx == "float":
            data_range = 1.0
            for name, a in (("x", x), ("y", y)):
                lo, hi = _min_max(a)
                if lo < 0.0 or hi > 1.0:
                    raise ValueError(f"{name}: floating pixels in [{lo:g}, {hi:g}] but data_range=None assumes "
                                     f"[0, 1] ({describe(a)}); pass data_range (max - min of the scale) explicitly")
        else:
            raise ValueError(f"data_range: required for {x.dtype} / {y.dtype} images (only uint8 -> 255 and "
                             "floating -> 1.0 have a default)")
    if data_range is not None:
        lo = min(_min_max(x)[0], _min_max(y)[0])
        hi = max(_min_max(x)[1], _min_max(y)[1])
        if hi - lo > data_range * (1 + 1e-12):
            raise ValueError(f"data_range: the pixels of x and y span [{lo:g}, {hi:g}], wider than "
                             f"data_range={data_range:g}; pass the range of the images' scale")
    x4 = x if x.ndim == 4 else x[:, None]
    y4 = y if y.ndim == 4 else y[:, None]
    return _to_float64(x4), _to_float64(y4), backend, data_range


def _reduce(values, reduction: str, backend):
    check_choice(reduction, "reduction", ("mean", "none"))
    if reduction == "mean":
        values = values.mean()
    return backend.out(values)


# -- SSIM -----------------------------------------------------------------------------------------------------------

def _valid_filter(a, w: np.ndarray):
    """Correlate the last two axes of ``a`` (float64) with the separable window ``w ⊗ w``, keeping only positions
    where the window lies fully inside the image ("valid"): (..., H, W) -> (..., H - k + 1, W - k + 1)."""
    k = len(w)
    h, wd = a.shape[-2], a.shape[-1]
    rows = sum(float(w[i]) * a[..., i:i + h - k + 1, :] for i in range(k))
    return sum(float(w[j]) * rows[..., j:j + wd - k + 1] for j in range(k))


def ssim_map(x, y, *, data_range=None, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, k1: float = SSIM_K1,
             k2: float = SSIM_K2):
    """The local SSIM index (Wang et al. 2004, Eq. 13) at every window position fully inside the images.

    Parameters are those of :func:`ssim`. Returns float64 ``(N, C, H - window + 1, W - window + 1)`` (a channel axis
    of 1 for ``(N, H, W)`` input), numpy for numpy input and torch for torch input.
    """
    xf, yf, backend, L = _check_pair(x, y, data_range, need_range=True)
    w = gaussian_window(window, sigma)
    k1 = check_scalar(k1, "k1", min=0.0, min_inclusive=False)
    k2 = check_scalar(k2, "k2", min=0.0, min_inclusive=False)
    if xf.shape[2] < window or xf.shape[3] < window:
        raise ValueError(f"x: images of {xf.shape[2]}x{xf.shape[3]} are smaller than the {window}x{window} SSIM "
                         f"window ({describe(x)}); use a smaller odd window")
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    mu_x, mu_y = _valid_filter(xf, w), _valid_filter(yf, w)
    var_x = _valid_filter(xf * xf, w) - mu_x * mu_x
    var_y = _valid_filter(yf * yf, w) - mu_y * mu_y
    cov = _valid_filter(xf * yf, w) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return backend.out(s)


def ssim(x, y, *, data_range=None, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, k1: float = SSIM_K1,
         k2: float = SSIM_K2, reduction: str = "mean"):
    """Mean structural similarity (Wang et al. 2004, Eq. 13 and 17) of image pairs ``(x[i], y[i])``.

    Parameters
    ----------
    x, y : arrays or tensors (N, C, H, W) or (N, H, W), same shape and kind
        uint8, other integers (with ``data_range``) or floating pixels; no NaN. H and W must be >= ``window``.
    data_range : float, optional
        L, the dynamic range of the pixel scale (C1 = (k1 L)^2, C2 = (k2 L)^2). Default: 255 for uint8, 1.0 for
        floating images (which must then lie in [0, 1]); required for other integer types. The pixels of x and y
        must not span more than ``data_range``.
    window, sigma : Gaussian window size (odd) and standard deviation (paper: 11 and 1.5).
    k1, k2 : stabilising constants (paper: 0.01 and 0.03).
    reduction : "mean" (default) or "none" (one value per image, shape (N,)).

    Returns
    -------
    float64 SSIM in [-1, 1], 1 only for identical images; per image the mean of :func:`ssim_map` over positions and
    channels. numpy in: a Python float (or a numpy (N,) array); torch in: a 0-d (or (N,)) float64 tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import ssim
    >>> x = np.random.default_rng(0).random((2, 16, 16))
    >>> ssim(x, x)
    1.0
    """
    s = ssim_map(x, y, data_range=data_range, window=window, sigma=sigma, k1=k1, k2=k2)
    per_image = s.mean(axis=(1, 2, 3)) if not is_torch(s) else s.mean(dim=(1, 2, 3))
    backend = backend_of(x=s)
    return _reduce(per_image, reduction, backend)


# -- MSE and PSNR ---------------------------------------------------------------------------------------------------

def _per_image_mse(xf, yf):
    d = xf - yf
    return (d * d).mean(axis=(1, 2, 3)) if not is_torch(d) else (d * d).mean(dim=(1, 2, 3))


def mse(x, y, *, reduction: str = "mean"):
    """Mean squared error ``(1 / (C H W)) sum (x - y)^2`` of each image pair, in the pixels' own units.

    Parameters
    ----------
    x, y : arrays or tensors (N, C, H, W) or (N, H, W), same shape and kind (both floating or both integer).
    reduction : "mean" (default: the mean over images, equal to the MSE over all pixels) or "none" (shape (N,)).

    Returns
    -------
    float64, numpy in -> Python float / numpy array, torch in -> 0-d / (N,) tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import mse
    >>> mse(np.zeros((1, 2, 2)), np.full((1, 2, 2), 0.5))
    0.25
    """
    xf, yf, backend, _ = _check_pair(x, y, None, need_range=False)
    return _reduce(_per_image_mse(xf, yf), reduction, backend)


def psnr(x, y, *, data_range=None, reduction: str = "mean"):
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` in dB of each image pair (``inf`` when identical).

    Parameters
    ----------
    x, y : arrays or tensors (N, C, H, W) or (N, H, W), same shape and kind.
    data_range : float, optional
        L, the peak-to-peak range of the pixel scale; defaults as in :func:`ssim` (255 for uint8, 1.0 for floats in
        [0, 1]).
    reduction : "mean" (default: the mean of the per-image PSNRs, as image-translation papers report it; this is
        not the PSNR of the pooled MSE) or "none" (shape (N,)).

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import psnr
    >>> round(psnr(np.zeros((1, 4, 4)), np.full((1, 4, 4), 0.1)), 6)
    20.0
    """
    xf, yf, backend, L = _check_pair(x, y, data_range, need_range=True)
    m = _per_image_mse(xf, yf)
    if is_torch(m):
        import torch

        values = 20.0 * math.log10(L) - 10.0 * torch.log10(m)
    else:
        with np.errstate(divide="ignore"):
            values = 20.0 * np.log10(L) - 10.0 * np.log10(m)
    return _reduce(values, reduction, backend)

