"""Tiled, fused segmented nearest-neighbour search (the engine behind :mod:`tasklens.domain.distance`).

For target rows ``x_i`` and source rows ``y_j`` grouped into datasets (segments), the engine finds, for every
target row and every source dataset, the source row of that dataset nearest to ``x_i`` and its exact distance.

How it works (CPU):

1. Rows are centred on a common float32 centre ``c`` (and, for the cosine metric, normalised first), scaled by a
   power of two, and kept as float32 ``x' = fl(x - c)``. Centring removes the cancellation of the expansion
   ``|x|^2 + |y|^2 - 2 x.y`` for data far from the origin.
2. Fixed tiles of ``tile`` target rows x ``tile`` source rows are multiplied with BLAS sgemm (numpy float32
   matmul; or the native AVX2/FMA micro-kernel with ``gemm="native"``), and each tile is folded by the native
   ``distance_reduce_rows`` (every target row's per-dataset minimum score ``|y'|^2 - 2 x'.y'``) and, for the
   reverse direction, ``distance_reduce_cols`` (the transposed segmented minima, from the same tile).
   Only one tile (``tile**2`` floats) is alive at a time.
3. Every source row whose approximate score lies within twice a rigorous float32 error bound of the best one
   (``score_error_bound`` in ``cpp/include/tasklens/distance_math.h``) is kept as a candidate (up to
   ``_C.distance_candidates``; beyond that the whole dataset is re-scanned), and ``distance_finalize``
   re-scores the candidates exactly in float64 from the original rows. The winner is the smallest exact
   distance, ties to the smaller index, so results are bit-identical for any thread count, tile size or
   BLAS summation order.

Range: rows whose largest magnitude lies outside ``[2**-100, 2**100]`` (where squared distances would overflow
or underflow float64, and norms with them) are first multiplied by one power of two (exact) so that the largest
magnitude lies in ``[0.5, 1)``; the distances are computed on those rows and multiplied back (``euclidean`` by the
inverse power, ``sqeuclidean`` by its square, ``cosine`` unchanged: it does not depend on scale). A result that
does not fit float64 once multiplied back is an error, never a silent 0 or inf (:func:`unscale`).

For the all-pairs matrix on one stack of rows, the distance matrix of the stack is symmetric, so only tiles
``I <= J`` are formed: the row reduction of tile (I, J) serves targets in I, the column reduction serves
targets in J. That halves the arithmetic compared with one search per ordered pair.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

from .._dispatch import Backend, call
from .._native import native
from .._threads import get_num_threads
from .._validation import check_int

METRIC_CODES = {"euclidean": 0, "sqeuclidean": 1, "cosine": 2}
_U32 = 2.0 ** -24
_CHUNK = 8192
#: Largest magnitudes inside this range are used as given; outside it rows are rescaled by a power of two.
SAFE_RANGE = (2.0 ** -100, 2.0 ** 100)
_TINY = np.finfo(np.float64).tiny
#: The engine works on numpy arrays on the CPU (callers convert once and return ``be.out(...)``).
_HOST = Backend("numpy", "cpu", "float32")


def range_exponent(amax: float, safe: tuple[float, float] = SAFE_RANGE) -> int:
    """The exponent ``e`` of the power of two ``2**e`` that brings the largest magnitude ``amax`` into
    ``[0.5, 1)`` when ``amax`` lies outside ``safe`` (0 inside it, and for all-zero data)."""
    if amax == 0 or safe[0] <= amax <= safe[1]:
        return 0
    return -math.frexp(amax)[1]


def times_pow2(x, e: int):
    """``x * 2**e`` (numpy array or torch tensor, any ``e``), exact unless the result leaves the range of the
    dtype. The product is formed in float64 in steps of at most ``2**1000`` (each factor representable) and cast
    back, so a float32 ``x`` keeps its dtype and its exact scaled value."""
    if e == 0:
        return x
    wide = x.astype(np.float64) if isinstance(x, np.ndarray) else x.double()
    step = 1000 if e > 0 else -1000
    left = e
    with np.errstate(over="ignore", under="ignore"):  # over/underflow is detected by the caller (unscale)
        while left != 0:
            k = step if abs(left) > 1000 else left
            wide = wide * math.ldexp(1.0, k)
            left -= k
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(wide.astype(x.dtype, copy=False))
    return wide.to(x.dtype).contiguous()


def unscale(dist, e: int, metric: str, amax: float):
    """Distances of rows scaled by ``2**e`` back to the original scale (numpy or torch, float64).

    ``euclidean`` distances are multiplied by ``2**-e``, ``sqeuclidean`` by ``2**-2e``; ``cosine`` is unchanged.
    Raises ``ValueError`` when a non-zero distance leaves float64's normal range (overflow to inf, or underflow
    below 2.2e-308 where precision is lost), naming the metric and the inputs' largest magnitude.
    """
    if e == 0 or metric == "cosine":
        return dist
    back = times_pow2(dist, -e if metric == "euclidean" else -2 * e)
    nonzero = dist != 0
    over = (back == math.inf) & nonzero
    bad = over | ((abs(back) < _TINY) & nonzero)
    if bool(bad.any()):
        kind = "overflow" if bool(over.any()) else "underflow"
        other = " or 'euclidean'" if metric == "sqeuclidean" else ""
        raise ValueError(f"metric={metric!r}: the distances of these inputs (largest |value| {amax:.3g}) {kind} "
                         f"float64's normal range, so they cannot be returned exactly; use metric='cosine' (which "
                         f"does not depend on scale){other}, or rescale the features")
    return back


def prescale(arrays, safe: tuple[float, float] = SAFE_RANGE):
    """``(scaled arrays, e, amax)``: every array times the one power of two ``2**e`` chosen from the largest
    magnitude ``amax`` of all of them (:func:`range_exponent`); arrays are returned unchanged when ``e == 0``."""
    amax = 0.0
    for x in arrays:  # max and -min: no full-size |x| temporary
        if isinstance(x, np.ndarray):
            if x.size:
                amax = max(amax, float(x.max()), -float(x.min()))
        elif x.numel():
            lo, hi = x.detach().aminmax()
            amax = max(amax, float(hi), -float(lo))
    e = range_exponent(amax, safe)
    return [times_pow2(x, e) for x in arrays], e, amax


#: Thread count of segmented_nearest calls that do not pass ``threads`` (set by :func:`kernel_threads`, per
#: thread / task: a caller running tiles concurrently sets it in each of its own worker threads).
_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar("tasklens_kernel_threads", default=None)


@contextlib.contextmanager
def kernel_threads(threads: int | None):
    """Within this block, on this thread only, :func:`segmented_nearest` runs with ``threads`` (None or 1)
    unless a call passes its own; the process-wide count (:func:`tasklens.set_num_threads`) is untouched."""
    token = _THREADS.set(check_int(threads, "kernel_threads: threads", min=1, max=1, allow_none=True))
    try:
        yield
    finally:
        _THREADS.reset(token)


def _blas_threads(threads: int):
    """Limit BLAS to ``threads`` (same threads for the GEMM and the native reductions)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(offsets)).astype(np.int32)


