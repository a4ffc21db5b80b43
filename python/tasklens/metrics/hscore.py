"""H-score (Def. 2 of Bao et al., ICLR 2019) and its Ledoit-Wolf regularized form, streamed in one pass.

The engine reads the features in fixed blocks of rows. For each block the native kernels
(``cpp/src/hscore.cpp``, ``cuda/hscore.cu``) compute, in float64, the centred block ``xc = x - s``, the
fourth-order norm moments used by Ledoit-Wolf, and the per-class counts and sums for one or many label
vectors (on the CPU, blocks after the first are read once: ``s`` is the previous block's mean, the block's
own mean comes from its class sums and the moments are re-centred on it exactly; the first block, and any
block whose mean lies far from ``s``, use ``s`` = its own mean from a separate pass); the block scatter ``xc.T @ xc`` is formed by BLAS (numpy ``syrk`` on CPU, cuBLAS
through torch on CUDA) in the input's precision, promoted to float64. On the CPU a block is cut into
single-threaded tasks fixed by the sizes (moments and ``syrk`` of each part of its rows, two halves by
default; class sums by
targets or by feature columns) run on a pool of ``tasklens.get_num_threads()`` workers, so the next block's
moments overlap this block's scatter and no core runs two threads. Blocks are folded into the running
summary by Chan's exact pairwise update. No N x F class-mean copy is ever built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dispatch import backend_of, cuda_args, dtype_code, ptr, to_numpy
from .._native import native, require_cuda
from .._threads import get_num_threads
from .._validation import check_array, check_choice, check_labels, check_positive, describe, is_torch

__all__ = ["hscore", "HScoreAccumulator", "hscore_from_state"]

#: Bytes of features per block (the default block is ``BLOCK_BYTES / (F * itemsize)`` rows, clamped to
#: [1024, 65536]: 16384 rows for F = 512 float32). Blocks are cut relative to the start of each ``update``.
BLOCK_BYTES = 32 << 20


def default_block_rows(num_features: int, itemsize: int = 4) -> int:
    """Rows per block for F features of ``itemsize`` bytes (see :data:`BLOCK_BYTES`)."""
    return int(min(65536, max(1024, BLOCK_BYTES // max(1, num_features * itemsize))))
_SHRINKAGE = (None, "ledoit-wolf")
_STATE_KEYS = ("n", "mean", "scatter", "v3", "q4", "shift", "class_sums", "class_counts")


def default_rtol(num_features: int, dtype: str) -> float:
    """Default relative pseudo-inverse tolerance: ``num_features * eps(dtype)``.

    Eigenvalues of the feature covariance below ``rtol * largest eigenvalue`` are treated as zero.
    ``dtype`` is the precision the block scatter was formed in (that of the input features).
    """
    return max(int(num_features), 1) * float(np.finfo(np.dtype(dtype)).eps)


def _ledoit_wolf_alpha(n: float, cov: np.ndarray, q4: float) -> float:
    """Ledoit-Wolf (2004) shrinkage intensity from streaming moments (same estimator as scikit-learn).

    ``cov`` is the biased covariance, ``q4 = sum_i |x_i - mean|^4``.
    """
    f = cov.shape[0]
    if f == 1:
        return 0.0
    mu = float(np.trace(cov)) / f
    delta_ = float(np.sum(cov * cov))
    beta = (q4 / n - delta_) / (f * n)
    delta = (delta_ - 2.0 * mu * float(np.trace(cov)) + f * mu * mu) / f
    beta = min(beta, delta)
    return 0.0 if beta <= 0 else float(beta / delta)


def _eigh(cov: np.ndarray):
    """Symmetric eigendecomposition on one BLAS thread: an F x F problem gains little from threads, and
    a multi-threaded LAPACK call can stall for seconds on a loaded machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return np.linalg.eigh(cov)


