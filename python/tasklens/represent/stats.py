"""The dataset representation of Task2Box §3.1: mean and variance of per-item embeddings (Eq. 1-2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_devices, check_labels, describe


def mean_var(items: Any, *, variance: bool = True, ddof: int = 0):
    """``[mu]`` (Eq. 1) or ``[mu, sigma^2]`` (Eq. 1-2) of one dataset's per-item embeddings.

    Parameters
    ----------
    items : (N, d) per-item embeddings, e.g. ``[phi(x_i), psi(y_i)]`` (image ⊕ label text) for CLIP or
        a probe network's features. numpy or torch.
    variance : append the per-dimension variance (diagonal covariance, Eq. 2).
    ddof : delta degrees of freedom of the variance (0 = the paper's 1/N).

    Returns
    -------
    (d,) or (2 d,) float array: numpy in -> numpy out, torch in -> torch out (same device and dtype).
    Accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> mean_var(np.array([[0.0, 1.0], [2.0, 3.0]])).tolist()
    [1.0, 2.0, 1.0, 1.0]
    """
    check_devices(items=items)
    items = check_array(items, "items", ndim=2, min_rows=1)
    be = backend_of(items=items)
    x = np.asarray(to_host(items), dtype=np.float64)
    if variance and x.shape[0] - ddof < 1:
        raise ValueError(f"items: the variance with ddof={ddof} needs more than {ddof} rows, got {describe(items)}")
    mu = x.mean(axis=0)
    out = np.concatenate([mu, x.var(axis=0, ddof=ddof)]) if variance else mu
    return be.out(out.astype(be.dtype))


def item_table(features: Any, labels: Any, label_features: Any):
    """Per-item embeddings ``[phi(x_i), psi(y_i)]``: each row's features followed by its label's features.

    features : (N, d) image features. labels : (N,) int codes. label_features : (K, e), row k for class k.
    Returns (N, d + e), numpy (float64 for numpy input) or torch on the input's device.
    """
    check_devices(features=features, label_features=label_features)
    f = check_array(features, "features", ndim=2)
    t = check_array(label_features, "label_features", ndim=2)
    y = check_labels(labels, "labels", n=f.shape[0], num_classes=t.shape[0])
    be = backend_of(features=f, label_features=t)
    out = np.concatenate([np.asarray(to_host(f), np.float64), np.asarray(to_host(t), np.float64)[to_host(y)]], axis=1)
    return be.out(out.astype(be.dtype))
