"""SSIM, MSE and PSNR (tasklens.metrics.image_quality) against scikit-image as an oracle, against hand-computed
float64 values written from Wang et al. (2004), Eq. 13-17, and on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tasklens.metrics import mse, psnr, ssim
from tasklens.metrics.image_quality import gaussian_window, ssim_map

from conftest import subprocess_env

skm = pytest.importorskip("skimage.metrics")


def sk_ssim(x, y, data_range):
    """scikit-image's SSIM per image with the settings of Wang et al. (2004); x, y (N, C, H, W)."""
    return np.array([skm.structural_similarity(a, b, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                               use_sample_covariance=False, data_range=data_range)
                     for a, b in zip(x, y)])


def noisy_pair(rng, shape, noise=0.15):
    x = rng.random(shape)
    return x, np.clip(x + noise * rng.standard_normal(shape), 0.0, 1.0)


# -- scikit-image as the oracle -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 17, 23), (4, 11, 11)])
def test_float_images_match_skimage(rng, shape):
    x, y = noisy_pair(rng, shape)
    x4, y4 = (x, y) if len(shape) == 4 else (x[:, None], y[:, None])
    per = ssim(x, y, reduction="none")
    np.testing.assert_allclose(per, sk_ssim(x4, y4, 1.0), rtol=0, atol=1e-12)
    assert ssim(x, y) == pytest.approx(per.mean(), abs=1e-15)
    np.testing.assert_allclose(mse(x, y, reduction="none"),
                               [skm.mean_squared_error(a, b) for a, b in zip(x, y)], rtol=1e-13)
    np.testing.assert_allclose(psnr(x, y, reduction="none"),
                               [skm.peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(x, y)], rtol=1e-13)


def test_uint8_images_match_skimage(rng):
    x = rng.integers(0, 256, (3, 2, 20, 20), dtype=np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-40, 41, x.shape), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(ssim(x, y, reduction="none"), sk_ssim(x, y, 255), atol=1e-12)
    np.testing.assert_allclose(psnr(x, y, reduction="none"),
                               [skm.peak_signal_noise_ratio(a, b, data_range=255) for a, b in zip(x, y)], rtol=1e-13)
    # the default data range of uint8 is 255, and scaling both images to [0, 1] changes nothing
    assert ssim(x, y) == pytest.approx(ssim(x / 255.0, y / 255.0, data_range=1.0), abs=1e-12)
    assert psnr(x, y) == pytest.approx(psnr(x / 255.0, y / 255.0), abs=1e-10)


def test_explicit_data_range_matches_skimage(rng):
    x, y = noisy_pair(rng, (2, 1, 16, 16))
    x, y = 4.0 * x - 2.0, 4.0 * y - 2.0  # values in [-2, 2]
    np.testing.assert_allclose(ssim(x, y, data_range=4.0, reduction="none"), sk_ssim(x, y, 4.0), atol=1e-12)
    np.testing.assert_allclose(psnr(x, y, data_range=4.0, reduction="none"),
                               [skm.peak_signal_noise_ratio(a, b, data_range=4.0) for a, b in zip(x, y)], rtol=1e-13)


# -- hand-computed references (Wang et al. 2004) --------------------------------------------------------------------

def test_gaussian_window_is_the_papers():
    w = gaussian_window()
    assert w.shape == (11,)
    k = np.arange(-5, 6)
    ref = np.exp(-k ** 2 / (2 * 1.5 ** 2))
    np.testing.assert_allclose(w, ref / ref.sum(), rtol=1e-15)


def test_single_window_equals_eq13_by_hand(rng):
    """An 11 x 11 image has exactly one window position: SSIM = Eq. 13 with the Gaussian-weighted moments of
    Eq. 14-16 (weights w_ij = exp(-(i^2 + j^2) / 4.5), normalised)."""
    x, y = noisy_pair(rng, (1, 11, 11), noise=0.3)
    i = np.arange(-5, 6)
    w2 = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / (2 * 1.5 ** 2))
    w2 /= w2.sum()
    a, b = x[0], y[0]
    mu_a, mu_b = (w2 * a).sum(), (w2 * b).sum()
    va, vb = (w2 * (a - mu_a) ** 2).sum(), (w2 * (b - mu_b) ** 2).sum()
    cov = (w2 * (a - mu_a) * (b - mu_b)).sum()
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    ref = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    assert ssim(x, y) == pytest.approx(ref, abs=1e-13)
    assert ssim_map(x, y).shape == (1, 1, 1, 1)


