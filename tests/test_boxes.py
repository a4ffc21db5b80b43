"""Box kernels (tasklens.boxes): values and gradients against an independent float64 torch reference,
gradcheck, the box-embeddings oracle, thread-count invariance, bad-input errors and CUDA-vs-CPU."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tasklens
import tasklens.boxes as tb

torch = pytest.importorskip("torch")

EULER_GAMMA = 0.57721566490153286060
EPS = 1e-13
MODES = ("hard", "soft", "gumbel")
VT, IT = 0.1, 1e-4


# ------------------------------------------------------------------------ independent float64 reference

def ref_log_width(w, mode, vt=VT, it=IT):
    if mode == "hard":
        return torch.log(torch.clamp_min(w, EPS))
    x = w - 2 * EULER_GAMMA * it if mode == "gumbel" else w
    return torch.log(vt * torch.logaddexp(torch.zeros_like(x), x / vt) + EPS)


def ref_intersection(la, ha, lb, hb, mode, it=IT):
    if mode == "gumbel":
        return it * torch.logaddexp(la / it, lb / it), -it * torch.logaddexp(-ha / it, -hb / it)
    return torch.maximum(la, lb), torch.minimum(ha, hb)


def ref_log_volume(lo, hi, mode, vt=VT, it=IT):
    return ref_log_width(hi - lo, mode, vt, it).sum(-1)


def ref_containment(la, ha, lb, hb, mode, vt=VT, it=IT, log=False):
    imode = "gumbel" if mode == "gumbel" else "hard"
    lo, hi = ref_intersection(la[:, None], ha[:, None], lb[None], hb[None], imode, it)
    L = ref_log_volume(lo, hi, mode, vt, it) - ref_log_volume(la, ha, mode, vt, it)[:, None]
    return L if log else torch.exp(L)


def random_boxes(rng, n, k, dtype=np.float64, scale=1.0):
    lo = rng.uniform(-1, 1, (n, k)) * scale
    hi = lo + rng.uniform(0.05, 1.0, (n, k)) * scale
    return lo.astype(dtype), hi.astype(dtype)


def t64(*xs, grad=True):
    return [torch.tensor(x, dtype=torch.float64, requires_grad=grad) for x in xs]


# --------------------------------------------------------------------------------------------- basics

@pytest.mark.parametrize("mode", MODES)
def test_containment_values_and_grads_match_reference(rng, mode):
    la, ha = random_boxes(rng, 9, 3)
    lb, hb = random_boxes(rng, 6, 3)
    la_t, ha_t, lb_t, hb_t = t64(la, ha, lb, hb)
    out = tb.containment(la_t, ha_t, lb_t, hb_t, mode=mode)
    ref = ref_containment(la_t, ha_t, lb_t, hb_t, mode)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-14)
    w = torch.tensor(rng.normal(size=ref.shape))
    g = torch.autograd.grad((out * w).sum(), (la_t, ha_t, lb_t, hb_t))
    gr = torch.autograd.grad((ref * w).sum(), (la_t, ha_t, lb_t, hb_t))
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # numpy in -> numpy out, same values
    out_np = tb.containment(la, ha, lb, hb, mode=mode)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float64
    np.testing.assert_allclose(out_np, ref.detach().numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
def test_pairs_log_volume_intersection_match_reference(rng, mode):
    la, ha = random_boxes(rng, 8, 4)
    lb, hb = random_boxes(rng, 5, 4)
    ia, ib = rng.integers(0, 8, 30), rng.integers(0, 5, 30)
    la_t, ha_t, lb_t, hb_t = t64(la, ha, lb, hb)
    out = tb.containment_pairs(la_t, ha_t, lb_t, hb_t, torch.tensor(ia), torch.tensor(ib), mode=mode)
    ref = ref_containment(la_t, ha_t, lb_t, hb_t, mode)[ia, ib]
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-14)
    g = torch.autograd.grad(out.sum(), (la_t, ha_t, lb_t, hb_t))
    gr = torch.autograd.grad(ref.sum(), (la_t, ha_t, lb_t, hb_t))
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    lv = tb.log_volume(la_t, ha_t, mode=mode)
    torch.testing.assert_close(lv, ref_log_volume(la_t, ha_t, mode), rtol=1e-12, atol=1e-12)
    if mode != "soft":
        lo, hi = tb.intersection(la_t[:5], ha_t[:5], lb_t, hb_t, mode=mode)
        rlo, rhi = ref_intersection(la_t[:5], ha_t[:5], lb_t, hb_t, mode)
        torch.testing.assert_close(lo, rlo, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(hi, rhi, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------- hypothesis: special configurations

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KINDS = ("random", "disjoint", "nested", "identical", "degenerate", "flipped", "near_ties")


def special_boxes(seed, kind, n, k):
    """Pairs of box sets a (n, k) and b (n, k) in one configuration."""
    rng = np.random.default_rng(seed)
    la, ha = random_boxes(rng, n, k)
    if kind == "random":
        lb, hb = random_boxes(rng, n, k)
    elif kind == "disjoint":  # b shifted away from a in one dimension
        lb, hb = la.copy(), ha.copy()
        shift = (ha - la)[:, 0] + rng.uniform(0.01, 0.5, n)
        lb[:, 0] += shift
        hb[:, 0] += shift
    elif kind == "nested":  # a inside b
        lb = la - rng.uniform(0.0, 0.3, (n, k))
        hb = ha + rng.uniform(0.0, 0.3, (n, k))
    elif kind == "identical":
        lb, hb = la.copy(), ha.copy()
    elif kind == "degenerate":  # widths near 0 (down to 1e-9) on both sides
        hb = la + rng.uniform(0, 1, (n, k)) * 10.0 ** rng.integers(-9, -1, (n, k))
        lb = la.copy()
        ha = la + 10.0 ** rng.integers(-9, -1, (n, k))
    elif kind == "flipped":  # lo > hi in some dimensions
        lb, hb = random_boxes(rng, n, k)
        ha = np.where(rng.random((n, k)) < 0.3, la - rng.uniform(0, 0.2, (n, k)), ha)
    else:  # corners within a few temperatures of each other
        lb = la + rng.normal(0, 3 * IT, (n, k))
        hb = ha + rng.normal(0, 3 * IT, (n, k))
    return la, ha, lb, hb


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), kind=st.sampled_from(KINDS), mode=st.sampled_from(MODES),
       log=st.booleans(), n=st.integers(1, 7), k=st.integers(1, 6))
def test_hypothesis_containment_values_and_grads(seed, kind, mode, log, n, k):
    la, ha, lb, hb = special_boxes(seed, kind, n, k)
    ts = t64(la, ha, lb, hb)
    out = tb.containment(*ts, mode=mode, log=log)
    ref = ref_containment(*ts, mode, log=log)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-12)
    if not log and mode != "gumbel" and kind in ("nested", "identical"):
        # a_i inside (or equal to) b_i: d(a_i, b_i) = 1 exactly up to rounding
        np.testing.assert_allclose(np.diag(out.detach().numpy()), 1.0, rtol=1e-12)
    w = torch.tensor(np.random.default_rng(seed).normal(size=ref.shape))
    # gradients are sums of terms up to ~1/width in size, which cancel for degenerate boxes: tolerance on that scale
    term = 1.0 + 1.0 / max(1e-13, float(np.abs(np.concatenate([ha - la, hb - lb])).min()))
    g = torch.autograd.grad((out * w).sum(), ts)
    gr = torch.autograd.grad((ref * w).sum(), ts, retain_graph=True)
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12 * n * (term + float(b.abs().max())))
    # paired: the diagonal pairs (a_i, b_i) and some random ones
    idx_a = np.concatenate([np.arange(n), np.random.default_rng(seed).integers(0, n, 5)])
    idx_b = np.concatenate([np.arange(n), np.random.default_rng(seed + 1).integers(0, n, 5)])
    op = tb.containment_pairs(*ts, idx_a, idx_b, mode=mode, log=log)
    torch.testing.assert_close(op, ref[idx_a, idx_b], rtol=1e-9, atol=1e-12)
    gp = torch.autograd.grad((op * w[idx_a, idx_b]).sum(), ts)
    gpr = torch.autograd.grad((ref[idx_a, idx_b] * w[idx_a, idx_b]).sum(), ts)
    for a, b in zip(gp, gpr):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12 * n * (term + float(b.abs().max())))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), kind=st.sampled_from(KINDS), mode=st.sampled_from(MODES),
       clip=st.booleans())
def test_hypothesis_log_volume_and_intersection(seed, kind, mode, clip):
    la, ha, lb, hb = special_boxes(seed, kind, 5, 3)
    ts = t64(la, ha, lb, hb)
    lv = tb.log_volume(ts[0], ts[1], mode=mode)
    lvr = ref_log_volume(ts[0], ts[1], mode)
    torch.testing.assert_close(lv, lvr, rtol=1e-12, atol=1e-12)
    g = torch.autograd.grad(lv.sum(), ts[:2])
    gr = torch.autograd.grad(lvr.sum(), ts[:2])
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    imode = "hard" if mode == "soft" else mode
    lo, hi = tb.intersection(*ts, mode=imode, clip=clip)
    rlo, rhi = ref_intersection(*ts, imode)
    if clip and imode == "gumbel":
        rlo, rhi = torch.max(rlo, torch.max(ts[0], ts[2])), torch.min(rhi, torch.min(ts[1], ts[3]))
    torch.testing.assert_close(lo, rlo, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(hi, rhi, rtol=1e-12, atol=1e-13)
    assert bool((lo >= torch.max(ts[0], ts[2])).all()) and bool((hi <= torch.min(ts[1], ts[3])).all())
    w1, w2 = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    g = torch.autograd.grad((lo * w1 + hi * w2).sum(), ts)
    gr = torch.autograd.grad((rlo * w1 + rhi * w2).sum(), ts)
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------- gradcheck

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("log", [False, True])
def test_gradcheck_dense_and_paired(rng, mode, log):
    la, ha = random_boxes(rng, 4, 3)
    lb, hb = random_boxes(rng, 3, 3)
    ts = t64(la, ha, lb, hb)
    assert torch.autograd.gradcheck(lambda *x: tb.containment(*x, mode=mode, log=log), ts)
    assert torch.autograd.gradcheck(lambda a, b: tb.containment(a, b, mode=mode, log=log), ts[:2])
    ia, ib = torch.tensor([0, 1, 3, 3, 2]), torch.tensor([2, 0, 1, 1, 0])
    assert torch.autograd.gradcheck(lambda *x: tb.containment_pairs(*x, ia, ib, mode=mode, log=log), ts)
    assert torch.autograd.gradcheck(lambda a, b: tb.log_volume(a, b, mode=mode), ts[:2])
    if mode != "soft":
        assert torch.autograd.gradcheck(lambda *x: tb.intersection(*x[:2], *x[2:], mode=mode),
                                        [t[:3].detach().requires_grad_() for t in ts])


# ------------------------------------------------------------------------------ box-embeddings oracle

def _box_embeddings():
    pytest.importorskip("box_embeddings")
    from box_embeddings.modules.intersection.intersection import Intersection
    from box_embeddings.modules.volume.volume import Volume
    from box_embeddings.parameterizations.box_tensor import BoxTensor

    return BoxTensor, Volume, Intersection


@pytest.mark.parametrize("mode", ["gumbel", "soft"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_box_embeddings_oracle(rng, mode, dtype):
    BoxTensor, Volume, Intersection = _box_embeddings()
    n, m, k = 12, 9, 5
    tdt = getattr(torch, dtype)
    la, ha = random_boxes(rng, n, k, scale=0.5)
    lb, hb = random_boxes(rng, m, k, scale=0.5)
    ts = [torch.tensor(x, dtype=tdt, requires_grad=True) for x in (la, ha, lb, hb)]
    vol = Volume(volume_temperature=VT, intersection_temperature=IT if mode == "gumbel" else 0.0)
    inter = Intersection(intersection_temperature=IT if mode == "gumbel" else 0.0)
    A = BoxTensor((ts[0].repeat_interleave(m, 0), ts[1].repeat_interleave(m, 0)))
    B = BoxTensor((ts[2].repeat(n, 1), ts[3].repeat(n, 1)))
    ref = torch.exp(vol(inter(A, B)) - vol(A)).view(n, m)
    out = tb.containment(*ts, mode=mode)
    assert out.dtype == tdt
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out, ref, **tol)
    w = torch.tensor(rng.normal(size=(n, m)), dtype=tdt)
    g = torch.autograd.grad((out * w).sum(), ts)
    gr = torch.autograd.grad((ref * w).sum(), ts)
    for a, b in zip(g, gr):
        torch.testing.assert_close(a, b, **tol)
    lv = tb.log_volume(ts[0], ts[1], mode=mode)
    torch.testing.assert_close(lv, vol(BoxTensor((ts[0], ts[1]))), **tol)
    if mode == "gumbel":
        lo, hi = tb.intersection(ts[0][:m], ts[1][:m], ts[2], ts[3], mode="gumbel")
        box = inter(BoxTensor((ts[0][:m], ts[1][:m])), BoxTensor((ts[2], ts[3])))
        torch.testing.assert_close(lo, box.z, **tol)
        torch.testing.assert_close(hi, box.Z, **tol)


# ------------------------------------------------------------------------------- determinism, kinds

def test_thread_count_invariance_bit_identical(rng, threads):
    la, ha = random_boxes(rng, 150, 6)
    lb, hb = random_boxes(rng, 70, 6)
    ia, ib = rng.integers(0, 150, 3000), rng.integers(0, 70, 3000)
    results = []
    for n_threads in (1, 2, 5):
        threads(n_threads)
        per = []
        for mode, dt in [(m, d) for m in MODES for d in (torch.float64, torch.float32)]:
            ts = [torch.tensor(x, dtype=dt, requires_grad=True) for x in (la, ha, lb, hb)]
            out = tb.containment(*ts, mode=mode)
            per.append(out.detach().numpy().copy())
            per.extend(g.numpy() for g in torch.autograd.grad(out.sum(), ts))
            ts = [torch.tensor(x, dtype=dt, requires_grad=True) for x in (la, ha, lb, hb)]
            op = tb.containment_pairs(*ts, ia, ib, mode=mode)
            per.append(op.detach().numpy().copy())
            per.extend(g.numpy() for g in torch.autograd.grad(op.sum(), ts))
        results.append(per)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


def test_self_containment_equals_explicit_b(rng):
    la, ha = random_boxes(rng, 20, 4)
    a1 = t64(la, ha)
    out1 = tb.containment(*a1)
    a2 = t64(la, ha)
    out2 = tb.containment(a2[0], a2[1], a2[0], a2[1])
    torch.testing.assert_close(out1, out2, rtol=0, atol=0)
    for g1, g2 in zip(torch.autograd.grad(out1.sum(), a1), torch.autograd.grad(out2.sum(), a2)):
        torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


def test_float32_close_to_float64_and_kinds(rng):
    la, ha = random_boxes(rng, 30, 8)
    o64 = tb.containment(la, ha)
    o32 = tb.containment(la.astype(np.float32), ha.astype(np.float32))
    assert o32.dtype == np.float32 and o32.shape == (30, 30)
    np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=1e-6)
    # mixed dtypes compute in float64
    assert tb.containment(la.astype(np.float32), ha).dtype == np.float64
    assert tb.log_volume(la, ha).shape == (30,)
    # log=True is the log of the ratio
    np.testing.assert_allclose(np.exp(tb.containment(la, ha, log=True)), o64, rtol=1e-12)
    # torch without grad -> plain tensor
    out = tb.containment(torch.tensor(la), torch.tensor(ha))
    assert isinstance(out, torch.Tensor) and not out.requires_grad


def test_numpy_path_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, tasklens.boxes as tb; lo = np.zeros((3, 2)); hi = lo + 1; "
            "tb.containment(lo, hi); tb.containment_pairs(lo, hi, lo, hi, [0], [1]); tb.log_volume(lo, hi); "
            "tb.intersection(lo, hi, lo, hi); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_empty_inputs():
    lo = np.zeros((0, 3))
    assert tb.containment(lo, lo).shape == (0, 0)
    assert tb.containment_pairs(np.zeros((2, 3)), np.ones((2, 3)), lo, lo, [], []).shape == (0,)


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("call, err, words", [
    (lambda lo, hi: tb.containment(lo, hi[:, :2]), ValueError, ["hi_a", "(4, 2)", "(4, 3)"]),
    (lambda lo, hi: tb.containment(lo, hi, lo[:, :2], hi[:, :2]), ValueError, ["lo_b", "k=3"]),
    (lambda lo, hi: tb.containment(lo, hi, lo), ValueError, ["hi_b", "both"]),
    (lambda lo, hi: tb.containment(lo[0], hi[0]), ValueError, ["lo_a", "2-D", "(3,)"]),
    (lambda lo, hi: tb.containment(np.where(lo > 0, np.nan, lo), hi), ValueError, ["lo_a", "NaN"]),
    (lambda lo, hi: tb.containment(lo.astype(complex), hi), TypeError, ["lo_a", "complex128"]),
    (lambda lo, hi: tb.containment(lo, hi, mode="fuzzy"), ValueError, ["mode", "fuzzy"]),
    (lambda lo, hi: tb.containment(lo, hi, volume_temperature=0), ValueError, ["volume_temperature"]),
    (lambda lo, hi: tb.containment_pairs(lo, hi, lo, hi, [0, 4], [0, 1]), ValueError, ["idx_a", "4", "out of range"]),
    (lambda lo, hi: tb.containment_pairs(lo, hi, lo, hi, [0, 1], [-1, 1]), ValueError, ["idx_b", "non-negative"]),
    (lambda lo, hi: tb.containment_pairs(lo, hi, lo, hi, [0, 1], [0]), ValueError, ["idx_b", "expected 2"]),
    (lambda lo, hi: tb.containment_pairs(lo, hi, lo, hi, [0.5], [0]), TypeError, ["idx_a"]),
    (lambda lo, hi: tb.intersection(lo, hi, lo[:2], hi[:2]), ValueError, ["lo_b", "(4, 3)"]),
    (lambda lo, hi: tb.intersection(lo, hi, lo, hi, mode="soft"), ValueError, ["mode", "soft"]),
    (lambda lo, hi: tb.log_volume(lo, "x"), TypeError, ["hi"]),
    (lambda lo, hi: tb.containment(torch.tensor(lo), hi), TypeError, ["mix"]),
])
def test_bad_input_errors(rng, call, err, words):
    lo, hi = random_boxes(rng, 4, 3)
    with pytest.raises(err) as info:
        call(lo, hi)
    for w in words:
        assert w in str(info.value)


def test_meta_tensors_get_a_clear_error():
    x = torch.zeros(2, 2, device="meta")
    for call in (lambda: tb.containment(x, x + 1), lambda: tb.log_volume(x, x + 1),
                 lambda: tb.intersection(x, x + 1, x, x + 1), lambda: tb.containment_pairs(x, x + 1, x, x + 1, [0], [1])):
        with pytest.raises(TypeError, match="^lo.*CPU and CUDA.*meta"):
            call()


# ------------------------------------------------------------------------------------- double backward
# Issue 9 §2: under create_graph=True the first-order gradient must itself be differentiable (a gradient
# penalty was silently dropped). gradgradcheck compares the analytic second derivatives with finite
# differences of the first-order gradient; soft temperatures keep the gumbel/soft curvature resolvable.

VT2, IT2 = 0.5, 0.05


def overlapping_boxes(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(n, k, generator=g, dtype=torch.float64)
    hi = lo + 0.5 + torch.rand(n, k, generator=g, dtype=torch.float64)
    return lo.requires_grad_(), hi.requires_grad_()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("log", [False, True])
def test_gradgradcheck_containment_and_pairs(mode, log):
    la, ha = overlapping_boxes(3, 2, 0)
    lb, hb = overlapping_boxes(4, 2, 1)
    kw = dict(mode=mode, log=log, volume_temperature=VT2, intersection_temperature=IT2)
    assert torch.autograd.gradgradcheck(lambda a, b, c, d: tb.containment(a, b, c, d, **kw), (la, ha, lb, hb))
    assert torch.autograd.gradgradcheck(lambda a, b: tb.containment(a, b, **kw), (la, ha))  # b = a
    ia, ib = torch.tensor([0, 2, 1, 0]), np.array([1, 1, 3, 0])  # torch and numpy indices
    assert torch.autograd.gradgradcheck(lambda a, b, c, d: tb.containment_pairs(a, b, c, d, ia, ib, **kw),
                                        (la, ha, lb, hb))


@pytest.mark.parametrize("mode", MODES)
def test_gradgradcheck_log_volume(mode):
    lo, hi = overlapping_boxes(4, 3, 2)
    assert torch.autograd.gradgradcheck(
        lambda a, b: tb.log_volume(a, b, mode=mode, volume_temperature=VT2, intersection_temperature=IT2), (lo, hi))


@pytest.mark.parametrize("mode, clip", [("hard", False), ("gumbel", False), ("gumbel", True)])
def test_gradgradcheck_intersection(mode, clip):
    la, ha = overlapping_boxes(3, 2, 3)
    lb, hb = overlapping_boxes(3, 2, 4)
    # a volume of the intersection, so that the hard corners (piecewise linear) have curvature too
    def f(a, b, c, d):
        lo, hi = tb.intersection(a, b, c, d, mode=mode, clip=clip, intersection_temperature=IT2)
        return tb.log_volume(lo, hi, mode="hard")
    assert torch.autograd.gradgradcheck(f, (la, ha, lb, hb))
    assert torch.autograd.gradgradcheck(
        lambda a, b, c, d: tb.intersection(a, b, c, d, mode=mode, clip=clip, intersection_temperature=IT2)[0],
        (la, ha, lb, hb))


@pytest.mark.parametrize("mode", MODES)
def test_gradient_penalty_is_not_dropped(rng, mode):
    """The first-order gradient under create_graph=True equals the native one and carries a graph, and the
    gradient of a gradient penalty matches the float64 torch reference (independent formulas above)."""
    la, ha = random_boxes(rng, 5, 3)
    lb, hb = random_boxes(rng, 4, 3)
    W = torch.tensor(rng.uniform(size=(5, 4)))
    outs = []
    kw = dict(volume_temperature=VT2, intersection_temperature=IT2)  # torch's logaddexp has NaN curvature at 1e-4
    for f in (lambda *x: tb.containment(*x, mode=mode, **kw), lambda *x: ref_containment(*x, mode, VT2, IT2)):
        xs = t64(la, ha, lb, hb)
        (g,) = torch.autograd.grad((W * f(*xs)).sum(), xs[0], create_graph=True)
        assert g.requires_grad
        penalty = (g ** 2).sum()
        outs.append((g.detach(), torch.autograd.grad(penalty, xs)))
    (g_ours, pen_ours), (g_ref, pen_ref) = outs
    xs = t64(la, ha, lb, hb)
    (g_native,) = torch.autograd.grad((W * tb.containment(*xs, mode=mode, **kw)).sum(), xs[0])
    torch.testing.assert_close(g_ours, g_native, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-10)
    for a, b in zip(pen_ours, pen_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_differentiable_backward_matches_native_gradients(rng, mode):
    """The torch formulas used under create_graph=True give the native kernels' first-order gradients, also
    for disjoint, nested, zero-width and flipped boxes and at the default (sharp) temperatures."""
    la, ha = random_boxes(rng, 6, 3, scale=2.0)
    la[0], ha[0] = la[1], la[1]          # zero width
    la[2], ha[2] = ha[3], la[3]          # flipped
    lb, hb = random_boxes(rng, 6, 3, scale=2.0)
    lb[4], hb[4] = la[4] + 5.0, ha[4] + 5.0  # disjoint from a[4]
    ia, ib = np.array([0, 1, 2, 4, 4, 5, 3]), np.array([1, 1, 0, 4, 2, 5, 3])
    calls = [lambda a, b, c, d: tb.containment(a, b, c, d, mode=mode),
             lambda a, b, c, d: tb.containment(a, b, c, d, mode=mode, log=True),
             lambda a, b, c, d: tb.containment_pairs(a, b, c, d, ia, ib, mode=mode),
             lambda a, b, c, d: tb.log_volume(a, b, mode=mode) + tb.log_volume(c, d, mode=mode)]
    if mode != "soft":
        calls += [lambda a, b, c, d, clip=clip: torch.cat(tb.intersection(a, b, c, d, mode=mode, clip=clip))
                  for clip in (False, True)]
    for n, f in enumerate(calls):
        xs = t64(la, ha, lb, hb)
        out = f(*xs)
        w = torch.tensor(rng.uniform(0.5, 1.5, size=tuple(out.shape)))
        native = torch.autograd.grad((w * out).sum(), xs)
        xs = t64(la, ha, lb, hb)
        twice = torch.autograd.grad((w * f(*xs)).sum(), xs, create_graph=True)
        for a, b in zip(twice, native):
            # the hard intersection is piecewise linear: its gradient is constant, as torch.maximum's
            assert a.requires_grad or (mode == "hard" and n >= 4)
            torch.testing.assert_close(a.detach(), b, rtol=1e-9, atol=1e-9)


def test_cuda_glue_lives_in_cuda_module():
    """Issue 9 §1: ops.py reaches the kernels only through the seam (no allocation or launch of its own)."""
    import inspect

    import tasklens.boxes.ops as ops

    src = inspect.getsource(ops)
    for banned in (r"torch\.empty", r"\b_cuda\(", r"data_ptr", r"(?<![_\w])like\(", r"native\(\)", r"\b_cpu\b",
                   r"\.cpu\(\)\.numpy"):
        assert not re.search(banned, src), banned


# ------------------------------------------------------------------------------------------------ CUDA

@pytest.mark.cuda
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_matches_cpu(rng, mode, dtype):
    tdt = getattr(torch, dtype)
    la, ha = random_boxes(rng, 300, 7)
    lb, hb = random_boxes(rng, 170, 7)
    ia, ib = rng.integers(0, 300, 5000), rng.integers(0, 170, 5000)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-4, atol=1e-5)
    res = {}
    for dev in ("cpu", "cuda"):
        ts = [torch.tensor(x, dtype=tdt, device=dev, requires_grad=True) for x in (la, ha, lb, hb)]
        out = tb.containment(*ts, mode=mode)
        w = torch.tensor(rng.normal(size=out.shape) if dev == "cpu" else res["w"], dtype=tdt, device=dev)
        res.setdefault("w", w.cpu().numpy())
        gs = torch.autograd.grad((out * w).sum(), ts)
        ts2 = [t.detach().requires_grad_() for t in ts]
        op = tb.containment_pairs(*ts2, torch.tensor(ia, device=dev), torch.tensor(ib, device=dev), mode=mode)
        gp = torch.autograd.grad(op.sum(), ts2)
        lv = tb.log_volume(ts[0], ts[1], mode=mode)
        gl = torch.autograd.grad(lv.sum(), ts[:2])
        imode = "hard" if mode == "soft" else mode
        lo, hi = tb.intersection(ts[0][:170], ts[1][:170], ts[2], ts[3], mode=imode)
        gi = torch.autograd.grad((lo - 2 * hi).sum(), ts)
        res[dev] = [x.detach().cpu() for x in (out, *gs, op, *gp, lv, *gl, lo, hi, *gi)]
        assert out.device.type == dev
    for a, b in zip(res["cpu"], res["cuda"]):
        torch.testing.assert_close(b, a, **tol)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_every_cpu_kernel_variant_matches_reference(isa):
    """The dense CPU loops exist for the baseline ISA, AVX2 and AVX-512 (best one picked at run time);
    TASKLENS_BOXES_ISA caps the choice, so each variant the machine can run is checked in a subprocess."""
    import os
    import subprocess
    import sys

    code = """
