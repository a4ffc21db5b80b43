"""Sufficient statistics of (features, labels) in one chunked, mergeable float64 pass.

Every feature-based transferability estimator of :mod:`tasklens.metrics.estimators` (H-score, LogME, TransRate,
GBC and the Fisher part of SFDA) is a function of a few sums over the rows; :class:`FeatureStats` accumulates
them once, chunk by chunk:

- ``n`` rows, ``sum = sum_i (x_i - s)`` and ``gram = sum_i (x_i - s)(x_i - s)^T`` about a fixed shift ``s``
  (the first chunk's mean, so the sums stay small and the centred scatter loses no digits);
- per target ``t`` and class ``c``: ``class_counts[t, c]``, ``class_sums[t, c] = sum_{y_it = c} (x_i - s)``;
- optionally (``squares=True``, GBC) ``class_squares[t, c] = sum_{y_it = c} (x_i - s)**2`` (elementwise);
- optionally (``class_scatter=True``) ``class_grams[t, c] = sum_{y_it = c} (x_i - s)(x_i - s)^T`` (per-class
  scatters for streamed or merged data; the in-memory TransRate uses the cheaper class kernels of
  :mod:`~tasklens.metrics.class_rates` instead).

Two states with different shifts merge exactly: a state about ``s2`` is re-expressed about ``s1`` with
``d = s2 - s1`` (``sum += n d``, ``gram += sum d^T + d sum^T + n d d^T``, and likewise per class) and added.
Results therefore do not depend on the chunk size or merge order beyond floating-point rounding.

Precision: the chunk's centred rows and its Gram (``z.T @ z``, BLAS ``syrk``) are formed in the input dtype and
added to float64 totals; class sums and squares are accumulated in float64. On float64 input the statistics
agree with a direct float64 computation to about ``1e-13`` relative; on float32 input to about ``1e-6``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from .._threads import get_num_threads
from .._validation import check_int, describe

__all__ = ["FeatureStats", "default_chunk_rows"]

#: Bytes of features per chunk: ``default_chunk_rows`` is ``CHUNK_BYTES / (F * itemsize)`` clamped to
#: [1024, 65536] rows.
CHUNK_BYTES = 32 << 20


#: Rows per single-threaded Gram product: a chunk's Gram is the in-order sum of the products of its parts of
#: at most ``PART_ROWS`` rows, run on ``tasklens.get_num_threads()`` workers with one BLAS thread each (the
#: result does not depend on the thread count; multi-threaded BLAS spin-waits badly on a loaded machine).
PART_ROWS = 4096


def _gram(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``z.T @ z`` in z's dtype, added in float64 to ``out`` (a new zero matrix when None) and returned; parts of
    PART_ROWS rows on the tasklens thread pool, added in part order."""
    cuts = list(range(0, z.shape[0], PART_ROWS)) + [z.shape[0]]
    pieces = [z[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    workers = min(get_num_threads(), len(pieces))
    with threadpool_limits(1):
        if workers <= 1:
            grams = (p.T @ p for p in pieces)
        else:
            with ThreadPoolExecutor(workers) as pool:
                grams = list(pool.map(lambda p: p.T @ p, pieces))
        total = np.zeros((z.shape[1], z.shape[1])) if out is None else out
        for g in grams:
            total += g
    return total


def _class_grams(zs: np.ndarray, present, starts, counts) -> list:
    """Per-class Grams ``z_c.T @ z_c`` (input dtype) of class-sorted rows, classes spread over the thread pool."""
    slices = [zs[r0:r0 + counts[c]] for c, r0 in zip(present, starts)]
    workers = min(get_num_threads(), len(slices)) if zs.shape[0] >= PART_ROWS else 1
    with threadpool_limits(1):
        if workers <= 1:
            return [p.T @ p for p in slices]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda p: p.T @ p, slices))


