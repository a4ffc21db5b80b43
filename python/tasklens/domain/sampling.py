"""Seeded per-dataset sampling (Factors of Influence, Sect. 3.2: 1000 images per dataset, the same images
whether the dataset acts as target or source)."""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from .._validation import check_int, is_torch


def sample_indices(n_rows: int, n: int = 1000, *, seed: int = 0, key: int | str = 0) -> np.ndarray:
    """Sorted row indices of a seeded sample of ``min(n, n_rows)`` rows drawn without replacement.

    The draw depends only on ``(seed, key, n_rows, n)``: give each dataset a fixed ``key`` (its position or
    name) and it contributes the same rows to every distance it takes part in, as target or as source.

    Examples
    --------
    >>> from tasklens.domain import sample_indices
    >>> sample_indices(10, 3, seed=1, key="coco").tolist() == sample_indices(10, 3, seed=1, key="coco").tolist()
    True
    """
    n_rows = check_int(n_rows, "n_rows", min=0)
    n = check_int(n, "n", min=1)
    seed = check_int(seed, "seed", min=0)
    key_int = zlib.crc32(key.encode()) if isinstance(key, str) else check_int(key, "key", min=0)
    rng = np.random.default_rng([seed, key_int])
    if n >= n_rows:
        return np.arange(n_rows, dtype=np.int64)
    return np.sort(rng.choice(int(n_rows), size=n, replace=False)).astype(np.int64)


def sample_datasets(datasets: Sequence, n: int = 1000, *, seed: int = 0,
                    names: Sequence[str] | None = None) -> list:
    """Sample up to ``n`` rows from each dataset with :func:`sample_indices` (key = name, else position).

    Returns the list of sampled arrays (same kind as given: numpy or torch), ready for
    :func:`tasklens.domain_distance_matrix`.
    """
    n = check_int(n, "n", min=1)
    if names is not None and len(names) != len(datasets):
        raise ValueError(f"names: expected {len(datasets)} names (one per dataset), got {len(names)}")
    out = []
    for k, x in enumerate(datasets):
        idx = sample_indices(len(x), n, seed=seed, key=names[k] if names is not None else k)
        if is_torch(x):
            import torch

            out.append(x[torch.as_tensor(idx, device=x.device)])
        else:
            out.append(np.asarray(x)[idx])
    return out