def zero_row_error(name: str, row: int, x) -> ValueError:
    """The error for a row without a direction (cosine metric); shared by the CPU and CUDA paths."""
    return ValueError(f"{name}: row {row} is all zeros (or too small next to the largest row to have a direction "
                      f"in float64), which has no cosine distance; drop zero rows or use metric='euclidean' "
                      f"(shape {tuple(x.shape)}, dtype {str(x.dtype).replace('torch.', '')})")


def inverse_norms(x: np.ndarray, name: str) -> np.ndarray:
    """1/|x_i| in float64 (cosine metric); zero rows have no direction and are rejected. ``x`` is range-scaled
    (:func:`prescale`), so a norm is zero only for an all-zero row (or one below 2**-1074 of the largest)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    if np.any(norms == 0):
        raise zero_row_error(name, int(np.flatnonzero(norms == 0)[0]), x)
    return 1.0 / norms


class _Prepared:
    """Centred float32 rows, their squared norms, and per-row / per-dataset norms for the error bound."""

    def __init__(self, x: np.ndarray, inv: np.ndarray | None, centre: np.ndarray, scale: float, offsets):
        n = x.shape[0]
        if inv is None and x.dtype == np.float32 and not np.any(centre) and scale == 1.0:
            self.rows = x
        else:
            # chunked, so that no full-size float64 temporary exists
            self.rows = np.empty(x.shape, dtype=np.float32)
            for b in range(0, n, _CHUNK):
                rows = x[b:b + _CHUNK] * inv[b:b + _CHUNK, None] if inv is not None else x[b:b + _CHUNK]
                if rows.dtype == np.float32:  # centre is float32-representable and scale a power of two
                    self.rows[b:b + _CHUNK] = (rows - centre.astype(np.float32)) * np.float32(scale)
                else:
                    self.rows[b:b + _CHUNK] = (rows - centre) * scale
        sq = np.empty(n, dtype=np.float64)
        for b in range(0, n, _CHUNK):
            r = self.rows[b:b + _CHUNK].astype(np.float64)
            sq[b:b + _CHUNK] = np.einsum("ij,ij->i", r, r)
        self.norm32 = sq.astype(np.float32)
        self.norm = np.sqrt(sq)
        self.offsets = offsets
        self.segments = segment_ids(offsets)
        sizes = np.diff(offsets)
        self.seg_max_norm = np.maximum.reduceat(self.norm, offsets[:-1]) if len(sizes) else np.zeros(0)


def _centre_and_scale(parts: list[np.ndarray], invs: list[np.ndarray | None]):
    """A common centre (float32-representable) and a power-of-two scale for all rows."""
    total = sum(p.shape[0] for p in parts)
    s = sum((p * i[:, None] if i is not None else p).sum(axis=0, dtype=np.float64) for p, i in zip(parts, invs))
    mean = (s / total).astype(np.float32).astype(np.float64)
    spread = 0.0
    for p, i in zip(parts, invs):
        rows = p * i[:, None] if i is not None else p
        spread = max(spread, float(np.max(rows.max(axis=0) - mean)), float(np.max(mean - rows.min(axis=0))))
    mean_sq = float(mean @ mean)
    # mean |x - c|^2 = mean |x|^2 - |c|^2 (cheap, chunked)
    sq = sum(float(np.einsum("ij,ij->", r, r, dtype=np.float64))
             for p, i in zip(parts, invs) for b in range(0, p.shape[0], _CHUNK)
             for r in [p[b:b + _CHUNK] * i[b:b + _CHUNK, None] if i is not None else p[b:b + _CHUNK]])
    var = max(sq / total - mean_sq, 0.0)
    # Skip the centring copy for float32 data that is already nearly centred (|c|^2 <= mean |x - c|^2 / 4: the
    # expansion then loses < 1 bit and the error bound, which uses the actual norms, still covers it);
    # otherwise centre, and scale so the largest |x - c| is near 1.
    centred = not (all(p.dtype == np.float32 for p in parts) and all(i is None for i in invs)
                   and mean_sq <= 0.25 * var and 1e-10 < spread < 1e10)
    centre = mean if centred else np.zeros_like(mean)
    scale = 2.0 ** -math.frexp(spread)[1] if (centred and spread > 0) else 1.0
    return centre, scale


def _state(n: int, m: int, eps2: np.ndarray):
    k = int(native().distance_candidates)
    return native().DistanceState(
        np.full((n, m), np.inf, dtype=np.float32), np.ascontiguousarray(eps2, dtype=np.float32),
        np.zeros((n, m), dtype=np.int8), np.zeros((n, m, k), dtype=np.int32),
        np.zeros((n, m, k), dtype=np.float32))


def _guard(a: np.ndarray, seg_max: np.ndarray, d: int) -> np.ndarray:
    """Twice the score error bound (score_error_bound in distance_math.h), (len(a), len(seg_max)) float32.

    Formed in row chunks of about ``_CHUNK`` elements, so that the float64 temporaries stay small (cache
    sized) instead of (len(a), len(seg_max)) each; every element is the same float64 expression as a whole-
    array evaluation, so the guard does not depend on the chunking.
    """
    gamma = d * _U32 / (1.0 - d * _U32)
    out = np.empty((len(a), len(seg_max)), dtype=np.float32)
    r = seg_max[None, :]
    step = max(1, _CHUNK // max(len(seg_max), 1))
    for b in range(0, len(a), step):
        ab = a[b:b + step, None]
        bound = 1.01 * (2.0 * gamma * ab * r + _U32 * (2.0 * r * r + 2.0 * ab * r)
                        + 4.0 * _U32 * (ab + r) ** 2) + 1e-30
        # Round up so that the float32 guard is never below the float64 bound.
        out[b:b + step] = np.nextafter((2.0 * bound).astype(np.float32), np.float32(np.inf))
    return out


def segmented_nearest(tgt: np.ndarray, off_t: np.ndarray, src: np.ndarray | None = None,
                      off_s: np.ndarray | None = None, *, metric: str = "euclidean", both: bool = False,
                      tile: int = 2048, gemm: str = "blas", threads: int | None = None):
    """Per-row, per-dataset nearest neighbours.

    Parameters
    ----------
    tgt : (n_t, d) float32/float64, C-contiguous; target rows, datasets given by ``off_t`` (M_t + 1,).
    src, off_s : source rows and offsets; ``None`` means the same stack as the targets (all-pairs matrix,
        which also fills the reverse direction for free).
    both : also return the reverse direction (source rows against target datasets).
    threads : None (default) or 1. None: the process-wide count (:func:`tasklens.get_num_threads`), unless
        the call runs inside :func:`kernel_threads`; 1: every native kernel runs on the calling thread only,
        without changing tasklens' process-wide count (for callers that run several calls at once in their
        own threads), and BLAS is limited to one thread around the GEMMs (threadpoolctl; BLAS has only a
        process-wide limit). Results are bit-identical either way.

    Returns
    -------
    ``(dist_ts, idx_ts)`` of shapes (n_t, M_s), plus ``(dist_st, idx_st)`` (n_s, M_t) when ``both`` and not
    the same stack. ``dist`` is float64, ``idx`` indexes rows of the source stack. Rows of extreme magnitude are
    rescaled by a power of two first and the distances scaled back (module docstring).
    """
    threads = check_int(threads, "segmented_nearest: threads", min=1, max=1, allow_none=True)
    if threads is None:
        threads = _THREADS.get()
    same = src is None
    scaled, e, amax = prescale([tgt] if same else [tgt, src])
    tgt, src = scaled[0], (None if same else scaled[1])
    result = _segmented_nearest(tgt, off_t, src, off_s, metric=metric, both=both, tile=tile, gemm=gemm,
                                serial=threads == 1)
    return tuple(unscale(r, e, metric, amax) if k % 2 == 0 else r for k, r in enumerate(result))


def _segmented_nearest(tgt, off_t, src, off_s, *, metric, both, tile, gemm, serial=False):
    same = src is None
    if same:
        src, off_s = tgt, off_t
    code = METRIC_CODES[metric]
    inv_t = inverse_norms(tgt, "target") if metric == "cosine" else None
    inv_s = (inv_t if same else inverse_norms(src, "source")) if metric == "cosine" else None
    parts, invs = ([tgt], [inv_t]) if same else ([tgt, src], [inv_t, inv_s])
    centre, scale = _centre_and_scale(parts, invs)
    pt = _Prepared(tgt, inv_t, centre, scale, off_t)
    ps = pt if same else _Prepared(src, inv_s, centre, scale, off_s)
    d = tgt.shape[1]
    st_t = _state(tgt.shape[0], len(off_s) - 1, _guard(pt.norm, ps.seg_max_norm, d))
    st_s = None
    if both and not same:
        st_s = _state(src.shape[0], len(off_t) - 1, _guard(ps.norm, pt.seg_max_norm, d))
    n_t, n_s = tgt.shape[0], src.shape[0]
    buf = np.empty((min(tile, n_t), min(tile, n_s)), dtype=np.float32)
    with _blas_threads(1 if serial else get_num_threads()):
        for i0 in range(0, n_t, tile):
            a = pt.rows[i0:i0 + tile]
            for j0 in range(i0 if same else 0, n_s, tile):
                b = ps.rows[j0:j0 + tile]
                out = buf[: a.shape[0], : b.shape[0]]
                if out.shape[1] != buf.shape[1]:
                    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
                if gemm == "native":
                    call("distance_tile_dot", _HOST, a, b, out, serial)
                else:
                    np.matmul(a, b.T, out=out)
                call("distance_reduce_rows", _HOST, out, i0, j0, ps.norm32, ps.segments, off_s, st_t, serial)
                if same and j0 != i0:
                    call("distance_reduce_cols", _HOST, out, i0, j0, pt.norm32, pt.segments, off_t, st_t, serial)
                elif st_s is not None:
                    call("distance_reduce_cols", _HOST, out, i0, j0, pt.norm32, pt.segments, off_t, st_s, serial)
    result = call("distance_finalize", _HOST, st_t, tgt, inv_t, src, inv_s, off_s, code, serial)
    if st_s is not None:
        result = result + call("distance_finalize", _HOST, st_s, src, inv_s, tgt, inv_t, off_t, code, serial)
    return result
