"""The divergence transition matrix (DTM, Def. 1 of the H-score paper) of two discrete variables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dispatch import to_host
from ._codes import check_codes

#: Largest |Y| x |X| the dense DTM may have (64 Mi entries = 512 MiB of float64).
MAX_DTM_ENTRIES = 1 << 26


@dataclass(frozen=True)
class DTMResult:
    """Result of :func:`dtm`.

    Attributes
    ----------
    matrix : (|Y|, |X|) float64 array, the DTM B~ (Def. 1); columns of unused x codes and rows of unused
        y codes are 0.
    singular_values : (K - 1,) float64 array, the nontrivial singular values of B~ in descending order,
        K = min(number of distinct x codes, number of distinct y codes). They are the HGR maximal
        correlations of X and Y (Eq. 2).
    optimal_hscore : float (0-d float64 tensor for torch input), ``||B~||_F^2 = sum_i sigma_i^2``, the H-score
        of the optimal features H_T(f_opt) (Corollary 1, Sec. 4.2); exactly 0 when X or Y takes one value.
    p_x, p_y : (|X|,) and (|Y|,) float64 arrays, the empirical marginals.
    """

    matrix: object
    singular_values: object
    optimal_hscore: float
    p_x: object
    p_y: object


def dtm(x, y, *, num_x: int | None = None, num_y: int | None = None) -> DTMResult:
    """Divergence transition matrix of the empirical joint distribution of two code vectors (Def. 1).

    ``B~ = sqrt(P_Y)^-1 P_YX sqrt(P_X)^-1 - sqrt(P_Y) sqrt(P_X)^T``, a dense |Y| x |X| matrix whose singular
    values 1 >= sigma_1 >= ... are the HGR maximal correlations (Eq. 2); subtracting the rank-one term removes
    the trivial mode (sigma = 1, constant functions).

    Parameters
    ----------
    x, y : (N,) integer codes (numpy arrays or torch tensors of the same kind), the paired samples.
    num_x, num_y : alphabet sizes (default: largest code + 1). Codes that never occur get zero columns/rows.

    Returns
    -------
    DTMResult
        ``.matrix`` (|Y|, |X|), ``.singular_values`` (K - 1,), ``.optimal_hscore`` (float), ``.p_x``, ``.p_y``;
        in the caller's kind (torch input gives float64 torch tensors on the input's device, the optimal
        H-score a 0-d tensor).

    Raises
    ------
    ValueError
        When |Y| * |X| exceeds :data:`MAX_DTM_ENTRIES` (the dense matrix would need more than 512 MiB);
        use :func:`tasklens.hgr.ace`, which works on the sparse joint counts, for large alphabets.

    Notes
    -----
    Time O(N + |X| |Y| min(|X|, |Y|)) (a dense SVD); memory 8 |X| |Y| bytes for the matrix plus the SVD
    workspace. Deterministic. With a single distinct x or y value the variables are independent:
    ``singular_values`` is empty and ``matrix`` and ``optimal_hscore`` are exactly 0 (B~ = 0 in exact
    arithmetic; the rounding of the rank-one subtraction is not reported as a spurious correlation).

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.hgr import dtm
    >>> x = np.array([0, 0, 1, 1, 2, 2]); y = np.array([0, 0, 1, 1, 1, 0])
    >>> r = dtm(x, y)
    >>> r.matrix.shape, round(r.optimal_hscore, 6)
    ((2, 3), 0.666667)
    """
    codes = check_codes(x, y, num_x, num_y)
    nx, ny = codes.num_x, codes.num_y
    if nx * ny > MAX_DTM_ENTRIES:
        hint = ""
        if codes.used_x * codes.used_y <= MAX_DTM_ENTRIES:
            hint = (f"; only {codes.used_x} x and {codes.used_y} y codes occur: renumber them first "
                    "(np.unique(codes, return_inverse=True)[1])")
        raise ValueError(
            f"dtm: a dense |Y| x |X| = {ny} x {nx} DTM needs {nx * ny * 8 / 2**30:.1f} GiB (limit "
            f"{MAX_DTM_ENTRIES} entries){hint}; or use tasklens.hgr.ace(x, y, k=...) for the leading correlations "
            "of large alphabets, which works on the sparse joint counts")
    xs, ys = to_host(codes.x), to_host(codes.y)
    n = xs.shape[0]
    joint = np.bincount(ys * nx + xs, minlength=nx * ny).reshape(ny, nx) / n
    p_x, p_y = joint.sum(axis=0), joint.sum(axis=1)
    modes = codes.num_modes
    if modes > 0:
        sx, sy = np.sqrt(p_x), np.sqrt(p_y)
        inv_sx = np.divide(1.0, sx, out=np.zeros_like(sx), where=sx > 0)
        inv_sy = np.divide(1.0, sy, out=np.zeros_like(sy), where=sy > 0)
        matrix = joint * inv_sy[:, None] * inv_sx[None, :] - np.outer(sy, sx)
        sv = np.ascontiguousarray(np.linalg.svd(matrix, compute_uv=False)[:modes])
        optimal = float(np.sum(matrix * matrix))
    else:  # one x or one y value: independent, B~ = 0 exactly
        matrix, sv, optimal = np.zeros((ny, nx)), np.zeros(0), 0.0
    return DTMResult(*codes.backend.out((matrix, sv, optimal, p_x, p_y)))
