"""Transferability estimators (LogME, LEEP, NCE, N-LEEP, TransRate, GBC, SFDA) and the one-pass report.

Each estimator is checked against an independent float64 NumPy reference written in this file from the paper
(and, where the paper leaves a choice, the authors' released code): on random data with N > D, N < D, one-sample
classes, constant features and two classes.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from tasklens.metrics import (gbc, hscore, leep, logme, nce, nleep, sfda, transferability_report,
                              transrate)
from tasklens.metrics.feature_stats import FeatureStats

# ------------------------------------------------------------------------------------------ references


def ref_logme(X, y):
    """LogME (You et al. 2021, Eq. 2 + Algorithm 1) by the SVD of the features, one class at a time."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    u, s, _ = np.linalg.svd(X, full_matrices=False)
    keep = s * s > d * np.finfo(np.float64).eps * (s.max() ** 2)
    u, s2 = u[:, keep], s[keep] ** 2
    evidences = []
    for c in np.unique(y):
        yc = (y == c).astype(np.float64)
        proj = u.T @ yc
        x2 = proj * proj
        res0 = yc @ yc - x2.sum()
        res0 = 0.0 if res0 <= 1e-12 * (yc @ yc) else res0
        a, b, mode = 1.0, 1.0, ("w=0" if x2.sum() == 0 else "")
        for _ in range(1000):
            if mode:
                break
            t = a / b
            g = (s2 / (s2 + t)).sum()
            m2 = (s2 * x2 / (s2 + t) ** 2).sum()
            r2 = (x2 * (t / (s2 + t)) ** 2).sum() + res0
            a, b = g / m2, (n - g) / r2
            if a / b > 1e14 * s2.max():
                mode = "w=0"
            elif a / b < s2.min() / 1e14 and res0 == 0:
                mode = "noise-free"
            elif abs(a / b - t) <= 1e-10 * t:
                break
        if mode == "w=0":  # alpha -> infinity: w = 0
            b = n / (yc @ yc)
            ev = n / 2 * np.log(b) - b / 2 * (yc @ yc) - n / 2 * np.log(2 * np.pi)
        elif mode == "noise-free":  # beta -> infinity: y ~ N(0, X X^T / alpha), full rank N here
            assert s2.size == n
            a = n / (x2 / s2).sum()
            ev = n / 2 * np.log(a) - 0.5 * np.log(s2).sum() - a / 2 * (x2 / s2).sum() - n / 2 * np.log(2 * np.pi)
        else:
            t = a / b
            m2 = (s2 * x2 / (s2 + t) ** 2).sum()
            r2 = (x2 * (t / (s2 + t)) ** 2).sum() + res0
            logdet = np.log(a + b * s2).sum() + (d - s2.size) * np.log(a)  # all d eigenvalues of A
            ev = (d / 2 * np.log(a) + n / 2 * np.log(b) - 0.5 * logdet - b / 2 * r2 - a / 2 * m2
                  - n / 2 * np.log(2 * np.pi))
        evidences.append(ev / n)
    return float(np.mean(evidences))


def ref_logme_bayes(X, y):
    """LogME as the maximised log marginal likelihood log N(y; 0, I/beta + X X^T/alpha) over N dimensions
    (the kernel form of the same model), maximised over (log alpha, log beta) by Nelder-Mead."""
    from scipy.optimize import minimize

    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    lam, q = np.linalg.eigh(X @ X.T)
    lam = np.maximum(lam, 0.0)
    out = []
    for c in np.unique(y):
        r2 = (q.T @ (y == c).astype(np.float64)) ** 2

        def nll(p):
            var = np.exp(-p[1]) + np.exp(-p[0]) * lam
            return 0.5 * (np.log(var).sum() + (r2 / var).sum() + n * np.log(2 * np.pi))

        best = min((minimize(nll, p0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-13,
                                                                       "maxiter": 4000})
                    for p0 in ([0.0, 0.0], [3.0, 1.0])), key=lambda r: r.fun)
        out.append(-best.fun / n)
    return float(np.mean(out))


