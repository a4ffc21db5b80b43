"""Agglomerative clustering of tasks from their H-score (or transferability) vectors, and its dendrogram."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_choice, check_int, check_scalar

__all__ = ["TaskClustering", "cluster_tasks", "plot_dendrogram"]

_LINKAGES = ("single", "complete", "average", "weighted")
_METRICS = ("euclidean", "cosine", "correlation")


@dataclass(frozen=True)
class TaskClustering:
    """Result of :func:`cluster_tasks`.

    Attributes
    ----------
    linkage : (T - 1, 4) float64, merges in SciPy's format: [cluster i, cluster j, distance, size]; cluster ids
        >= T refer to the cluster formed at row id - T.
    labels : (T,) int64 cluster of each task (0-based, numbered by first appearance), or None without a cut.
    order : (T,) int64 leaf order of the dendrogram (left to right).
    distances : (T, T) float64 pairwise distances between the task vectors.
    names : task names used on the dendrogram (or None).

    Arrays are numpy for numpy input and torch tensors on the input's device for torch input.
    """

    linkage: np.ndarray
    labels: np.ndarray | None
    order: np.ndarray
    distances: np.ndarray
    names: list | None


def _pairwise(v: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        sq = (v * v).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * v @ v.T, 0.0))
    else:
        u = v - v.mean(1, keepdims=True) if metric == "correlation" else v
        norm = np.linalg.norm(u, axis=1)
        if np.any(norm == 0):
            bad = int(np.flatnonzero(norm == 0)[0])
            raise ValueError(f"scores: row {bad} is {'constant' if metric == 'correlation' else 'zero'}, so the "
                             f"{metric} distance is undefined; use metric='euclidean'")
        u = u / norm[:, None]
        d = np.maximum(1.0 - u @ u.T, 0.0)
    np.fill_diagonal(d, 0.0)
    return (d + d.T) / 2.0


def _agglomerate(d: np.ndarray, method: str) -> np.ndarray:
    """Generic agglomerative clustering with Lance-Williams updates: O(T^3) time, O(T^2) memory."""
    t = d.shape[0]
    dist = d.copy()
    np.fill_diagonal(dist, np.inf)
    ids = np.arange(t)  # current cluster id of each active slot
    size = np.ones(t)
    active = np.ones(t, dtype=bool)
    z = np.zeros((t - 1, 4))
    for step in range(t - 1):
        flat = int(np.argmin(dist))
        i, j = divmod(flat, t)
        if i > j:
            i, j = j, i
        dij = dist[i, j]
        lo, hi = sorted((ids[i], ids[j]))
        z[step] = (lo, hi, dij, size[i] + size[j])
        di, dj = dist[i], dist[j]
        if method == "single":
            new = np.minimum(di, dj)
        elif method == "complete":
            new = np.maximum(di, dj)
        elif method == "average":
            new = (size[i] * di + size[j] * dj) / (size[i] + size[j])
        else:  # weighted (WPGMA)
            new = 0.5 * (di + dj)
        new[~active] = np.inf
        dist[i, :] = new
        dist[:, i] = new
        dist[i, i] = np.inf
        dist[j, :] = np.inf
        dist[:, j] = np.inf
        active[j] = False
        size[i] += size[j]
        ids[i] = t + step
    return z


def _leaf_order(z: np.ndarray, t: int) -> np.ndarray:
    order, stack = [], [2 * t - 2] if t > 1 else [0]
    while stack:
        node = stack.pop()
        if node < t:
            order.append(node)
        else:
            left, right = z[node - t, :2].astype(int)
            stack.extend([right, left])
    return np.asarray(order, dtype=np.int64)


def _cut(z: np.ndarray, t: int, n_clusters: int | None, threshold: float | None) -> np.ndarray:
    parent = np.arange(2 * t - 1)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    merges = t - n_clusters if n_clusters is not None else int(np.sum(z[:, 2] <= threshold))
    for step in range(merges):
        a, b = int(z[step, 0]), int(z[step, 1])
        parent[find(a)] = t + step
        parent[find(b)] = t + step
    first: dict[int, int] = {}
    return np.array([first.setdefault(find(i), len(first)) for i in range(t)], dtype=np.int64)


def cluster_tasks(scores, *, method: str = "average", metric: str = "correlation", n_clusters: int | None = None,
                  threshold: float | None = None, names=None) -> TaskClustering:
    """Hierarchical (agglomerative) clustering of tasks described by score vectors.

    Each row of ``scores`` describes one task, e.g. its H-scores (Def. 2) or transferabilities (Def. 3) from a
    common set of source representations; tasks with similar profiles end up in the same cluster (Sec. 5.2).

    Parameters
    ----------
    scores : (T, S) float array, T >= 2 tasks.
    method : linkage, ``"average"`` (UPGMA), ``"single"``, ``"complete"`` or ``"weighted"`` (WPGMA).
    metric : ``"correlation"`` (1 - Pearson r of the profiles, default: compares shapes, not scales),
        ``"cosine"`` or ``"euclidean"``.
    n_clusters, threshold : optional cut of the tree into a number of clusters, or at a merge distance
        (at most one of the two).
    names : optional T task names for :func:`plot_dendrogram`.

    Returns
    -------
    TaskClustering

    Notes
    -----
    O(T^2 S) for the distances, O(T^3) for the merges (fine for thousands of tasks), O(T^2) memory.
    Deterministic: ties between equal distances merge the pair with the smallest slot indices first.

    Examples
    --------
    >>> import numpy as np
    >>> h = np.array([[1.0, 2.0, 3.0], [1.1, 2.1, 3.2], [3.0, 1.0, 0.5], [2.9, 1.2, 0.4]])
    >>> cluster_tasks(h, n_clusters=2).labels.tolist()
    [0, 0, 1, 1]
    """
    x = check_array(scores, "scores", ndim=2, min_rows=2)
    backend = backend_of(scores=x)
    v = to_host(x).astype(np.float64, copy=False)
    check_choice(method, "method", _LINKAGES)
    check_choice(metric, "metric", _METRICS)
    t = v.shape[0]
    if n_clusters is not None and threshold is not None:
        raise ValueError("cluster_tasks: pass n_clusters or threshold, not both")
    n_clusters = check_int(n_clusters, "n_clusters", min=1, max=t, allow_none=True)
    threshold = check_scalar(threshold, "threshold", allow_none=True)
    if names is not None:
        names = [str(s) for s in names]
        if len(names) != t:
            raise ValueError(f"names: expected {t} names (one per row of scores), got {len(names)}")
    d = _pairwise(v, metric)
    z = _agglomerate(d, method)
    labels = _cut(z, t, n_clusters, threshold) if (n_clusters is not None or threshold is not None) else None
    return TaskClustering(*backend.out((z, labels, _leaf_order(z, t), d)), names)


def plot_dendrogram(result: TaskClustering, *, ax=None, color_threshold: float | None = None,
                    orientation: str = "right"):
    """Draw the dendrogram of a :func:`cluster_tasks` result with matplotlib and return the Axes.

    Leaves appear in ``result.order`` and are labelled with ``result.names`` (or task indices).
    """
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram

    if not isinstance(result, TaskClustering):
        raise TypeError(f"plot_dendrogram: expected a TaskClustering from cluster_tasks, got {type(result).__name__}")
    check_choice(orientation, "orientation", ("top", "bottom", "left", "right"))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, max(2.0, 0.3 * len(result.order))))
    labels = result.names if result.names is not None else [str(i) for i in range(len(result.order))]
    dendrogram(to_host(result.linkage), ax=ax, labels=labels, orientation=orientation, color_threshold=color_threshold)
    ax.set_xlabel("distance" if orientation in ("left", "right") else "")
    return ax