def default_chunk_rows(num_features: int, itemsize: int = 4) -> int:
    """Rows per chunk for F features of ``itemsize`` bytes (about 32 MiB of features)."""
    return int(min(65536, max(1024, CHUNK_BYTES // max(1, num_features * itemsize))))


class FeatureStats:
    """Float64 sufficient statistics of labelled features, accumulated in chunks and mergeable.

    Parameters
    ----------
    num_features : int
        F, the feature dimension.
    num_classes : int
        C; labels are codes in ``[0, C)`` (shared by all targets).
    num_targets : int
        T label vectors sharing the features (1 for labels of shape (N,)).
    squares : bool
        Also keep per-class sums of squares (T, C, F) (GBC's diagonal variances).
    class_scatter : bool
        Also keep per-class Gram matrices (T, C, F, F); memory ``8 T C F^2`` bytes.

    Notes
    -----
    Use :meth:`update` on validated numpy chunks (features (rows, F) float32/float64, labels (rows, T) int64),
    :meth:`merge` to fold another state in. The derived quantities (:meth:`mean`, :meth:`scatter`,
    :meth:`raw_gram`, :meth:`raw_class_sums`, ...) are float64.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics.feature_stats import FeatureStats
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(100, 3)), rng.integers(0, 2, (100, 1))
    >>> a, b = FeatureStats(3, 2), FeatureStats(3, 2)
    >>> _ = a.update(x[:30], y[:30]); _ = b.update(x[30:], y[30:])
    >>> bool(np.allclose(a.merge(b).scatter(), np.cov(x.T, bias=True) * 100))
    True
    """

    def __init__(self, num_features: int, num_classes: int, num_targets: int = 1, *, squares: bool = False,
                 class_scatter: bool = False):
        self.num_features = check_int(num_features, "num_features", min=1)
        self.num_classes = check_int(num_classes, "num_classes", min=1)
        self.num_targets = check_int(num_targets, "num_targets", min=1)
        self.squares = bool(squares)
        self.class_scatter = bool(class_scatter)
        f, c, t = self.num_features, self.num_classes, self.num_targets
        self.n = 0
        self.dtype = "float64"  # narrowest input dtype seen (sets default tolerances)
        self.shift: np.ndarray | None = None
        self.sum = np.zeros(f)
        self._gram = np.zeros((f, f)) if not class_scatter else None  # else: the sum of target 0's class Grams
        self._gram_cache = None
        self.class_counts = np.zeros((t, c))
        self.class_sums = np.zeros((t, c, f))
        self.class_squares = np.zeros((t, c, f)) if squares else None
        self.class_grams = np.zeros((t, c, f, f)) if class_scatter else None

    # ------------------------------------------------------------------------------------------ accumulation
    def update(self, x: np.ndarray, y: np.ndarray) -> "FeatureStats":
        """Add the rows ``x`` (rows, F) with labels ``y`` (rows, T) (validated numpy arrays)."""
        rows = x.shape[0]
        if rows == 0:
            return self
        if x.shape[1] != self.num_features or y.shape != (rows, self.num_targets):
            raise ValueError(f"features/labels: expected ({rows}, {self.num_features}) and ({rows}, "
                             f"{self.num_targets}), got {describe(x)} and {describe(y)}")
        if y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(f"labels: class codes must lie in [0, {self.num_classes}), found {y.min()}..{y.max()} "
                             f"({describe(y)})")
        if x.dtype == np.float32:
            self.dtype = "float32"
        if self.shift is None:
            # the shift actually subtracted is the input-dtype rounding of the chunk mean
            self.shift = x.mean(axis=0, dtype=np.float64).astype(x.dtype).astype(np.float64)
        # rows sorted by the first target's class, centred on the shift: one copy of the chunk; the Gram and the
        # total sum do not depend on the row order, and each class's rows are a contiguous slice
        order0 = np.argsort(y[:, 0], kind="stable")
        zs0 = x[order0]
        zs0 -= self.shift.astype(x.dtype)
        self.n += rows
        for t in range(self.num_targets):
            yt = y[order0, t]
            counts = np.bincount(yt, minlength=self.num_classes)
            self.class_counts[t] += counts
            if t == 0:
                zs = zs0
            else:
                order = np.argsort(yt, kind="stable")
                zs = zs0[order]
            present = np.flatnonzero(counts)
            starts = np.concatenate(([0], np.cumsum(counts)))[present]
            for c, r0 in zip(present, starts):  # contiguous slices: far faster than reduceat
                zc = zs[r0:r0 + counts[c]]
                csum = zc.sum(axis=0, dtype=np.float64)
                self.class_sums[t, c] += csum
                if t == 0:
                    self.sum += csum
                if self.squares:
                    self.class_squares[t, c] += np.square(zc, dtype=np.float64).sum(axis=0)
            if self.class_scatter:
                for c, g in zip(present, _class_grams(zs, present, starts, counts)):
                    self.class_grams[t, c] += g
        if self.class_scatter:
            self._gram_cache = None
        else:
            _gram(zs0, out=self._gram)
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Fold ``other`` (same F, C, T and options) into this state, exactly; returns self."""
        if not isinstance(other, FeatureStats):
            raise TypeError(f"other: expected a FeatureStats, got {type(other).__name__}")
        for attr in ("num_features", "num_classes", "num_targets", "squares", "class_scatter"):
            if getattr(self, attr) != getattr(other, attr):
                raise ValueError(f"other: {attr}={getattr(other, attr)} differs from this state's "
                                 f"{getattr(self, attr)}")
        if other.n == 0:
            return self
        if self.n == 0:
            self.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                                  for k, v in other.__dict__.items()})
            self._gram_cache = None
            return self
        d = other.shift - self.shift
        n, s = other.n, other.sum
        if not self.class_scatter:
            self._gram += other.gram + np.outer(s, d) + np.outer(d, s) + n * np.outer(d, d)
        self._gram_cache = None
        self.sum += s + n * d
        cnt = other.class_counts[..., None]
        if self.squares:
            self.class_squares += other.class_squares + 2.0 * d * other.class_sums + cnt * d * d
        if self.class_scatter:
            cs = other.class_sums
            self.class_grams += (other.class_grams + cs[..., :, None] * d + d[:, None] * cs[..., None, :]
                                 + cnt[..., None] * np.outer(d, d))
        self.class_sums += other.class_sums + cnt * d
        self.class_counts += other.class_counts
        self.n += n
        if other.dtype == "float32":
            self.dtype = "float32"
        return self

    # ------------------------------------------------------------------------------------------ derived
    @property
    def gram(self) -> np.ndarray:
        """``sum_i (x_i - s)(x_i - s)^T`` (F, F). With per-class Grams it is not accumulated separately: the
        classes of one target partition the rows, so it is the sum of target 0's class Grams (cached)."""
        if not self.class_scatter:
            return self._gram
        if self._gram_cache is None:
            self._gram_cache = self.class_grams[0].sum(axis=0)
        return self._gram_cache

    def centre(self) -> np.ndarray:
        """``mean - shift`` (F,)."""
        return self.sum / self.n

    def mean(self) -> np.ndarray:
        """Feature mean (F,)."""
        return self.shift + self.centre()

    def scatter(self) -> np.ndarray:
        """Centred scatter ``sum_i (x_i - mean)(x_i - mean)^T`` (F, F), symmetric."""
        s = self.gram - np.outer(self.sum, self.sum) / self.n
        return (s + s.T) / 2.0

    def raw_gram(self) -> np.ndarray:
        """Uncentred Gram ``X^T X`` (F, F), symmetric."""
        s = self.shift
        g = self.gram + np.outer(s, self.sum) + np.outer(self.sum, s) + self.n * np.outer(s, s)
        return (g + g.T) / 2.0

    def raw_class_sums(self) -> np.ndarray:
        """``X^T y_tc`` for one-hot targets: per-class sums of the features (T, C, F)."""
        return self.class_sums + self.class_counts[..., None] * self.shift

    def class_means(self) -> np.ndarray:
        """Per-class means relative to the shift (T, C, F); 0 for empty classes."""
        cnt = np.where(self.class_counts > 0, self.class_counts, 1.0)[..., None]
        return self.class_sums / cnt

    def class_centred_grams(self, t: int) -> np.ndarray:
        """``Z_c^T Z_c`` of the globally centred rows of each class of target ``t`` (C, F, F)."""
        d = self.centre()
        cs = self.class_sums[t]
        g = (self.class_grams[t] - cs[:, :, None] * d - d[:, None] * cs[:, None, :]
             + self.class_counts[t][:, None, None] * np.outer(d, d))
        return (g + np.swapaxes(g, 1, 2)) / 2.0