def test_identical_images_score_one_and_infinite_psnr(rng):
    x = rng.random((3, 2, 12, 15))
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    assert mse(x, x) == 0.0
    assert np.all(np.isinf(psnr(x, x, reduction="none")))


def test_constant_images_closed_form():
    """Flat images a and b: sigma = cov = 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) at every position."""
    a, b = 0.2, 0.5
    x, y = np.full((1, 14, 14), a), np.full((1, 14, 14), b)
    c1 = 0.01 ** 2
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-14)
    assert mse(x, y) == pytest.approx(0.09, abs=1e-15)
    assert psnr(x, y) == pytest.approx(10 * np.log10(1 / 0.09), abs=1e-12)


def test_constant_offset_keeps_structure_term_and_lowers_luminance(rng):
    """y = x + c leaves sigma_x = sigma_y = sigma_xy, so the second factor of Eq. 13 is 1 and the map equals the
    luminance term (2 mu_x (mu_x + c) + C1) / (mu_x^2 + (mu_x + c)^2 + C1) of the local means."""
    x = 0.5 * rng.random((2, 1, 13, 13))
    c = 0.25
    s = ssim_map(x, x + c)
    mu = np.empty((2, 1, 3, 3))
    i = np.arange(-5, 6)
    w2 = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / 4.5)
    w2 /= w2.sum()
    c1 = 1e-4
    for n in range(2):
        for r in range(3):
            for q in range(3):
                m = (w2 * x[n, 0, r:r + 11, q:q + 11]).sum()
                mu[n, 0, r, q] = (2 * m * (m + c) + c1) / (m * m + (m + c) ** 2 + c1)
    np.testing.assert_allclose(s, mu, atol=1e-12)
    assert mse(x, x + c) == pytest.approx(c * c, abs=1e-15)


def test_psnr_uint8_extremes():
    x = np.zeros((1, 4, 4), np.uint8)
    y = np.full((1, 4, 4), 255, np.uint8)
    assert psnr(x, y) == pytest.approx(0.0, abs=1e-12)  # MSE = 255^2 = L^2
    assert mse(x, y) == pytest.approx(255.0 ** 2)


def test_reduction_none_is_per_image(rng):
    x, y = noisy_pair(rng, (4, 1, 12, 12))
    per = ssim(x, y, reduction="none")
    for i in range(4):
        assert per[i] == pytest.approx(ssim(x[i:i + 1], y[i:i + 1]), abs=1e-15)
    per_m = mse(x, y, reduction="none")
    np.testing.assert_allclose(psnr(x, y, reduction="none"), 10 * np.log10(1.0 / per_m), rtol=1e-13)


# -- properties ------------------------------------------------------------------------------------------------------

pairs = st.integers(11, 16).flatmap(
    lambda s: st.tuples(arrays(np.float64, (2, 1, s, s), elements=st.floats(0, 1)),
                        arrays(np.float64, (2, 1, s, s), elements=st.floats(0, 1))))


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_properties_symmetry_and_bounds(xy):
    x, y = xy
    s = ssim(x, y, reduction="none")
    np.testing.assert_allclose(s, ssim(y, x, reduction="none"), atol=1e-12)
    assert np.all(s <= 1.0 + 1e-12) and np.all(s >= -1.0 - 1e-12)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    m = mse(x, y, reduction="none")
    assert np.all(m >= 0) and np.all(m <= 1.0)
    np.testing.assert_allclose(m, mse(y, x, reduction="none"), rtol=0, atol=0)
    assert np.all(psnr(x, y, reduction="none") >= -1e-12)  # MSE <= 1 = L^2 for images in [0, 1]


