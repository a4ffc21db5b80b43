"""Image data sets that work offline, and helpers for image batches.

- :mod:`tasklens.datasets.idx`: IDX files (:func:`read_idx`), MNIST-format directories
  (:func:`load_mnist_family`), Fashion-MNIST (:func:`load_fashion_mnist`; Debian package
  ``dataset-fashion-mnist``).
- :mod:`tasklens.datasets.mstyle`: MNIST-M-style blending with photographs (:func:`to_mstyle`,
  Ganin et al. 2016) and Fashion-M (:func:`load_fashion_m`, :func:`load_fashion_pair`).
- :mod:`tasklens.datasets.edges`: edge-map images (Sobel magnitude or Canny) of grayscale images
  (:func:`edge_maps`), the "edges" domain of cross-domain image mapping (CDLM §4.3).
- :mod:`tasklens.datasets.digits`: synthetic font digits -> scikit-learn's handwritten digits
  (:func:`load_digits_pair`).
- :mod:`tasklens.datasets.domains`: :class:`ImageDomain` (x, y, classes) and :class:`DomainPair`.
- :mod:`tasklens.datasets.folder`: ``root/<class>/<image>`` trees (:func:`load_image_folder`).
- :mod:`tasklens.datasets.images`: validation (:func:`to_float_images`), 1 <-> 3 channels
  (:func:`match_channels`), bilinear :func:`resize`.

Image batches are ``(N, C, H, W)`` uint8 (0..255) unless a function says otherwise; labels are int64.
"""

from __future__ import annotations

from .idx import (FASHION_MNIST_CLASSES, IDXError, fashion_mnist_dir, load_fashion_mnist, load_mnist_family,
                  read_idx)
from .digits import DIGIT_CLASSES, load_digits_pair, load_handwritten_digits, render_digits
from .domains import DomainPair, ImageDomain
from .edges import edge_maps
from .folder import load_image_folder
from .images import check_images, match_channels, resize, to_float_images, to_uint8_images
from .mstyle import default_photo_names, load_fashion_m, load_fashion_pair, load_photo, random_patches, to_mstyle

__all__ = [
    "DIGIT_CLASSES", "DomainPair", "ImageDomain", "load_digits_pair", "load_handwritten_digits", "render_digits",
    "load_image_folder",
    "FASHION_MNIST_CLASSES", "IDXError", "check_images", "default_photo_names", "fashion_mnist_dir",
    "load_fashion_m", "load_fashion_mnist", "load_fashion_pair", "load_mnist_family", "load_photo", "match_channels",
    "random_patches", "read_idx", "resize", "to_float_images", "to_mstyle", "to_uint8_images", "edge_maps",
]
