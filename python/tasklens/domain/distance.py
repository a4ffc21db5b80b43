"""Appearance-domain distances between datasets (Factors of Influence, Sect. 3.2 Eq. 1 and Table 8).

``D(T|S) = 1/|T| * sum_{t in T} min_{s in S} d(f_t, f_s)``   (Eq. 1)

is the mean distance of a target row to its nearest source row. It is asymmetric: a broad source that
*includes* the target's rows gives a small D(T|S) while D(S|T) stays large. Table 8 of the paper compares
four ways of assigning rows, all available through ``method``:

- ``"target_to_source"`` (default, Eq. 1, inclusion of the target in the source),
- ``"source_to_target"`` (each source row to its nearest target row: ``D(S|T)``),
- ``"symmetric"`` (the mean of the two),
- ``"emd"`` (one-to-one assignment minimising the total distance, Hungarian algorithm).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _dispatch
from .._validation import check_array, check_choice
from ._kernels import prescale, segmented_nearest, unscale

METHODS = ("target_to_source", "source_to_target", "symmetric", "emd")
METRICS = ("euclidean", "sqeuclidean", "cosine")


def _rows(x, name: str, d: int | None = None):
    x = check_array(x, name, ndim=2, min_rows=1)
    if x.shape[1] == 0:
        raise ValueError(f"{name}: needs at least one feature column, got shape {tuple(x.shape)}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name}: expected {d} feature columns like the first input, got shape {tuple(x.shape)}")
    return x


def _host(x, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(_dispatch.to_host(x), dtype=dtype)


def _pair(target, source):
    target = _rows(target, "target")
    source = _rows(source, "source", target.shape[1])
    be = _dispatch.backend_of(target=target, source=source)
    return target, source, be


def _offsets(*sizes: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def nearest(target, source, *, metric: str = "euclidean"):
    """Nearest source row of every target row, with its exact distance.

    Parameters
    ----------
    target : array (n_t, d), numpy or torch (CPU or CUDA)
    source : array (n_s, d), same kind, device and number of columns
    metric : {"euclidean", "sqeuclidean", "cosine"}
        ``cosine`` is ``1 - cos(x, y)``; zero rows are rejected.

    Returns
    -------
    dist : (n_t,) float64 — ``min_s d(target_i, source_s)``
    index : (n_t,) int64 — the row of ``source`` attaining it (the smallest index on an exact tie)

    Both of the input's kind and device (numpy in -> numpy out, torch in -> torch on the same device).

    Notes
    -----
    Tiles of 2048 x 2048 float32 dot products (BLAS sgemm) are folded into per-row minima by a fused native
    reduction; every candidate within a rigorous float32 error bound of the best is re-scored exactly in
    float64, so ``dist`` is exact to float64 rounding of the original rows and ``index`` is the true argmin,
    independent of the thread count and tile size. Time O(n_t n_s d); extra memory O((n_t + n_s) d + 2048^2).
    On CUDA a fused shared-memory kernel picks the winner from float32 distances of centred rows and re-scores
    it in float64: ``dist`` agrees with the CPU to about ``d * 2**-24`` times the data's spread, ``index`` may
    differ only on such near-ties. Rows of extreme magnitude (largest ``|value|`` outside ``[2**-100, 2**100]``)
    are rescaled by a power of two internally; a distance that does not fit float64 is an error.

    Examples
    --------
    >>> import numpy as np, tasklens
    >>> dist, index = tasklens.nearest(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 1.0], [3.0, 3.0]]))
    >>> dist.tolist(), index.tolist()
    ([1.0, 1.0], [0, 1])
    """
    check_choice(metric, "metric", METRICS)
    target, source, be = _pair(target, source)
    if be.is_cuda:
        from ._cuda import nearest_cuda

        return be.out(nearest_cuda(target, source, metric, be))
    t, s = _host(target, be.dtype), _host(source, be.dtype)
    dist, index = segmented_nearest(t, _offsets(len(t)), s, _offsets(len(s)), metric=metric)
    return be.out((dist[:, 0], index[:, 0]))


def _emd(t: np.ndarray, s: np.ndarray, metric: str) -> float:
    """Mean cost of the optimal one-to-one assignment, on range-scaled rows (see :func:`nearest`)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    (t, s), e, amax = prescale([t.astype(np.float64), s.astype(np.float64)])
    cost = cdist(t, s, metric=metric)
    rows, cols = linear_sum_assignment(cost)
    return float(unscale(np.array([cost[rows, cols].mean()]), e, metric, amax)[0])


