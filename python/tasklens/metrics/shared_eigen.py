"""Eigendecompositions of the centred scatter and of the raw Gram from ONE tridiagonal reduction.

H-score needs the eigendecomposition of the centred scatter ``S = sum_i (x_i - mean)(x_i - mean)^T``; LogME that
of the raw Gram ``G = X^T X = S + n mean mean^T``. Both are F x F, and the reduction to tridiagonal form
(LAPACK ``dsytrd``, ``4/3 F^3`` flops, half of them memory-bound) is most of the cost of each. The two matrices
differ by a rank-one term, and one reduction serves both:

1. a Householder reflection ``H0`` maps the mean onto the first axis, ``H0 mean = alpha e1`` (``|alpha| =
   |mean|``), and ``S' = H0 S H0`` (a rank-two update, ``O(F^2)``);
2. ``dsytrd`` (lower) gives ``S' = Q T Q^T`` with ``Q = H(1) ... H(F-1)``; every ``H(i)`` leaves the first axis
   alone, so ``Q^T e1 = e1`` and ``Q^T H0 G H0 Q = T + n alpha^2 e1 e1^T``: the same tridiagonal matrix with only
   its first diagonal entry changed;
3. both tridiagonal eigenproblems (``T = Z_S diag(lam) Z_S^T``, ``T + n alpha^2 e1 e1^T = Z_G diag(sig) Z_G^T``)
   cost ``O(F^2)`` each (MRRR, ``dstemr``), and the eigenvectors are ``V = H0 Q Z``: projections of a few
   vectors ``V^T b = Z^T Q^T H0 b`` cost ``O(F^2)`` per vector (``dormqr``, one matrix product).

The reduction is of ``S``, so both decompositions are backward stable with errors of the order of
``eps ||S||`` (``||S|| <= ||G||``): H-score's small eigenvalues are as accurate as from ``eigh(S)``, LogME's as
from ``eigh(G)`` or better.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SharedEigen"]


class SharedEigen:
    """Eigenvalues and eigenvector projections of ``S`` (centred) and ``G = S + n m m^T`` (raw).

    Parameters
    ----------
    scatter : (F, F) float64 symmetric ``S``
    n : the row count; mean : (F,) float64 ``m``

    Attributes
    ----------
    centred_values : (F,) ascending eigenvalues of ``S``; raw_values : (F,) ascending eigenvalues of ``G``.
    Use :meth:`project` for ``V^T b`` of column vectors ``b``.
    """

    def __init__(self, scatter: np.ndarray, n: float, mean: np.ndarray):
        from scipy.linalg import eigh_tridiagonal
        from scipy.linalg.lapack import dsytrd, dsytrd_lwork
        from threadpoolctl import threadpool_limits

        f = scatter.shape[0]
        s = np.array(scatter, dtype=np.float64)  # a private copy, overwritten below
        m = np.asarray(mean, dtype=np.float64)
        norm = float(np.linalg.norm(m))
        # H0 = I - beta v v^T with H0 m = alpha e1 (v = m - alpha e1, alpha of the sign opposite to m[0])
        self._v, self._beta = None, 0.0
        if norm > 0.0:
            alpha = -norm if m[0] >= 0 else norm
            v = m.copy()
            v[0] -= alpha
            vv = float(v @ v)
            if vv > 0.0:
                beta = 2.0 / vv
                with threadpool_limits(1):
                    w = s @ v
                p = beta * w - (0.5 * beta * beta * float(v @ w)) * v
                s -= np.outer(v, p)
                s -= np.outer(p, v)
                self._v, self._beta = v, beta
        self._f = f
        with threadpool_limits(1):
            lwork = max(1, int(dsytrd_lwork(f, lower=1)[0]))
            c, d, e, tau, info = dsytrd(s.T, lower=1, lwork=lwork, overwrite_a=1)  # s.T: Fortran order, in place
            if info != 0:
                raise np.linalg.LinAlgError(f"dsytrd failed (info={info})")
            self._c, self._tau = c, tau
            self.centred_values, self._zs = _tridiagonal_eigh(d, e, eigh_tridiagonal)
            d_raw = d.copy()
            d_raw[0] += float(n) * norm * norm
            self.raw_values, self._zg = _tridiagonal_eigh(d_raw, e, eigh_tridiagonal)

    def _rotate(self, b: np.ndarray) -> np.ndarray:
        """``Q^T H0 b`` for column vectors ``b`` (F, k)."""
        from scipy.linalg.lapack import dormqr
        from threadpoolctl import threadpool_limits

        b = np.array(b, dtype=np.float64, order="F")
        if self._v is not None:
            b -= np.outer(self._v, self._beta * (self._v @ b))
        if self._f > 1:
            k = b.shape[1]
            with threadpool_limits(1):
                # Q acts on rows 2..F: its reflectors are those of a QR factorisation of the sub-diagonal block
                cq, _, info = dormqr("L", "T", self._c[1:, :-1], self._tau, b[1:], max(1, 64 * k),
                                     overwrite_c=0)
            if info != 0:
                raise np.linalg.LinAlgError(f"dormqr failed (info={info})")
            b[1:] = cq
        return b

    def project(self, b: np.ndarray, raw: bool) -> np.ndarray:
        """``V^T b`` (F, k) for column vectors ``b`` (F, k), with V the eigenvectors of G (``raw``) or S."""
        z = self._zg if raw else self._zs
        from threadpoolctl import threadpool_limits

        rb = self._rotate(b)
        with threadpool_limits(1):
            return z.T @ rb


def _tridiagonal_eigh(d: np.ndarray, e: np.ndarray, eigh_tridiagonal):
    if d.size == 1:
        return d.copy(), np.ones((1, 1))
    return eigh_tridiagonal(d, e, check_finite=False)
