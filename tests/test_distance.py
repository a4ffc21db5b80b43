"""Domain distances (Factors of Influence Eq. 1, Table 8) against independent float64 NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tasklens
from tasklens.domain import domain_distance, domain_distance_matrix, nearest, sample_datasets, sample_indices
from tasklens.domain._kernels import segmented_nearest

METRICS = ["euclidean", "sqeuclidean", "cosine"]


def ref_pairwise(t, s, metric):
    """float64 brute force, written from the definitions (no expansion tricks)."""
    t = np.asarray(t, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    diff = t[:, None, :] - s[None, :, :]
    if metric == "euclidean":
        return np.sqrt((diff ** 2).sum(-1))
    if metric == "sqeuclidean":
        return (diff ** 2).sum(-1)
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    sn = s / np.linalg.norm(s, axis=1, keepdims=True)
    return 0.5 * ((tn[:, None, :] - sn[None, :, :]) ** 2).sum(-1)


def assert_nearest(t, s, metric, rtol=1e-6):
    dist, index = nearest(t, s, metric=metric)
    ref = ref_pairwise(t, s, metric)
    best = ref.min(axis=1)
    scale = np.maximum(np.abs(best), 1e-12 * max(1.0, float(np.abs(ref).max())))
    assert np.all(np.abs(dist - best) <= rtol * scale + 1e-300), (dist, best)
    # exact argmin up to ties: the returned row attains the minimum, and it is the reference argmin
    # whenever the runner-up is not within float64 rounding of it.
    attained = ref[np.arange(len(t)), index]
    assert np.all(attained <= best + 1e-12 * scale)
    srt = np.sort(ref, axis=1)
    clear = srt[:, 1] > srt[:, 0] * (1 + 1e-9) + 1e-12 if ref.shape[1] > 1 else np.ones(len(t), bool)
    np.testing.assert_array_equal(index[clear], ref.argmin(axis=1)[clear])
    return dist, index


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nearest_matches_brute_force(metric, dtype, rng):
    t = rng.standard_normal((150, 17)).astype(dtype)
    s = (rng.standard_normal((230, 17)) + 0.3).astype(dtype)
    dist, index = assert_nearest(t, s, metric)
    assert dist.dtype == np.float64 and index.dtype == np.int64 and dist.shape == (150,)


@pytest.mark.parametrize("metric", METRICS)
def test_edge_cases_duplicates_single_rows_d1(metric, rng):
    s = rng.standard_normal((40, 3))
    t = np.vstack([s[:5], s[:5], rng.standard_normal((3, 3))])  # exact duplicates of source rows
    dist, index = assert_nearest(t, np.vstack([s, s[:5]]), metric)
    assert np.all(dist[:10] == 0) and np.all(index[:10] == np.r_[0:5, 0:5])  # ties -> smaller index
    assert_nearest(t[:1], s, metric)
    assert_nearest(t, s[:1], metric)
    if metric != "cosine":  # in 1-D cosine only sees signs
        assert_nearest(rng.standard_normal((50, 1)), rng.standard_normal((70, 1)), metric)


def test_many_exact_ties_overflow_candidates():
    # 1-D grid: every target sits exactly between two sources, and sources repeat 10 times.
    s = np.repeat(np.arange(0.0, 20.0, 2.0), 10)[:, None]
    t = np.arange(1.0, 19.0, 2.0)[:, None]
    dist, index = nearest(t, s)
    np.testing.assert_array_equal(dist, np.ones(len(t)))
    np.testing.assert_array_equal(index, np.arange(len(t)) * 10)  # first copy of the left neighbour


@pytest.mark.parametrize("offset", [1e4, 1e7])
def test_large_coordinates_no_cancellation(offset, rng):
    # the expansion |x|^2 + |y|^2 - 2xy in float32 would lose every digit here
    base = rng.standard_normal((1, 8)) * offset
    t = base + rng.standard_normal((60, 8))
    s = base + rng.standard_normal((90, 8))
    assert_nearest(t, s, "euclidean")
    assert_nearest(t.astype(np.float32), s.astype(np.float32), "euclidean")
    assert_nearest(t, s, "sqeuclidean")


@settings(max_examples=25, deadline=None)
@given(n_t=st.integers(1, 30), n_s=st.integers(1, 30), d=st.integers(1, 9), seed=st.integers(0, 10**6),
       metric=st.sampled_from(METRICS), rounding=st.booleans())
def test_nearest_property(n_t, n_s, d, seed, metric, rounding):
    r = np.random.default_rng(seed)
    t = r.standard_normal((n_t, d))
    s = r.standard_normal((n_s, d))
    if rounding:  # coarse grid -> many exact ties and duplicates
        t, s = np.round(t), np.round(s)
        if metric == "cosine":
            t[np.all(t == 0, axis=1)] = 1.0
            s[np.all(s == 0, axis=1)] = 1.0
    assert_nearest(t.astype(np.float32), s.astype(np.float32), metric)


def ref_distance(t, s, method, metric):
    from scipy.optimize import linear_sum_assignment

    ref = ref_pairwise(t, s, metric)
    if method == "target_to_source":
        return ref.min(axis=1).mean()
    if method == "source_to_target":
        return ref.min(axis=0).mean()
    if method == "symmetric":
        return 0.5 * (ref.min(axis=1).mean() + ref.min(axis=0).mean())
    r, c = linear_sum_assignment(ref)
    return ref[r, c].mean()


@pytest.mark.parametrize("method", ["target_to_source", "source_to_target", "symmetric", "emd"])
@pytest.mark.parametrize("metric", METRICS)
def test_domain_distance_methods(method, metric, rng):
    t = rng.standard_normal((25, 6)).astype(np.float32)
    s = (rng.standard_normal((40, 6)) * 2).astype(np.float32)
    got = domain_distance(t, s, method=method, metric=metric)
    assert isinstance(got, float)
    assert got == pytest.approx(ref_distance(t, s, method, metric), rel=1e-6)


def test_emd_against_scipy_brute_force_permutations():
    import itertools

    r = np.random.default_rng(3)
    t, s = r.standard_normal((5, 2)), r.standard_normal((5, 2))
    cost = ref_pairwise(t, s, "euclidean")
    best = min(cost[np.arange(5), list(p)].mean() for p in itertools.permutations(range(5)))
    assert domain_distance(t, s, method="emd") == pytest.approx(best, rel=1e-12)
    # unequal sizes: the smaller set is matched one-to-one into the larger one
    s7 = np.vstack([s, [[50.0, 50.0], [60.0, 60.0]]])
    assert domain_distance(t, s7, method="emd") == pytest.approx(best, rel=1e-12)


def test_asymmetry_and_inclusion(rng):
    t = rng.standard_normal((30, 4))
    s = np.vstack([rng.standard_normal((50, 4)) * 5, t])  # the source includes the target's rows
    assert domain_distance(t, s) == 0.0
    assert domain_distance(s, t) > 1.0
    assert domain_distance(t, s, method="source_to_target") == pytest.approx(domain_distance(s, t))


@pytest.mark.parametrize("metric", METRICS)
def test_matrix_equals_single_calls(metric, rng):
    sizes = [7, 1, 60, 33, 120]
    ds = [(rng.standard_normal((n, 5)) + k).astype(np.float32) for k, n in enumerate(sizes)]
    m = domain_distance_matrix(ds, metric=metric)
    single = np.array([[domain_distance(a, b, metric=metric) for b in ds] for a in ds])
    ref = np.array([[ref_distance(a, b, "target_to_source", metric) for b in ds] for a in ds])
    np.testing.assert_allclose(m, single, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m, ref, rtol=1e-6, atol=1e-12)
    assert np.all(np.diag(m) == 0)
    np.testing.assert_array_equal(domain_distance_matrix(ds, method="source_to_target", metric=metric), m.T)
    np.testing.assert_allclose(domain_distance_matrix(ds, method="symmetric", metric=metric), (m + m.T) / 2)
    stacked = np.concatenate(ds)
    offsets = np.r_[0, np.cumsum(sizes)]
    np.testing.assert_array_equal(domain_distance_matrix(stacked, offsets=offsets, metric=metric), m)


def test_matrix_emd(rng):
    ds = [rng.standard_normal((n, 3)) for n in (4, 6, 5)]
    m = domain_distance_matrix(ds, method="emd")
    ref = np.array([[ref_distance(a, b, "emd", "euclidean") for b in ds] for a in ds])
    np.testing.assert_allclose(m, ref, rtol=1e-12)


def test_thread_and_tile_invariance(threads, rng):
    # tiles that split datasets across tile boundaries in both directions, both GEMM back-ends
    sizes = [100, 3, 250, 77, 180]
    x = np.concatenate([rng.standard_normal((n, 24)) + 0.5 * k for k, n in enumerate(sizes)]).astype(np.float32)
    off = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    results = []
    for n_threads, tile, gemm in [(1, 2048, "blas"), (2, 64, "blas"), (3, 97, "native"), (1, 33, "native")]:
        threads(n_threads)
        results.append(segmented_nearest(x, off, tile=tile, gemm=gemm))
    for dist, idx in results[1:]:
        np.testing.assert_array_equal(dist, results[0][0])
        np.testing.assert_array_equal(idx, results[0][1])
    t, s = x[:200], x[200:]
    pair = [segmented_nearest(t, np.array([0, 200]), s, np.array([0, len(s)]), both=True, tile=tile)
            for tile in (2048, 50)]
    for a, b in zip(*pair):
        np.testing.assert_array_equal(a, b)


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(rng.standard_normal((20, 4)).astype(np.float32))
    s = torch.from_numpy(rng.standard_normal((30, 4)).astype(np.float32))
    dist, index = nearest(t, s)
    assert isinstance(dist, torch.Tensor) and dist.dtype == torch.float64 and index.dtype == torch.int64
    ref, ref_i = nearest(t.numpy(), s.numpy())
    np.testing.assert_array_equal(dist.numpy(), ref)
    m = domain_distance_matrix([t, s])
    assert isinstance(m, torch.Tensor) and m.shape == (2, 2)
    d = tasklens.domain_distance(t, s)
    assert isinstance(d, torch.Tensor) and d.ndim == 0 and d.dtype == torch.float64
    assert float(d) == pytest.approx(float(m[0, 1]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_output_rule_every_public_function(dtype, rng):
    """numpy in -> numpy out (scalars: Python float); torch in -> torch out (scalars: 0-d float64 tensors)."""
    torch = pytest.importorskip("torch")
    t, s = rng.standard_normal((6, 3)).astype(dtype), rng.standard_normal((7, 3)).astype(dtype)
    for method in ("target_to_source", "source_to_target", "symmetric", "emd"):
        v = domain_distance(t, s, method=method)
        assert type(v) is float
        vt = domain_distance(torch.from_numpy(t), torch.from_numpy(s), method=method)
        assert isinstance(vt, torch.Tensor) and vt.ndim == 0 and vt.dtype == torch.float64
        assert float(vt) == v
        m = domain_distance_matrix([t, s], method=method)
        assert isinstance(m, np.ndarray) and m.dtype == np.float64
        mt = domain_distance_matrix([torch.from_numpy(t), torch.from_numpy(s)], method=method)
        assert isinstance(mt, torch.Tensor) and mt.dtype == torch.float64
        np.testing.assert_array_equal(mt.numpy(), m)
    d, i = nearest(torch.from_numpy(t), torch.from_numpy(s))
    assert d.dtype == torch.float64 and i.dtype == torch.int64 and d.device.type == "cpu"


SCALES = [1e200, 1e-301, 1e-170, 2.0 ** -1000, 1e300]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("method", ["target_to_source", "symmetric", "emd"])
def test_extreme_scales_euclidean_and_cosine(scale, method, rng):
    """Issue 9: at 1e200 the distance was NaN, at 1e-301 0.0, and cosine 0.0 at both. Euclidean distances scale
    with the data, cosine does not depend on it; both now match the unit-scale answer."""
    t = rng.standard_normal((40, 6))
    s = rng.standard_normal((50, 6)) + 0.2
    ts, ss = t * scale, s * scale
    for metric in ("euclidean", "cosine"):
        ref = domain_distance(ts / scale, ss / scale, method=method, metric=metric)  # the rows actually given
        got = domain_distance(ts, ss, method=method, metric=metric)
        want = ref * scale if metric == "euclidean" else ref
        assert np.isfinite(got) and got > 0
        assert got == pytest.approx(want, rel=1e-12)
    m = domain_distance_matrix([ts, ss], metric="cosine")
    np.testing.assert_allclose(m, domain_distance_matrix([t, s], metric="cosine"), rtol=1e-12)
    dist, index = nearest(ts, ss)
    ref_d, ref_i = nearest(ts / scale, ss / scale)
    np.testing.assert_array_equal(index, ref_i)
    np.testing.assert_allclose(dist, ref_d * scale, rtol=1e-12)


@pytest.mark.parametrize("scale, kind", [(1e200, "overflow"), (1e-170, "underflow"), (1e-301, "underflow")])
def test_extreme_scales_sqeuclidean_is_an_error_not_a_wrong_number(scale, kind, rng):
    t, s = rng.standard_normal((10, 4)) * scale, rng.standard_normal((12, 4)) * scale
    with pytest.raises(ValueError, match=f"sqeuclidean.*{kind}.*cosine"):
        domain_distance(t, s, metric="sqeuclidean")
    with pytest.raises(ValueError, match=kind):
        nearest(t, s, metric="sqeuclidean")


def test_extreme_scales_sqeuclidean_where_it_fits(rng):
    t, s = rng.standard_normal((10, 4)), rng.standard_normal((12, 4))
    for scale in (1e120, 1e-120):  # outside the unscaled range, but the squares still fit float64
        got = domain_distance(t * scale, s * scale, metric="sqeuclidean")
        assert got == pytest.approx(domain_distance(t, s, metric="sqeuclidean") * scale ** 2, rel=1e-12)


@pytest.mark.parametrize("value", [3.0e38, 1.0e-38, 1.0e-44])
def test_float32_extremes(value, rng):
    """float32 rows at the top of the range (differences overflow float32) and among subnormals."""
    t = np.clip(rng.standard_normal((20, 5)) * value, -3.4e38, 3.4e38).astype(np.float32)
    s = np.clip(rng.standard_normal((25, 5)) * value, -3.4e38, 3.4e38).astype(np.float32)
    assert np.all(np.isfinite(t)) and np.any(t != 0)
    for metric in ("euclidean", "cosine"):
        got, idx = nearest(t, s, metric=metric)
        ref = ref_pairwise(t.astype(np.float64) / value, s.astype(np.float64) / value, metric)
        if metric == "euclidean":
            ref = ref * value
        zero_t = ~np.any(t != 0, axis=1)
        if metric == "cosine" and (zero_t.any() or not np.all(np.any(s != 0, axis=1))):
            continue
        np.testing.assert_allclose(got, ref.min(axis=1), rtol=1e-9)
        np.testing.assert_allclose(ref[np.arange(len(t)), idx], ref.min(axis=1), rtol=1e-9)


def test_rescaling_is_exact_and_skipped_in_range(rng):
    from tasklens.domain._kernels import SAFE_RANGE, prescale, times_pow2

    x = rng.standard_normal((5, 3))
    (same,), e, _ = prescale([x])
    assert e == 0 and same is x  # ordinary data: no copy, same bits
    tiny = np.array([[5e-324, -1e-320, 2.0 ** -1060]])
    (scaled,), e, amax = prescale([tiny])
    assert 0.5 <= np.abs(scaled).max() < 1 and e > 1000
    np.testing.assert_array_equal(times_pow2(scaled, -e), tiny)  # exact round trip, subnormals included
    assert SAFE_RANGE == (2.0 ** -100, 2.0 ** 100)


def test_top_level_exports():
    assert tasklens.domain_distance is domain_distance
    assert tasklens.domain_distance_matrix is domain_distance_matrix
    assert tasklens.nearest is nearest


def test_bad_input(rng):
    good = rng.standard_normal((5, 3))
    with pytest.raises(ValueError, match="source.*3 feature columns"):
        nearest(good, rng.standard_normal((5, 4)))
    with pytest.raises(ValueError, match="target.*2-D"):
        nearest(good[0], good)
    with pytest.raises(ValueError, match="source.*at least 1 row"):
        domain_distance(good, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        nearest(np.full((2, 3), np.nan), good)
    with pytest.raises(ValueError, match="method"):
        domain_distance(good, good, method="hausdorff")
    with pytest.raises(ValueError, match="metric"):
        nearest(good, good, metric="manhattan")
    with pytest.raises(ValueError, match="all zeros"):
        nearest(np.zeros((2, 3)), good, metric="cosine")
    with pytest.raises(TypeError, match="real floating"):
        nearest(np.array([["a", "b"]]), good)
    with pytest.raises(TypeError, match="list of"):
        domain_distance_matrix(good)
    with pytest.raises(ValueError, match="at least one dataset"):
        domain_distance_matrix([])
    with pytest.raises(ValueError, match=r"datasets\[1\]"):
        domain_distance_matrix([good, rng.standard_normal((4, 2))])
    with pytest.raises(ValueError, match="offsets"):
        domain_distance_matrix(good, offsets=[0, 3, 3, 5])
    with pytest.raises(ValueError, match="offsets"):
        domain_distance_matrix(good, offsets=[0, 4])


def test_sampling_whole_numbers_only():
    """check_int: 2.5 rows or samples is an error, never truncated; 3.0 is accepted."""
    with pytest.raises(TypeError, match="n_rows"):
        sample_indices(10.5, 3)
    with pytest.raises(TypeError, match="n: expected an int"):
        sample_indices(10, 2.5)
    with pytest.raises(TypeError, match="n: expected an int"):
        sample_datasets([np.zeros((4, 2))], 2.5)
    with pytest.raises(ValueError, match="n_rows"):
        sample_indices(-1, 3)
    with pytest.raises(TypeError, match="seed"):
        sample_indices(10, 3, seed=True)
    assert sample_indices(10.0, 3.0).tolist() == sample_indices(10, 3).tolist()


def test_sampling_same_rows_as_target_or_source(rng):
    idx = sample_indices(5000, 1000, seed=7, key="coco")
    assert len(idx) == 1000 and len(np.unique(idx)) == 1000 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, sample_indices(5000, 1000, seed=7, key="coco"))
    assert not np.array_equal(idx, sample_indices(5000, 1000, seed=7, key="kitti"))
    np.testing.assert_array_equal(sample_indices(30, 1000), np.arange(30))
    ds = [rng.standard_normal((n, 2)) for n in (50, 2000)]
    a = sample_datasets(ds, 100, seed=1, names=["a", "b"])
    b = sample_datasets(ds[::-1], 100, seed=1, names=["b", "a"])  # order does not change a dataset's rows
    np.testing.assert_array_equal(a[1], b[0])
    assert a[0].shape == (50, 2) and a[1].shape == (100, 2)
    with pytest.raises(ValueError, match="names"):
        sample_datasets(ds, names=["a"])


def test_faiss_oracle(rng):
    faiss = pytest.importorskip("faiss")
    t = rng.standard_normal((300, 32)).astype(np.float32)
    s = rng.standard_normal((500, 32)).astype(np.float32)
    index = faiss.IndexFlatL2(32)
    index.add(s)
    fd, fi = index.search(t, 1)
    dist, idx = nearest(t, s, metric="sqeuclidean")
    np.testing.assert_allclose(dist, fd[:, 0], rtol=1e-4)
    agree = idx == fi[:, 0]
    assert agree.mean() > 0.99
    # where faiss (float32 expansion) disagrees, ours is the exact minimum
    ref = ref_pairwise(t, s, "sqeuclidean")
    assert np.all(ref[np.arange(300), idx] <= ref[np.arange(300), fi[:, 0]])


@pytest.mark.cuda
@pytest.mark.parametrize("metric", METRICS)
def test_cuda_matches_cpu(metric, rng):
    torch = pytest.importorskip("torch")
    ds = [rng.standard_normal((n, 37)).astype(np.float32) + k for k, n in enumerate([300, 1, 129, 700])]
    cpu = domain_distance_matrix(ds, metric=metric)
    gpu = domain_distance_matrix([torch.from_numpy(x).cuda() for x in ds], metric=metric)
    assert gpu.is_cuda
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, rtol=1e-5, atol=1e-6)
    t, s = torch.from_numpy(ds[0]).cuda(), torch.from_numpy(ds[3]).cuda()
    dist, index = nearest(t, s, metric=metric)
    ref_d, ref_i = nearest(ds[0], ds[3], metric=metric)
    np.testing.assert_allclose(dist.cpu().numpy(), ref_d, rtol=1e-5, atol=1e-6)
    assert (index.cpu().numpy() == ref_i).mean() > 0.99
    for method in ("source_to_target", "symmetric"):
        assert domain_distance(t, s, method=method, metric=metric) == pytest.approx(
            domain_distance(ds[0], ds[3], method=method, metric=metric), rel=1e-5)


# ------------------------------------------------------------------- the CUDA glue, against emulated kernels

def _emulated_call(op, be, *args, dtype=None):
    """numpy stand-ins for the three CUDA ops, with the kernels' contracts (cuda/distance.cu), on CPU tensors."""
    torch = pytest.importorskip("torch")
    if op == "distance_segmin":
        kt, ks, n_t, n_s, d, seg, n_seg, packed = args
        assert dtype == "float32" and kt.dtype == ks.dtype == torch.float32 and seg.dtype == torch.int32
        a, b = kt.numpy(), ks.numpy()
        scores = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1, dtype=np.float32)
        keys = (scores.view(np.uint32).astype(np.uint64) << np.uint64(32)) | np.arange(n_s, dtype=np.uint64)
        out = packed.numpy().view(np.uint64)
        for g in range(n_seg):
            cols = seg.numpy() == g
            out[:, g] = np.minimum(out[:, g], keys[:, cols].min(axis=1))
        return None
    if op == "distance_finalize":
        tgt, inv_t, src, inv_s, packed, n_t, n_seg, d, metric, dist, index = args
        assert dtype == tgt.dtype
        j = (packed.numpy().view(np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.int64)
        x = tgt.numpy().astype(np.float64) * (inv_t.numpy()[:, None] if torch.is_tensor(inv_t) else 1.0)
        y = src.numpy().astype(np.float64) * (inv_s.numpy()[:, None] if torch.is_tensor(inv_s) else 1.0)
        sq = ((x[:, None, :] - y[j]) ** 2).sum(-1)
        dist.numpy()[:] = np.sqrt(sq) if metric == 0 else (0.5 * sq if metric == 2 else sq)
        index.numpy()[:] = j
        return None
    if op == "distance_segment_mean":
        dist, n_cols, off, n_seg, out = args
        o = off.numpy()
        out.numpy()[:] = np.add.reduceat(dist.numpy(), o[:-1], axis=0) / np.diff(o)[:, None]
        return None
    raise AssertionError(op)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("scale", [1.0, 1e200, 1e-301])
def test_cuda_glue_with_emulated_kernels(monkeypatch, metric, scale, rng):
    """domain/_cuda.py (range scaling, centred float32 keys, finalisation, row-order means) driven through
    emulated kernels on the CPU: the same matrix and nearest rows as the CPU engine."""
    torch = pytest.importorskip("torch")
    from tasklens import _dispatch
    from tasklens.domain import _cuda

    monkeypatch.setattr(_dispatch, "call", _emulated_call)
    if metric == "sqeuclidean" and scale != 1.0:
        return  # out of float64's range: an error on both paths (test_extreme_scales_sqeuclidean...)
    ds = [rng.standard_normal((n, 5)) * scale + 0.3 * k * scale for k, n in enumerate([30, 1, 45])]
    be = _dispatch.Backend("torch", "cpu", "float64")
    off = np.array([0, 30, 31, 76])
    got = _cuda.matrix_cuda([torch.from_numpy(x) for x in ds], off, metric, be)
    np.testing.assert_allclose(got.numpy(), domain_distance_matrix(ds, metric=metric), rtol=1e-5)
    d, i = _cuda.nearest_cuda(torch.from_numpy(ds[0]), torch.from_numpy(ds[2]), metric, be)
    rd, ri = nearest(ds[0], ds[2], metric=metric)
    np.testing.assert_allclose(d.numpy(), rd, rtol=1e-5)
    assert (i.numpy() == ri).mean() > 0.9
