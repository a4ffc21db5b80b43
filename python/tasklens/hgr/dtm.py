"""The divergence transition matrix (DTM, Def. 1 of the H-score paper) of two discrete variables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dispatch import to_numpy
from ._codes import check_codes, out

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
    optimal_hscore : float, ``||B~||_F^2 = sum_i sigma_i^2``, the H-score of the optimal features
        H_T(f_opt) (Corollary 1, Sec. 4.2).
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
        arrays in the caller's kind (torch input gives torch tensors on the input's device).

    Raises
    ------
    ValueError
        When |Y| * |X| exceeds :data:`MAX_DTM_ENTRIES` (the dense matrix would need more than 512 MiB);
        use :func:`tasklens.hgr.ace`, which works on the sparse joint counts, for large alphabets.

    Notes
    -----
    Time O(N + |X| |Y| min(|X|, |Y|)) (a dense SVD); memory 8 |X| |Y| bytes for the matrix plus the SVD
    workspace. Deterministic. With a single distinct x or y value the variables are independent:
    ``singular_values`` is empty and ``optimal_hscore`` is 0.

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
        raise ValueError(
            f"dtm: a dense |Y| x |X| = {ny} x {nx} DTM needs {nx * ny * 8 / 2**30:.1f} GiB (limit "
            f"{MAX_DTM_ENTRIES} entries); use tasklens.hgr.ace(x, y, k=...) for the leading correlations of "
            "large alphabets, which works on the sparse joint counts")
    xs = to_numpy(codes.x.cpu()) if codes.kind == "torch" else codes.x
    ys = to_numpy(codes.y.cpu()) if codes.kind == "torch" else codes.y
    n = xs.shape[0]
    joint = np.bincount(ys * nx + xs, minlength=nx * ny).reshape(ny, nx) / n
    p_x, p_y = joint.sum(axis=0), joint.sum(axis=1)
    sx, sy = np.sqrt(p_x), np.sqrt(p_y)
    inv_sx = np.divide(1.0, sx, out=np.zeros_like(sx), where=sx > 0)
    inv_sy = np.divide(1.0, sy, out=np.zeros_like(sy), where=sy > 0)
    matrix = joint * inv_sy[:, None] * inv_sx[None, :] - np.outer(sy, sx)
    modes = codes.num_modes
    sv = np.linalg.svd(matrix, compute_uv=False)[:modes] if modes > 0 else np.zeros(0)
    return DTMResult(out(matrix, codes), out(np.ascontiguousarray(sv), codes), float(np.sum(matrix * matrix)),
                     out(p_x, codes), out(p_y, codes))