def hscore_from_state(state: dict, *, shrinkage: str | None = None, rtol: float | None = None) -> np.ndarray:
    """H-scores (one per target) from an accumulator state dict (see :meth:`HScoreAccumulator.state_dict`).

    ``H_t = tr(Sigma^+ Sigma_t,between)`` with ``Sigma = scatter / n`` and
    ``Sigma_t,between = sum_c (n_tc / n) (mu_tc - mu)(mu_tc - mu)^T``; the pseudo-inverse keeps the
    eigen-directions with eigenvalue above ``rtol * largest`` (default :func:`default_rtol`). With
    ``shrinkage="ledoit-wolf"``, ``Sigma`` becomes ``(1 - a) Sigma + a tr(Sigma)/F I`` and the between-class
    term is scaled by ``1 - a`` (Ibrahim et al., 2021), ``a`` the Ledoit-Wolf intensity.
    Returns a float64 array of shape (T,).
    """
    n = float(state["n"])
    if n < 2:
        raise ValueError(f"hscore: needs at least 2 samples, the accumulator holds {int(n)}")
    scatter = np.asarray(state["scatter"], dtype=np.float64)
    f = scatter.shape[0]
    cov = (scatter + scatter.T) / (2.0 * n)
    sums = np.asarray(state["class_sums"], dtype=np.float64)
    counts = np.asarray(state["class_counts"], dtype=np.float64)
    if rtol is None:
        rtol = default_rtol(f, state.get("dtype", "float64"))
    rtol = check_positive(rtol, "rtol", allow_zero=True)
    lam, vec = _eigh(cov)
    if shrinkage == "ledoit-wolf":
        alpha = _ledoit_wolf_alpha(n, cov, float(state["q4"]))
        lam = (1.0 - alpha) * lam + alpha * float(np.trace(cov)) / f
        between_scale = 1.0 - alpha
    else:
        between_scale = 1.0
    top = float(lam.max()) if lam.size else 0.0
    t = sums.shape[0]
    if top <= 0.0:
        return np.zeros(t)
    keep = lam > rtol * top
    inv = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
    # Class deviations mu_tc - mu = sums_tc / n_tc - (mean - shift), weighted by sqrt(n_tc / n), in the
    # eigenbasis: (sums_tc V) / n_tc - (mean - shift) V, one product over all T * C class sums.
    centre = np.asarray(state["mean"], dtype=np.float64) - np.asarray(state["shift"], dtype=np.float64)
    proj = sums.reshape(-1, f) @ vec  # (T*C, F); every step below is in place
    proj /= np.where(counts > 0, counts, 1.0).reshape(-1, 1)
    proj -= centre @ vec
    proj *= np.sqrt(counts / n).reshape(-1, 1)
    proj *= np.sqrt(inv)
    h = np.einsum("ij,ij->i", proj, proj)
    h = between_scale * h.reshape(t, -1).sum(axis=1)
    h[(counts > 0).sum(axis=1) <= 1] = 0.0  # one class: the between-class covariance is exactly 0
    return h


