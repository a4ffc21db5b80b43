"""Per-class coding rates of TransRate, class by class over the features, without per-class F x F Grams.

TransRate's conditional rate needs, for every class c, ``log det(I_F + Z_c^T Z_c / (n_c eps))`` with ``Z_c`` the
globally centred rows of the class (``n_c`` rows, F features). By Sylvester's determinant identity

``det(I_F + a Z_c^T Z_c) = det(I_{n_c} + a Z_c Z_c^T)``,

so a class with ``n_c < F`` rows needs only its ``n_c x n_c`` kernel (``n_c^2 F / 2`` multiply-adds and an
``n_c^3 / 3`` Cholesky factorisation) instead of an F x F Gram (``n_c F^2 / 2``) and an ``F^3 / 3``
factorisation: for N = 100,000, F = 2048, C = 100 the classes cost about half a Gram of the features instead
of a Gram plus 100 F x F factorisations, and no ``C F^2`` float64 state is kept. Classes with ``n_c >= F`` rows
use the F x F Gram (summed over chunks of rows).

The rows of each class are gathered (one read of the features, in class order) after the global mean is
known. They are centred on ``s``, the mean rounded to the input dtype, so the float32 products see nearly
centred rows; the remainder ``d = mean - s`` (zero for float64 input, at most half an ulp of the mean for float32)
enters exactly in float64: with ``W = X_c - s`` and ``u = W d``,
``Z_c Z_c^T = W W^T - u 1^T - 1 u^T + |d|^2 1 1^T`` and ``Z_c^T Z_c = W^T W - d w^T - w d^T + n_c d d^T``
(``w = W^T 1``). Each class is one task (its log-determinant depends only on its own rows), so the result does
not depend on the thread count; for classes with ``n_c >= F`` the chunk size changes only the rounding.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from .._threads import get_num_threads

__all__ = ["class_log_dets"]


def _logdet_pd(a: np.ndarray) -> float:
    """log det of a symmetric positive definite matrix by Cholesky (overwrites ``a``; reads one triangle)."""
    from scipy.linalg import cholesky

    # a.T is Fortran-ordered: factorised in place, no copy
    chol = cholesky(a.T, lower=False, overwrite_a=True, check_finite=False)
    return 2.0 * float(np.log(np.diagonal(chol)).sum())


def _class_log_det(x: np.ndarray, rows: np.ndarray, shift: np.ndarray, d: np.ndarray, eps: float,
                   step: int) -> float:
    """``log det(I + Z^T Z / (n eps))`` of the rows ``x[rows]`` centred on ``shift + d`` (see the module doc)."""
    n, f = rows.size, x.shape[1]
    scale = 1.0 / (n * eps)
    if n < f:  # the n x n kernel
        w = x[rows]
        w -= shift
        a = (w @ w.T).astype(np.float64)  # BLAS syrk in the input dtype
        if d.any():
            u = (w @ d.astype(x.dtype)).astype(np.float64)
            a -= u[:, None]
            a -= u[None, :]
            a += float(d @ d)
    else:  # the F x F Gram, summed over chunks of rows
        a = np.zeros((f, f))
        wsum = np.zeros(f)
        for r0 in range(0, n, step):
            w = x[rows[r0:r0 + step]]
            w -= shift
            a += w.T @ w
            wsum += w.sum(axis=0, dtype=np.float64)
        if d.any():
            a -= np.outer(d, wsum)
            a -= np.outer(wsum, d)
            a += n * np.outer(d, d)
    a *= scale
    a.flat[:: a.shape[0] + 1] += 1.0
    return _logdet_pd(a)


def class_log_dets(x: np.ndarray, y: np.ndarray, num_classes: int, mean: np.ndarray, eps: float,
                   step: int) -> np.ndarray:
    """``log det(I_F + Z_c^T Z_c / (n_c eps))`` for every target and class, NaN for absent classes.

    Parameters
    ----------
    x : (N, F) float32/float64 numpy array; y : (N, T) int64 class codes in ``[0, num_classes)``
    mean : (F,) float64 global mean of ``x`` (the centre of ``Z``)
    eps : the distortion of the coding rate; step : rows per Gram product of a class with ``n_c >= F`` rows

    Returns
    -------
    (T, num_classes) float64.
    """
    import scipy.linalg  # noqa: F401  (loaded before the limit below: it only limits the BLAS libraries loaded)

    shift64 = mean.astype(x.dtype).astype(np.float64)
    d = mean - shift64
    shift = shift64.astype(x.dtype)
    out = np.full((y.shape[1], num_classes), np.nan)
    tasks = []
    for t in range(y.shape[1]):
        order = np.argsort(y[:, t], kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(y[:, t], minlength=num_classes))))
        tasks += [(t, c, order[a:b]) for c, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]

    def run(task):
        return _class_log_det(x, task[2], shift, d, eps, step)

    workers = min(get_num_threads(), len(tasks))
    with threadpool_limits(1):  # one class per worker, each on one BLAS thread
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                dets = list(pool.map(run, tasks))
        else:
            dets = [run(task) for task in tasks]
    for (t, c, _), v in zip(tasks, dets):
        out[t, c] = v
    return out