def ref_transrate(X, y, eps=1e-4):
    """TransRate (Huang et al. 2022) as in the released code: slogdet of I + Z^T Z / (n eps)."""
    Z = np.asarray(X, dtype=np.float64)
    Z = Z - Z.mean(axis=0)

    def rate(Zc):
        n, d = Zc.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + Zc.T @ Zc / (n * eps))[1]

    classes = np.unique(y)
    return float(rate(Z) - sum(rate(Z[y == c]) for c in classes) / classes.size)


def ref_gbc(X, y, floor=1e-4):
    """GBC (Pándy et al. 2022, Eqs. 1-3) with diagonal Gaussians, variances floored at 1e-4."""
    X = np.asarray(X, dtype=np.float64)
    stats = {c: (X[y == c].mean(axis=0), np.maximum(X[y == c].var(axis=0), floor)) for c in np.unique(y)}
    total = 0.0
    for c1, (m1, v1) in stats.items():
        for c2, (m2, v2) in stats.items():
            if c1 == c2:
                continue
            v = (v1 + v2) / 2
            db = np.sum((m1 - m2) ** 2 / v) / 8 + 0.5 * (np.sum(np.log(v)) - 0.5 * np.sum(np.log(v1))
                                                         - 0.5 * np.sum(np.log(v2)))
            total += np.exp(-db)
    return -total


def ref_sfda(X, y, log=False):
    """SFDA (Shao et al. 2022) as described by the paper and the released code: generalized eigenproblem of
    (S_b, shrunk S_w), all eigenvectors, ConfMix towards the other classes' mean, refit, mean true-class
    posterior."""
    X = np.array(X, dtype=np.float64)
    classes, yk = np.unique(y, return_inverse=True)
    k, n, d = classes.size, X.shape[0], X.shape[1]

    def fit(X, lam=None):
        priors = np.bincount(yk) / n
        means = np.stack([X[yk == c].mean(axis=0) for c in range(k)])
        sw = sum(priors[c] * np.cov(X[yk == c].T, bias=True).reshape(d, d) for c in range(k))
        if lam is None:
            v = sw.sum(axis=1)
            for _ in range(3):
                w = sw @ v
                w /= np.linalg.norm(w)
                v = sw @ w
                v /= np.linalg.norm(v)
            lam = max(np.exp(-5 * (v @ sw @ w)), 1e-10)
        st = np.cov(X.T, bias=True)
        st = (1 - lam) * st + lam * np.trace(st) / d * np.eye(d)
        sws = (1 - lam) * sw + lam * np.trace(sw) / d * np.eye(d)
        _, vecs = scipy.linalg.eigh(st - sws, sws)
        coef = means @ vecs @ vecs.T
        icpt = -0.5 * np.diag(means @ coef.T) + np.log(priors)
        return coef, icpt, lam

    def proba(X, coef, icpt):
        s = X @ coef.T + icpt
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    coef, icpt, lam = fit(X)
    prob = proba(X, coef, icpt)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)
    means = np.stack([X[yk == c].mean(axis=0) for c in range(k)])
    others = (means.sum(axis=0) - means) / (k - 1)
    p = prob[np.arange(n), yk][:, None]
    Xm = p * X + (1 - p) * others[yk]
    coef, icpt, _ = fit(Xm, lam)
    final = proba(Xm, coef, icpt)[np.arange(n), yk]
    return float(np.mean(np.log(final)) if log else np.mean(final))


def ref_leep(theta, y):
    """LEEP (Nguyen et al. 2020, Eqs. 1-3) with explicit loops."""
    theta = np.asarray(theta, dtype=np.float64)
    n, z = theta.shape
    c = int(y.max()) + 1
    joint = np.zeros((c, z))
    for i in range(n):
        joint[y[i]] += theta[i] / n
    cond = joint / joint.sum(axis=0)
    return float(np.mean([np.log(sum(cond[y[i], j] * theta[i, j] for j in range(z))) for i in range(n)]))


