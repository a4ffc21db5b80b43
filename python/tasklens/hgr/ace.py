"""HGR maximal correlation of two discrete variables by alternating conditional expectations (Alg. 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._native import native, require_cuda
from .._validation import check_choice, check_positive
from ._codes import check_codes, out

_METHODS = {"auto": 0, "alternate": 1, "composed": 2}


@dataclass(frozen=True)
class ACEResult:
    """Result of :func:`ace`.

    Attributes
    ----------
    correlations : (k,) float64, the k largest HGR maximal correlations sigma_1 >= ... >= sigma_k (Eq. 2),
        equal to the nontrivial singular values of the DTM (Def. 1).
    f : (|X|, k) float64, f(x) for every code: E_PX[f] = 0, E_PX[f f^T] = I (rows of unused codes are 0).
    g : (|Y|, k) float64, g(y) for every code: E_PY[g] = 0, E_PY[g g^T] = I, and E[f(X) g(Y)^T] = diag(sigma).
    iterations : number of ACE iterations run.
    converged : whether E[f(X)^T g(Y)] = sum(correlations) changed by at most ``tol`` in the last iteration.
    method : ``"alternate"``, ``"composed"`` (see :func:`ace`) or ``"cuda"``.
    """

    correlations: object
    f: object
    g: object
    iterations: int
    converged: bool
    method: str

    @property
    def hscore(self) -> float:
        """sum_i sigma_i^2 over the k modes: the H-score of f (Corollary 1); for k = K - 1 it is H_T(f_opt)."""
        c = self.correlations
        return float((c * c).sum())


def _int_arg(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


def ace(x, y, k: int = 1, *, max_iter: int = 1000, tol: float = 1e-12, seed: int = 0,
        num_x: int | None = None, num_y: int | None = None, oversample: int | None = None,
        method: str = "auto") -> ACEResult:
    """The k leading HGR maximal correlations of two discrete variables and their feature functions.

    Solves Eq. 2, ``max E[f(X)^T g(Y)]`` over zero-mean, whitened f: X -> R^k and g: Y -> R^k, with the ACE
    algorithm (Algorithm 1, Appendix B) on the empirical joint distribution of the samples. The joint counts are
    built once in a sparse layout (CSR over each variable, native code); each iteration applies the two
    conditional expectations ``f <- E[g(Y) | X]`` and ``g <- E[f(X) | Y]``, centres, and whitens by Gram-Schmidt
    in the P_X / P_Y inner products. A Rayleigh-Ritz rotation of the block (k + ``oversample`` modes) orders the
    modes and makes each correlation converge at the rate of the first mode outside the block; iteration stops
    when ``E[f(X)^T g(Y)]`` over the k modes changes by at most ``tol`` (line 8 of Algorithm 1).

    Parameters
    ----------
    x, y : (N,) integer codes, numpy arrays or torch tensors (CPU or CUDA) of the same kind.
    k : number of modes, 1 <= k <= K - 1 with K = min(distinct x codes, distinct y codes).
    max_iter : maximum number of iterations.
    tol : absolute tolerance on the change of sum(correlations) (correlations lie in [0, 1]).
    seed : seed of the random start g (results depend only on the seed, never on the thread count).
    num_x, num_y : alphabet sizes (default: largest code + 1); unused codes get f = 0 / g = 0.
    oversample : extra modes iterated for faster, robust convergence (default max(k, 8)); capped at K - 1.
    method : CPU iteration. ``"alternate"`` applies the two sparse conditional expectations each iteration
        (O(nnz * b)); ``"composed"`` first forms the composed operator E[E[. | A] | S] on the smaller alphabet S
        (|S| x |S| dense, |S| <= 4096) and iterates on it; ``"auto"`` picks the cheaper by operation count.
        The result is the same up to rounding. CUDA input always alternates.

    Returns
    -------
    ACEResult
        ``.correlations`` (k,), ``.f`` (|X|, k), ``.g`` (|Y|, k), ``.iterations``, ``.converged``,
        arrays in the caller's kind and device. Signs are fixed so that the largest-magnitude entry of each g
        column is positive.

    Raises
    ------
    ValueError
        When k > K - 1 (e.g. a single distinct x or y value: X and Y are independent and there is no
        nontrivial mode; :func:`tasklens.hgr.dtm` then returns an empty spectrum).

    Notes
    -----
    Time: O(N) to count (threaded), then O(nnz * b) per iteration (alternate) or O(sum_x nnz_x^2) once and
    O(|S|^2 b) per iteration (composed), b = k + oversample. Memory: 4N bytes while counting, 12 nnz bytes per
    CSR copy (two copies), 8 (|X| + |Y|) b bytes of iterates, plus 8 |S|^2 bytes (composed). Deterministic:
    bit-identical for any thread count.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.hgr import ace, dtm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 20, 5000); y = (x + rng.integers(0, 3, 5000)) % 7
    >>> r = ace(x, y, k=2)
    >>> np.allclose(r.correlations, dtm(x, y).singular_values[:2], atol=1e-8)
    True
    """
    codes = check_codes(x, y, num_x, num_y)
    k = _int_arg(k, "k", 1)
    max_iter = _int_arg(max_iter, "max_iter", 1)
    tol = check_positive(tol, "tol", allow_zero=True)
    seed = _int_arg(seed, "seed", 0)
    check_choice(method, "method", tuple(_METHODS))
    modes = codes.num_modes
    if k > modes:
        raise ValueError(
            f"k={k} is too large: x has {codes.used_x} distinct codes and y has {codes.used_y}, so there are only "
            f"{max(modes, 0)} nontrivial HGR modes (min - 1); pass k <= {max(modes, 0)}"
            + (" (X or Y takes a single value, so they are independent)" if modes == 0 else ""))
    extra = max(k, 8) if oversample is None else _int_arg(oversample, "oversample", 0)
    b = min(k + extra, modes)
    # Iterate on the smaller alphabet (S); the other side (A) is computed from it.
    swap = codes.num_x < codes.num_y
    a, s = (codes.y, codes.x) if swap else (codes.x, codes.y)
    na, ns = (codes.num_y, codes.num_x) if swap else (codes.num_x, codes.num_y)
    if codes.device.startswith("cuda"):
        fa, fs, corr, iters, conv, used = _ace_cuda(a, s, na, ns, k, b, max_iter, tol, seed)
    else:
        if method == "composed" and ns > 4096:
            raise ValueError(f"method='composed' needs the smaller alphabet to be <= 4096, got {ns}; "
                             "use method='alternate' or 'auto'")
        a_np = a.numpy() if codes.kind == "torch" else a
        s_np = s.numpy() if codes.kind == "torch" else s
        fa, fs, corr, iters, conv, mode = native().ace_fit(a_np, s_np, na, ns, k, b, max_iter, tol, seed,
                                                           _METHODS[method])
        fa, fs, corr = out(fa, codes), out(fs, codes), out(corr, codes)
        used = "composed" if mode == 2 else "alternate"
    f, g = (fs, fa) if swap else (fa, fs)
    return ACEResult(corr, f, g, int(iters), bool(conv), used)


def _ace_cuda(a, s, na, ns, k, b, max_iter, tol, seed):
    import torch

    from .._dispatch import cuda_args, ptr

    require_cuda("tasklens.hgr.ace")
    device, stream = cuda_args(a)
    fa = torch.empty((na, k), dtype=torch.float64, device=a.device)
    fs = torch.empty((ns, k), dtype=torch.float64, device=a.device)
    corr = torch.empty((k,), dtype=torch.float64, device=a.device)
    iters, conv = native().ace_fit_cuda(ptr(a), ptr(s), a.shape[0], na, ns, k, b, max_iter, tol, seed,
                                        ptr(fa), ptr(fs), ptr(corr), device, stream)
    return fa, fs, corr, iters, conv, "cuda"
