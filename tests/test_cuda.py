"""CUDA kernels against the CPU path (boxes, domain distances, ACE). Every test is marked ``cuda``: skipped when
torch sees no GPU, and failing (never skipped) when torch sees one but tasklens cannot use it.

The H-score CUDA tests live with the H-score engine (tests/test_hscore.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import tasklens

pytestmark = pytest.mark.cuda

torch = pytest.importorskip("torch")
tb = pytest.importorskip("tasklens.boxes")

GPU = "cuda"
MODES = ("hard", "soft", "gumbel")


def boxes(rng, n, k, scale=1.0):
    lo = rng.uniform(-1, 1, (n, k)) * scale
    hi = lo + rng.uniform(0.05, 1.0, (n, k)) * scale
    return lo, hi


def on(dev, dtype, *xs, grad=False):
    return [torch.tensor(x, dtype=getattr(torch, dtype), device=dev, requires_grad=grad) for x in xs]


def assert_close(gpu, cpu, dtype, scale=1.0):
    tol = dict(rtol=1e-10, atol=1e-12 * scale) if dtype == "float64" else dict(rtol=2e-4, atol=1e-5 * scale)
    torch.testing.assert_close(gpu.detach().cpu(), cpu.detach().cpu(), **tol)


# ------------------------------------------------------------------------------------------- the build


def test_gpu_visible_means_tasklens_can_use_it():
    """A GPU that torch sees must be usable by tasklens: a CPU-only build or a too-old driver is a failure."""
    from tasklens._native import native

    C = native()
    assert C.cuda_compiled, "torch sees a GPU but tasklens was built without CUDA kernels (rebuild: scripts/dev-build --cuda)"
    count, reason = C.cuda_device_count()
    assert count >= 1, f"torch sees a GPU but tasklens' CUDA runtime does not: {reason}"
    assert "GPU" in tasklens.info()["gpu"] and "no GPU" not in tasklens.info()["gpu"]


# ------------------------------------------------------------------------------------------------ boxes


def _containment_both(rng, n, m, k, mode, dtype, log):
    la, ha = boxes(rng, n, k)
    lb, hb = boxes(rng, m, k)
    w = rng.normal(size=(n, m))
    res = {}
    for dev in ("cpu", GPU):
        ts = on(dev, dtype, la, ha, lb, hb, grad=True)
        out = tb.containment(*ts, mode=mode, log=log)
        assert out.device.type == dev and out.dtype == getattr(torch, dtype)
        grads = torch.autograd.grad((out * torch.tensor(w, dtype=out.dtype, device=dev)).sum(), ts) if out.numel() \
            else [torch.zeros_like(t) for t in ts]
        res[dev] = [out, *grads]
    return res


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_boxes_log_output(rng, mode, dtype):
    res = _containment_both(rng, 70, 45, 6, mode, dtype, log=True)
    for g, c in zip(res[GPU], res["cpu"]):
        assert_close(g, c, dtype, scale=float(c.detach().abs().max()) if c.numel() else 1.0)


@pytest.mark.parametrize("k", [33, 70])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_boxes_more_than_32_dims(rng, k, dtype):
    """k > kDimChunk: the dense kernels stage dimensions in several chunks (and the backward in several
    dimension blocks)."""
    for log in (False, True):
        res = _containment_both(rng, 40, 37, k, "gumbel", dtype, log=log)
        for g, c in zip(res[GPU], res["cpu"]):
            assert_close(g, c, dtype, scale=float(c.detach().abs().max()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_boxes_intersection_clip(rng, dtype):
    la, ha = boxes(rng, 90, 5)
    lb, hb = boxes(rng, 90, 5)
    res = {}
    for dev in ("cpu", GPU):
        ts = on(dev, dtype, la, ha, lb, hb, grad=True)
        lo, hi = tb.intersection(*ts, mode="gumbel", clip=True)
        g = torch.autograd.grad((lo * 1.5 - hi).sum(), ts)
        res[dev] = [lo, hi, *g]
    for g, c in zip(res[GPU], res["cpu"]):
        assert_close(g, c, dtype)
    lo, hi = res[GPU][:2]
    a_lo, a_hi, b_lo, b_hi = on(GPU, dtype, la, ha, lb, hb)
    assert bool((lo >= torch.maximum(a_lo, b_lo)).all()) and bool((hi <= torch.minimum(a_hi, b_hi)).all())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_boxes_empty_inputs(rng, dtype):
    lo, hi = boxes(rng, 5, 3)
    e_lo, e_hi = np.zeros((0, 3)), np.zeros((0, 3))
    for dev in ("cpu", GPU):
        a, b, z_lo, z_hi = on(dev, dtype, lo, hi, e_lo, e_hi, grad=True)
        out = tb.containment(a, b, z_lo, z_hi)
        assert out.shape == (5, 0) and out.device.type == dev
        out2 = tb.containment(z_lo, z_hi, a, b)
        assert out2.shape == (0, 5)
        g = torch.autograd.grad(out.sum() + out2.sum(), (a, b), allow_unused=True)
        assert all(x is None or float(x.abs().sum()) == 0.0 for x in g)
        idx = torch.zeros(0, dtype=torch.int64, device=dev)
        p = tb.containment_pairs(a, b, a, b, idx, idx)
        assert p.shape == (0,) and p.device.type == dev
        assert tb.log_volume(z_lo, z_hi).shape == (0,)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_boxes_pairs_with_rows_without_pairs(rng, mode, dtype):
    """Rows of a and of b that take part in no pair get zero gradients; the others match the CPU."""
    la, ha = boxes(rng, 50, 4)
    lb, hb = boxes(rng, 40, 4)
    ia = rng.choice(np.arange(0, 50, 2), 300)  # odd rows of a: no pair
    ib = rng.choice(np.arange(0, 20), 300)     # rows 20.. of b: no pair
    w = rng.normal(size=300)
    res = {}
    for dev in ("cpu", GPU):
        ts = on(dev, dtype, la, ha, lb, hb, grad=True)
        for log in (False, True):
            out = tb.containment_pairs(*ts, torch.tensor(ia, device=dev), torch.tensor(ib, device=dev), mode=mode,
                                       log=log)
            g = torch.autograd.grad((out * torch.tensor(w, dtype=out.dtype, device=dev)).sum(), ts)
            res.setdefault(dev, []).extend([out, *g])
    for g, c in zip(res[GPU], res["cpu"]):
        assert_close(g, c, dtype, scale=float(c.detach().abs().max()))
    g_la, g_lb = res[GPU][1], res[GPU][3]
    assert float(g_la[1::2].abs().sum()) == 0.0 and float(g_lb[20:].abs().sum()) == 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_boxes_self_containment(rng, mode, dtype):
    """containment(lo, hi) (b = a): the diagonal is 1 (log 0) and everything matches the CPU."""
    lo, hi = boxes(rng, 64, 5)
    res = {}
    for dev in ("cpu", GPU):
        ts = on(dev, dtype, lo, hi, grad=True)
        out = tb.containment(*ts, mode=mode)
        g = torch.autograd.grad((out * torch.arange(64.0, dtype=out.dtype, device=dev)).sum(), ts)
        res[dev] = [out, *g]
    for g, c in zip(res[GPU], res["cpu"]):
        assert_close(g, c, dtype, scale=float(c.detach().abs().max()))
    if mode == "hard":
        torch.testing.assert_close(torch.diagonal(res[GPU][0]).cpu(), torch.ones(64, dtype=res[GPU][0].dtype))


def test_boxes_rows_beyond_one_grid(rng):
    """More than 65,535 row tiles of 16 (about 1.05 M rows of a): the launcher chunks gridDim.y."""
    n = 65535 * 16 + 40
    lo = torch.rand((n, 2), device=GPU) - 0.5
    hi = lo + 0.5
    lb, hb = lo[-3:].clone(), hi[-3:].clone()
    out = tb.containment(lo, hi, lb, hb, mode="hard")
    assert out.shape == (n, 3)
    ref = tb.containment(lo[-50:].cpu(), hi[-50:].cpu(), lb.cpu(), hb.cpu(), mode="hard")
    torch.testing.assert_close(out[-50:].cpu(), ref)
    torch.testing.assert_close(torch.diagonal(out[-3:]).cpu(), torch.ones(3))


# --------------------------------------------------------------------------------------- domain distances


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_distance_float64_matches_cpu(rng, metric):
    from tasklens.domain import domain_distance_matrix, nearest

    ds = [rng.standard_normal((n, 23)) + 0.1 * k for k, n in enumerate([200, 3, 150, 90])]
    cpu = domain_distance_matrix(ds, metric=metric)
    gpu = domain_distance_matrix([torch.from_numpy(x).to(GPU) for x in ds], metric=metric)
    assert gpu.device.type == GPU and gpu.dtype == torch.float64
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, rtol=1e-5, atol=1e-7)
    d, i = nearest(torch.from_numpy(ds[0]).to(GPU), torch.from_numpy(ds[2]).to(GPU), metric=metric)
    rd, ri = nearest(ds[0], ds[2], metric=metric)
    assert d.dtype == torch.float64 and i.dtype == torch.int64
    np.testing.assert_allclose(d.cpu().numpy(), rd, rtol=1e-5, atol=1e-7)
    assert (i.cpu().numpy() == ri).mean() > 0.97


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["target_to_source", "source_to_target", "symmetric"])
def test_distance_methods_match_cpu(rng, dtype, method):
    from tasklens.domain import domain_distance

    t = rng.standard_normal((120, 9)).astype(dtype)
    s = (rng.standard_normal((300, 9)) * 1.5).astype(dtype)
    cpu = domain_distance(t, s, method=method)
    gpu = domain_distance(torch.from_numpy(t).to(GPU), torch.from_numpy(s).to(GPU), method=method)
    assert isinstance(gpu, torch.Tensor) and gpu.ndim == 0 and gpu.device.type == GPU
    assert float(gpu) == pytest.approx(cpu, rel=1e-5)


def test_distance_means_are_deterministic_row_order_sums(rng):
    """The CUDA means are the CPU's additions (add.reduceat, rows in order), not atomics: bit-identical runs,
    and bit-identical to the CPU's mean of the same per-row minima."""
    from tasklens.domain import domain_distance_matrix
    from tasklens.domain._cuda import _segmented, segment_mean

    ds = [rng.standard_normal((n, 16)) for n in (4000, 1, 2500)]
    x = torch.from_numpy(np.concatenate(ds)).to(GPU)
    off = np.array([0, 4000, 4001, 6501])
    runs = [domain_distance_matrix(offsets=off, datasets=x).cpu().numpy().tobytes() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    be = tasklens._dispatch.backend_of(x=x)
    seg = torch.repeat_interleave(torch.arange(3, dtype=torch.int32), torch.tensor([4000, 1, 2500])).to(GPU)
    dist, _ = _segmented(x, seg, 3, "euclidean", be)
    host = dist.cpu().numpy()
    want = np.add.reduceat(host, off[:-1], axis=0) / np.diff(off)[:, None]
    np.testing.assert_array_equal(segment_mean(dist, off, be).cpu().numpy(), want)


@pytest.mark.parametrize("scale", [1e200, 1e-301, 1e-170])
def test_distance_extreme_scales(rng, scale):
    from tasklens.domain import domain_distance

    t, s = rng.standard_normal((50, 8)), rng.standard_normal((60, 8)) + 0.3
    for metric in ("euclidean", "cosine"):
        want = domain_distance(t * scale, s * scale, metric=metric)
        got = domain_distance(torch.from_numpy(t * scale).to(GPU), torch.from_numpy(s * scale).to(GPU), metric=metric)
        assert np.isfinite(float(got)) and float(got) > 0
        assert float(got) == pytest.approx(want, rel=1e-5)


def test_distance_offset_data_far_from_origin(rng):
    """Rows offset by 1e4 with unit spread: the search keys are centred, so float32 keeps their differences."""
    from tasklens.domain import nearest

    t, s = rng.standard_normal((300, 12)) + 1e4, rng.standard_normal((400, 12)) + 1e4
    d, i = nearest(torch.from_numpy(t).to(GPU), torch.from_numpy(s).to(GPU))
    rd, ri = nearest(t, s)
    np.testing.assert_allclose(d.cpu().numpy(), rd, rtol=1e-4)
    assert (i.cpu().numpy() == ri).mean() > 0.97


def test_distance_target_rows_beyond_one_grid():
    """More than 65,535 row tiles of 64 (about 4.2 M target rows): the launcher chunks gridDim.y."""
    from tasklens.domain import nearest

    n = 65535 * 64 + 100
    t = torch.arange(n, dtype=torch.float32, device=GPU)[:, None] % 1000
    s = torch.tensor([[0.25], [500.25], [999.0]], device=GPU)
    d, i = nearest(t, s)
    tail = t[-100:, 0].double().cpu().numpy()
    ref = np.abs(tail[:, None] - np.array([0.25, 500.25, 999.0])[None])
    np.testing.assert_array_equal(i[-100:].cpu().numpy(), ref.argmin(axis=1))
    np.testing.assert_allclose(d[-100:].cpu().numpy(), ref.min(axis=1), rtol=1e-12)


# --------------------------------------------------------------------------------------------------- ACE


def _ace_both(x, y, **kw):
    from tasklens.hgr import ace

    cpu = ace(x, y, method="alternate", **kw)
    gpu = ace(torch.from_numpy(x).to(GPU), torch.from_numpy(y).to(GPU), **kw)
    assert gpu.method == "cuda" and gpu.f.device.type == "cuda"
    return cpu, gpu


def test_ace_smaller_x_than_y(rng):
    """|X| < |Y|: the iterated side is X (swap); f and g come back in the caller's order."""
    idx = rng.choice(12 * 90, size=40000, p=rng.dirichlet(np.full(12 * 90, 0.5)))
    x, y = idx // 90, idx % 90
    cpu, gpu = _ace_both(x, y, k=3, max_iter=2000, tol=1e-14, num_x=12, num_y=90)
    assert gpu.f.shape == (12, 3) and gpu.g.shape == (90, 3)
    np.testing.assert_allclose(gpu.correlations.cpu().numpy(), cpu.correlations, atol=1e-10)
    np.testing.assert_allclose(gpu.f.cpu().numpy(), cpu.f, atol=1e-7)
    np.testing.assert_allclose(gpu.g.cpu().numpy(), cpu.g, atol=1e-7)


def test_ace_zero_correlation_modes(rng):
    """Independent codes (every correlation 0) and a rank-one dependence (one nonzero mode): the zero modes
    are completed to orthonormal functions, as on the CPU."""
    from tasklens.hgr import dtm

    xi, yi = np.repeat(np.arange(4), 4), np.tile(np.arange(4), 4)
    cpu, gpu = _ace_both(xi, yi, k=3)
    np.testing.assert_allclose(gpu.correlations.cpu().numpy(), 0, atol=1e-12)
    px = np.bincount(xi) / len(xi)
    f = gpu.f.cpu().numpy()
    np.testing.assert_allclose(f.T @ (f * px[:, None]), np.eye(3), atol=1e-9)
    np.testing.assert_allclose(px @ f, 0, atol=1e-9)
    xr = np.arange(600) % 6
    yr = np.where(xr < 3, 0, 1) * 3 + (np.arange(600) // 6) % 3
    cpu, gpu = _ace_both(xr, yr, k=3)
    np.testing.assert_allclose(gpu.correlations.cpu().numpy(), dtm(xr, yr).singular_values[:3], atol=1e-9)
    f = gpu.f.cpu().numpy()
    pr = np.bincount(xr) / len(xr)
    np.testing.assert_allclose(f.T @ (f * pr[:, None]), np.eye(3), atol=1e-9)


@pytest.mark.parametrize("max_iter", [1, 2, 5])
def test_ace_max_iter(rng, max_iter):
    """A capped run stops after exactly max_iter iterations, unconverged, with the CPU's iterate."""
    x = rng.integers(0, 300, 50000)
    y = (x // 3 + rng.integers(0, 40, 50000)) % 120
    cpu, gpu = _ace_both(x, y, k=4, max_iter=max_iter, tol=0.0)
    assert gpu.iterations == cpu.iterations == max_iter
    assert not gpu.converged and not cpu.converged
    np.testing.assert_allclose(gpu.correlations.cpu().numpy(), cpu.correlations, atol=1e-10)
    np.testing.assert_allclose(gpu.f.cpu().numpy(), cpu.f, atol=1e-7)
