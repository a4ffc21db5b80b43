"""Edge-map images (tasklens.datasets.edge_maps): Sobel magnitude against scipy.ndimage.sobel and a hand-computed
step edge, Canny against scikit-image, determinism, kinds and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tasklens.datasets import edge_maps
from tasklens.datasets.edges import SOBEL_BOUND, sobel_magnitude


def scipy_sobel(images):
    """Independent reference: scipy's Sobel derivatives (mode 'reflect') and their Euclidean norm."""
    return np.stack([np.hypot(ndi.sobel(a, axis=0), ndi.sobel(a, axis=1)) for a in images])


def test_sobel_magnitude_matches_scipy(rng):
    x = rng.random((3, 13, 9))
    np.testing.assert_allclose(sobel_magnitude(x), scipy_sobel(x), rtol=0, atol=1e-13)


def test_edge_maps_normalised_per_image_match_scipy(rng):
    x = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    out = edge_maps(x)
    ref = scipy_sobel(x / 255.0)
    ref /= ref.max(axis=(1, 2), keepdims=True)
    assert out.shape == (4, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert np.allclose(out.max(axis=(1, 2)), 1.0)
    bound = edge_maps(x[:, None], normalize="bound")
    assert bound.shape == (4, 1, 28, 28)
    np.testing.assert_allclose(bound[:, 0], scipy_sobel(x / 255.0) / math.sqrt(20), atol=1e-6)


def test_step_edge_by_hand():
    """A vertical 0 -> 1 step between columns 2 and 3: G_x = 1 + 2 + 1 = 4 on the two columns next to it, 0
    elsewhere, G_y = 0 everywhere; so the map is 1 on those columns (normalize='max') or 4 / sqrt(20)."""
    x = np.zeros((1, 6, 6))
    x[0, :, 3:] = 1.0
    want = np.zeros((6, 6))
    want[:, 2:4] = 1.0
    np.testing.assert_array_equal(edge_maps(x)[0], want)
    np.testing.assert_allclose(edge_maps(x, normalize="bound")[0], want * 4 / math.sqrt(20), rtol=1e-6)


def test_sobel_bound_is_the_maximum_over_binary_patches():
    """The magnitude is convex in the 3 x 3 patch, so its maximum over [0, 1]^9 is at one of the 512 binary
    patches: enumerate them (centre pixel of a 3 x 3 image with the border reflected does not matter, so use the
    centre of 5 x 5 images whose inner 3 x 3 is the patch)."""
    bits = (np.arange(512)[:, None] >> np.arange(9)) & 1
    patches = np.zeros((512, 5, 5))
    patches[:, 1:4, 1:4] = bits.reshape(512, 3, 3)
    peak = sobel_magnitude(patches)[:, 2, 2].max()
    assert peak == pytest.approx(SOBEL_BOUND, abs=1e-12)
    assert SOBEL_BOUND == pytest.approx(2 * math.sqrt(5))


def test_flat_images_give_zero_maps():
    x = np.full((2, 8, 8), 0.4)
    assert np.all(edge_maps(x) == 0.0)
    assert np.all(edge_maps(x, method="canny") == 0.0)


def test_canny_matches_skimage(rng):
    feature = pytest.importorskip("skimage.feature")
    x = np.zeros((3, 28, 28))
    x[:, 8:20, 6:22] = 1.0
    x += 0.05 * rng.standard_normal(x.shape)
    x = np.clip(x, 0, 1)
    out = edge_maps(x, method="canny", sigma=1.5, low_threshold=0.05, high_threshold=0.2)
    ref = np.stack([feature.canny(a, sigma=1.5, low_threshold=0.05, high_threshold=0.2) for a in x])
    np.testing.assert_array_equal(out, ref.astype(np.float32))
    assert set(np.unique(out)) <= {0.0, 1.0} and out.sum() > 0


def test_deterministic_and_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    x = rng.integers(0, 256, (2, 1, 10, 10), dtype=np.uint8)
    a, b = edge_maps(x), edge_maps(x.copy())
    np.testing.assert_array_equal(a, b)
    t = edge_maps(torch.from_numpy(x))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (2, 1, 10, 10)
    np.testing.assert_array_equal(t.numpy(), a)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, (2, 9, 9)), st.floats(0.0, 1.0))
def test_properties_range_and_offset_invariance(x8, c):
    """Maps lie in [0, 1]; the gradient ignores a constant offset and the per-image normalisation a positive scale
    (8-bit pixel levels, so the smallest non-zero gradient is far above rounding error)."""
    x = x8 / 255.0
    out = edge_maps(x)
    assert out.min() >= 0.0 and out.max() <= 1.0
    shifted = np.clip(0.5 * x + 0.5 * c, 0, 1)  # in [0, 1]: 0.5 x + offset
    np.testing.assert_allclose(edge_maps(shifted), edge_maps(0.5 * x), atol=1e-6)
    np.testing.assert_allclose(edge_maps(0.5 * x), out, atol=1e-6)


def test_bad_input():
    x = np.zeros((2, 3, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=r"images: expected grayscale images .* got shape \(2, 3, 8, 8\), dtype "
                                         r"uint8.*match_channels"):
        edge_maps(x)
    with pytest.raises(ValueError, match=r"images: expected images of shape \(N, C, H, W\) or \(N, H, W\), got "
                                         r"shape \(8, 8\)"):
        edge_maps(np.zeros((8, 8)))
    bad = np.zeros((1, 8, 8))
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"images: contains NaN or infinite pixels \(shape \(1, (1, )?8, 8\), dtype "
                                         r"float64"):
        edge_maps(bad)
    with pytest.raises(ValueError, match=r"images: floating images must lie in \[0, 1\]"):
        edge_maps(np.full((1, 8, 8), 3.0))
    with pytest.raises(TypeError, match=r"images: expected uint8 images .* dtype int32"):
        edge_maps(np.zeros((1, 8, 8), np.int32))
    with pytest.raises(ValueError, match=r"method: expected one of 'sobel', 'canny', got 'prewitt'"):
        edge_maps(np.zeros((1, 8, 8)), method="prewitt")
    with pytest.raises(ValueError, match=r"normalize: expected one of 'max', 'bound', got 'none'"):
        edge_maps(np.zeros((1, 8, 8)), normalize="none")
    with pytest.raises(ValueError, match=r"low_threshold: 0.5 is above high_threshold 0.2"):
        edge_maps(np.zeros((1, 8, 8)), method="canny", low_threshold=0.5, high_threshold=0.2)
    with pytest.raises(ValueError, match=r"images: needs at least 1 image"):
        edge_maps(np.zeros((0, 8, 8)))