@settings(max_examples=30, deadline=None)
@given(pairs, st.floats(0.5, 50.0))
def test_property_scale_invariance(xy, a):
    """SSIM and PSNR depend on pixel values only relative to the data range: scaling both images and L by a
    changes nothing."""
    x, y = xy
    assert ssim(a * x, a * y, data_range=a) == pytest.approx(ssim(x, y, data_range=1.0), abs=1e-9)
    if mse(x, y) > 0:
        assert psnr(a * x, a * y, data_range=a) == pytest.approx(psnr(x, y), abs=1e-9)


# -- torch ----------------------------------------------------------------------------------------------------------

def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    x, y = noisy_pair(rng, (3, 2, 14, 14))
    tx, ty = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    for fn in (ssim, mse, psnr):
        out = fn(tx, ty)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.ndim == 0
        per = fn(tx, ty, reduction="none")
        assert per.shape == (3,) and per.dtype == torch.float64
        ref = fn(tx.double().numpy(), ty.double().numpy(), reduction="none")
        np.testing.assert_allclose(per.numpy(), ref, rtol=1e-12, atol=1e-14)
    out = ssim(torch.from_numpy(x).to(torch.uint8), torch.from_numpy(y).to(torch.uint8))
    assert isinstance(out, torch.Tensor)


def test_torch_ssim_gradients_flow_and_check():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, 12, 12), generator=g, dtype=torch.float64) * 0.8 + 0.1
    y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ssim(x, t, data_range=1.0), (y,))
    loss = 1 - ssim(x, y)
    loss.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


# -- bad input -------------------------------------------------------------------------------------------------------

def test_bad_input_errors(rng):
    x, y = noisy_pair(rng, (2, 1, 12, 12))
    with pytest.raises(ValueError, match=r"y: shape \(2, 1, 12, 13\) differs from x's \(2, 1, 12, 12\)"):
        ssim(x, np.zeros((2, 1, 12, 13)))
    with pytest.raises(ValueError, match=r"x: expected a batch of images .*shape \(12, 12\).*img\[None\]"):
        mse(x[0, 0], y[0, 0])
    bad = y.copy()
    bad[1, 0, 3, 3] = np.nan
    for fn in (ssim, mse, psnr):
        with pytest.raises(ValueError, match=r"y: contains NaN or infinite pixels \(shape \(2, 1, 12, 12\), dtype "
                                             r"float64"):
            fn(x, bad)
    wide = x.copy()
    wide[0, 0, 0, 0] = 2.0
    with pytest.raises(ValueError, match=r"x: floating pixels in \[.*, 2\] but data_range=None assumes \[0, 1\] "
                                         r"\(shape \(2, 1, 12, 12\), dtype float64.*pass data_range"):
        ssim(wide, y)
    with pytest.raises(ValueError, match=r"data_range: the pixels of x and y span .* wider than data_range=0.5"):
        psnr(x, y, data_range=0.5)
    with pytest.raises(TypeError, match=r"x, y: one batch is floating and the other integer.*uint8"):
        ssim(x, (y * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"data_range: required for int16"):
        ssim(x.astype(np.int16), y.astype(np.int16))
    with pytest.raises(TypeError, match=r"x: expected uint8, integer or real floating images.*complex128"):
        mse(x.astype(complex), y.astype(complex))
    with pytest.raises(ValueError, match=r"x: images of 12x12 are smaller than the 13x13 SSIM window"):
        ssim(x, y, window=13)
    with pytest.raises(ValueError, match=r"window: expected an odd window size, got 10"):
        ssim(x, y, window=10)
    with pytest.raises(ValueError, match=r"reduction: expected one of 'mean', 'none', got 'sum'"):
        mse(x, y, reduction="sum")
    with pytest.raises(ValueError, match=r"x: needs at least one image"):
        mse(x[:0], y[:0])
    with pytest.raises(ValueError, match=r"data_range: expected a number > 0.0"):
        psnr(x, y, data_range=0)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"x, y: pass two numpy arrays or two torch tensors"):
        ssim(torch.from_numpy(x), y)


def test_numpy_use_does_not_import_torch():
    code = ("import sys, numpy as np; from tasklens.metrics import ssim, mse, psnr; "
            "from tasklens.datasets import edge_maps; x = np.random.rand(1, 12, 12); "
            "ssim(x, x); psnr(x, x * 0.5); mse(x, x); edge_maps(x); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env())
