"""tasklens.hgr: DTM (Def. 1) and ACE (Algorithm 1) against an independent float64 NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tasklens
from tasklens.hgr import ace, dtm


def reference_dtm(x, y, nx, ny):
    """B~ from Def. 1 with explicit loops over the joint table (dropping unused codes)."""
    joint = np.zeros((ny, nx))
    for a, b in zip(x, y):
        joint[b, a] += 1.0
    joint /= len(x)
    px, py = joint.sum(0), joint.sum(1)
    B = np.zeros_like(joint)
    for j in range(ny):
        for i in range(nx):
            if px[i] > 0 and py[j] > 0:
                B[j, i] = joint[j, i] / np.sqrt(py[j] * px[i]) - np.sqrt(py[j] * px[i])
    return B, px, py


def sample(rng, nx, ny, n, alpha=0.5):
    p = rng.dirichlet(np.full(nx * ny, alpha))
    idx = rng.choice(nx * ny, size=n, p=p)
    return idx // ny, idx % ny


def check_constraints(r, x, y, nx, ny, atol=1e-9):
    px = np.bincount(x, minlength=nx) / len(x)
    py = np.bincount(y, minlength=ny) / len(y)
    f, g = np.asarray(r.f), np.asarray(r.g)
    k = f.shape[1]
    np.testing.assert_allclose(px @ f, 0, atol=atol)
    np.testing.assert_allclose(py @ g, 0, atol=atol)
    np.testing.assert_allclose(f.T @ (px[:, None] * f), np.eye(k), atol=atol)
    np.testing.assert_allclose(g.T @ (py[:, None] * g), np.eye(k), atol=atol)
    cross = (f[x][:, :, None] * g[y][:, None, :]).mean(0)  # E[f(X) g(Y)^T] from the samples
    np.testing.assert_allclose(cross, np.diag(np.asarray(r.correlations)), atol=atol)


def test_dtm_matches_reference(rng):
    x, y = sample(rng, 7, 5, 3000)
    r = dtm(x, y, num_x=9)  # codes 7, 8 unused
    B, px, py = reference_dtm(x, y, 9, 5)
    np.testing.assert_allclose(r.matrix, B, atol=1e-14)
    np.testing.assert_allclose(r.p_x, px, atol=1e-15)
    sv = np.linalg.svd(B, compute_uv=False)
    assert r.singular_values.shape == (4,)  # min(7, 5) - 1 nontrivial modes
    np.testing.assert_allclose(r.singular_values, sv[:4], atol=1e-12)
    assert sv[4] < 1e-12
    np.testing.assert_allclose(r.optimal_hscore, np.sum(sv**2), rtol=1e-12)
    assert np.all(np.diff(r.singular_values) <= 0) and r.singular_values[0] <= 1 + 1e-12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nx=st.integers(2, 30), ny=st.integers(2, 30), seed=st.integers(0, 2**31), alpha=st.sampled_from([0.1, 1.0]),
       method=st.sampled_from(["alternate", "composed"]))
def test_ace_equals_dtm_singular_values(nx, ny, seed, alpha, method):
    rng = np.random.default_rng(seed)
    x, y = sample(rng, nx, ny, 2000, alpha)
    d = dtm(x, y, num_x=nx, num_y=ny)
    modes = d.singular_values.shape[0]
    if modes == 0:
        return
    k = int(rng.integers(1, modes + 1))
    r = ace(x, y, k=k, num_x=nx, num_y=ny, method=method, max_iter=5000, tol=1e-14, oversample=2, seed=seed % 97)
    assert r.converged
    np.testing.assert_allclose(r.correlations, d.singular_values[:k], atol=1e-6)
    check_constraints(r, x, y, nx, ny, atol=1e-8)


def test_ace_large_alphabet_subspace_block(rng):
    # |X| = 400 > |Y| = 60 and k + oversample < K - 1: a true block iteration, both methods agree with the DTM.
    x = rng.integers(0, 400, 40000)
    y = (x // 7 + rng.integers(0, 5, x.size)) % 60
    d = dtm(x, y)
    for method in ("alternate", "composed"):
        r = ace(x, y, k=5, method=method)
        assert r.converged and r.method == method
        np.testing.assert_allclose(r.correlations, d.singular_values[:5], atol=1e-6)
        check_constraints(r, x, y, 400, 60)


def test_ace_swaps_sides_when_x_is_smaller(rng):
    x, y = sample(rng, 6, 40, 5000)
    r = ace(x, y, k=3)
    assert np.asarray(r.f).shape == (6, 3) and np.asarray(r.g).shape == (40, 3)
    np.testing.assert_allclose(r.correlations, dtm(x, y).singular_values[:3], atol=1e-8)
    check_constraints(r, x, y, 6, 40)


def test_thread_count_invariance(rng, threads):
    x, y = sample(rng, 3000, 50, 400000)
    outs = []
    for n in (1, 2, 3):
        threads(n)
        for method in ("alternate", "composed"):
            r = ace(x, y, k=4, method=method, max_iter=50)
            outs.append((method, r))
    for method in ("alternate", "composed"):
        rs = [r for m, r in outs if m == method]
        for r in rs[1:]:
            np.testing.assert_array_equal(r.correlations, rs[0].correlations)
            np.testing.assert_array_equal(r.f, rs[0].f)
            np.testing.assert_array_equal(r.g, rs[0].g)


def test_joint_counts_csr_matches_numpy(rng, threads):
    from tasklens._native import native

    x, y = sample(rng, 500, 30, 100000)
    dense = np.zeros((500, 30))
    np.add.at(dense, (x, y), 1)
    for n in (1, 2):
        threads(n)
        ptr, cols, vals = native().ace_joint_counts(x, y, 500, 30)
        rows = np.repeat(np.arange(500), np.diff(ptr))
        rebuilt = np.zeros((500, 30))
        rebuilt[rows, cols] = vals
        np.testing.assert_array_equal(rebuilt, dense)
        assert all(np.all(np.diff(cols[ptr[i]:ptr[i + 1]]) > 0) for i in range(500))


def test_joint_counts_sparse_code_space(rng, threads):
    # 20,000 x 1,000 cells > max(4N, 2^24): the scatter-and-sort path instead of the dense table.
    from tasklens._native import native

    x = rng.integers(0, 20000, 30000)
    y = rng.integers(0, 40, 30000) * 25
    keys, counts = np.unique(x * 1000 + y, return_counts=True)
    for n in (1, 2):
        threads(n)
        ptr, cols, vals = native().ace_joint_counts(x, y, 20000, 1000)
        rows = np.repeat(np.arange(20000), np.diff(ptr))
        np.testing.assert_array_equal(rows * 1000 + cols, keys)
        np.testing.assert_array_equal(vals, counts)
    r = ace(x, y, k=3, num_y=1000)
    np.testing.assert_allclose(r.correlations, dtm(x, y // 25).singular_values[:3], atol=1e-8)


def test_seed_changes_start_not_result(rng):
    x, y = sample(rng, 50, 20, 20000)
    a = ace(x, y, k=3, seed=1)
    b = ace(x, y, k=3, seed=2)
    np.testing.assert_allclose(a.correlations, b.correlations, atol=1e-9)
    np.testing.assert_allclose(a.f, b.f, atol=1e-5)  # distinct correlations: same functions, signs fixed
    assert not np.array_equal(a.f, b.f)  # ... reached from different starts
    # Same seed: identical bits.
    np.testing.assert_array_equal(ace(x, y, k=3, seed=1).g, a.g)


def test_unused_codes_give_zero_rows(rng):
    x, y = sample(rng, 10, 6, 3000)
    r = ace(x * 2, y, k=2, num_y=9)  # odd x codes and y codes 6..8 never occur
    assert np.all(r.f[1::2] == 0) and np.all(r.g[6:] == 0)
    np.testing.assert_allclose(r.correlations, dtm(x, y).singular_values[:2], atol=1e-8)
    d = dtm(x * 2, y, num_y=9)
    np.testing.assert_allclose(d.singular_values, dtm(x, y).singular_values, atol=1e-12)
    assert np.all(d.matrix[:, 1::2] == 0) and np.all(d.matrix[6:] == 0)


def test_degenerate_inputs():
    x = np.zeros(100, dtype=int)
    y = np.arange(100) % 4
    d = dtm(x, y)
    assert d.singular_values.shape == (0,) and d.optimal_hscore == 0.0
    with pytest.raises(ValueError, match="single value"):
        ace(x, y, k=1)
    with pytest.raises(ValueError, match="single value"):
        ace(y, np.ones(100, dtype=int), k=1)
    # Independent variables: modes exist but all correlations are 0, and f, g are still orthonormal.
    xi, yi = np.repeat(np.arange(4), 4), np.tile(np.arange(4), 4)
    r = ace(xi, yi, k=3)
    np.testing.assert_allclose(r.correlations, 0, atol=1e-12)
    check_constraints(r, xi, yi, 4, 4)
    # Rank-deficient dependence: one nonzero mode, the rest zero.
    xr = np.arange(600) % 6
    yr = np.where(xr < 3, 0, 1) * 3 + (np.arange(600) // 6) % 3
    r = ace(xr, yr, k=3)
    np.testing.assert_allclose(r.correlations, dtm(xr, yr).singular_values[:3], atol=1e-9)
    check_constraints(r, xr, yr, 6, 6)


@pytest.mark.parametrize("call, err, words", [
    (lambda: ace([0, 1, 2], [0, 1], k=1), ValueError, ["y", "expected 3"]),
    (lambda: ace([0, -1, 2], [0, 1, 1], k=1), ValueError, ["x", "non-negative"]),
    (lambda: ace([0.5, 1, 2], [0, 1, 1], k=1), TypeError, ["x", "integer"]),
    (lambda: ace(np.zeros((3, 2), int), [0, 1, 1], k=1), ValueError, ["x", "1-D"]),
    (lambda: ace([], [], k=1), ValueError, ["x", "at least one"]),
    (lambda: ace([0, 1, 2, 0], [0, 1, 2, 1], k=3), ValueError, ["k=3", "k <= 2"]),
    (lambda: ace([0, 1, 2, 0], [0, 1, 2, 1], k=0), ValueError, ["k"]),
    (lambda: ace([0, 1, 2, 0], [0, 1, 2, 1], k=1, tol=-1), ValueError, ["tol"]),
    (lambda: ace([0, 1, 2, 0], [0, 1, 2, 1], k=1, method="svd"), ValueError, ["method"]),
    (lambda: ace([0, 1, 2, 0], [0, 1, 2, 1], k=1, num_x=2), ValueError, ["num_x=2"]),
    (lambda: ace([0, 1, 2, 0], [0, 1, 2, 1], k=1, max_iter=0), ValueError, ["max_iter"]),
    (lambda: dtm(np.arange(10000), np.arange(10000)), ValueError, ["dtm", "ace"]),
])
def test_bad_input(call, err, words):
    with pytest.raises(err) as info:
        call()
    for w in words:
        assert w in str(info.value)


def test_max_iter_reports_not_converged(rng):
    x, y = sample(rng, 200, 40, 20000)
    r = ace(x, y, k=4, max_iter=2, oversample=0)
    assert r.iterations == 2 and not r.converged


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    x, y = sample(rng, 30, 10, 5000)
    r_np = ace(x, y, k=2)
    r_t = ace(torch.from_numpy(x), torch.from_numpy(y), k=2)
    assert isinstance(r_t.f, torch.Tensor) and r_t.f.dtype == torch.float64
    np.testing.assert_array_equal(r_t.f.numpy(), r_np.f)
    d = dtm(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(d.matrix, torch.Tensor)
    np.testing.assert_allclose(d.singular_values.numpy(), dtm(x, y).singular_values)
    with pytest.raises(TypeError, match="one kind"):
        ace(torch.from_numpy(x), y)


def test_hscore_of_ace_features_is_optimal(rng):
    # H(f) = tr(cov(f)^-1 cov(E[f|Y])) of the full set of ACE features equals ||B~||_F^2 (Sec. 4.2).
    x, y = sample(rng, 25, 8, 6000)
    d = dtm(x, y)
    r = ace(x, y, k=d.singular_values.shape[0])
    feats = r.f[x]
    means = np.stack([feats[y == c].mean(0) for c in range(8)])
    between = means[y]
    h = np.trace(np.linalg.pinv(np.cov(feats.T, bias=True)) @ np.cov(between.T, bias=True))
    np.testing.assert_allclose(h, d.optimal_hscore, rtol=1e-9)
    np.testing.assert_allclose(r.hscore, d.optimal_hscore, rtol=1e-9)


@pytest.mark.cuda
def test_ace_cuda_matches_cpu(rng):
    torch = pytest.importorskip("torch")
    x, y = sample(rng, 3000, 60, 300000)
    cpu = ace(x, y, k=5, method="alternate")
    gpu = ace(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), k=5)
    assert gpu.f.device.type == "cuda" and gpu.method == "cuda"
    np.testing.assert_allclose(gpu.correlations.cpu().numpy(), cpu.correlations, atol=1e-10)
    np.testing.assert_allclose(gpu.f.cpu().numpy(), cpu.f, atol=1e-7)
    np.testing.assert_allclose(gpu.g.cpu().numpy(), cpu.g, atol=1e-7)
    assert tasklens.get_num_threads() >= 1


# ------------------------------------------------------------------------------------- issue 9

def test_dtm_of_a_constant_is_exactly_zero(rng):
    """One x (or y) value: B~ = 0 in exact arithmetic; the rank-one subtraction left ~3e-32 before."""
    for x, y in [(np.zeros(10, int), rng.integers(0, 3, 10)), (rng.integers(0, 7, 37), np.full(37, 4))]:
        d = dtm(x, y)
        assert d.optimal_hscore == 0.0 and type(d.optimal_hscore) is float
        assert not d.matrix.any() and d.singular_values.shape == (0,)


def test_codes_near_2_pow_40(rng):
    """Sparse codes: counted without a table over the code range (MemoryError '8.00 TiB' before); ACE iterates
    on the codes that occur and places f, g at their codes; when even f would be too large, a clear error."""
    x, y = sample(rng, 20, 7, 5000)
    r = ace(x, y, k=2)
    big = ace(x * 1000 + 3, y * 100_000, k=2)
    np.testing.assert_allclose(big.correlations, r.correlations, atol=1e-12)
    assert big.f.shape == (19 * 1000 + 4, 2) and big.g.shape == (6 * 100_000 + 1, 2)
    np.testing.assert_allclose(big.f[x * 1000 + 3], r.f[x], atol=1e-9)
    np.testing.assert_allclose(big.g[y * 100_000], r.g[y], atol=1e-9)
    assert not np.delete(big.f, np.unique(x) * 1000 + 3, axis=0).any()
    with pytest.raises(ValueError, match=r"x: the codes go up to .*renumber"):
        ace(x * 2**40, y, k=2)
    with pytest.raises(ValueError, match=r"only 20 x and 7 y codes occur: renumber"):
        dtm(x * 2**40, y)


def test_whole_number_arguments():
    x, y = np.arange(40) % 5, np.arange(40) % 4
    with pytest.raises(TypeError, match="k"):
        ace(x, y, k=2.5)
    with pytest.raises(TypeError, match="num_x"):
        dtm(x, y, num_x=True)
    with pytest.raises(TypeError, match="seed"):
        ace(x, y, k=1, seed=1.5)
    assert dtm(x, y, num_x=6.0).matrix.shape == (4, 6)


def test_torch_scalars_follow_the_output_rule(rng):
    torch = pytest.importorskip("torch")
    x, y = sample(rng, 12, 5, 3000)
    d = dtm(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(d.optimal_hscore, torch.Tensor) and d.optimal_hscore.ndim == 0
    assert d.optimal_hscore.dtype == torch.float64
    np.testing.assert_allclose(float(d.optimal_hscore), dtm(x, y).optimal_hscore, rtol=1e-12)
    r = ace(torch.from_numpy(x), torch.from_numpy(y), k=2)
    assert isinstance(r.hscore, torch.Tensor) and isinstance(ace(x, y, k=2).hscore, float)


@pytest.mark.cuda
def test_ace_cuda_smaller_x_zero_modes_and_max_iter(rng):
    torch = pytest.importorskip("torch")
    x, y = sample(rng, 8, 300, 50000)  # |X| < |Y|: the CUDA path iterates on X
    cpu = ace(x, y, k=4, method="alternate")
    gpu = ace(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), k=4)
    np.testing.assert_allclose(gpu.correlations.cpu().numpy(), cpu.correlations, atol=1e-10)
    np.testing.assert_allclose(gpu.f.cpu().numpy(), cpu.f, atol=1e-7)
    assert gpu.f.shape == (8, 4) and gpu.g.shape == (300, 4)
    xi, yi = np.repeat(np.arange(4), 4), np.tile(np.arange(4), 4)  # independent: zero-correlation modes
    z = ace(torch.from_numpy(xi).cuda(), torch.from_numpy(yi).cuda(), k=3)
    np.testing.assert_allclose(z.correlations.cpu().numpy(), 0, atol=1e-12)
    check_constraints(type(z)(*(v.cpu() if hasattr(v, "cpu") else v for v in
                                (z.correlations, z.f, z.g, z.iterations, z.converged, z.method))), xi, yi, 4, 4)
    xs, ys = sample(rng, 200, 40, 20000)
    m = ace(torch.from_numpy(xs).cuda(), torch.from_numpy(ys).cuda(), k=4, max_iter=2, oversample=0)
    assert m.iterations == 2 and not m.converged
    sparse = ace(torch.from_numpy(x * 100_000).cuda(), torch.from_numpy(y).cuda(), k=2)  # renumbered on device
    np.testing.assert_allclose(sparse.correlations.cpu().numpy(), cpu.correlations[:2], atol=1e-8)
    assert sparse.f.shape == (7 * 100_000 + 1, 2) and sparse.f.device.type == "cuda"
    np.testing.assert_allclose(sparse.f[torch.from_numpy(x * 100_000).cuda()].cpu().numpy()[:, :2] ** 2,
                               cpu.f[x][:, :2] ** 2, atol=1e-6)  # same f up to sign
