"""Soft-HGR (Eq. 3): the loss against a NumPy reference and gradcheck, and the estimator against the DTM."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tasklens.hgr import SoftHGR, dtm, soft_hgr_loss  # noqa: E402


def reference_objective(f, g):
    m = f.shape[0]
    f0, g0 = f - f.mean(0), g - g.mean(0)
    return sum(f0[i] @ g0[i] for i in range(m)) / (m - 1) - 0.5 * np.trace(np.cov(f.T) @ np.cov(g.T))


def test_loss_matches_reference(rng):
    f, g = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    val = soft_hgr_loss(torch.from_numpy(f), torch.from_numpy(g))
    np.testing.assert_allclose(float(val), -reference_objective(f, g), rtol=1e-12)
    # float32 input gives a float32 loss
    assert soft_hgr_loss(torch.from_numpy(f).float(), torch.from_numpy(g).float()).dtype == torch.float32


def test_loss_gradcheck(rng):
    f = torch.tensor(rng.normal(size=(7, 2)), requires_grad=True)
    g = torch.tensor(rng.normal(size=(7, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(soft_hgr_loss, (f, g))


def test_loss_bad_input():
    with pytest.raises(TypeError, match="torch tensor"):
        soft_hgr_loss(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="g"):
        soft_hgr_loss(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="at least 2"):
        soft_hgr_loss(torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="NaN"):
        soft_hgr_loss(torch.full((3, 2), float("nan")), torch.zeros(3, 2))


def test_soft_hgr_recovers_dtm_on_one_hot(rng):
    nx, ny, n = 8, 5, 4000
    idx = rng.choice(nx * ny, size=n, p=rng.dirichlet(np.full(nx * ny, 0.5)))
    x, y = idx // ny, idx % ny
    sv = dtm(x, y).singular_values
    est = SoftHGR(k=4, hidden=(), epochs=1500, lr=0.05, patience=30, seed=0).fit(np.eye(nx)[x], np.eye(ny)[y])
    np.testing.assert_allclose(est.correlations_, sv[:4], rtol=0.02)
    np.testing.assert_allclose(2 * est.objective_, np.sum(sv[:4] ** 2), rtol=0.02)
    f, g = est.transform(np.eye(nx)[x]), est.transform_y(np.eye(ny)[y])
    np.testing.assert_allclose(f.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(np.cov(f.T, bias=True), np.eye(4), atol=1e-8)
    np.testing.assert_allclose(f.T @ g / n, np.diag(est.correlations_), atol=1e-8)


def test_soft_hgr_gaussian_continuous_and_seeded(rng):
    x = rng.normal(size=(1500, 1))
    y = 0.8 * x + 0.6 * rng.normal(size=(1500, 1))  # Gaussian: maximal correlation = |rho| = 0.8
    kw = dict(k=1, hidden=(16,), epochs=150, batch_size=500, validation_fraction=0.2, patience=10, seed=3)
    a = SoftHGR(**kw).fit(x, y)
    b = SoftHGR(**kw).fit(x, y)
    assert 0.74 < a.correlations_[0] < 0.86
    np.testing.assert_array_equal(a.correlations_, b.correlations_)
    assert a.n_epochs_ <= 150 and len(a.history_) == a.n_epochs_
    out = a.transform(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor) and out.shape == (1500, 1)


def test_estimator_bad_input():
    with pytest.raises(ValueError, match="k"):
        SoftHGR(k=0).fit(np.zeros((10, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="y: expected 10 rows"):
        SoftHGR().fit(np.zeros((10, 2)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match="validation_fraction"):
        SoftHGR(validation_fraction=1.5).fit(np.zeros((10, 2)), np.zeros((10, 2)))
    with pytest.raises(RuntimeError, match="fit"):
        SoftHGR().transform(np.zeros((3, 2)))
