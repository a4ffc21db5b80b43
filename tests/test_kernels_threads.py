"""The tiled nearest-neighbour engine: exact winners with near ties (vectorised candidate scans and float64
re-scoring), and ``threads=1`` / ``kernel_threads`` (serial kernels without touching the process-wide count)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tasklens
from tasklens.domain._kernels import kernel_threads, segmented_nearest


def _brute(x, y, off):
    """float64 reference: per row and dataset, the smallest squared distance, ties to the smaller index."""
    d2 = ((x[:, None, :].astype(np.float64) - y[None, :, :].astype(np.float64)) ** 2).sum(axis=2)
    dist = np.empty((len(x), len(off) - 1))
    idx = np.empty((len(x), len(off) - 1), dtype=np.int64)
    for g in range(len(off) - 1):
        block = d2[:, off[g]:off[g + 1]]
        k = block.argmin(axis=1)  # argmin returns the first (smallest index) minimum
        idx[:, g] = off[g] + k
        dist[:, g] = block[np.arange(len(x)), k]
    return dist, idx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [3, 9, 20])
def test_near_ties_exact(dtype, d):
    # Half-integer coordinates: many exact ties and candidate overflows; squared distances are exact in
    # float64 in any summation order, so the reference is exact too.
    rng = np.random.default_rng(d)
    sizes = rng.integers(1, 40, 7)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    x = (np.round(rng.standard_normal((off[-1], d)) * 1.5) / 2).astype(dtype)
    y_sizes = rng.integers(1, 30, 5)
    off_y = np.concatenate([[0], np.cumsum(y_sizes)]).astype(np.int64)
    y = (np.round(rng.standard_normal((off_y[-1], d)) * 1.5) / 2).astype(dtype)
    for tile in (5, 64):
        d_ts, i_ts, d_st, i_st = segmented_nearest(x, off, y, off_y, metric="sqeuclidean", both=True, tile=tile)
        ref_d, ref_i = _brute(x, y, off_y)
        np.testing.assert_array_equal(d_ts, ref_d)
        np.testing.assert_array_equal(i_ts, ref_i)
        ref_d, ref_i = _brute(y, x, off)
        np.testing.assert_array_equal(d_st, ref_d)
        np.testing.assert_array_equal(i_st, ref_i)
        dist, idx = segmented_nearest(x, off, metric="sqeuclidean", tile=tile)
        ref_d, ref_i = _brute(x, x, off)
        np.testing.assert_array_equal(dist, ref_d)
        np.testing.assert_array_equal(idx, ref_i)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_threads_one_bit_identical_and_count_untouched(metric):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 33)).astype(np.float32) + 1
    y = rng.standard_normal((170, 33)).astype(np.float32) + 1
    off_x, off_y = np.array([0, 100, 250, 300]), np.array([0, 70, 170])
    before = tasklens.get_num_threads()
    ref = segmented_nearest(x, off_x, y, off_y, metric=metric, both=True, tile=64)
    got = segmented_nearest(x, off_x, y, off_y, metric=metric, both=True, tile=64, threads=1)
    with kernel_threads(1):
        scoped = segmented_nearest(x, off_x, y, off_y, metric=metric, both=True, tile=64)
    assert tasklens.get_num_threads() == before
    for a, b, c in zip(ref, got, scoped):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_kernel_threads_is_per_thread():
    from tasklens.domain import _kernels

    seen = {}

    def other():
        seen["other"] = _kernels._THREADS.get()

    with kernel_threads(1):
        seen["inside"] = _kernels._THREADS.get()
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == {"inside": 1, "other": None}
    assert _kernels._THREADS.get() is None


@pytest.mark.parametrize("bad", [2, 0, 1.5, "1", True])
def test_threads_rejected(bad):
    x = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises((ValueError, TypeError), match="threads"):
        segmented_nearest(x, np.array([0, 2]), threads=bad)
    with pytest.raises((ValueError, TypeError), match="threads"):
        with kernel_threads(bad):
            pass
