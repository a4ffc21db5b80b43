"""CPU engine of the streaming H-score (:class:`tasklens.metrics.HScoreAccumulator`).

Native moments and class sums (``cpp/src/hscore.cpp``) and numpy BLAS ``syrk`` for the block scatter, run as
single-threaded tasks on a pool of ``tasklens.get_num_threads()`` workers (see :class:`CpuEngine`). The math
and the state live in :mod:`tasklens.metrics.hscore`; this module only runs blocks of numpy input into it.
"""

from __future__ import annotations

import numpy as np

from .._native import native
from .._threads import get_num_threads
from .hscore import ScaleOverflow, moments_ok, narrowest

#: Class-sum state (T x C x F float64) up to which each part of a block is read once for its moments and class
#: sums together (the state stays in cache); larger states have their class sums split by targets or columns.
FUSED_STATE_BYTES = 1 << 20


class CpuEngine:
    """Block loop on the CPU: native moments and class sums, numpy BLAS for the block scatter.

    The work of a block is cut into single-threaded tasks whose boundaries depend only on the sizes, run on a
    pool of ``tasklens.get_num_threads()`` workers with BLAS held at one thread, so the cores never run more
    threads than they have and results are bit-identical for any thread count. Each part of the block's
    rows (two halves by default, see :data:`PART_ROWS`) has its moments and its scatter (one BLAS ``syrk`` in
    the input's precision, added in float64). Small class-sum states are summed in the same read as the moments (``hscore_half_pass``, one task per part);
    large ones (many targets) by tasks split by targets or feature columns after the moments. Both give the
    same bits: per part, each class's rows are added in row order, then the parts in order.
    Block ``k + 1`` is centred on block ``k``'s mean, known once block ``k``'s class sums are done.
    """

    @staticmethod
    def update(acc, x: np.ndarray, y: np.ndarray, dtype: str) -> None:
        """Fold rows ``x`` (N, F) numpy with labels ``y`` (N, T) int64 into ``acc._state`` (created when None).

        Raises :class:`ScaleOverflow` before touching the state when a block's moments are not finite (or, for
        float32, could overflow the float32 scatter): every earlier block of the call is then folded whole."""
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        f, c, t = acc.num_features, acc.num_classes, y.shape[1]
        st = acc._state
        if st is None:
            st = acc._state = {"n": 0, "mean": np.zeros(f), "scatter": np.zeros((f, f)), "v3": np.zeros(f),
                               "q4": 0.0, "shift": None, "class_sums": np.zeros((t, c, f)),
                               "class_counts": np.zeros((t, c), dtype=np.int64), "dtype": dtype}
        st["dtype"] = narrowest(st["dtype"], dtype)
        workers = get_num_threads()
        fused = t * c * f * 8 <= FUSED_STATE_BYTES
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
            loop = CpuEngine._fused if fused else CpuEngine._split
            loop(acc, st, x, y, pool, workers)

    @staticmethod
    def _fold(st: dict, grams: list, rows: int, mean_b, v3_b, q4_b, d, xb) -> None:
        """Fold one block's summary into the state (Chan). ``d`` (block mean - shift) is None for a block
        centred on its own mean. Moments about the shift are re-centred exactly; the moments and Gram of a block
        whose mean is far from the shift (n d_f^2 > S_ff / 2 for some feature: drifting or sorted rows) are redone
        by the two-pass path, so the float32 scatter never loses more than one bit to the shifted centring."""
        C = native()
        gram = grams[0].astype(np.float64)
        for g in grams[1:]:
            gram += g
        if d is not None:
            if np.any(2.0 * rows * d * d > np.diagonal(gram)):
                mean_b, xc, v3_b, q4_b = C.hscore_block_moments(xb)  # finite: checked when first read
                gram = _gram(xc).astype(np.float64)  # rare path: one call, outside the pipeline
                del xc
            else:
                q4_b = C.hscore_recentre_moments(float(rows), d, gram, v3_b, float(q4_b), serial=True)
        # F x F work on the main thread while the workers run: serial, so it never waits for a core
        st["q4"] = C.hscore_merge_moments(float(st["n"]), st["mean"], st["scatter"], st["v3"], float(st["q4"]),
                                          float(rows), mean_b, gram, v3_b, float(q4_b), serial=True)
        st["n"] += rows

    @staticmethod
    def _fused(acc, st, x, y, pool, workers) -> None:
        """One task per part of a block: moments and class sums in one read (into the task's own buffers),
        then the part's scatter. The next block's tasks are queued before this block is folded."""
        C = native()
        f, c, t = acc.num_features, acc.num_classes, y.shape[1]
        step, n = acc.block_rows, x.shape[0]

        def half(xh, yh, shift, offset):
            sums, counts, total = np.zeros((t, c, f)), np.zeros((t, c), np.int64), np.zeros(f)
            if shift is None:  # xh is already centred (a block centred on its own mean)
                C.hscore_class_sums(xh, yh, offset, sums, counts, total, serial=True)
                xc, v3, q4 = xh, None, None
            else:
                xc, v3, q4 = C.hscore_half_pass(xh, shift, yh, offset, sums, counts, total)
                if not moments_ok(q4, xh.shape[0], xh.dtype):  # q4 sums every element's square
                    return None
            return v3, q4, sums, counts, total, _gram(xc)

        def submit(r0, shift, xb_centred=None, offset=None):
            xb = x[r0:r0 + step] if xb_centred is None else xb_centred
            yb = y[r0:r0 + step]
            return [pool.submit(half, xb[a:b], np.ascontiguousarray(yb[a:b]), shift, offset)
                    for a, b in _parts(xb.shape[0])]

        prev_mean = st["mean"].copy() if st["n"] > 0 else None
        queued = None
        for r0 in range(0, n, step):
            xb = x[r0:r0 + step]
            rows = xb.shape[0]
            if prev_mean is None:  # first block: two-pass moments about its own mean
                mean_b, xc, v3_b, q4_b = C.hscore_block_moments(xb)
                if not (np.isfinite(mean_b).all() and moments_ok(q4_b, rows, xb.dtype)):
                    raise ScaleOverflow()
                if st["shift"] is None:
                    st["shift"] = mean_b.copy()
                results = [fut.result() for fut in submit(r0, None, xc, mean_b - st["shift"])]
                del xc
                d = None
            else:
                if queued is None:
                    queued = submit(r0, prev_mean, offset=prev_mean - st["shift"])
                results = [fut.result() for fut in queued]
                queued = None
                if any(res is None for res in results):
                    raise ScaleOverflow()  # every earlier block is folded whole, this one not at all
                v3_b = _sum_in_order([res[0] for res in results])
                q4_b = sum(float(res[1]) for res in results)
                total = _sum_in_order([res[4] for res in results])
                d = total / rows
                mean_b = prev_mean + d
            prev_mean = mean_b
            if r0 + step < n:
                queued = submit(r0 + step, mean_b, offset=mean_b - st["shift"])
            for res in results:
                st["class_sums"] += res[2]
                st["class_counts"] += res[3]
            CpuEngine._fold(st, [res[5] for res in results], rows, mean_b, v3_b, q4_b, d, xb)

    @staticmethod
    def _split(acc, st, x, y, pool, workers) -> None:
        """Many targets: moments per part, then class-sum tasks by targets or columns writing the state
        directly (disjoint elements) alongside the parts' scatters; the next block's moments overlap them."""
        C = native()
        f, t = acc.num_features, y.shape[1]
        step, n = acc.block_rows, x.shape[0]
        parts = _class_sum_parts(t, f, workers)

        def class_sums(part, xcs, ys, offset, totals) -> None:
            targets, columns = part
            for xc_h, y_h, total in zip(xcs, ys, totals):
                C.hscore_class_sums(xc_h, y_h, offset, st["class_sums"], st["class_counts"], total,
                                    targets=targets, columns=columns, serial=True)

        def moments_ahead(r0: int, shift: np.ndarray):
            xb = x[r0:r0 + step]
            return [pool.submit(C.hscore_block_moments_shifted, xb[a:b], shift, serial=True)
                    for a, b in _parts(xb.shape[0])]

        prev_mean = st["mean"].copy() if st["n"] > 0 else None
        pending = ahead = None
        try:
            for r0 in range(0, n, step):
                xb = x[r0:r0 + step]
                rows = xb.shape[0]
                halves = _parts(rows)
                if prev_mean is None:
                    mean_b, xc, v3_b, q4_b = C.hscore_block_moments(xb)
                    finite = np.isfinite(mean_b).all() and moments_ok(q4_b, rows, xb.dtype)
                    xcs = [xc[a:b] for a, b in halves]
                    del xc
                else:
                    outs = [fut.result() for fut in (ahead or moments_ahead(r0, prev_mean))]
                    ahead = None
                    xcs = [o[0] for o in outs]
                    v3_b = _sum_in_order([o[1] for o in outs])
                    q4_b = sum(float(o[2]) for o in outs)
                    finite = moments_ok(q4_b, rows, xb.dtype)  # q4 sums every element's square
                if not finite:
                    if pending is not None:  # keep the state whole: every earlier block fully folded
                        CpuEngine._fold(st, [g.result() for g in pending[0]], *pending[1:])
                        pending = None
                    raise ScaleOverflow()
                if prev_mean is None:
                    if st["shift"] is None:
                        st["shift"] = mean_b.copy()
                    offset = mean_b - st["shift"]
                else:
                    offset = prev_mean - st["shift"]
                yb = y[r0:r0 + step]
                ys = [np.ascontiguousarray(yb[a:b]) for a, b in halves]
                totals = [np.zeros(f) for _ in halves]
                sums = [pool.submit(class_sums, part, xcs, ys, offset, totals) for part in parts]
                # numpy recognises a.T @ a and calls BLAS syrk (half the flops of a general product)
                grams = [pool.submit(_gram, xc_h) for xc_h in xcs]
                for fut in sums:
                    fut.result()
                if prev_mean is None:
                    d = None
                else:
                    d = _sum_in_order(totals) / rows
                    mean_b = prev_mean + d
                prev_mean = mean_b
                if r0 + step < n:
                    ahead = moments_ahead(r0 + step, mean_b)
                if pending is not None:
                    CpuEngine._fold(st, [g.result() for g in pending[0]], *pending[1:])
                pending = (grams, rows, mean_b, v3_b, q4_b, d, xb)
                del xcs  # the workers hold the block until its scatter is formed
            if pending is not None:
                CpuEngine._fold(st, [g.result() for g in pending[0]], *pending[1:])
                pending = None
        finally:
            for fut in (pending[0] if pending is not None else []) + (ahead or []):
                fut.cancel()