def domain_distance(target, source, *, method: str = "target_to_source", metric: str = "euclidean") -> float:
    """Domain distance ``D(T|S)`` of Eq. (1) and its Table 8 variants.

    Parameters
    ----------
    target : array (n_t, d) — features of the target dataset's samples (numpy or torch)
    source : array (n_s, d) — features of the source dataset's samples
    method : {"target_to_source", "source_to_target", "symmetric", "emd"}
        ``target_to_source``: ``mean_t min_s d(t, s)`` (Eq. 1, inclusion of T in S). ``source_to_target``:
        ``mean_s min_t d(s, t)``. ``symmetric``: their mean. ``emd``: the mean cost of a one-to-one assignment
        minimising the total cost (``scipy.optimize.linear_sum_assignment``, O(n^3)); with unequal sizes every
        row of the smaller set is matched to a distinct row of the larger one and the mean is over the
        smaller set (the unmatched rows of the larger set are ignored).
    metric : {"euclidean", "sqeuclidean", "cosine"}

    Returns
    -------
    float — lower means closer (a 0-d float64 tensor on the input's device for torch input). Summed in float64
    in row order (deterministic; the same additions on the CPU and on CUDA). Rows of extreme magnitude are
    rescaled internally (see :func:`nearest`); ``cosine`` does not depend on the scale of the rows.

    Examples
    --------
    >>> import numpy as np, tasklens
    >>> t = np.array([[0.0], [1.0]]); s = np.array([[0.0], [1.0], [10.0]])
    >>> tasklens.domain_distance(t, s), tasklens.domain_distance(s, t)
    (0.0, 3.0)
    """
    check_choice(method, "method", METHODS)
    check_choice(metric, "metric", METRICS)
    target, source, be = _pair(target, source)
    if method == "emd":
        return be.out(_emd(_host(target, "float64"), _host(source, "float64"), metric))
    if be.is_cuda:
        from ._cuda import matrix_cuda

        # rows of the 2 x 2 matrix are targets: [0, 1] = D(target|source), [1, 0] = D(source|target)
        m = matrix_cuda([target, source], _offsets(len(target), len(source)), metric, be)
        return be.out(_combine(m, method)[0, 1])
    t, s = _host(target, be.dtype), _host(source, be.dtype)
    both = method != "target_to_source"
    res = segmented_nearest(t, _offsets(len(t)), s, _offsets(len(s)), metric=metric, both=both)
    forward = _row_mean(res[0][:, 0])
    if method == "target_to_source":
        return be.out(forward)
    backward = _row_mean(res[2][:, 0])
    return be.out(backward if method == "source_to_target" else 0.5 * (forward + backward))


def _row_mean(dist: np.ndarray) -> float:
    """Mean of a dataset's per-row distances: a float64 sum in row order, as ``add.reduceat`` in the matrix."""
    return float(np.add.reduceat(dist, [0])[0] / dist.shape[0])


def _combine(t2s, method: str):
    """The (M, M) matrix for ``method`` from the target->source matrix (rows = targets)."""
    if method == "target_to_source":
        return t2s
    if method == "source_to_target":
        return t2s.T.copy() if isinstance(t2s, np.ndarray) else t2s.T.contiguous()
    return 0.5 * (t2s + t2s.T)


