"""Baselines (§4.2): formulas against per-pair float64 loops, training on an easy problem, kinds."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tasklens.task2box import (AsymmetricCosine, AsymmetricEuclidean, KLDivergence, LinearBaseline,  # noqa: E402
                               MLPBaseline, RandomBaseline, evaluate_hierarchy, relations_from_parents,
                               split_pairs)


def gaussians(n=6, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.hstack([rng.normal(size=(n, d)), rng.uniform(0.2, 2.0, size=(n, d))])


def test_kl_matches_per_pair_formula():
    X = gaussians()
    kl = KLDivergence(var_floor=1e-9).fit(X)
    S = kl.score(X)
    d = 3
    for i in range(6):
        for j in range(6):
            mi, vi, mj, vj = X[i, :d], X[i, d:], X[j, :d], X[j, d:]
            ref = 0.5 * np.sum(vi / vj + (mj - mi) ** 2 / vj - 1 + np.log(vj / vi))
            assert S[i, j] == pytest.approx(-ref, rel=1e-9, abs=1e-9)
    assert np.allclose(np.diag(S), 0, atol=1e-9)
    with pytest.raises(ValueError, match="even"):
        KLDivergence().fit(X[:, :5])


def test_asymmetric_distances_match_eq7():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8, 4))
    R = relations_from_parents([1, 2, 3, 5, 6], [0, 0, 0, 4, 4], 8)
    tr, va, te = split_pairs(8, seed=0)
    for cls, dist in ((AsymmetricCosine, lambda a, b: 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)),
                      (AsymmetricEuclidean, lambda a, b: np.linalg.norm(a - b))):
        m = cls().fit(X, R, tr)
        e0 = X.mean(0)
        S = m.score(X)
        for i in range(8):
            for j in range(8):
                ref = -(dist(X[i], X[j]) - m.alpha_ * dist(X[i], e0))
                assert S[i, j] == pytest.approx(ref, abs=1e-6)  # GEMM-form distances
        assert m.alpha_ in set(np.round(np.linspace(0, 2, 21), 12))


def test_asymmetric_alpha_is_chosen_on_train():
    # a parent is close to the trivial embedding (the mean); children are far from it: alpha > 0 helps
    rng = np.random.default_rng(0)
    parents = rng.normal(size=(3, 5)) * 0.2
    kids = np.vstack([p + rng.normal(size=(4, 5)) * 1.5 for p in parents])
    X = np.vstack([parents, kids])
    R = relations_from_parents(np.arange(3, 15), np.repeat(np.arange(3), 4), 15)
    m = AsymmetricEuclidean().fit(X, R, ~np.eye(15, dtype=bool))
    assert m.alpha_ > 0


def easy_problem(seed=0):
    rng = np.random.default_rng(seed)
    roots = rng.normal(size=(4, 6)) * 3
    X = np.vstack([roots] + [r + 0.2 * rng.normal(size=(6, 6)) for r in roots])
    R = relations_from_parents(np.arange(4, 28), np.repeat(np.arange(4), 6), 28)
    return X, R


@pytest.mark.parametrize("cls,epochs", [(MLPBaseline, 60), (LinearBaseline, 60)])
def test_pair_classifiers_learn(cls, epochs):
    X, R = easy_problem()
    if cls is LinearBaseline:  # a logit a(e_i) + b(e_j) can express "i is a leaf and j a root"
        R = np.zeros_like(R)
        R[4:, :4] = 1
        X = np.hstack([X, (np.arange(len(X)) >= 4)[:, None] * 2.0])
    tr, va, te = split_pairs(len(X), seed=0)
    kw = dict(hidden=(32, 32, 32)) if cls is MLPBaseline else {}
    m = cls(seed=0, epochs=epochs, batch_size=128, lr=3e-3, eval_every=5, patience=100, progress=False, **kw)
    m.fit(X, R, tr, va)
    S = m.score(X)
    assert S.shape == (28, 28)
    assert evaluate_hierarchy(R, S, tr, tr)["f1"] > 0.9
    assert m.history_["loss"][-1] < m.history_["loss"][0]
    assert np.allclose(m.score(X[:3], X), S[:3], atol=1e-5)


def test_baseline_kinds_and_random():
    X, R = easy_problem()
    tr, _, _ = split_pairs(len(X), seed=0)
    r = RandomBaseline(seed=3).fit(X)
    S = r.score(X)
    assert S.shape == (28, 28) and np.array_equal(S, RandomBaseline(seed=3).fit(X).score(X))
    assert ((S >= 0) & (S < 1)).all()
    St = r.containment(torch.tensor(X))
    assert isinstance(St, torch.Tensor)
    with pytest.raises(ValueError, match="not fitted"):
        AsymmetricCosine().score(X)
    m = AsymmetricCosine().fit(X, R, tr)
    with pytest.raises(ValueError, match="X_b"):
        m.score(X, X[:, :2])


def test_kl_zero_variances_give_finite_scores():
    """Issue 9 §2: all-zero variances gave log(0) and NaN scores; the floor keeps them finite and ordered."""
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(5, 3))
    X = np.hstack([mu, np.zeros((5, 3))])
    kl = KLDivergence().fit(X)
    S = kl.score(X)
    assert np.isfinite(S).all() and np.allclose(np.diag(S), 0.0, atol=1e-9)
    # with equal floored variances v the score is -||mu_i - mu_j||^2 / (2 v), v = 1e-3 * mean variance of mu
    v = 1e-3 * np.mean(np.var(mu, axis=0))
    D2 = ((mu[:, None] - mu[None]) ** 2).sum(-1)
    np.testing.assert_allclose(S, -D2 / (2 * v), rtol=1e-10, atol=1e-9)
    # a zero-variance test row against fitted ones stays finite too
    assert np.isfinite(KLDivergence().fit(gaussians()).score(np.hstack([mu[:2], np.zeros((2, 3))]), gaussians())).all()
    with pytest.raises(ValueError, match="negative"):
        KLDivergence().fit(np.hstack([mu, -np.ones((5, 3))]))
    with pytest.raises(ValueError, match="even"):
        KLDivergence().fit(np.zeros((3, 0)))


def test_pair_classifier_rejects_non_integers():
    for kw in (dict(epochs=None), dict(batch_size=2.5), dict(hidden="abc"), dict(seed="0")):
        with pytest.raises(TypeError, match=next(iter(kw))):
            MLPBaseline(**kw)
    with pytest.raises(TypeError, match="train_mask"):
        LinearBaseline(epochs=1).fit(gaussians(), np.zeros((6, 6)), None)
