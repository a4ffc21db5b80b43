"""H-score (Def. 2), its Ledoit-Wolf regularized form and the streaming accumulator."""

from __future__ import annotations

import importlib
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tasklens
from tasklens.metrics import HScoreAccumulator, hscore
from tasklens.metrics.hscore import hscore_from_state, labels_on


def reference_hscore(x, y, rcond=1e-15):
    """The common NumPy implementation: np.cov of f and of the class-mean-expanded f, then pinv."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for c in np.unique(y):
        g[y == c] = x[y == c].mean(axis=0)
    cov_f = np.atleast_2d(np.cov(x, rowvar=False))
    cov_g = np.atleast_2d(np.cov(g, rowvar=False))
    return float(np.trace(np.linalg.pinv(cov_f, rcond=rcond, hermitian=True) @ cov_g))


def reference_regularized(x, y):
    """Regularized H-score (Ibrahim et al., 2021) with scikit-learn's Ledoit-Wolf estimator."""
    from sklearn.covariance import LedoitWolf

    x = np.asarray(x, dtype=np.float64)
    lw = LedoitWolf().fit(x)
    g = np.zeros_like(x)
    for c in np.unique(y):
        g[y == c] = x[y == c].mean(axis=0)
    cov_g = np.cov(g, rowvar=False, bias=True)  # same 1/N normalisation as the LW covariance
    return float(np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * cov_g)))


def make_data(rng, n=2000, f=12, c=5, offset=3.0, dtype=np.float64):
    y = rng.integers(0, c, n)
    means = rng.normal(size=(c, f))
    x = rng.normal(size=(n, f)) @ rng.normal(size=(f, f)) * 0.5 + means[y] + offset
    return x.astype(dtype), y


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def test_matches_numpy_reference_float64(rng):
    for n, f, c in [(2000, 12, 5), (500, 40, 3), (3000, 3, 20), (50, 2, 2)]:
        x, y = make_data(rng, n, f, c)
        assert rel(hscore(x, y), reference_hscore(x, y)) < 1e-8


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 300), f=st.integers(1, 20), c=st.integers(2, 8), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([1e-3, 1.0, 1e4]))
def test_property_matches_reference(n, f, c, seed, scale):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    x = (rng.normal(size=(n, f)) + rng.normal(size=(c, f))[y]) * scale + 7 * scale
    ref = reference_hscore(x, y, rcond=f * np.finfo(np.float64).eps)
    got = hscore(x, y)
    if len(np.unique(y)) == 1:  # one class: no between-class variance, H = 0 exactly (the reference rounds)
        assert got == 0.0 and abs(ref) < 1e-12
    elif n > f + 1:  # full rank: pinv is an inverse and both agree tightly
        assert rel(got, ref) < 1e-8
    assert 0 <= got <= min(f, c - 1) + 1e-9


def test_float32_close_to_float64(rng):
    x, y = make_data(rng, 5000, 32, 10)
    h64 = hscore(x, y)
    h32 = hscore(x.astype(np.float32), y)
    assert rel(h32, h64) < 1e-4


def test_ledoit_wolf_matches_sklearn(rng):
    for n, f in [(300, 10), (60, 40), (40, 80)]:
        x, y = make_data(rng, n, f, 4)
        got = hscore(x, y, shrinkage="ledoit-wolf")
        assert rel(got, reference_regularized(x, y)) < 1e-8
        if n < f:  # shrinkage regularises the rank-deficient case below the unregularized score
            assert got < hscore(x, y)


def test_multi_target_equals_single_calls(rng):
    x, y = make_data(rng, 3000, 16, 6)
    labels = np.stack([y, rng.integers(0, 3, 3000), (y * 7 + 1) % 4, np.zeros(3000, int)], axis=1)
    multi = hscore(x, labels)
    assert multi.shape == (4,)
    single = np.array([hscore(x, labels[:, j]) for j in range(4)])
    np.testing.assert_allclose(multi, single, rtol=1e-12, atol=1e-15)
    lw = hscore(x, labels, shrinkage="ledoit-wolf")
    np.testing.assert_allclose(lw, [hscore(x, labels[:, j], shrinkage="ledoit-wolf") for j in range(4)],
                               rtol=1e-12, atol=1e-15)