class HScoreAccumulator:
    """Streaming H-score: one pass over feature chunks, exact merges, serialisable state.

    Parameters
    ----------
    num_features : int
        Feature dimension F.
    num_classes : int
        Number of classes C; labels are codes in ``[0, C)`` (the same C for every target).
    num_targets : int, optional
        T label vectors that share the features. ``None`` (default) takes labels of shape (N,) and
        scores a float; an int takes labels of shape (N, T) and scores a (T,) array.
    block_rows : int, optional
        Rows per native block (default :func:`default_block_rows`: about 32 MiB of float32 features);
        results agree across block and chunk sizes to rounding.

    Notes
    -----
    State (float64): count n, mean (F,), scatter (F, F), Ledoit-Wolf moments v3 (F,) and q4, a shift
    (F,), class sums of ``x - shift`` (T, C, F) and class counts (T, C). Memory is
    ``O(F^2 + T C F)`` plus two blocks in flight on the CPU (``block_rows x F`` each, in the input dtype:
    the next block is centred while the previous one's scatter is formed). Each block costs BLAS
    ``xc.T @ xc`` (one single-threaded ``syrk`` per part of at most 8192 rows, two halves by default;
    O(block F^2) in all, BLAS held at one thread during ``update``) and O(block F T) native additions.
    Results are bit-identical for any thread count; different chunkings or merge orders agree to
    floating-point rounding (about 1e-13 relative on float64 input). float32 input: each part's scatter is
    formed by float32 BLAS over at most 8192 centred rows, everything else in float64. A larger
    ``block_rows`` cuts each block into more parts, which more worker threads can share.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import HScoreAccumulator, hscore
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(1000, 8)), rng.integers(0, 3, 1000)
    >>> acc = HScoreAccumulator(8, 3)
    >>> for i in range(0, 1000, 300):
    ...     _ = acc.update(x[i:i + 300], y[i:i + 300])
    >>> bool(np.isclose(acc.score(), hscore(x, y)))
    True
    """

    def __init__(self, num_features: int, num_classes: int, *, num_targets: int | None = None,
                 block_rows: int | None = None):
        self.num_features = _positive_int(num_features, "num_features")
        self.num_classes = _positive_int(num_classes, "num_classes")
        self.num_targets = None if num_targets is None else _positive_int(num_targets, "num_targets")
        self.block_rows = (default_block_rows(self.num_features) if block_rows is None
                           else _positive_int(block_rows, "block_rows"))
        self._state: dict[str, Any] | None = None
        self._backend = None

    # -- streaming -----------------------------------------------------------------------------------
    def update(self, features, labels) -> "HScoreAccumulator":
        """Add rows: ``features`` (N, F) float32/float64 and ``labels`` (N,) or (N, T) class codes."""
        x = check_array(features, "features", ndim=2, shape=(None, self.num_features), finite=False)
        want_ndim = 1 if self.num_targets is None else 2
        y = check_labels(labels, "labels", n=x.shape[0], ndim=want_ndim, num_classes=self.num_classes)
        if want_ndim == 2 and y.shape[1] != self.num_targets:
            raise ValueError(f"labels: expected shape (N, {self.num_targets}) for num_targets="
                             f"{self.num_targets}, got {describe(y)}")
        backend = backend_of(features=x)
        if is_torch(y) and backend.is_cuda:
            y = y.to(x.device)
        if self._backend is not None and self._backend.device != backend.device:
            raise ValueError(f"features: this accumulator holds state on {self._backend.device}, got "
                             f"{describe(x)}; keep every update on one device")
        if x.shape[0] == 0:
            return self
        return self._add(x, y, backend)

    def _add(self, x, y, backend) -> "HScoreAccumulator":
        """update() on validated input (features (N, F), labels (N,) or (N, T) int64 on x's device)."""
        self._backend = backend if self._backend is None else self._backend
        y2 = y.reshape(y.shape[0], -1)
        if backend.is_cuda:
            _CudaEngine.update(self, x, y2, backend)
        else:
            _CpuEngine.update(self, to_numpy(x), np.ascontiguousarray(to_numpy(y2)), backend.dtype)
        return self

    def merge(self, other: "HScoreAccumulator") -> "HScoreAccumulator":
        """Fold another accumulator's rows into this one (Chan's exact pairwise update); returns self."""
        if not isinstance(other, HScoreAccumulator):
            raise TypeError(f"other: expected an HScoreAccumulator, got {type(other).__name__}")
        for attr in ("num_features", "num_classes", "num_targets"):
            if getattr(self, attr) != getattr(other, attr):
                raise ValueError(f"other: {attr}={getattr(other, attr)} differs from this accumulator's "
                                 f"{getattr(self, attr)}")
        if other._state is None or other.n == 0:
            return self
        theirs = other.state_dict()
        if self._state is None:
            self._load(theirs)
            return self
        mine = self.state_dict()
        merged = _merge_states(mine, theirs)
        self._load(merged, keep_backend=True)
        return self

    @property
    def n(self) -> int:
        """Number of rows seen."""
        return 0 if self._state is None else int(self._state["n"])

    def score(self, *, shrinkage: str | None = None, rtol: float | None = None):
        """H-score (float) or scores (T,) of the rows seen; see :func:`hscore` for the definition."""
        check_choice(shrinkage, "shrinkage", _SHRINKAGE)
        if self._state is None:
            raise ValueError("hscore: the accumulator holds no samples; call update() first")
        h = hscore_from_state(self.state_dict(), shrinkage=shrinkage, rtol=rtol)
        return _as_output(h, self._backend, self.num_targets is not None)

    # -- serialisation -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The state as plain numpy arrays and Python scalars (picklable, ``np.savez``-able)."""
        meta = {"num_features": self.num_features, "num_classes": self.num_classes,
                "num_targets": self.num_targets}
        if self._state is None:
            return {**meta, "n": 0}
        out = {k: _host(v) for k, v in self._state.items()}
        out["n"] = int(out["n"])
        out["q4"] = float(out["q4"])
        return {**meta, **out}

    to_dict = state_dict

    @classmethod
    def from_dict(cls, state: dict) -> "HScoreAccumulator":
        """Rebuild an accumulator (on the CPU) from :meth:`state_dict` output."""
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict from state_dict(), got {type(state).__name__}")
        missing = [k for k in ("num_features", "num_classes", "num_targets", "n") if k not in state]
        if missing:
            raise ValueError(f"state: missing keys {missing}; pass the dict returned by state_dict()")
        acc = cls(state["num_features"], state["num_classes"], num_targets=state["num_targets"])
        if int(state["n"]) > 0:
            acc._load(state)
        return acc

    def load_state_dict(self, state: dict) -> "HScoreAccumulator":
        """Replace this accumulator's state with ``state`` (from :meth:`state_dict`)."""
        other = HScoreAccumulator.from_dict(state)
        for attr in ("num_features", "num_classes", "num_targets"):
            if getattr(self, attr) != getattr(other, attr):
                raise ValueError(f"state: {attr}={getattr(other, attr)} differs from {getattr(self, attr)}")
        self._state, self._backend = other._state, other._backend
        return self

    def _load(self, state: dict, keep_backend: bool = False) -> None:
        t = 1 if self.num_targets is None else self.num_targets
        f, c = self.num_features, self.num_classes
        shapes = {"mean": (f,), "scatter": (f, f), "v3": (f,), "shift": (f,), "class_sums": (t, c, f),
                  "class_counts": (t, c)}
        new = {"n": int(state["n"]), "q4": float(state["q4"]), "dtype": str(state.get("dtype", "float64"))}
        for key, shape in shapes.items():
            arr = np.array(state[key], dtype=np.int64 if key == "class_counts" else np.float64)
            if arr.shape != shape:
                raise ValueError(f"state: {key} has shape {arr.shape}, expected {shape}")
            new[key] = arr
        if keep_backend and self._backend is not None and self._backend.is_cuda:
            import torch

            new = {k: (torch.from_numpy(v).to(self._backend.device) if isinstance(v, np.ndarray) else v)
                   for k, v in new.items()}
            new["q4"] = torch.tensor([new["q4"]], dtype=torch.float64, device=self._backend.device)
        elif not keep_backend:
            self._backend = None
        self._state = new

    def __repr__(self) -> str:
        return (f"HScoreAccumulator(num_features={self.num_features}, num_classes={self.num_classes}, "
                f"num_targets={self.num_targets}, n={self.n})")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _host(v):
    if is_torch(v):
        v = v.detach().cpu().numpy()
        return float(v.reshape(-1)[0]) if v.size == 1 and v.ndim <= 1 else v.copy()
    return v.copy() if isinstance(v, np.ndarray) else v