def _datasets(datasets, offsets):
    if offsets is not None:
        stacked = _rows(datasets, "datasets")
        off = _dispatch.to_host(offsets)
        if off.ndim != 1 or off.dtype.kind not in "iu" or len(off) < 2:
            raise ValueError(f"offsets: expected a 1-D integer array of M + 1 >= 2 row offsets, got shape "
                             f"{off.shape}, dtype {off.dtype}")
        off = off.astype(np.int64)
        if off[0] != 0 or off[-1] != stacked.shape[0] or np.any(np.diff(off) <= 0):
            raise ValueError(f"offsets: must start at 0, increase strictly (no empty dataset) and end at the "
                             f"row count {stacked.shape[0]}; got {off.tolist()[:8]}{'...' if len(off) > 8 else ''}")
        return stacked, off, None
    if not isinstance(datasets, Sequence) or isinstance(datasets, (str, bytes)):
        raise TypeError(f"datasets: expected a list of (n_i, d) arrays, or one stacked (N, d) array with "
                        f"offsets=..., got {type(datasets).__name__}")
    if len(datasets) == 0:
        raise ValueError("datasets: expected at least one dataset, got an empty list")
    parts = []
    for k, x in enumerate(datasets):
        parts.append(_rows(x, f"datasets[{k}]", parts[0].shape[1] if parts else None))
    return None, _offsets(*(p.shape[0] for p in parts)), parts


def domain_distance_matrix(datasets: Any, *, method: str = "target_to_source", metric: str = "euclidean",
                           offsets=None):
    """All ordered pairs ``D[t, s] = D(T_t | S_s)`` of many datasets in one pass (rows = targets).

    Parameters
    ----------
    datasets : list of M arrays (n_i, d), or one stacked array (N, d) together with ``offsets``
    method : {"target_to_source", "source_to_target", "symmetric", "emd"} — see :func:`domain_distance`.
        ``source_to_target`` is the transpose of ``target_to_source`` and ``symmetric`` their mean.
    metric : {"euclidean", "sqeuclidean", "cosine"}
    offsets : optional (M + 1,) int array; dataset m is ``datasets[offsets[m]:offsets[m + 1]]``.

    Returns
    -------
    (M, M) float64 (numpy, or torch on the input's device). The diagonal is 0: every row is its own
    nearest neighbour (and, for ``emd``, each dataset is matched to itself).

    Notes
    -----
    One pass with segmented minima: the stacked rows' tiles ``I <= J`` are multiplied once (BLAS sgemm) and
    each tile updates every row's minimum to every dataset in both directions, so the arithmetic is half of
    ``M**2`` separate searches; the N x N distance matrix is never held (one 2048 x 2048 tile at a time, plus
    O(N M) candidate state). Minima are exact (see :func:`nearest`); each entry is a float64 mean in row
    order, so the result is independent of thread count and tile size (on CUDA the means are the same row-order
    sums, one thread per entry, no atomics). ``emd`` runs the Hungarian algorithm
    per ordered pair (O(M^2 n^3)). Sample large datasets first with :func:`tasklens.domain.sample_datasets`.

    Examples
    --------
    >>> import numpy as np, tasklens
    >>> a = np.zeros((2, 3)); b = np.vstack([np.zeros((1, 3)), np.full((1, 3), 2.0)])
    >>> tasklens.domain_distance_matrix([a, b]).round(3).tolist()
    [[0.0, 0.0], [1.732, 0.0]]
    """
    check_choice(method, "method", METHODS)
    check_choice(metric, "metric", METRICS)
    stacked, off, parts = _datasets(datasets, offsets)
    arrays = {"datasets": stacked} if parts is None else {f"datasets[{k}]": p for k, p in enumerate(parts)}
    be = _dispatch.backend_of(**arrays)
    m = len(off) - 1
    if method == "emd":
        host = [_host(p, "float64") for p in parts] if parts is not None else \
            [_host(stacked, "float64")[off[k]:off[k + 1]] for k in range(m)]
        out = np.array([[_emd(host[t], host[s], metric) for s in range(m)] for t in range(m)])
        return be.out(out)
    if be.is_cuda:
        from ._cuda import matrix_cuda

        return be.out(_combine(matrix_cuda(parts if parts is not None else stacked, off, metric, be), method))
    x = _host(stacked, be.dtype) if parts is None else \
        np.concatenate([_host(p, be.dtype) for p in parts], axis=0)
    dist, _ = segmented_nearest(x, off, metric=metric)
    t2s = np.add.reduceat(dist, off[:-1], axis=0) / np.diff(off)[:, None]
    return be.out(_combine(t2s, method))