def test_accumulator_chunking_merge_order_and_threads(rng, threads):
    x, y = make_data(rng, 5000, 10, 4, offset=100.0)
    one = HScoreAccumulator(10, 4).update(x, y)
    ref = reference_hscore(x, y)
    assert rel(one.score(), ref) < 1e-8
    for chunk, block in [(1, 8192), (777, 100), (5000, 64), (4999, 3)]:
        acc = HScoreAccumulator(10, 4, block_rows=block)
        for i in range(0, 5000, chunk * 97 if chunk == 1 else chunk):
            acc.update(x[i:i + (chunk * 97 if chunk == 1 else chunk)], y[i:i + (chunk * 97 if chunk == 1 else chunk)])
        assert rel(acc.score(), one.score()) < 1e-12
        assert rel(acc.score(shrinkage="ledoit-wolf"), one.score(shrinkage="ledoit-wolf")) < 1e-10
    parts = [HScoreAccumulator(10, 4).update(x[i:i + 1000], y[i:i + 1000]) for i in range(0, 5000, 1000)]
    forward, backward = HScoreAccumulator(10, 4), HScoreAccumulator(10, 4)
    for p in parts:
        forward.merge(p)
    for p in reversed(parts):
        backward.merge(p)
    tree = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3].merge(parts[4])))
    for acc in (forward, backward, tree):
        assert acc.n == 5000
        assert rel(acc.score(), one.score()) < 1e-12
        assert rel(acc.score(shrinkage="ledoit-wolf"), one.score(shrinkage="ledoit-wolf")) < 1e-10
    results = []
    for n_threads in (1, 2, 3):
        threads(n_threads)
        acc = HScoreAccumulator(10, 4, num_targets=2, block_rows=512)
        acc.update(x, np.stack([y, (y + 1) % 4], 1))
        results.append(acc.state_dict())
    for other in results[1:]:
        for key in ("mean", "scatter", "v3", "class_sums", "class_counts"):
            assert np.array_equal(results[0][key], other[key]), key  # bit-identical
        assert results[0]["q4"] == other["q4"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_class_sum_parts_are_bit_identical_to_one_call(rng, dtype):
    """The engine cuts the class sums into tasks by targets or by 32-column tiles, run serially on workers:
    every split, and serial or threaded runs, must give the same bits (counts added once, total by target 0)."""
    from tasklens._native import native

    C = native()
    rows, f, t, c = 9000, 70, 5, 7  # 9000 rows: two native passes; 70 columns: tiles of 32, 32, 6
    xc = rng.normal(size=(rows, f)).astype(dtype)
    y = np.ascontiguousarray(rng.integers(0, c, (rows, t)))
    offset = rng.normal(size=f)

    def run(parts, serial):
        sums, counts, total = np.zeros((t, c, f)), np.zeros((t, c), np.int64), np.zeros(f)
        for targets, columns in parts:
            C.hscore_class_sums(xc, y, offset, sums, counts, total, targets=targets, columns=columns,
                                serial=serial)
        return sums, counts, total

    whole = run([(None, None)], False)
    ref = np.zeros((t, c, f))
    for j in range(t):
        for k in range(c):
            ref[j, k] = xc[y[:, j] == k].astype(np.float64).sum(axis=0) + (y[:, j] == k).sum() * offset
    np.testing.assert_allclose(whole[0], ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(whole[1], [[(y[:, j] == k).sum() for k in range(c)] for j in range(t)])
    np.testing.assert_allclose(whole[2], xc.astype(np.float64).sum(axis=0), rtol=1e-12, atol=1e-9)
    splits = [[(None, None)], [((0, 2), None), ((2, 5), None)], [((0, 1), None), ((1, 4), None), ((4, 5), None)],
              [(None, (0, 32)), (None, (32, 70))], [(None, (0, 64)), (None, (64, 70))]]
    for parts in splits:
        for serial in (False, True):
            got = run(parts, serial)
            for a, b in zip(got, whole):
                assert np.array_equal(a, b), (parts, serial)
    # the fused pass (moments and class sums in one read, several native passes for 9000 rows) gives the
    # same bits as the two kernels
    shift = rng.normal(size=f)
    xc2, v3, q4 = C.hscore_block_moments_shifted(xc, shift, serial=True)
    sums, counts, total = np.zeros((t, c, f)), np.zeros((t, c), np.int64), np.zeros(f)
    C.hscore_class_sums(xc2, y, offset, sums, counts, total)
    fused = np.zeros((t, c, f)), np.zeros((t, c), np.int64), np.zeros(f)
    xc3, v3b, q4b = C.hscore_half_pass(xc, shift, y, offset, *fused)
    assert np.array_equal(xc3, xc2) and np.array_equal(v3b, v3) and q4b == q4
    for a, b in zip(fused, (sums, counts, total)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="tile"):
        C.hscore_class_sums(xc, y, offset, np.zeros((t, c, f)), np.zeros((t, c), np.int64), columns=(0, 40))


@pytest.mark.parametrize("num_targets", [2, 12])
def test_engine_bit_identical_for_any_thread_count_and_mode(rng, threads, monkeypatch, num_targets):
    """Fused half passes (small class-sum state) and split class-sum tasks (by columns for 2 targets, by
    targets for 12), for 1-4 threads, over blocks of 1500 rows (two halves) and of 20000 rows (three parts)."""
    engine = importlib.import_module("tasklens.metrics._hscore_cpu")
    x, y = make_data(rng, 26000, 70, 6, offset=50.0, dtype=np.float32)
    labels = np.stack([(y + j) % 6 for j in range(num_targets)], 1)
    states = []
    for fused_bytes in (engine.FUSED_STATE_BYTES, 0):
        monkeypatch.setattr(engine, "FUSED_STATE_BYTES", fused_bytes)
        for n_threads in (1, 2, 3, 4):
            threads(n_threads)
            for block in (1500, 20000):
                acc = HScoreAccumulator(70, 6, num_targets=num_targets, block_rows=block).update(x, labels)
                states.append(acc.state_dict())
        threads(None)
    assert rel(hscore(x, labels[:, 0], block_rows=20000), hscore_from_state(states[1])[0]) < 1e-12
    with pytest.raises(ValueError, match="block_rows"):
        hscore(x, labels[:, 0], block_rows=0)
    for group in (states[::2], states[1::2]):  # like block sizes: the block cuts change the rounding
        for other in group[1:]:
            for key in ("mean", "scatter", "v3", "class_sums", "class_counts"):
                assert np.array_equal(group[0][key], other[key]), key
            assert group[0]["q4"] == other["q4"]
    assert rel(float(hscore_from_state(states[0])[0]), reference_hscore(x, labels[:, 0])) < 1e-4


def test_state_roundtrip(rng, tmp_path):
    x, y = make_data(rng, 1200, 6, 3)
    acc = HScoreAccumulator(6, 3).update(x[:700], y[:700])
    clone = pickle.loads(pickle.dumps(acc.state_dict()))
    restored = HScoreAccumulator.from_dict(clone).update(x[700:], y[700:])
    np.savez(tmp_path / "state.npz", **{k: v for k, v in acc.state_dict().items() if v is not None})
    with np.load(tmp_path / "state.npz") as z:
        loaded = {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
    loaded["num_targets"] = None
    again = HScoreAccumulator(6, 3).load_state_dict(loaded).update(x[700:], y[700:])
    full = HScoreAccumulator(6, 3).update(x, y).score()
    assert rel(restored.score(), full) < 1e-12 and rel(again.score(), full) < 1e-12
    assert HScoreAccumulator.from_dict(HScoreAccumulator(6, 3).state_dict()).n == 0


def test_degenerate_inputs(rng):
    x, y = make_data(rng, 400, 5, 4)
    y1 = y.copy()
    y1[0] = 9  # a class with a single sample
    assert rel(hscore(x, y1), reference_hscore(x, y1)) < 1e-8
    assert hscore(x, np.zeros(400, int)) == 0.0  # one class: no between-class variance
    xc = x.copy()
    xc[:, 2] = 3.5  # a constant feature is dropped by the pseudo-inverse
    assert rel(hscore(xc, y), hscore(np.delete(xc, 2, axis=1), y)) < 1e-8
    assert hscore(np.full((50, 3), 2.0), rng.integers(0, 2, 50)) == 0.0
    wide, yw = make_data(rng, 30, 60, 3)  # F > N: pinv on the rank-29 covariance
    tol = 60 * np.finfo(np.float64).eps
    assert rel(hscore(wide, yw), reference_hscore(wide, yw, rcond=tol)) < 1e-6
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="features: contains NaN"):
        hscore(bad, y)
    with pytest.raises(ValueError, match="features: contains NaN"):
        HScoreAccumulator(5, 4).update(np.where(np.arange(5) == 0, np.inf, x), y)
    with pytest.raises(ValueError, match="at least 2"):
        hscore(x[:1], y[:1])
    with pytest.raises(ValueError, match="labels: expected 400 labels"):
        hscore(x, y[:10])
    with pytest.raises(ValueError, match="non-negative"):
        hscore(x, y - 1)
    with pytest.raises(TypeError, match="integer class labels"):
        hscore(x, y + 0.5)
    with pytest.raises(ValueError, match="shrinkage"):
        hscore(x, y, shrinkage="oas")
    with pytest.raises(ValueError, match=r"features: expected shape \(\*, 5\)"):
        HScoreAccumulator(5, 4).update(x[:, :3], y)
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        HScoreAccumulator(5, 2).update(x, y)
    with pytest.raises(ValueError, match="no samples"):
        HScoreAccumulator(5, 4).score()
    with pytest.raises(ValueError, match="num_classes=3 differs"):
        HScoreAccumulator(5, 4).merge(HScoreAccumulator(5, 3))


def test_sparse_label_codes_and_memmap(rng, tmp_path):
    x, y = make_data(rng, 1000, 8, 3)
    assert rel(hscore(x, y * 10_000_000), reference_hscore(x, y)) < 1e-8  # renumbered sparse codes
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert rel(hscore(mm, y), hscore(x.astype(np.float32), y)) == 0.0
    assert rel(tasklens.hscore(x, y), reference_hscore(x, y)) < 1e-8  # top-level lazy export


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    x, y = make_data(rng, 800, 6, 3)
    h = hscore(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(h, torch.Tensor) and h.dtype == torch.float64 and h.ndim == 0
    assert rel(float(h), reference_hscore(x, y)) < 1e-8
    hm = hscore(torch.from_numpy(x), torch.from_numpy(np.stack([y, y], 1)))
    assert hm.shape == (2,)
    acc = HScoreAccumulator(6, 3).update(torch.from_numpy(x), torch.from_numpy(y))
    score = acc.score()
    assert isinstance(score, torch.Tensor) and score.dtype == torch.float64
    assert rel(float(score), reference_hscore(x, y)) < 1e-8
    f32 = hscore(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))
    assert f32.dtype == torch.float64 and rel(float(f32), reference_hscore(x, y)) < 1e-4


@pytest.mark.cuda
def test_cuda_matches_cpu(rng):
    torch = pytest.importorskip("torch")
    for dtype in (np.float32, np.float64):
        x, y = make_data(rng, 20000, 48, 7, dtype=dtype)
        labels = np.stack([y, rng.integers(0, 4, 20000)], 1)
        cpu = hscore(x, labels)
        gpu = hscore(torch.from_numpy(x).cuda(), torch.from_numpy(labels).cuda())
        assert gpu.device.type == "cuda"
        tol = 1e-10 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(gpu.cpu().numpy(), cpu, rtol=tol)
        lw_gpu = hscore(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), shrinkage="ledoit-wolf")
        assert rel(float(lw_gpu), hscore(x, y, shrinkage="ledoit-wolf")) < tol
        acc = HScoreAccumulator(48, 7, block_rows=3000)
        for i in range(0, 20000, 6000):
            acc.update(torch.from_numpy(x[i:i + 6000]).cuda(), torch.from_numpy(y[i:i + 6000]).cuda())
        cpu_acc = HScoreAccumulator(48, 7, block_rows=3000).update(x, y)
        gs, cs = acc.state_dict(), cpu_acc.state_dict()
        for key in ("mean", "scatter", "class_sums"):
            np.testing.assert_allclose(gs[key], cs[key], rtol=tol, atol=tol * np.abs(cs[key]).max())
        np.testing.assert_array_equal(gs["class_counts"], cs["class_counts"])


@pytest.mark.parametrize("fused", [True, False])
def test_pipelined_update_keeps_state_whole_and_restores_blas_threads(rng, monkeypatch, fused):
    from threadpoolctl import threadpool_info

    engine = importlib.import_module("tasklens.metrics._hscore_cpu")
    if not fused:
        monkeypatch.setattr(engine, "FUSED_STATE_BYTES", 0)

    x, y = make_data(rng, 3000, 6, 3)
    blas_before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    bad = x.copy()
    bad[2500, 1] = np.nan  # in the third block of 1000 rows
    acc = HScoreAccumulator(6, 3, block_rows=1000)
    with pytest.raises(ValueError, match="NaN"):
        acc.update(bad, y)
    assert [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"] == blas_before
    first = HScoreAccumulator(6, 3, block_rows=1000).update(x[:2000], y[:2000])
    assert acc.n == 2000  # the blocks before the bad one are folded whole, the bad one not at all
    for key in ("mean", "scatter", "v3", "class_sums", "class_counts", "q4"):
        assert np.array_equal(acc.state_dict()[key], first.state_dict()[key]), key
    assert rel(acc.update(x[2000:], y[2000:]).score(), reference_hscore(x, y)) < 1e-10


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_pass_blocks_large_offset_and_sorted_rows(rng, dtype):
    """Blocks after the first are centred on the previous block's mean in one read; features with mean 1e4 and
    std 1 must not cancel, and rows sorted by class (block means far apart: the two-pass fallback) must agree."""
    n, f, c = 6000, 8, 5
    y = rng.integers(0, c, n)
    x = (rng.normal(size=(n, f)) + 0.5 * rng.normal(size=(c, f))[y] + 1e4).astype(dtype)
    order = np.argsort(y, kind="stable")
    xs, ys = x[order], y[order]
    xs[:, 0] += 40.0 * ys  # class 0..4 blocks differ by 40 std in feature 0
    tol = 1e-8 if dtype == np.float64 else 2e-4
    for xx, yy in ((x, y), (xs, ys)):
        ref, ref_lw = reference_hscore(xx, yy), reference_regularized(xx, yy)
        whole = HScoreAccumulator(f, c, block_rows=n).update(xx, yy)  # one block: two-pass moments only
        for block in (256, 1000):
            acc = HScoreAccumulator(f, c, block_rows=block).update(xx, yy)
            assert rel(acc.score(), ref) < tol
            assert rel(acc.score(shrinkage="ledoit-wolf"), ref_lw) < tol
            assert rel(acc.score(), whole.score()) < (1e-11 if dtype == np.float64 else 1e-4)
            st, sw = acc.state_dict(), whole.state_dict()
            assert np.allclose(st["mean"], sw["mean"], rtol=1e-12, atol=0)
            assert np.allclose(st["scatter"], sw["scatter"], rtol=1e-9 if dtype == np.float64 else 1e-4,
                               atol=1e-9 * np.abs(sw["scatter"]).max())
            assert abs(st["q4"] - sw["q4"]) <= (1e-9 if dtype == np.float64 else 1e-3) * sw["q4"]


def test_recentre_moments_native_matches_direct_formulas(rng):
    """Moments about a shift s (Gram, v3, q4 of x - s) re-expressed about the mean vs direct float64 sums."""
    from tasklens._native import native

    x = rng.normal(size=(500, 7)) * 3 + 2
    s = x.mean(axis=0) + rng.normal(size=7)
    u = x - s
    a = (u * u).sum(axis=1)
    gram, v3 = u.T @ u, (a[:, None] * u).sum(axis=0)
    q4 = native().hscore_recentre_moments(500.0, u.mean(axis=0), gram, v3, float((a * a).sum()))
    w = x - x.mean(axis=0)
    b = (w * w).sum(axis=1)
    np.testing.assert_allclose(gram, w.T @ w, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(v3, (b[:, None] * w).sum(axis=0), rtol=1e-9, atol=1e-8)
    assert rel(q4, float((b * b).sum())) < 1e-10


# ------------------------------------------------------------------------------------- issue 9: scale, codes, seam

@pytest.mark.parametrize("scale", [1e-170, 1e-300, 1e80, 1e150])
def test_scale_invariance_float64(rng, scale):
    """H-score does not depend on the features' scale: float64 sums of |x|^4 overflow at 1e80 and the scatter
    underflows at 1e-170 unless the engine rescales (it returned 0.0 at 1e-170, and 'NaN or infinite' at 1e80)."""
    x, y = make_data(rng, 900, 6, 4)
    x = x / np.abs(x).max()
    ref = reference_hscore(x, y)
    assert rel(hscore(x * scale, y), ref) < 1e-10
    lw = hscore(x, y, shrinkage="ledoit-wolf")
    assert rel(hscore(x * scale, y, shrinkage="ledoit-wolf"), lw) < 1e-10
    assert rel(HScoreAccumulator(6, 4, block_rows=200).update(x * scale, y).score(), ref) < 1e-10


@pytest.mark.parametrize("scale", [np.finfo(np.float32).max / 2, 1e30, 1e-30, np.finfo(np.float32).tiny * 8])
def test_scale_invariance_float32_extremes(rng, scale):
    x, y = make_data(rng, 900, 6, 4)
    x = (x / np.abs(x).max()).astype(np.float32)
    xs = (x.astype(np.float64) * scale).astype(np.float32)  # rounding of the product is the only change
    assert np.isfinite(xs).all()
    assert rel(hscore(xs, y), reference_hscore(xs.astype(np.float64), y)) < 1e-4


def test_stream_rescales_when_a_later_block_overflows(rng):
    """The scale is picked from the first block; a later block 1e200 times larger overflows it, and the
    accumulator rescales its state exactly and goes on (one update or several, any block size)."""
    x, y = make_data(rng, 1200, 5, 3)
    big = x.copy()
    big[500:] *= 1e200
    ref = reference_hscore(big * 2.0 ** -600, y)  # exact power-of-two rescaling of the data: the same H
    one = HScoreAccumulator(5, 3, block_rows=200).update(big, y)
    two = HScoreAccumulator(5, 3, block_rows=200).update(big[:500], y[:500]).update(big[500:], y[500:])
    assert one.n == two.n == 1200
    assert rel(one.score(), ref) < 1e-9 and rel(two.score(), ref) < 1e-9
    assert two.state_dict()["scale_exp"] > 600
    # state dict round trip and merges across accumulators of different scales
    small = HScoreAccumulator(5, 3).update(big[:500], y[:500])
    large = HScoreAccumulator(5, 3).update(big[500:], y[500:])
    assert small.state_dict()["scale_exp"] == 0 and large.state_dict()["scale_exp"] > 600
    merged = HScoreAccumulator(5, 3).merge(small).merge(large)
    assert rel(merged.score(), ref) < 1e-9
    restored = HScoreAccumulator.from_dict(pickle.loads(pickle.dumps(large.state_dict())))
    assert rel(restored.merge(small).score(), ref) < 1e-9
    # NaN after a finite overflow still says NaN
    bad = big.copy()
    bad[900, 2] = np.nan
    with pytest.raises(ValueError, match="features: contains NaN"):
        HScoreAccumulator(5, 3, block_rows=200).update(bad, y)


def test_label_codes_near_2_pow_40(rng):
    """Label codes near 2**40 are renumbered (it raised MemoryError '8.00 TiB' while counting them)."""
    x, y = make_data(rng, 600, 4, 3)
    codes = y.astype(np.int64) * (2**40) + 7
    assert rel(hscore(x, codes), reference_hscore(x, y)) < 1e-10
    multi = np.stack([codes, (y == 1) * 2**41], 1)
    np.testing.assert_allclose(hscore(x, multi), [reference_hscore(x, y), reference_hscore(x, y == 1)],
                               rtol=1e-10)
    with pytest.raises(MemoryError, match="renumber"):
        HScoreAccumulator(4, 2**42).update(x, codes)


def test_output_rule_and_labels_of_another_kind(rng):
    torch = pytest.importorskip("torch")
    x, y = make_data(rng, 500, 4, 3)
    h = hscore(x, y)
    assert type(h) is float
    assert isinstance(hscore(x, np.stack([y, y], 1)), np.ndarray)
    ht = hscore(torch.from_numpy(x), y)  # numpy labels with torch features: moved to the features' device
    assert isinstance(ht, torch.Tensor) and ht.ndim == 0 and ht.dtype == torch.float64
    acc = HScoreAccumulator(4, 3).update(torch.from_numpy(x[:200]), y[:200])
    acc.update(torch.from_numpy(x[200:]), torch.from_numpy(y[200:]))
    assert rel(float(acc.score()), h) < 1e-12
    with pytest.raises(TypeError, match="num_classes"):
        HScoreAccumulator(4, 2.5)
    with pytest.raises(TypeError, match="block_rows"):
        HScoreAccumulator(4, 3, block_rows=True)


def test_cuda_class_sum_plan_bounds_the_scratch():
    """C = 20000 classes and F = 768 needed ~8 GB of scratch a block (64 row segments); the plan keeps each
    launch under SCRATCH_BYTES (or one segment of one target when that alone is larger) and <= 65535 targets."""
    from tasklens.metrics import _cuda

    def preferred(rows, features, targets):
        return 64

    for rows, f, t, c in [(16384, 768, 1, 20000), (16384, 512, 4096, 16), (4096, 8, 100000, 2), (10, 3, 2, 2)]:
        plan = _cuda.class_sum_plan(rows, f, t, c, preferred)
        assert plan[0][0] == 0 and plan[-1][1] == t
        assert all(a[1] == b[0] for a, b in zip(plan, plan[1:]))
        for t0, t1, seg in plan:
            assert 1 <= seg <= 64 and t1 - t0 <= _cuda.MAX_TARGETS_PER_LAUNCH
            scratch = seg * (t1 - t0) * c * f * 8
            assert scratch <= max(_cuda.SCRATCH_BYTES, c * f * 8)
    assert _cuda.class_sum_plan(10, 3, 2, 2, preferred) == [(0, 2, 64)]


def test_tf32_disabled_inside_the_engine_matmul():
    torch = pytest.importorskip("torch")
    from tasklens.metrics._cuda import exact_float32_matmul

    matmul = torch.backends.cuda.matmul
    before = (torch.get_float32_matmul_precision(), matmul.allow_tf32)
    try:
        torch.set_float32_matmul_precision("high")  # the user's TF32 opt-in
        matmul.allow_tf32 = True
        with exact_float32_matmul():
            assert torch.get_float32_matmul_precision() == "highest" and not matmul.allow_tf32
        assert torch.get_float32_matmul_precision() == "high" and matmul.allow_tf32
    finally:
        torch.set_float32_matmul_precision(before[0])
        matmul.allow_tf32 = before[1]


@pytest.mark.cuda
def test_cuda_accumulator_merge_resume_and_numpy_labels(rng):
    torch = pytest.importorskip("torch")
    x, y = make_data(rng, 9000, 16, 5)
    ref = HScoreAccumulator(16, 5, block_rows=2000).update(x, y)
    xt = torch.from_numpy(x).cuda()
    # numpy labels with CUDA features (AttributeError before)
    a = HScoreAccumulator(16, 5, block_rows=2000).update(xt[:4000], y[:4000])
    b = HScoreAccumulator(16, 5, block_rows=2000).update(xt[4000:], y[4000:])
    # merge on the device, including v3 and q4 (Ledoit-Wolf)
    merged = HScoreAccumulator(16, 5).merge(a)  # merge into an empty one: host state, then continues on CUDA
    merged.merge(b)
    for shrink in (None, "ledoit-wolf"):
        assert rel(float(merged.score(shrinkage=shrink)), ref.score(shrinkage=shrink)) < 1e-10
    ms, rs = merged.state_dict(), ref.state_dict()
    for key in ("mean", "scatter", "v3", "class_sums"):
        np.testing.assert_allclose(ms[key], rs[key], rtol=1e-10, atol=1e-10 * np.abs(rs[key]).max())
    assert rel(ms["q4"], rs["q4"]) < 1e-10
    np.testing.assert_array_equal(ms["class_counts"], rs["class_counts"])
    # resume from a state dict on CUDA
    resumed = HScoreAccumulator.from_dict(a.state_dict()).update(xt[4000:], torch.from_numpy(y[4000:]).cuda())
    assert rel(float(resumed.score()), ref.score()) < 1e-10
    assert resumed.score().device.type == "cuda"
    again = HScoreAccumulator(16, 5).merge(a).update(xt[4000:], y[4000:])
    assert rel(float(again.score(shrinkage="ledoit-wolf")), ref.score(shrinkage="ledoit-wolf")) < 1e-10


@pytest.mark.cuda
def test_cuda_sparse_labels_many_classes_tf32_and_scale(rng, monkeypatch):
    torch = pytest.importorskip("torch")
    from tasklens.metrics import _cuda

    x, y = make_data(rng, 6000, 24, 6, dtype=np.float32)
    xt = torch.from_numpy(x).cuda()
    codes = y.astype(np.int64) * 2**40  # compacted on the device too
    cpu = hscore(x, y)
    assert rel(float(hscore(xt, torch.from_numpy(codes).cuda())), cpu) < 1e-4
    many = rng.integers(0, 3000, 6000)  # C = 3000 with a tiny scratch budget: chunked targets, one segment
    monkeypatch.setattr(_cuda, "SCRATCH_BYTES", 1 << 16)
    labels = np.stack([y, many, many % 7], 1)
    np.testing.assert_allclose(hscore(xt, torch.from_numpy(labels).cuda()).cpu().numpy(), hscore(x, labels),
                               rtol=1e-4)
    matmul = torch.backends.cuda.matmul
    saved = matmul.allow_tf32
    try:
        matmul.allow_tf32 = True  # the user's opt-in must not lower the engine's accuracy
        assert rel(float(hscore(xt, y)), cpu) < 1e-4
        assert matmul.allow_tf32
    finally:
        matmul.allow_tf32 = saved
    x64 = x.astype(np.float64)
    for scale in (1e-170, 1e150):
        assert rel(float(hscore(torch.from_numpy(x64 * scale).cuda(), y)), hscore(x64, y)) < 1e-9


class _EmulatedCudaKernels:
    """The three H-score CUDA ops written in torch on CPU tensors from their documented semantics (cuda/hscore.cu),
    so the CUDA engine's Python side (allocation, target chunks, scratch sizes, state moves, rescaling) runs here."""

    def __init__(self):
        self.scratch = []

    def __call__(self, op, backend, *args, dtype=None):
        import torch

        from tasklens._native import native

        if op == "hscore_block_moments":
            xb, rows, f, mean, xc, v3, q4, norms = args
            assert xb.shape == (rows, f) and mean.dtype == torch.float64 and dtype == xb.dtype
            mean.copy_(xb.double().mean(0))
            u = xb.double() - mean
            xc.copy_(u.to(xb.dtype))
            norms.copy_((u * u).sum(1))
            v3.copy_((norms[:, None] * xc.double()).sum(0))
            q4.copy_((norms * norms).sum().reshape(1))
        elif op == "hscore_class_sums":
            xc, rows, f, labels, t, c, offset, sums, counts, partial, segments = args
            assert labels.shape == (rows, t) and labels.is_contiguous() and sums.shape == (t, c, f)
            assert partial.numel() == segments * t * c * f + t * c and t <= 65535
            self.scratch.append(partial.numel() * 8)
            for j in range(t):
                onehot = torch.nn.functional.one_hot(labels[:, j], c).double()  # (rows, c)
                n_c = onehot.sum(0)
                counts[j] += n_c.to(torch.int64)
                block = onehot.T @ xc.double() + n_c[:, None] * offset[None, :]
                sums[j] += torch.where(n_c[:, None] > 0, block, torch.zeros_like(block))
        elif op == "hscore_merge_moments":
            f, n_a, mean_a, scatter_a, v3_a, q4_a, n_b, mean_b, gram, v3_b, q4_b, work = args
            q4_a[0] = native().hscore_merge_moments(n_a, mean_a.numpy(), scatter_a.numpy(), v3_a.numpy(),
                                                    float(q4_a), n_b, mean_b.numpy(), gram.numpy(), v3_b.numpy(),
                                                    float(q4_b))
        else:
            raise AssertionError(op)


@pytest.fixture
def emulated_cuda(monkeypatch):
    """A backend that takes the CUDA engine's path on CPU tensors, with the kernels emulated in torch."""
    pytest.importorskip("torch")
    from dataclasses import dataclass

    from tasklens._dispatch import Backend
    from tasklens.metrics import _cuda

    @dataclass(frozen=True)
    class EmulatedCuda(Backend):
        @property
        def is_cuda(self) -> bool:
            return True

    kernels = _EmulatedCudaKernels()
    monkeypatch.setattr(_cuda, "call", kernels)
    monkeypatch.setattr(_cuda, "require_cuda", lambda what: None)
    monkeypatch.setattr(_cuda, "native", lambda: type("C", (), {
        "hscore_class_sum_segments_cuda": staticmethod(lambda rows, features, targets: 64)}))
    return lambda dtype: EmulatedCuda("torch", "cpu", dtype), kernels


def test_cuda_engine_glue_against_the_cpu_engine(rng, emulated_cuda, monkeypatch):
    """The CUDA engine's Python side on emulated kernels: numpy labels, chunked targets under a small scratch
    budget, resume from a state dict, merge into an empty accumulator, rescaling: all as the CPU engine."""
    import torch

    from tasklens.metrics import _cuda

    backend_for, kernels = emulated_cuda
    x, y = make_data(rng, 3000, 8, 5)
    labels = np.stack([y, rng.integers(0, 5, 3000), y % 2], 1)
    cpu = HScoreAccumulator(8, 5, num_targets=3, block_rows=700).update(x, labels)
    be = backend_for("float64")
    monkeypatch.setattr(_cuda, "SCRATCH_BYTES", 2 * 5 * 8 * 8)  # room for two targets' class sums per launch
    gpu = HScoreAccumulator(8, 5, num_targets=3, block_rows=700)
    gpu._add(torch.from_numpy(x[:1000]), labels_on(labels[:1000], be), be)  # numpy labels moved to the device
    assert len(kernels.scratch) == 2 * 2  # two blocks, targets in chunks (0, 2) and (2, 3)
    assert max(kernels.scratch) <= _cuda.SCRATCH_BYTES + 2 * 5 * 8
    resumed = HScoreAccumulator.from_dict(gpu.state_dict())  # host state, continues on the device
    resumed._add(torch.from_numpy(x[1000:2000]), labels_on(labels[1000:2000], be), be)
    assert torch.is_tensor(resumed._state["scatter"])
    rest = HScoreAccumulator(8, 5, num_targets=3, block_rows=700)
    rest._add(torch.from_numpy(x[2000:]), labels_on(torch.from_numpy(labels[2000:]), be), be)
    merged = HScoreAccumulator(8, 5, num_targets=3).merge(resumed)
    merged.merge(rest)
    np.testing.assert_allclose(merged.score(), cpu.score(), rtol=1e-11)
    np.testing.assert_allclose(merged.score(shrinkage="ledoit-wolf"), cpu.score(shrinkage="ledoit-wolf"),
                               rtol=1e-11)
    ms, cs = merged.state_dict(), cpu.state_dict()
    for key in ("mean", "scatter", "v3", "class_sums"):
        np.testing.assert_allclose(ms[key], cs[key], rtol=1e-10, atol=1e-10 * np.abs(cs[key]).max())
    np.testing.assert_array_equal(ms["class_counts"], cs["class_counts"])
    # a later block that overflows the scale picked from the first rows: rescaled on the device too
    big = x.copy()
    big[1500:] *= 1e200
    dev = HScoreAccumulator(8, 5, block_rows=700)
    dev._add(torch.from_numpy(big), labels_on(y, be), be)
    assert dev.state_dict()["scale_exp"] > 600
    assert rel(float(dev.score()), reference_hscore(big * 2.0**-600, y)) < 1e-9
    f32 = HScoreAccumulator(8, 5, block_rows=700)
    f32._add(torch.from_numpy(x.astype(np.float32)), labels_on(y, backend_for("float32")), backend_for("float32"))
    assert rel(float(f32.score()), reference_hscore(x, y)) < 1e-4