def _narrowest(a: str, b: str) -> str:
    return "float32" if "float32" in (a, b) else "float64"


def _merge_states(a: dict, b: dict) -> dict:
    """Merge two host state dicts (Chan's update for the moments; class sums re-shifted to a's shift)."""
    out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in a.items()}
    out["q4"] = native().hscore_merge_moments(float(a["n"]), out["mean"], out["scatter"], out["v3"],
                                              float(a["q4"]), float(b["n"]), b["mean"], b["scatter"], b["v3"],
                                              float(b["q4"]))
    out["class_sums"] = a["class_sums"] + b["class_sums"] + b["class_counts"][..., None] * (b["shift"] - a["shift"])
    out["class_counts"] = a["class_counts"] + b["class_counts"]
    out["n"] = int(a["n"]) + int(b["n"])
    out["dtype"] = _narrowest(a.get("dtype", "float64"), b.get("dtype", "float64"))
    return out


def _not_finite_error(x) -> ValueError:
    return ValueError(f"features: contains NaN or infinite values ({describe(x)}); remove or impute them first")


#: Class-sum state (T x C x F float64) up to which each part of a block is read once for its moments and class
#: sums together (the state stays in cache); larger states have their class sums split by targets or columns.
FUSED_STATE_BYTES = 1 << 20


