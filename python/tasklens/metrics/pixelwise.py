"""Pixel-wise H-score for dense (pixel-to-pixel) targets (Bao et al., ICLR 2019, §5.2).

Dense ground truths (depth, edges, ...) are quantised into a small palette (k-means, 16 colours by default);
each pixel position is then a classification target over the images, and all H x W targets are scored
together through the multi-target path of :func:`tasklens.metrics.hscore` (one pass over the features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_choice, check_int, check_labels, describe, is_torch
from .hscore import hscore_values

__all__ = ["quantize_palette", "pixelwise_hscore", "PixelwiseHScore"]

#: Pixels sampled to fit the palette (k-means on all pixels of large sets is needlessly slow).
PALETTE_SAMPLE = 200_000


def quantize_palette(dense, num_colors: int = 16, *, seed: int = 0, sample: int = PALETTE_SAMPLE):
    """Quantise dense labels into ``num_colors`` palette codes with k-means.

    Parameters
    ----------
    dense : array (N, H, W) or (N, H, W, K), float
        Per-pixel values (K channels, e.g. RGB or surface normals).
    num_colors : int
        Palette size (the paper uses 16).
    seed : int
        Seed of the pixel subsample and of k-means (deterministic for a given seed).
    sample : int
        Pixels used to fit the palette; every pixel is then assigned to its nearest colour.

    Returns
    -------
    codes : int64 array (N, H, W) with values in ``[0, num_colors)``
    palette : float64 array (num_colors, K) (K = 1 for (N, H, W) input)
        numpy for numpy input; torch tensors on the input's device for torch input.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import quantize_palette
    >>> d = np.random.default_rng(0).random((5, 4, 4))
    >>> codes, palette = quantize_palette(d, 4)
    >>> codes.shape, palette.shape
    ((5, 4, 4), (4, 1))
    """
    d = check_array(dense, "dense_labels", ndim=(3, 4))
    backend = backend_of(dense_labels=d)
    num_colors = check_int(num_colors, "num_colors", min=2)
    seed = check_int(seed, "seed", min=0)
    sample = check_int(sample, "sample", min=1)
    return backend.out(_quantize(to_host(d), num_colors, seed, sample))


def _quantize(d: np.ndarray, num_colors: int, seed: int, sample: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    pixels = d.reshape(-1, 1 if d.ndim == 3 else d.shape[-1]).astype(np.float64)
    rng = np.random.default_rng(seed)
    fit = pixels if pixels.shape[0] <= sample else pixels[rng.choice(pixels.shape[0], sample, replace=False)]
    distinct = np.unique(fit, axis=0).shape[0]
    k = int(min(num_colors, distinct))
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(fit)
    codes = np.empty(pixels.shape[0], dtype=np.int64)
    for r0 in range(0, pixels.shape[0], 1 << 20):
        codes[r0:r0 + (1 << 20)] = km.predict(pixels[r0:r0 + (1 << 20)])
    return codes.reshape(d.shape[:3]), km.cluster_centers_


@dataclass
class PixelwiseHScore:
    """Result of :func:`pixelwise_hscore`: ``score`` (mean over pixels), ``map`` (H, W), ``palette``."""

    score: float
    map: np.ndarray
    palette: np.ndarray | None


def pixelwise_hscore(features, dense_labels, *, num_colors: int = 16, shrinkage: str | None = None,
                     seed: int = 0) -> PixelwiseHScore:
    """Pixel-wise H-score of image features for a dense target (§5.2).

    Parameters
    ----------
    features : array (N, F)
        One feature vector per image (e.g. a flattened 16 x 16 x 8 encoder output, F = 2048).
    dense_labels : array (N, H, W) or (N, H, W, K)
        Float ground truths are quantised by :func:`quantize_palette` into ``num_colors`` codes; integer
        arrays (N, H, W) are taken as class codes as they are.
    num_colors : int
        Palette size for float targets (16 in the paper).
    shrinkage : {None, "ledoit-wolf"}
        See :func:`tasklens.metrics.hscore`.
    seed : int
        k-means seed.

    Returns
    -------
    PixelwiseHScore with ``score`` = mean over the H x W pixel H-scores, ``map`` (H, W) float64 (the
    heatmap of the paper's Fig. 9), and the fitted ``palette`` (None for integer labels); for torch features
    ``score`` is a 0-d float64 tensor and ``map`` and ``palette`` float64 tensors on the features' device.

    Notes
    -----
    One pass over the features with T = H W targets: O(N F^2 + N F H W) time and
    O(F^2 + H W C F) float64 state memory (C = palette size), e.g. 64 x 64 pixels, 16 colours, F = 256 →
    128 MiB. A pixel whose code is the same in every image scores 0.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import pixelwise_hscore
    >>> rng = np.random.default_rng(0)
    >>> f = rng.normal(size=(300, 6))
    >>> depth = np.tile(f[:, :1, None], (1, 4, 4)) + 0.1 * rng.normal(size=(300, 4, 4))
    >>> r = pixelwise_hscore(f, depth, num_colors=4)
    >>> r.map.shape, bool(r.score > 0.5)
    ((4, 4), True)
    """
    check_choice(shrinkage, "shrinkage", (None, "ledoit-wolf"))
    x = check_array(features, "features", ndim=2, finite=False, min_rows=2)
    backend = backend_of(features=x)
    integer = (dense_labels.dtype.is_floating_point is False) if is_torch(dense_labels) else (
        isinstance(dense_labels, np.ndarray) and dense_labels.dtype.kind in "biu")
    if integer:
        codes = to_host(check_labels(dense_labels, "dense_labels", ndim=3, n=x.shape[0]))
        palette = None
    else:
        d = check_array(dense_labels, "dense_labels", ndim=(3, 4))
        if d.shape[0] != x.shape[0]:
            raise ValueError(f"dense_labels: expected {x.shape[0]} images (one per row of features), got "
                             f"{describe(d)}")
        codes, palette = _quantize(to_host(d), check_int(num_colors, "num_colors", min=2),
                                   check_int(seed, "seed", min=0), PALETTE_SAMPLE)
    n, h, w = codes.shape
    flat = np.ascontiguousarray(codes.reshape(n, h * w))
    heat = hscore_values(x, flat, int(flat.max()), backend, shrinkage=shrinkage).reshape(h, w)
    return PixelwiseHScore(*backend.out((float(heat.mean()), heat, palette)))
