"""Ranking pretrained models by a transferability estimator, and judging the ranking against fine-tuned accuracy.

- :func:`rank_models`: score each model's target features with one estimator and order the models;
- :func:`weighted_kendall_tau`: the weighted Kendall tau of the model-selection literature (Vigna, 2015, with
  the additive hyperbolic weighting; equal to ``scipy.stats.weightedtau`` with its defaults);
- :func:`pearson`, :func:`relative_top_k_accuracy`; Kendall's tau-b is :func:`tasklens.metrics.kendall_tau`.

Every measure takes two score vectors of equal length (estimator scores, fine-tuned accuracies), higher = better,
and returns a Python float (numpy input) or a 0-d float64 tensor (torch input), the output rule of
:mod:`tasklens._dispatch`. :func:`rank_models` returns (name, Python float) pairs whatever the features' kind.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_int, describe
from . import estimators, leep
from .ranking import _pair

__all__ = ["rank_models", "weighted_kendall_tau", "pearson", "relative_top_k_accuracy"]

_FEATURE_ESTIMATORS = ("hscore", "logme", "transrate", "gbc", "sfda", "nleep")


def _weighted_tau_ranked(x: np.ndarray, y: np.ndarray) -> float:
    """Weighted tau with the element ranks of decreasing lexicographic (x, y) order, hyperbolic additive weights."""
    n = x.size
    order = np.lexsort((y, x))[::-1]  # position 0 = largest x (ties broken by larger y)
    rank = np.empty(n)
    rank[order] = np.arange(n)
    wt = 1.0 / (rank + 1.0)
    iu, ju = np.triu_indices(n, 1)
    w = wt[iu] + wt[ju]
    sx = np.sign(x[iu] - x[ju])
    sy = np.sign(y[iu] - y[ju])
    total = w.sum()
    tx = w[sx == 0].sum()
    ty = w[sy == 0].sum()
    denom = np.sqrt((total - tx) * (total - ty))
    return float((w * sx * sy).sum() / denom) if denom > 0 else float("nan")


def weighted_kendall_tau(scores, accuracies) -> float:
    r"""Weighted Kendall tau between estimator scores and fine-tuned accuracies (Vigna, WWW 2015).

    ``tau_w = sum_{i<j} w_ij sgn(x_i - x_j) sgn(y_i - y_j) / sqrt((W - W_x)(W - W_y))`` with additive
    hyperbolic weights ``w_ij = 1/(r_i + 1) + 1/(r_j + 1)``, ``r`` the 0-based rank of an element in decreasing
    order (so disagreements among the top models weigh most), ``W`` the total weight and ``W_x``, ``W_y`` the
    weights of the pairs tied in x, in y. As ``scipy.stats.weightedtau`` does by default, the result is the
    average of the values with ranks by decreasing lexicographic (x, y) and by (y, x). NaN when either vector
    is constant. O(n^2) time and memory (n = number of models).

    Examples
    --------
    >>> from tasklens.metrics import weighted_kendall_tau
    >>> weighted_kendall_tau([0.1, 0.4, 0.3, 0.9], [70.0, 80.0, 75.0, 91.0])
    1.0
    """
    x, y, be = _pair(scores, accuracies, "scores", "accuracies")
    return be.out((_weighted_tau_ranked(x, y) + _weighted_tau_ranked(y, x)) / 2.0)


def pearson(scores, accuracies) -> float:
    """Pearson correlation of two score vectors (float64, two-pass); NaN when either is constant.

    Examples
    --------
    >>> from tasklens.metrics import pearson
    >>> pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.5]) > 0.99
    True
    """
    x, y, be = _pair(scores, accuracies, "scores", "accuracies")
    x = x - x.mean()
    y = y - y.mean()
    denom = np.sqrt((x @ x) * (y @ y))
    return be.out(float(x @ y / denom) if denom > 0 else float("nan"))


def relative_top_k_accuracy(scores, accuracies, k: int = 1) -> float:
    """Best accuracy among the k models ranked highest by ``scores``, divided by the best accuracy overall.

    1.0 means the estimator's top-k contains the best model. Score ties are broken by the models' order
    (stable sort). ``k=1`` is the relative top-1 accuracy of model selection.

    Examples
    --------
    >>> from tasklens.metrics import relative_top_k_accuracy
    >>> relative_top_k_accuracy([0.9, 0.5, 0.1], [80.0, 90.0, 60.0])
    0.8888888888888888
    >>> relative_top_k_accuracy([0.9, 0.5, 0.1], [80.0, 90.0, 60.0], k=2)
    1.0
    """
    x, y, be = _pair(scores, accuracies, "scores", "accuracies")
    k = check_int(k, "k", min=1, max=x.size)
    best = y.max()
    if best <= 0:
        raise ValueError(f"accuracies: the best accuracy must be positive, got {best:g}")
    top = np.argsort(-x, kind="stable")[:k]
    return be.out(float(y[top].max() / best))


def rank_models(models: Mapping[str, object], labels, metric: str | Callable = "logme", **kwargs):
    """Score each model's features on the target labels and rank the models, best first.

    Parameters
    ----------
    models : mapping name -> features (N, F_m) of the N target samples under that model (F_m may differ)
    labels : (N,) int target class codes
    metric : name of a feature estimator (``"hscore"``, ``"logme"``, ``"transrate"``, ``"gbc"``, ``"sfda"``,
        ``"nleep"``) or a callable ``metric(features, labels) -> float`` (higher = better)
    **kwargs : passed to the estimator

    Returns
    -------
    list of (name, score) pairs sorted by decreasing score (ties keep the mapping's order); scores are Python
    floats.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import rank_models
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> good = rng.normal(size=(300, 4)) + 3 * np.eye(3, 4)[y]
    >>> [name for name, _ in rank_models({"noise": rng.normal(size=(300, 4)), "good": good}, y)]
    ['good', 'noise']
    """
    if not isinstance(models, Mapping) or not models:
        raise TypeError(f"models: expected a non-empty mapping name -> features, got {type(models).__name__}")
    if callable(metric):
        fn = metric
    elif metric == "hscore":
        from .hscore import hscore as fn
    elif metric == "nleep":
        fn = leep.nleep
    elif metric in _FEATURE_ESTIMATORS:
        fn = getattr(estimators, metric)
    else:
        raise ValueError(f"metric: expected one of {', '.join(map(repr, _FEATURE_ESTIMATORS))} or a callable, "
                         f"got {metric!r}")
    scored = []
    for name, feats in models.items():
        value = fn(feats, labels, **kwargs)
        value = float(to_host(value)) if not isinstance(value, float) else value
        scored.append((name, value))
    order = sorted(range(len(scored)), key=lambda i: -scored[i][1])
    return [scored[i] for i in order]