class _CpuEngine:
    """Block loop on the CPU: native moments and class sums, numpy BLAS for the block scatter.

    The work of a block is cut into single-threaded tasks whose boundaries depend only on the sizes, run on a
    pool of ``tasklens.get_num_threads()`` workers with BLAS held at one thread, so the cores never run more
    threads than they have and results are bit-identical for any thread count. Each part of the block's
    rows (two halves by default, see :data:`PART_ROWS`) has its moments and its scatter (one BLAS ``syrk`` in the input's precision, added in float64). Small
    class-sum states are summed in the same read as the moments (``hscore_half_pass``, one task per part);
    large ones (many targets) by tasks split by targets or feature columns after the moments. Both give the
    same bits: per part, each class's rows are added in row order, then the parts in order.
    Block ``k + 1`` is centred on block ``k``'s mean, known once block ``k``'s class sums are done.
    """

    @staticmethod
    def update(acc: HScoreAccumulator, x: np.ndarray, y: np.ndarray, dtype: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        f, c, t = acc.num_features, acc.num_classes, y.shape[1]
        st = acc._state
        if st is None:
            st = acc._state = {"n": 0, "mean": np.zeros(f), "scatter": np.zeros((f, f)), "v3": np.zeros(f),
                               "q4": 0.0, "shift": None, "class_sums": np.zeros((t, c, f)),
                               "class_counts": np.zeros((t, c), dtype=np.int64), "dtype": dtype}
        st["dtype"] = _narrowest(st["dtype"], dtype)
        workers = get_num_threads()
        fused = t * c * f * 8 <= FUSED_STATE_BYTES
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
            loop = _CpuEngine._fused if fused else _CpuEngine._split
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
                if not np.isfinite(q4):  # q4 sums every element's square
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
                if not (np.isfinite(mean_b).all() and np.isfinite(q4_b)):
                    raise _not_finite_error(x)
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
                    raise _not_finite_error(x)  # every earlier block is folded whole, this one not at all
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
            _CpuEngine._fold(st, [res[5] for res in results], rows, mean_b, v3_b, q4_b, d, xb)

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
                    finite = np.isfinite(mean_b).all() and np.isfinite(q4_b)
                    xcs = [xc[a:b] for a, b in halves]
                    del xc
                else:
                    outs = [fut.result() for fut in (ahead or moments_ahead(r0, prev_mean))]
                    ahead = None
                    xcs = [o[0] for o in outs]
                    v3_b = _sum_in_order([o[1] for o in outs])
                    q4_b = sum(float(o[2]) for o in outs)
                    finite = np.isfinite(q4_b)  # q4 sums every element's square
                if not finite:
                    if pending is not None:  # keep the state whole: every earlier block fully folded
                        _CpuEngine._fold(st, [g.result() for g in pending[0]], *pending[1:])
                        pending = None
                    raise _not_finite_error(x)
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
                    _CpuEngine._fold(st, [g.result() for g in pending[0]], *pending[1:])
                pending = (grams, rows, mean_b, v3_b, q4_b, d, xb)
                del xcs  # the workers hold the block until its scatter is formed
            if pending is not None:
                _CpuEngine._fold(st, [g.result() for g in pending[0]], *pending[1:])
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


class _CudaEngine:
    """Block loop on a CUDA device: native kernels on the caller's stream, cuBLAS (torch) for the scatter."""

    @staticmethod
    def update(acc: HScoreAccumulator, x, y, backend) -> None:
        import torch

        require_cuda("hscore")
        C = native()
        dev = x.device
        f, c, t = acc.num_features, acc.num_classes, y.shape[1]
        f64 = dict(dtype=torch.float64, device=dev)
        st = acc._state
        if st is None:
            st = acc._state = {"n": 0, "mean": torch.zeros(f, **f64), "scatter": torch.zeros((f, f), **f64),
                               "v3": torch.zeros(f, **f64), "q4": torch.zeros(1, **f64), "shift": None,
                               "class_sums": torch.zeros((t, c, f), **f64),
                               "class_counts": torch.zeros((t, c), dtype=torch.int64, device=dev),
                               "dtype": backend.dtype}
        st["dtype"] = _narrowest(st["dtype"], backend.dtype)
        device, stream = cuda_args(x)
        dt = dtype_code(x)
        y = y.to(device=dev, dtype=torch.int64).contiguous()
        for r0 in range(0, x.shape[0], acc.block_rows):
            xb = x[r0:r0 + acc.block_rows].contiguous()
            rows = xb.shape[0]
            mean_b, v3_b = torch.empty(f, **f64), torch.empty(f, **f64)
            q4_b, norms = torch.empty(1, **f64), torch.empty(rows, **f64)
            xc = torch.empty_like(xb)
            C.hscore_block_moments_cuda(dt, ptr(xb), rows, f, ptr(mean_b), ptr(xc), ptr(v3_b), ptr(q4_b), ptr(norms),
                                        device, stream)
            if not bool(torch.isfinite(mean_b).all()) or not bool(torch.isfinite(q4_b).all()):
                raise _not_finite_error(x)
            if st["shift"] is None:
                st["shift"] = mean_b.clone()
            yb = y[r0:r0 + acc.block_rows].contiguous()
            offset = (mean_b - st["shift"]).contiguous()
            segments = C.hscore_class_sum_segments_cuda(rows, f, t)
            partial = torch.empty(segments * t * c * f + t * c, **f64)
            C.hscore_class_sums_cuda(dt, ptr(xc), rows, f, ptr(yb), t, c, ptr(offset), ptr(st["class_sums"]),
                                     ptr(st["class_counts"]), ptr(partial), segments, device, stream)
            gram = torch.matmul(xc.T, xc).to(torch.float64).contiguous()
            work = torch.empty(6 * f + 8, **f64)
            C.hscore_merge_moments_cuda(f, float(st["n"]), ptr(st["mean"]), ptr(st["scatter"]), ptr(st["v3"]),
                                        ptr(st["q4"]), float(rows), ptr(mean_b), ptr(gram), ptr(v3_b), ptr(q4_b),
                                        ptr(work), device, stream)
            st["n"] += rows
            del xc, gram, partial


#: Class-sum state (T x C x F float64) above which sparse label codes are renumbered per target.
COMPACT_STATE_BYTES = 256 << 20


def _compact_labels(y: np.ndarray, num_features: int, num_classes: int) -> tuple[np.ndarray, int]:
    """Labels (N, T) and the number of classes C (``num_classes`` = largest code + 1). Sparse codes are
    renumbered per target (O(N T), in row chunks) when the T x C x F class-sum state would exceed
    :data:`COMPACT_STATE_BYTES`."""
    c = max(int(num_classes), 1)
    t = y.shape[1]
    if t * c * num_features * 8 <= COMPACT_STATE_BYTES:
        return y, c
    counts = np.zeros(t * c, dtype=np.int64)
    offsets = np.arange(t, dtype=np.int64) * c
    for r0 in range(0, y.shape[0], 65536):  # code of (target j, class k) is j * c + k
        counts += np.bincount((y[r0:r0 + 65536] + offsets).ravel(), minlength=t * c)
    used = (counts > 0).reshape(t, c)
    if used.sum(axis=1).max() * 2 > c:
        return y, c
    lut = np.cumsum(used, axis=1) - 1
    out = np.empty_like(y)
    for j in range(t):
        out[:, j] = lut[j, y[:, j]]
    return out, int(used.sum(axis=1).max())


def hscore(features, labels, *, shrinkage: str | None = None, rtol: float | None = None,
           block_rows: int | None = None):
    """H-score of features for one or many classification targets (Def. 2), in one pass.

    ``H(f) = tr(cov(f(X))^+ cov(E[f(X) | Y]))`` (Bao et al., ICLR 2019, Def. 2), with both covariances
    normalised by N (the normalisation cancels). Higher is better; ``0 <= H <= min(F, C - 1)``.

    Parameters
    ----------
    features : array (N, F), float32 or float64, numpy or torch (CPU or CUDA)
        Feature matrix f(X); rows are samples. Need not be centred. A ``np.memmap`` is read block by block.
    labels : array (N,) or (N, T) of int class codes >= 0
        One label vector, or T label vectors sharing the features (scored together in one pass).
    shrinkage : {None, "ledoit-wolf"}
        ``"ledoit-wolf"``: regularized H-score of Ibrahim et al. (2021),
        ``tr(((1 - a) cov + a tr(cov)/F I)^-1 (1 - a) cov(E[f|Y]))`` with ``a`` the Ledoit-Wolf (2004)
        shrinkage intensity (the estimator of ``sklearn.covariance.LedoitWolf``).
    rtol : float, optional
        Pseudo-inverse tolerance: eigenvalues of ``cov(f)`` (after shrinkage) at or below
        ``rtol * largest`` are dropped. Default ``F * eps``, eps of the input dtype (1.1e-13 for F = 512 on
        float64, 6.1e-5 on float32).
    block_rows : int, optional
        Rows per block of the streaming engine (see :class:`HScoreAccumulator`). The default suits a few
        cores; on many cores a larger block (e.g. 65536) gives each block more parts to share.

    Returns
    -------
    float for labels (N,), float64 array (T,) for labels (N, T); torch input gives a float64 tensor on
    the input's device (0-d for labels (N,)).

    Raises
    ------
    ValueError
        Fewer than 2 samples, NaN or infinite features, negative labels, wrong shapes.

    Notes
    -----
    Complexity O(N F^2) (BLAS ``syrk`` per block) + O(N F T) native additions + O(F^3 + T C F^2)
    for the eigendecomposition and projections. Memory O(F^2 + T C F + block_rows F); no N x F copy.
    Deterministic: bit-identical for any thread count (see :class:`HScoreAccumulator`). A single class gives
    0; constant features and F > N are handled by the pseudo-inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import hscore
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 4, 500)
    >>> x = rng.normal(size=(500, 16)) + y[:, None]
    >>> round(hscore(x, y), 3) > round(hscore(rng.normal(size=(500, 16)), y), 3)
    True
    """
    check_choice(shrinkage, "shrinkage", _SHRINKAGE)
    x = check_array(features, "features", ndim=2, finite=False, min_rows=2)
    y, top = check_labels(labels, "labels", n=x.shape[0], ndim=(1, 2), return_max=True)
    backend = backend_of(features=x)
    multi = y.ndim == 2
    y2 = y.reshape(y.shape[0], -1)
    if is_torch(y2):
        y_host = y2.detach().cpu().numpy() if not backend.is_cuda else None
    else:
        y_host = y2
    if y_host is not None:
        y_host, num_classes = _compact_labels(np.ascontiguousarray(y_host), x.shape[1], top + 1)
        y_in = y_host if not is_torch(x) else __import__("torch").from_numpy(y_host)
    else:
        num_classes = top + 1
        y_in = y2.to(x.device)
    acc = HScoreAccumulator(x.shape[1], num_classes, num_targets=y2.shape[1] if multi else None,
                            block_rows=block_rows)
    acc._add(x, y_in if multi else y_in.reshape(-1), backend)  # validated above
    h = hscore_from_state(acc.state_dict(), shrinkage=shrinkage, rtol=rtol)
    return _as_output(h, backend, multi)


def _as_output(h: np.ndarray, backend, multi: bool):
    """float / (T,) numpy array, or a float64 torch tensor (0-d / (T,)) on the caller's device."""
    if backend is not None and backend.kind == "torch":
        import torch

        out = torch.as_tensor(h, dtype=torch.float64, device=backend.device)
        return out if multi else out[0]
    return h if multi else float(h[0])
