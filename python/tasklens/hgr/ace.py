"""HGR maximal correlation of two discrete variables by alternating conditional expectations (Alg. 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dispatch import call
from .._validation import check_choice, check_int, check_positive, is_torch
from ._codes import check_codes, dense_alphabet, unique_codes

_METHODS = {"auto": 0, "alternate": 1, "composed": 2}
#: Largest f or g table (|alphabet| x k float64) a sparse alphabet may need (its unused codes are zero rows).
MAX_FEATURE_BYTES = 1 << 32


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
    def hscore(self):
        """sum_i sigma_i^2 over the k modes: the H-score of f (Corollary 1); for k = K - 1 it is H_T(f_opt).
        A float (a 0-d float64 tensor on the correlations' device for torch input)."""
        c = self.correlations
        total = (c * c).sum()
        return total if is_torch(total) else float(total)


def _compacted(v, size: int, name: str, k: int):
    """Codes of a sparse alphabet renumbered to the codes that occur: (codes, alphabet, occurring codes or None)."""
    if dense_alphabet(size, v.shape[0]):
        return v, size, None
    if size * k * 8 > MAX_FEATURE_BYTES:
        table = "f" if name == "x" else "g"
        raise ValueError(f"{name}: the codes go up to {size - 1}, so {table} would have {size} rows "
                         f"({size * k * 8 / 2**30:.1f} GiB); renumber the codes that occur to 0..K-1 first "
                         f"(np.unique({name}, return_inverse=True)[1])")
    u, inv = unique_codes(v)
    return inv, int(u.shape[0]), u


def _expanded(f, occurring, size: int, backend):
    """Rows of f (one per occurring code) placed at their codes in a (size, k) table of zeros."""
    if occurring is None:
        return f
    if backend.is_torch:
        import torch

        full = torch.zeros((size, f.shape[1]), dtype=f.dtype, device=f.device)
    else:
        full = np.zeros((size, f.shape[1]), dtype=f.dtype)
    full[occurring] = f
    return full


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
    k = check_int(k, "k", min=1)
    max_iter = check_int(max_iter, "max_iter", min=1)
    tol = check_positive(tol, "tol", allow_zero=True)
    seed = check_int(seed, "seed", min=0)
    check_choice(method, "method", tuple(_METHODS))
    modes = codes.num_modes
    if k > modes:
        raise ValueError(
            f"k={k} is too large: x has {codes.used_x} distinct codes and y has {codes.used_y}, so there are only "
            f"{max(modes, 0)} nontrivial HGR modes (min - 1); pass k <= {max(modes, 0)}"
            + (" (X or Y takes a single value, so they are independent)" if modes == 0 else ""))
    extra = max(k, 8) if oversample is None else check_int(oversample, "oversample", min=0)
    b = min(k + extra, modes)
    backend = codes.backend
    # Sparse alphabets (codes far above the number of samples) iterate on the codes that occur.
    xc, nx, occ_x = _compacted(codes.x, codes.num_x, "x", k)
    yc, ny, occ_y = _compacted(codes.y, codes.num_y, "y", k)
    # Iterate on the smaller alphabet (S); the other side (A) is computed from it.
    swap = nx < ny
    a, s = (yc, xc) if swap else (xc, yc)
    na, ns = (ny, nx) if swap else (nx, ny)
    if backend.is_cuda:
        from ._cuda import ace_fit

        fa, fs, corr, iters, conv = ace_fit(a, s, na, ns, k, b, max_iter, tol, seed, backend)
        used = "cuda"
    else:
        if method == "composed" and ns > 4096:
            raise ValueError(f"method='composed' needs the smaller alphabet to be <= 4096, got {ns}; "
                             "use method='alternate' or 'auto'")
        fa, fs, corr, iters, conv, mode = call("ace_fit", backend, a, s, na, ns, k, b, max_iter, tol, seed,
                                               _METHODS[method])
        used = "composed" if mode == 2 else "alternate"
    f, g = (fs, fa) if swap else (fa, fs)
    f, g = _expanded(f, occ_x, codes.num_x, backend), _expanded(g, occ_y, codes.num_y, backend)
    corr, f, g = backend.out((corr, f, g))
    return ACEResult(corr, f, g, int(iters), bool(conv), used)
