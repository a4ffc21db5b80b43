"""Image data sets that work offline: IDX files, Fashion-MNIST, MNIST-M-style blends, a digits pair.

- :mod:`tasklens.datasets.idx`: :func:`read_idx`, :func:`load_mnist_family`, :func:`load_fashion_mnist`.
"""

from __future__ import annotations

from .idx import (FASHION_MNIST_CLASSES, IDXError, fashion_mnist_dir, load_fashion_mnist, load_mnist_family,
                  read_idx)

__all__ = ["FASHION_MNIST_CLASSES", "IDXError", "fashion_mnist_dir", "load_fashion_mnist", "load_mnist_family",
           "read_idx"]