#: Most rows in one part of a block. A block is cut into max(2, ceil(rows / PART_ROWS)) near-equal parts, each
#: with its own moments, class-sum pass and BLAS ``syrk`` task: the default block (16384 rows for F = 512
#: float32) has two halves; a larger ``block_rows`` gives more parts, and so more workers, per block.
PART_ROWS = 8192


def _parts(rows: int) -> list[tuple[int, int]]:
    """The fixed row ranges of a block (see :data:`PART_ROWS`; cuts depend on ``rows`` only)."""
    if rows <= 1:
        return [(0, rows)]
    count = max(2, -(-rows // PART_ROWS))
    cuts = [-(-i * rows // count) for i in range(count + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(count)]


def _sum_in_order(arrays: list) -> np.ndarray:
    """((a0 + a1) + a2) + ...: per-part partial sums added in part order."""
    out = arrays[0]
    for a in arrays[1:]:
        out = out + a
    return out


def _class_sum_parts(targets: int, features: int, workers: int) -> list[tuple]:
    """(targets range, columns range) of each class-sum task: targets split when there are many, else
    feature columns cut at the native tile. Any split gives the same numbers."""
    if workers <= 1:
        return [(None, None)]
    if targets >= 4 * workers:
        cuts = np.linspace(0, targets, workers + 1).round().astype(int)
        return [((int(a), int(b)), None) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    tile = int(native().hscore_class_tile)
    tiles = -(-features // tile)
    cuts = np.linspace(0, tiles, min(workers, tiles) + 1).round().astype(int)
    return [(None, (int(a) * tile, min(features, int(b) * tile))) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _gram(xc: np.ndarray) -> np.ndarray:
    return np.dot(xc.T, xc)


