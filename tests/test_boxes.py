"""Box kernels (tasklens.boxes): values and gradients against an independent float64 torch reference,
gradcheck, the box-embeddings oracle, thread-count invariance, bad-input errors and CUDA-vs-CPU."""

from __future__ import annotations

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