import numpy as np, torch, tasklens.boxes as tb, json
rng = np.random.default_rng(3)
lo = rng.uniform(-1, 1, (37, 5)); hi = lo + rng.uniform(0.01, 1, (37, 5))
out = {}
for mode in ("hard", "soft", "gumbel"):
    for dt in (torch.float32, torch.float64):
        a, b = torch.tensor(lo, dtype=dt, requires_grad=True), torch.tensor(hi, dtype=dt, requires_grad=True)
        d = tb.containment(a, b, mode=mode)
        ga, gb = torch.autograd.grad((d * torch.arange(37.0, dtype=dt)).sum(), (a, b))
        out[f"{mode}-{dt}"] = [d.tolist(), ga.tolist(), gb.tolist()]
print(json.dumps(out))
"""
    env = dict(os.environ, TASKLENS_BOXES_ISA=isa)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    import json

    got = json.loads(res.stdout)
    rng = np.random.default_rng(3)
    lo = rng.uniform(-1, 1, (37, 5))
    hi = lo + rng.uniform(0.01, 1, (37, 5))
    for mode in MODES:
        a, b = t64(lo, hi)
        ref = ref_containment(a, b, a, b, mode)
        ga, gb = torch.autograd.grad((ref * torch.arange(37.0, dtype=torch.float64)).sum(), (a, b))
        for dt, tol in (("torch.float32", 2e-4), ("torch.float64", 1e-9)):
            d, g1, g2 = (torch.tensor(x, dtype=torch.float64) for x in got[f"{mode}-{dt}"])
            torch.testing.assert_close(d, ref.detach(), rtol=tol, atol=tol * 1e-2)
            torch.testing.assert_close(g1, ga, rtol=tol, atol=tol * float(ga.abs().max()))
            torch.testing.assert_close(g2, gb, rtol=tol, atol=tol * float(gb.abs().max()))


@pytest.mark.cuda
def test_cuda_backward_is_deterministic(rng):
    """The CUDA backward uses no atomics: two runs give bit-identical gradients."""
    la, ha = random_boxes(rng, 257, 8)
    ia, ib = torch.tensor(rng.integers(0, 257, 20000), device="cuda"), torch.tensor(rng.integers(0, 257, 20000),
                                                                                   device="cuda")
    runs = []
    for _ in range(2):
        ts = [torch.tensor(x, dtype=torch.float32, device="cuda", requires_grad=True) for x in (la, ha)]
        g1 = torch.autograd.grad(tb.containment(*ts).sum(), ts)
        g2 = torch.autograd.grad(tb.containment_pairs(*ts, *ts, ia, ib).sum(), ts)
        runs.append([g.cpu().numpy().tobytes() for g in (*g1, *g2)])
    assert runs[0] == runs[1]
