"""H-score (Def. 2 of Bao et al., ICLR 2019) and its Ledoit-Wolf regularized form, streamed in one pass: the
math and the state.

:class:`HScoreAccumulator` keeps a float64 summary of the rows seen (count, mean, scatter, Ledoit-Wolf moments,
per-class sums and counts); :func:`hscore_from_state` turns it into H-scores; :func:`hscore` is one pass of an
accumulator. The blocks are folded in by an engine chosen once per call from the input's backend: the CPU engine
(:mod:`._hscore_cpu`: native moments and class sums, numpy BLAS ``syrk`` for the block scatter, single-threaded
tasks on ``tasklens.get_num_threads()`` workers) or the CUDA engine (:mod:`._cuda`: native kernels and cuBLAS on
the caller's stream). Blocks are folded into the running summary by Chan's exact pairwise update; no N x F
class-mean copy is ever built.

Scale: the H-score does not depend on the scale of the features, but float64 sums of ``|x|^4`` overflow above
about 1e77 and the scatter underflows below about 1e-154 (float32: much sooner). The accumulator therefore
works on ``x * 2**-scale_exp``, an exact power-of-two rescaling chosen from the first rows when their largest
``|x|`` lies outside [2**-64, 2**64] (float32 input: [2**-32, 2**32]); a later block that would overflow the
chosen scale makes the accumulator rescale its state (exactly, by a power of two) and continue. Data at a usual
scale never take the rescaled path (no copies).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._dispatch import Backend, backend_of, to_host
from .._validation import (check_array, check_choice, check_int, check_labels, check_positive, describe,
                           is_torch)
from ..hgr._codes import renumber_codes

__all__ = ["hscore", "HScoreAccumulator", "hscore_from_state"]

#: Bytes of features per block (the default block is ``BLOCK_BYTES / (F * itemsize)`` rows, clamped to
#: [1024, 65536]: 16384 rows for F = 512 float32). Blocks are cut relative to the start of each ``update``.
BLOCK_BYTES = 32 << 20


def default_block_rows(num_features: int, itemsize: int = 4) -> int:
    """Rows per block for F features of ``itemsize`` bytes (see :data:`BLOCK_BYTES`)."""
    return int(min(65536, max(1024, BLOCK_BYTES // max(1, num_features * itemsize))))


_SHRINKAGE = (None, "ledoit-wolf")

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


# ------------------------------------------------------------------------------------------------ scale

#: Largest-|x| exponent range kept as it is, per input dtype: outside it the first block picks a power-of-two
#: scale (see the module docstring).
SAFE_EXPONENTS = {"float32": 32, "float64": 64}
#: Rows of a new accumulator's first update whose largest |x| picks the scale (a cheap look: later rows that
#: overflow it trigger an exact rescaling of the state).
SCALE_SAMPLE_ROWS = 1024
#: float32 input: a part's ``rows * q4`` above this could overflow its float32 scatter (2**120 per entry).
FLOAT32_ROWS_Q4_LIMIT = 2.0 ** 240


class ScaleOverflow(ArithmeticError):
    """Raised by an engine, before it touches the state, for a block whose moments are not finite (NaN or
    infinite input, or values too large for the accumulator's scale); every earlier block is folded whole."""


def moments_ok(q4, rows: int, dtype) -> bool:
    """Whether a block's fourth moment ``q4 = sum_i |x_i - mean|^4`` (float64) shows finite input at a safe scale:
    finite, and for float32 input small enough that no float32 scatter entry (at most ``sqrt(rows q4)``, by
    Cauchy-Schwarz) can overflow."""
    q4 = float(q4)
    if not math.isfinite(q4):
        return False
    return "float32" not in str(dtype) or q4 * max(int(rows), 1) < FLOAT32_ROWS_Q4_LIMIT


def narrowest(a: str, b: str) -> str:
    """The narrower of two float dtype names (the precision a state's scatter was formed in)."""
    return "float32" if "float32" in (a, b) else "float64"


def _max_abs(x, backend: Backend) -> float:
    """Largest |x| of features of ``backend`` (0 for none; NaN or inf when not finite), without an |x| copy."""
    if x.shape[0] == 0:
        return 0.0
    if backend.is_torch:
        return float(x.detach().abs().max())
    return float(max(x.max(), -x.min()))


def scale_exponent(max_abs: float, dtype: str, *, force: bool = False) -> int:
    """``e`` with ``max_abs * 2**-e`` in [1, 2), or 0 when ``max_abs`` lies in the safe range of ``dtype``
    (:data:`SAFE_EXPONENTS`) and ``force`` is False."""
    if not max_abs > 0.0 or not math.isfinite(max_abs):
        return 0
    e = math.frexp(max_abs)[1] - 1
    if not force and abs(e) < SAFE_EXPONENTS["float32" if "float32" in str(dtype) else "float64"]:
        return 0
    return e


def times_pow2(a, k: int):
    """``a * 2**k`` for a numpy array, tensor or float, exact unless the result under- or overflows; multiplies
    in steps of at most 2**±120 so the factor itself is representable (also in float32)."""
    k = int(k)
    while k:
        step = max(-120, min(120, k))
        a = a * (2.0 ** step)
        k -= step
    return a


def rescale_state(st: dict, k: int) -> dict:
    """A state of features ``x`` as the state of ``x * 2**k`` (moments of order 1, 2, 3 and 4 scaled)."""
    if k == 0:
        return st
    out = dict(st)
    for key, order in (("mean", 1), ("shift", 1), ("class_sums", 1), ("scatter", 2), ("v3", 3), ("q4", 4)):
        if out.get(key) is not None:
            out[key] = times_pow2(out[key], order * k)
    return out


# ------------------------------------------------------------------------------------------------ labels

#: Class-sum state (T x C x F float64) above which sparse label codes are renumbered per target.
COMPACT_STATE_BYTES = 256 << 20


def labels_on(y, backend: Backend):
    """Validated int64 labels where ``backend`` runs: a numpy array for CPU backends (numpy or torch CPU
    features), an int64 tensor on the features' device for CUDA (numpy labels are copied there)."""
    if backend.is_cuda:
        import torch

        y = y if is_torch(y) else torch.from_numpy(np.ascontiguousarray(y))
        return y.to(device=backend.device, dtype=torch.int64).contiguous()
    return np.ascontiguousarray(to_host(y), dtype=np.int64)


def compact_labels(y, num_features: int, num_classes: int):
    """Labels (N, T) and the number of classes C (``num_classes`` = largest code + 1), numpy or torch.

    When the T x C x F class-sum state would exceed :data:`COMPACT_STATE_BYTES`, the codes are renumbered per
    target in increasing order (0 .. used - 1), so sparse codes such as ``10**12`` cost memory for the classes
    that occur only: by a lookup table when T C is small enough to count, else by sorting each target's codes.
    """
    c = max(int(num_classes), 1)
    n, t = y.shape
    if t * c * num_features * 8 <= COMPACT_STATE_BYTES:
        return y, c
    if not is_torch(y) and t * c <= max(1 << 22, 4 * y.size):
        counts = np.zeros(t * c, dtype=np.int64)
        offsets = np.arange(t, dtype=np.int64) * c
        for r0 in range(0, n, 65536):  # code of (target j, class k) is j * c + k
            counts += np.bincount((y[r0:r0 + 65536] + offsets).ravel(), minlength=t * c)
        used = (counts > 0).reshape(t, c)
        if used.sum(axis=1).max() * 2 > c:
            return y, c
        lut = np.cumsum(used, axis=1) - 1
        out = np.empty_like(y)
        for j in range(t):
            out[:, j] = lut[j, y[:, j]]
        return out, int(used.sum(axis=1).max())
    out, used = renumber_codes(y)
    return out, max(used, 1)


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
    ``block_rows`` cuts each block into more parts, which more worker threads can share. Features far from
    unit scale are rescaled exactly by a power of two (see the module docstring; ``state_dict()["scale_exp"]``).
    The engine (CPU or CUDA) follows the features' device; labels of any kind or device are moved there, and a
    state restored with :meth:`from_dict` or merged goes on with :meth:`update` on either.

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
        self.num_features = check_int(num_features, "num_features", min=1)
        self.num_classes = check_int(num_classes, "num_classes", min=1)
        self.num_targets = check_int(num_targets, "num_targets", min=1, allow_none=True)
        self.block_rows = (default_block_rows(self.num_features) if block_rows is None
                           else check_int(block_rows, "block_rows", min=1))
        self._state: dict[str, Any] | None = None
        self._scale = 0  # the state describes x * 2**-_scale (see the module docstring)
        self._backend: Backend | None = None

    # -- streaming -----------------------------------------------------------------------------------
    def update(self, features, labels) -> "HScoreAccumulator":
        """Add rows: ``features`` (N, F) float32/float64 and ``labels`` (N,) or (N, T) class codes.

        Labels may be numpy or torch on any device: they are moved to the features' device.
        """
        x = check_array(features, "features", ndim=2, shape=(None, self.num_features), finite=False)
        want_ndim = 1 if self.num_targets is None else 2
        y = check_labels(labels, "labels", n=x.shape[0], ndim=want_ndim, num_classes=self.num_classes)
        if want_ndim == 2 and y.shape[1] != self.num_targets:
            raise ValueError(f"labels: expected shape (N, {self.num_targets}) for num_targets="
                             f"{self.num_targets}, got {describe(y)}")
        backend = backend_of(features=x)
        if self._backend is not None and self._backend.device != backend.device:
            raise ValueError(f"features: this accumulator holds state on {self._backend.device}, got "
                             f"{describe(x)}; keep every update on one device")
        if x.shape[0] == 0:
            return self
        return self._add(x, labels_on(y, backend), backend)

    def _add(self, x, y, backend: Backend) -> "HScoreAccumulator":
        """update() on validated input: features (N, F) and int64 labels (N,) or (N, T) from :func:`labels_on`.

        Runs the engine of ``backend`` on ``x * 2**-scale``; when a block overflows that scale (finite input),
        the state is rescaled exactly and the remaining rows continue at the new scale.
        """
        if self._backend is None:
            self._backend = backend
        y2 = y.reshape(y.shape[0], -1)
        if self._state is not None:
            self._state = self._state_on(backend)
        else:  # the scale from the first rows; rows that overflow it later make the state rescale (below)
            self._scale = scale_exponent(_max_abs(x[:SCALE_SAMPLE_ROWS], backend), backend.dtype)
        start = 0
        for _ in range(4):
            n0 = self.n
            try:
                self._run(x[start:], y2[start:], backend)
                return self
            except ScaleOverflow:
                start += self.n - n0  # the rows of every block folded before the failing one
            rest = x[start:]
            if not _all_finite(rest, backend):
                raise ValueError(f"features: contains NaN or infinite values ({describe(x)}); remove or impute "
                                 "them first") from None
            if self._state is None:
                break
            scale = max(scale_exponent(_max_abs(rest, backend), backend.dtype, force=True), self._scale + 1)
            self._state = rescale_state(self._state, self._scale - scale)
            self._scale = scale
        top = _max_abs(x[start:], backend)
        raise ValueError(f"features: values up to {top:.3g} overflow the float64 sums even after rescaling "
                         f"({describe(x)}); rescale the features (the H-score is scale invariant)")

    def _run(self, x, y, backend: Backend) -> None:
        """The engine of ``backend`` on ``x * 2**-scale`` (block by block when rescaled, same block cuts)."""
        if backend.is_cuda:
            from . import _cuda

            def engine(xb, yb):
                _cuda.update(self, xb, yb, backend)
        else:
            from ._hscore_cpu import CpuEngine

            def engine(xb, yb):
                CpuEngine.update(self, xb.detach().numpy() if backend.is_torch else xb, yb, backend.dtype)
        try:
            if self._scale == 0:
                engine(x, y)
                return
            for r0 in range(0, x.shape[0], self.block_rows):
                engine(times_pow2(x[r0:r0 + self.block_rows], -self._scale), y[r0:r0 + self.block_rows])
        except MemoryError as exc:
            if self._state is not None:
                raise
            t = 1 if self.num_targets is None else self.num_targets
            need = t * self.num_classes * self.num_features * 8
            raise MemoryError(
                f"HScoreAccumulator: the class-sum state (num_targets={t} x num_classes={self.num_classes} x "
                f"num_features={self.num_features} float64) needs {need / 2**30:.1f} GiB; renumber sparse label "
                "codes to 0..C-1 first (np.unique(labels, return_inverse=True)) and pass that C") from exc

    def _state_on(self, backend: Backend) -> dict:
        """The state where ``backend`` runs (a state restored from a dict, or merged, is host numpy)."""
        st = self._state
        on_device = is_torch(st["mean"])
        if backend.is_cuda:
            if on_device and str(st["mean"].device) == backend.device:
                return st
            from . import _cuda

            return _cuda.state_to_device(st, backend.device)
        return _host_state(st) if on_device else st

    def merge(self, other: "HScoreAccumulator") -> "HScoreAccumulator":
        """Fold another accumulator's rows into this one (Chan's exact pairwise update); returns self.

        The merged state stays where this accumulator's state is (host or CUDA device); either can go on with
        :meth:`update` on its device.
        """
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
        self._load(merge_states(self.state_dict(), theirs), keep_backend=True)
        return self

    @property
    def n(self) -> int:
        """Number of rows seen."""
        return 0 if self._state is None else int(self._state["n"])

    def score(self, *, shrinkage: str | None = None, rtol: float | None = None):
        """H-score (float) or scores (T,) of the rows seen; see :func:`hscore` for the definition.

        Output rule: a Python float / (T,) numpy array, or a float64 tensor (0-d / (T,)) on the device of the
        first update's features for torch input.
        """
        check_choice(shrinkage, "shrinkage", _SHRINKAGE)
        if self._state is None:
            raise ValueError("hscore: the accumulator holds no samples; call update() first")
        h = hscore_from_state(self.state_dict(), shrinkage=shrinkage, rtol=rtol)
        backend = self._backend or Backend("numpy", "cpu", "float64")
        return backend.out(h if self.num_targets is not None else h[0])

    # -- serialisation -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The state as plain numpy arrays and Python scalars (picklable, ``np.savez``-able).

        Keys: the sizes, ``n``, ``mean`` (F,), ``scatter`` (F, F), ``v3`` (F,), ``q4``, ``shift`` (F,),
        ``class_sums`` (T, C, F), ``class_counts`` (T, C), ``dtype`` (the narrowest input precision) and
        ``scale_exp``: the moments are those of ``x * 2**-scale_exp`` (0 unless the features needed rescaling).
        """
        meta = {"num_features": self.num_features, "num_classes": self.num_classes,
                "num_targets": self.num_targets}
        if self._state is None:
            return {**meta, "n": 0}
        out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in _host_state(self._state).items()}
        return {**meta, **out, "scale_exp": int(self._scale)}

    to_dict = state_dict

    @classmethod
    def from_dict(cls, state: dict) -> "HScoreAccumulator":
        """Rebuild an accumulator from :meth:`state_dict` output (host state; it moves to the device of the
        next :meth:`update`)."""
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict from state_dict(), got {type(state).__name__}")
        missing = [k for k in ("num_features", "num_classes", "num_targets", "n") if k not in state]
        if missing:
            raise ValueError(f"state: missing keys {missing}; pass the dict returned by state_dict()")
        acc = cls(state["num_features"], state["num_classes"], num_targets=state["num_targets"])
        if check_int(state["n"], "state['n']", min=0) > 0:
            acc._load(state)
        return acc

    def load_state_dict(self, state: dict) -> "HScoreAccumulator":
        """Replace this accumulator's state with ``state`` (from :meth:`state_dict`)."""
        other = HScoreAccumulator.from_dict(state)
        for attr in ("num_features", "num_classes", "num_targets"):
            if getattr(self, attr) != getattr(other, attr):
                raise ValueError(f"state: {attr}={getattr(other, attr)} differs from {getattr(self, attr)}")
        self._state, self._scale, self._backend = other._state, other._scale, other._backend
        return self

    def _load(self, state: dict, keep_backend: bool = False) -> None:
        t = 1 if self.num_targets is None else self.num_targets
        f, c = self.num_features, self.num_classes
        shapes = {"mean": (f,), "scatter": (f, f), "v3": (f,), "shift": (f,), "class_sums": (t, c, f),
                  "class_counts": (t, c)}
        new = {"n": check_int(state["n"], "state['n']", min=0), "q4": float(state["q4"]),
               "dtype": str(state.get("dtype", "float64"))}
        for key, shape in shapes.items():
            arr = np.array(state[key], dtype=np.int64 if key == "class_counts" else np.float64)
            if arr.shape != shape:
                raise ValueError(f"state: {key} has shape {arr.shape}, expected {shape}")
            new[key] = arr
        scale = check_int(state.get("scale_exp", 0), "state['scale_exp']")
        self._state, self._scale = new, scale
        if keep_backend and self._backend is not None:
            self._state = self._state_on(self._backend)
        elif not keep_backend:
            self._backend = None

    def __repr__(self) -> str:
        return (f"HScoreAccumulator(num_features={self.num_features}, num_classes={self.num_classes}, "
                f"num_targets={self.num_targets}, n={self.n})")


def _all_finite(x, backend: Backend) -> bool:
    if backend.is_torch:
        import torch

        return bool(torch.isfinite(x.detach()).all())
    return bool(np.isfinite(x).all())


def _host_state(st: dict) -> dict:
    """A state with device tensors copied to numpy (``q4`` a Python float, ``n`` an int)."""
    out = {}
    for k, v in st.items():
        if is_torch(v):
            v = v.detach().cpu().numpy()
        out[k] = v
    out["n"] = int(out["n"])
    out["q4"] = float(np.asarray(out["q4"]).reshape(-1)[0])
    return out


def merge_states(a: dict, b: dict) -> dict:
    """Merge two host state dicts: both brought to the larger ``scale_exp``, Chan's update for the moments,
    b's class sums re-shifted to a's shift."""
    from .._native import native

    scale = max(int(a.get("scale_exp", 0)), int(b.get("scale_exp", 0)))
    a = rescale_state(a, int(a.get("scale_exp", 0)) - scale)
    b = rescale_state(b, int(b.get("scale_exp", 0)) - scale)
    out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in a.items()}
    out["q4"] = native().hscore_merge_moments(float(a["n"]), out["mean"], out["scatter"], out["v3"],
                                              float(a["q4"]), float(b["n"]), b["mean"], b["scatter"], b["v3"],
                                              float(b["q4"]))
    out["class_sums"] = a["class_sums"] + b["class_sums"] + b["class_counts"][..., None] * (b["shift"] - a["shift"])
    out["class_counts"] = a["class_counts"] + b["class_counts"]
    out["n"] = int(a["n"]) + int(b["n"])
    out["dtype"] = narrowest(a.get("dtype", "float64"), b.get("dtype", "float64"))
    out["scale_exp"] = scale
    return out


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
    h = hscore_values(x, y, top, backend, shrinkage=shrinkage, rtol=rtol, block_rows=block_rows)
    return backend.out(h if y.ndim == 2 else h[0])


def hscore_values(x, y, top: int, backend: Backend, *, shrinkage: str | None = None, rtol: float | None = None,
                  block_rows: int | None = None) -> np.ndarray:
    """:func:`hscore` of validated features ``x`` (N, F) on ``backend`` and labels ``y`` (N,) or (N, T) whose
    largest code is ``top``, as a float64 numpy array (T,) (T = 1 for labels (N,))."""
    y2, num_classes = compact_labels(labels_on(y, backend).reshape(y.shape[0], -1), x.shape[1], top + 1)
    acc = HScoreAccumulator(x.shape[1], num_classes, num_targets=y2.shape[1], block_rows=block_rows)
    acc._add(x, y2, backend)
    return hscore_from_state(_host_state(acc._state), shrinkage=shrinkage, rtol=rtol)
