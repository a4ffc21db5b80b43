"""Model ranking: rank_models and the evaluation measures (weighted Kendall tau, Pearson, relative top-k)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from tasklens.metrics import (gbc, logme, pearson, rank_models, relative_top_k_accuracy, transrate,
                              weighted_kendall_tau)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=2, max_size=25))
def test_weighted_tau_equals_scipy_with_ties(pairs):
    x = np.array([p[0] for p in pairs], dtype=np.float64)
    y = np.array([p[1] for p in pairs], dtype=np.float64)
    want = scipy.stats.weightedtau(x, y).statistic
    got = weighted_kendall_tau(x, y)
    if np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-14)


def test_weighted_tau_continuous_and_top_weighting():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(size=40)
    assert weighted_kendall_tau(x, y) == pytest.approx(scipy.stats.weightedtau(x, y).statistic, rel=1e-12)
    acc = np.arange(10.0)
    # swapping the two best models costs more than swapping the two worst
    top_swap = acc.copy()
    top_swap[[8, 9]] = top_swap[[9, 8]]
    low_swap = acc.copy()
    low_swap[[0, 1]] = low_swap[[1, 0]]
    assert weighted_kendall_tau(top_swap, acc) < weighted_kendall_tau(low_swap, acc) < 1.0
    assert weighted_kendall_tau(acc, acc) == 1.0
    assert weighted_kendall_tau(-acc, acc) == -1.0


def test_pearson_equals_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y).statistic, rel=1e-12)
    assert np.isnan(pearson(np.ones(5), np.arange(5.0)))


def test_relative_top_k_accuracy():
    scores = [0.3, 0.9, 0.5, 0.1]
    acc = [91.0, 70.0, 80.0, 50.0]
    assert relative_top_k_accuracy(scores, acc) == pytest.approx(70.0 / 91.0)
    assert relative_top_k_accuracy(scores, acc, k=2) == pytest.approx(80.0 / 91.0)
    assert relative_top_k_accuracy(scores, acc, k=3) == 1.0
    # ties in the scores: the earlier model is taken first
    assert relative_top_k_accuracy([1.0, 1.0, 0.0], [60.0, 90.0, 30.0]) == pytest.approx(60.0 / 90.0)


def test_rank_models_orders_by_the_estimator():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 200)
    models = {
        "noise": rng.normal(size=(200, 6)),
        "strong": rng.normal(size=(200, 6)) + 3.0 * np.eye(3, 6)[y],
        "weak": rng.normal(size=(200, 6)) + 0.7 * np.eye(3, 6)[y],
        "narrow": rng.normal(size=(200, 2)),
    }
    for metric, fn in (("logme", logme), ("transrate", transrate), ("gbc", gbc)):
        ranked = rank_models(models, y, metric=metric)
        assert [name for name, _ in ranked][:2] == ["strong", "weak"], metric
        for name, score in ranked:
            assert isinstance(score, float) and score == fn(models[name], y)
    ranked = rank_models(models, y, metric=lambda f, lab: -float(f.shape[1]))
    assert [name for name, _ in ranked] == ["narrow", "noise", "strong", "weak"]  # ties keep the order
    assert [n for n, _ in rank_models(models, y, metric="hscore")][:2] == ["strong", "weak"]


def test_output_rule_numpy_and_torch():
    torch = pytest.importorskip("torch")
    a, b = np.array([0.1, 0.5, 0.3, 0.9]), np.array([60.0, 70.0, 80.0, 90.0])
    for fn in (weighted_kendall_tau, pearson, relative_top_k_accuracy):
        assert type(fn(a, b)) is float
        for dtype in (torch.float32, torch.float64):
            out = fn(torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype))
            assert isinstance(out, torch.Tensor) and out.ndim == 0 and out.dtype == torch.float64
            assert float(out) == pytest.approx(fn(a.astype(np.float32) if dtype == torch.float32 else a,
                                                  b.astype(np.float32) if dtype == torch.float32 else b))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="accuracies: expected the same length as scores"):
        weighted_kendall_tau([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="scores: contains NaN"):
        pearson([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="k: expected an int <= 3"):
        relative_top_k_accuracy([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], k=4)
    with pytest.raises(ValueError, match="metric: expected one of"):
        rank_models({"a": np.zeros((4, 2))}, [0, 1, 0, 1], metric="leep")
    with pytest.raises(TypeError, match="models: expected a non-empty mapping"):
        rank_models({}, [0, 1])