def ref_nce(z, y):
    """NCE (Tran et al. 2019): -H(Y | Z) from joint counts."""
    n = len(z)
    total = 0.0
    for zz in set(z.tolist()):
        pz = np.mean(z == zz)
        for yy in set(y.tolist()):
            pyz = np.mean((z == zz) & (y == yy))
            if pyz > 0:
                total += pyz * np.log(pyz / pz)
    assert n
    return total


def ref_hscore(X, y):
    X = np.asarray(X, dtype=np.float64)
    g = np.zeros_like(X)
    for c in np.unique(y):
        g[y == c] = X[y == c].mean(axis=0)
    return float(np.trace(np.linalg.pinv(np.cov(X.T, bias=True), rcond=1e-10) @ np.cov(g.T, bias=True)))


# ------------------------------------------------------------------------------------------ data

def _data(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "tall":
        n, d, c = 240, 12, 4
    elif kind == "wide":  # N < D
        n, d, c = 30, 50, 3
    elif kind == "two":
        n, d, c = 120, 6, 2
    elif kind in ("singletons", "constant"):
        n, d, c = 100, 8, 5
    y = rng.integers(0, c, n)
    if kind == "singletons":  # classes 5 and 6 have one sample each
        y[3], y[17] = 5, 6
    x = rng.normal(size=(n, d)) + 0.8 * rng.normal(size=(c + 2, d))[y] + 2.0
    if kind == "constant":
        x[:, 2] = 3.0
        x[:, 5] = 0.0
    return x, y


KINDS = ("tall", "wide", "two", "singletons", "constant")


@pytest.mark.parametrize("kind", KINDS)
def test_logme_matches_svd_reference(kind):
    x, y = _data(kind)
    assert logme(x, y) == pytest.approx(ref_logme(x, y), rel=1e-9)


def test_logme_is_the_maximum_evidence_for_n_less_than_d():
    # The evidence over all D dimensions, maximised by a generic optimiser on the N x N marginal likelihood:
    # a truncated SVD without zero padding would be off by (D - N)/2 log(alpha) / N.
    x, y = _data("wide", seed=3)
    assert logme(x, y) == pytest.approx(ref_logme_bayes(x, y), rel=1e-6)
    x, y = _data("two", seed=3)
    assert logme(x, y) == pytest.approx(ref_logme_bayes(x, y), rel=1e-6)


def test_logme_float32_and_torch():
    torch = pytest.importorskip("torch")
    x, y = _data("tall", seed=1)
    assert logme(x.astype(np.float32), y) == pytest.approx(ref_logme(x.astype(np.float32), y), rel=1e-4)
    out = logme(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.ndim == 0
    assert float(out) == pytest.approx(ref_logme(x, y), rel=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_transrate_matches_reference(kind):
    x, y = _data(kind)
    assert transrate(x, y) == pytest.approx(ref_transrate(x, y), rel=1e-9)
    assert transrate(x, y, eps=0.5) == pytest.approx(ref_transrate(x, y, 0.5), rel=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_gbc_matches_reference(kind):
    x, y = _data(kind)
    assert gbc(x, y) == pytest.approx(ref_gbc(x, y), rel=1e-9, abs=1e-12)
    x = x * 0.05  # small variances: the floor matters
    assert gbc(x, y) == pytest.approx(ref_gbc(x, y), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_sfda_matches_reference(kind):
    x, y = _data(kind)
    assert sfda(x, y) == pytest.approx(ref_sfda(x, y), rel=1e-8)
    assert sfda(x, y, log=True) == pytest.approx(ref_sfda(x, y, log=True), rel=1e-8)


def test_sfda_needs_two_classes():
    x, _ = _data("tall")
    with pytest.raises(ValueError, match="labels: SFDA needs at least 2 classes"):
        sfda(x, np.zeros(len(x), dtype=int))


def test_leep_and_nce_match_reference():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(150, 7)) * 2
    theta = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 4, 150)
    assert leep(theta, y) == pytest.approx(ref_leep(theta, y), rel=1e-12)
    z = theta.argmax(axis=1)
    assert nce(z, y) == pytest.approx(ref_nce(z, y), rel=1e-12, abs=1e-15)
    # perfect source labels: H(Y | Z) = 0
    assert nce(y, y) == 0.0
    # theta concentrated: LEEP = NCE on the arg-max labels
    hard = np.eye(7)[z]
    assert leep(hard, y) == pytest.approx(nce(z, y), rel=1e-12)


def test_nleep_is_leep_of_the_seeded_mixture():
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    x, y = _data("tall", seed=5)
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(x)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        post = GaussianMixture(n_components=6, random_state=3).fit(reduced).predict_proba(reduced)
    assert nleep(x, y, n_components=6, seed=3) == pytest.approx(ref_leep(post, y), rel=1e-10)
    assert nleep(x, y, n_components=6, seed=3) == nleep(x, y, n_components=6, seed=3)


@pytest.mark.parametrize("kind", KINDS)
def test_hscore_in_report_matches_reference(kind):
    """The report's H-score comes from the shared tridiagonal reduction (pseudo-inverse for N < D and constant
    features): equal to the pinv reference and to the H-score accumulator."""
    x, y = _data(kind)
    got = transferability_report(x, y, ["hscore", "logme"])["hscore"]
    assert got == pytest.approx(ref_hscore(x, y), rel=1e-9)
    assert got == pytest.approx(hscore(x, y), rel=1e-9)


# ------------------------------------------------------------------------------------------ one pass

@pytest.mark.parametrize("kind", ["tall", "wide", "singletons"])
def test_report_equals_separate_calls(kind):
    x, y = _data(kind, seed=2)
    report = transferability_report(x, y)
    assert list(report) == ["hscore", "logme", "transrate", "gbc", "sfda"]
    assert report["hscore"] == pytest.approx(hscore(x, y), rel=1e-9, abs=1e-12)
    for name, fn in (("logme", logme), ("transrate", transrate), ("gbc", gbc), ("sfda", sfda)):
        assert report[name] == pytest.approx(fn(x, y), rel=1e-12, abs=1e-14), name


def test_report_chunk_size_invariance():
    x, y = _data("tall", seed=6)
    full = transferability_report(x, y)
    for rows in (5, 64, 1000):
        part = transferability_report(x, y, chunk_rows=rows)
        for name in full:
            assert part[name] == pytest.approx(full[name], rel=1e-10, abs=1e-13), (name, rows)


@settings(max_examples=20, deadline=None)
@given(split=st.lists(st.integers(1, 60), min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_merged_states_equal_one_pass(split, seed):
    """FeatureStats of chunks merged in any grouping equals the stats of one pass (exact re-shifting)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 5)) * 3 + rng.normal(size=5) * 10
    y = rng.integers(0, 3, (200, 2))
    whole = FeatureStats(5, 3, 2, squares=True, class_scatter=True).update(x, y)
    cuts = np.cumsum([0] + split)
    cuts = cuts[cuts < 200].tolist() + [200]
    merged = FeatureStats(5, 3, 2, squares=True, class_scatter=True)
    for a, b in zip(cuts[:-1], cuts[1:]):
        merged.merge(FeatureStats(5, 3, 2, squares=True, class_scatter=True).update(x[a:b], y[a:b]))
    np.testing.assert_allclose(merged.scatter(), whole.scatter(), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(merged.raw_gram(), x.T @ x, rtol=1e-12)
    np.testing.assert_allclose(merged.raw_class_sums(), whole.raw_class_sums(), rtol=1e-12, atol=1e-10)
    for t in range(2):
        np.testing.assert_allclose(merged.class_centred_grams(t), whole.class_centred_grams(t), rtol=1e-10,
                                   atol=1e-9)
        cls = merged.class_squares[t] + 2 * merged.class_sums[t] * merged.shift
        cls += merged.class_counts[t][:, None] * merged.shift ** 2
        want = np.stack([(x[y[:, t] == c] ** 2).sum(axis=0) for c in range(3)])
        np.testing.assert_allclose(cls, want, rtol=1e-10)


def test_multi_target_returns_one_score_per_target():
    x, y = _data("tall", seed=7)
    rng = np.random.default_rng(7)
    ys = np.stack([y, rng.integers(0, 3, len(y)), (y + 1) % 4], axis=1)
    report = transferability_report(x, ys)
    for name, fn in (("logme", logme), ("transrate", transrate), ("gbc", gbc), ("sfda", sfda),
                     ("hscore", hscore)):
        got = fn(x, ys)
        assert got.shape == (3,) and report[name].shape == (3,)
        want = [fn(x, ys[:, t]) for t in range(3)]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(report[name], want, rtol=1e-9, atol=1e-12)
    theta = np.full((len(y), 3), 1 / 3)
    np.testing.assert_allclose(leep(theta, ys), [leep(theta, ys[:, t]) for t in range(3)], rtol=1e-12)
    np.testing.assert_allclose(nce(y, ys), [nce(y, ys[:, t]) for t in range(3)], rtol=1e-12)


@pytest.mark.parametrize("kind", ["tall", "constant"])
def test_float32_input_within_documented_tolerance(kind):
    x, y = _data(kind, seed=9)
    x32 = x.astype(np.float32)
    x64 = x32.astype(np.float64)  # the same values: the reference is exact on them
    report = transferability_report(x32, y)
    assert report["logme"] == pytest.approx(ref_logme(x64, y), rel=1e-5)
    assert report["transrate"] == pytest.approx(ref_transrate(x64, y), rel=1e-4)
    assert report["gbc"] == pytest.approx(ref_gbc(x64, y), rel=1e-5)
    assert report["sfda"] == pytest.approx(ref_sfda(x64, y), rel=1e-5)
    assert report["hscore"] == pytest.approx(ref_hscore(x64, y), rel=1e-4)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    x, y = _data("two", seed=8)
    report = transferability_report(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))
    for name, value in report.items():
        assert isinstance(value, torch.Tensor) and value.dtype == torch.float64 and value.ndim == 0, name
    multi = logme(torch.from_numpy(x), torch.from_numpy(np.stack([y, y], 1)))
    assert multi.shape == (2,) and multi.dtype == torch.float64
    theta = torch.full((len(y), 2), 0.5, dtype=torch.float64)
    assert isinstance(leep(theta, torch.from_numpy(y)), torch.Tensor)


def test_thread_count_invariance():
    """Gram parts and TransRate factorisations are cut by size, not by thread count: bit-identical results."""
    import tasklens

    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, 9000)
    x = (rng.normal(size=(9000, 6)) + y[:, None]).astype(np.float32)
    try:
        tasklens.set_num_threads(1)
        one = transferability_report(x, y)
        tasklens.set_num_threads(2)
        two = transferability_report(x, y)
    finally:
        tasklens.set_num_threads(None)
    assert one == two


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_output_rule(dtype):
    """numpy in -> Python float / float64 array; torch in -> 0-d / (T,) float64 tensor (CPU here)."""
    torch = pytest.importorskip("torch")
    x, y = _data("two", seed=11)
    x = x.astype(dtype)
    ys = np.stack([y, 1 - y], axis=1)
    theta = np.full((len(y), 3), 1 / 3, dtype=dtype)
    calls = [(fn, (x,)) for fn in (logme, transrate, gbc, sfda)] + [(leep, (theta,)), (nce, (y,))]
    calls.append((lambda f, lab: nleep(f, lab, n_components=2), (x,)))
    for fn, args in calls:
        assert type(fn(*args, y)) is float
        multi = fn(*args, ys)
        assert isinstance(multi, np.ndarray) and multi.dtype == np.float64 and multi.shape == (2,)
        targs = [torch.from_numpy(a) for a in args]
        out = fn(*targs, torch.from_numpy(y))
        assert isinstance(out, torch.Tensor) and out.ndim == 0 and out.dtype == torch.float64
        out = fn(*targs, torch.from_numpy(ys))
        assert isinstance(out, torch.Tensor) and out.shape == (2,) and out.dtype == torch.float64


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(4, 40), d=st.integers(1, 12))
def test_logme_properties(seed, n, d):
    """LogME is invariant to row order and equals the SVD reference on arbitrary shapes (N < D included)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.integers(0, 3, n)
    perm = rng.permutation(n)
    got = logme(x, y)
    assert got == pytest.approx(logme(x[perm], y[perm]), rel=1e-9)
    assert got == pytest.approx(ref_logme(x, y), rel=1e-8)


# ------------------------------------------------------------------------------------------ bad input

def test_bad_input_names_the_argument():
    x, y = _data("tall")
    bad = x.copy()
    bad[3, 1] = np.nan
    for fn in (logme, transrate, gbc, sfda, transferability_report, nleep):
        with pytest.raises(ValueError, match="features: contains NaN"):
            fn(bad, y)
        with pytest.raises(ValueError, match="labels: labels must be non-negative"):
            fn(x, np.where(y == 0, -1, y))
        with pytest.raises(ValueError, match="labels: expected 240 labels"):
            fn(x, y[:-1])
    with pytest.raises(ValueError, match="metrics: unknown estimator 'leep'"):
        transferability_report(x, y, ["logme", "leep"])
    theta = np.full((len(y), 4), 0.25)
    theta[5] = [0.5, 0.5, 0.5, 0.0]
    with pytest.raises(ValueError, match="source_probs: every row must sum to 1.*row 5 sums to 1.5"):
        leep(theta, y)
    with pytest.raises(ValueError, match="source_probs: probabilities must be non-negative"):
        leep(np.full((len(y), 2), [1.5, -0.5]), y)
    with pytest.raises(ValueError, match="source_probs: contains NaN"):
        leep(np.full((len(y), 2), np.nan), y)
    with pytest.raises(ValueError, match="labels: labels must be non-negative"):
        nce(y, -y - 1)
    with pytest.raises(ValueError, match="eps: expected a number > 0"):
        transrate(x, y, eps=0.0)
    with pytest.raises(TypeError, match="chunk_rows: expected an int"):
        logme(x, y, chunk_rows=2.5)


# ------------------------------------------------------------------------------------------ TransRate class rates

def _class_rate_data(dtype, seed=12):
    """Classes with fewer rows than features (kernel path), more (Gram path) and one row, far from the origin."""
    rng = np.random.default_rng(seed)
    f = 16
    y = np.repeat([0, 1, 2, 3], [5, 15, 40, 1])
    rng.shuffle(y)
    x = rng.normal(size=(y.size, f)) @ rng.normal(size=(f, f)) * 0.5 + 3.0 * rng.normal(size=(4, f))[y] + 40.0
    return x.astype(dtype), y


def ref_class_log_dets(x, y, eps):
    z = np.asarray(x, dtype=np.float64)
    z = z - z.mean(axis=0)
    return np.array([np.linalg.slogdet(np.eye(z.shape[1]) + z[y == c].T @ z[y == c] / ((y == c).sum() * eps))[1]
                     for c in np.unique(y)])


@pytest.mark.parametrize("eps", [1e-4, 0.3])
def test_class_log_dets_match_slogdet_on_both_paths(eps):
    """Sylvester's identity (n_c < F: n_c x n_c kernel) and the F x F Gram (n_c >= F) equal slogdet of the
    F x F matrix of the globally centred class rows."""
    from tasklens.metrics.class_rates import class_log_dets

    x, y = _class_rate_data("float64")
    got = class_log_dets(x, y[:, None], 4, x.mean(axis=0), eps, step=7)[0]
    np.testing.assert_allclose(got, ref_class_log_dets(x, y, eps), rtol=1e-10)
    # rows centred on an arbitrary shift s, the rest d = mean - s added back exactly (here s = 0, d = mean)
    from tasklens.metrics.class_rates import _class_log_det

    shifted = [_class_log_det(x, np.flatnonzero(y == c), np.zeros(16), x.mean(axis=0), eps, 7) for c in range(4)]
    np.testing.assert_allclose(shifted, ref_class_log_dets(x, y, eps), rtol=1e-9)
    x32 = x.astype(np.float32)  # float32 products of rows centred on the float32-rounded mean
    got = class_log_dets(x32, y[:, None], 4, x32.mean(axis=0, dtype=np.float64), eps, step=7)[0]
    np.testing.assert_allclose(got, ref_class_log_dets(x32.astype(np.float64), y, eps), rtol=1e-4)
    assert transrate(x32, y) == pytest.approx(ref_transrate(x32.astype(np.float64), y), rel=1e-4)


def test_class_log_dets_chunk_and_thread_invariance():
    """A class's log-determinant depends only on its rows: equal for any thread count (bit for bit) and, for
    classes summed over chunks of rows (n_c >= F), for any chunk size up to rounding."""
    import tasklens
    from tasklens.metrics.class_rates import class_log_dets

    x, y = _class_rate_data("float32", seed=13)
    ys = np.stack([y, np.roll(y, 7)], axis=1)
    mean = x.mean(axis=0, dtype=np.float64)
    try:
        tasklens.set_num_threads(1)
        one = class_log_dets(x, ys, 4, mean, 1e-4, step=7)
        tasklens.set_num_threads(2)
        two = class_log_dets(x, ys, 4, mean, 1e-4, step=7)
    finally:
        tasklens.set_num_threads(None)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(class_log_dets(x, ys, 4, mean, 1e-4, step=1000), one, rtol=1e-6)
    np.testing.assert_allclose(one[1], ref_class_log_dets(x.astype(np.float64), ys[:, 1], 1e-4), rtol=1e-4)


# ------------------------------------------------------------------------------------------ shared spectra

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), f=st.integers(1, 9), offset=st.sampled_from([0.0, 3.0, -50.0]),
       axis=st.booleans())
def test_shared_eigen_equals_two_eigendecompositions(seed, f, offset, axis):
    """One tridiagonal reduction of the centred scatter S gives the spectra and eigenvector projections of S and
    of the raw Gram G = S + n m m^T (mean on an axis, zero or anywhere)."""
    from tasklens.metrics.shared_eigen import SharedEigen

    rng = np.random.default_rng(seed)
    n = 3 * f + 5
    x = rng.normal(size=(n, f)) * rng.uniform(0.5, 3.0, size=f)
    if axis:  # the mean exactly along +-e1 (the reflection is then I or maps m to -m)
        x -= x.mean(axis=0)
        x[:, 0] += offset
    else:
        x += offset * rng.normal(size=f)
    m = x.mean(axis=0)
    s = (x - m).T @ (x - m)
    spectra = SharedEigen(s, n, m)
    b = rng.normal(size=(f, 3))
    for got_values, mat, raw in ((spectra.centred_values, s, False), (spectra.raw_values, x.T @ x, True)):
        values, vectors = np.linalg.eigh(mat)
        scale = max(abs(values).max(), 1e-300)
        np.testing.assert_allclose(got_values, values, rtol=0, atol=1e-12 * scale)
        proj = spectra.project(b, raw=raw)
        assert proj.shape == (f, 3)
        # eigenvectors are defined up to sign (distinct eigenvalues here): compare |V^T b| and V proj = b
        np.testing.assert_allclose(np.abs(proj), np.abs(vectors.T @ b), rtol=1e-7, atol=1e-9 * abs(b).max())
        np.testing.assert_allclose(np.linalg.norm(proj, axis=0), np.linalg.norm(b, axis=0), rtol=1e-12)
