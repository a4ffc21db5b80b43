"""Graded task affinities (tasklens.metrics.affinity) used by the model-zoo benchmark (issue 13)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasklens.metrics.affinity import ahp_affinity, normalized_gain, win_rates


def _win_rates_loop(losses):
    """Independent reference: Taskonomy's W[i, j] by explicit loops over items (ties count 1/2)."""
    k, n = losses.shape
    w = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            s = 0.0
            for t in range(n):
                if losses[i, t] < losses[j, t]:
                    s += 1.0
                elif losses[i, t] == losses[j, t]:
                    s += 0.5
            w[i, j] = s / n
    return w


def _ahp_power(losses, clip=1e-3, iters=5000):
    """Independent reference: principal eigenvector of W / W^T by power iteration (float64)."""
    w = np.clip(_win_rates_loop(losses), clip, 1 - clip)
    a = w / w.T
    v = np.ones(len(a)) / len(a)
    for _ in range(iters):
        v = a @ v
        v /= v.sum()
    return v


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 5), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_win_rates_match_loop_reference(k, n, seed):
    rng = np.random.default_rng(seed)
    losses = rng.integers(0, 4, size=(k, n)).astype(np.float64)  # small integers: many ties
    w = win_rates(losses)
    np.testing.assert_allclose(w, _win_rates_loop(losses), rtol=0, atol=1e-15)
    np.testing.assert_allclose(w + w.T, np.ones((k, k)), atol=1e-15)
    np.testing.assert_allclose(np.diag(w), 0.5)


def test_ahp_hand_computed_two_competitors():
    # competitor 0 wins 3 of 4 items: W[0, 1] = 3/4, W' = [[1, 3], [1/3, 1]], eigenvector (3/4, 1/4)
    v = ahp_affinity([[0.1, 0.1, 0.1, 0.5], [0.2, 0.2, 0.2, 0.2]])
    np.testing.assert_allclose(v, [0.75, 0.25], rtol=1e-12)


def test_ahp_clips_total_wins():
    v = ahp_affinity([[0.0, 0.0], [1.0, 1.0]], clip=0.01)  # W[0, 1] = 1 -> 0.99
    np.testing.assert_allclose(v, [0.99, 0.01], rtol=1e-12)


def test_ahp_three_competitors_hand_case():
    # W by hand: a < b on items 0, 1; a < c on items 0, 1; b < c on items 0, 2 -> every W[i, j] (i before j) = 2/3
    losses = np.array([[0.0, 0.0, 3.0], [1.0, 2.0, 0.0], [2.0, 1.0, 1.0]])
    np.testing.assert_allclose(win_rates(losses), [[0.5, 2 / 3, 2 / 3], [1 / 3, 0.5, 2 / 3], [1 / 3, 1 / 3, 0.5]])
    # W' = [[1, 2, 2], [1/2, 1, 2], [1/2, 1/2, 1]]: its Perron vector satisfies (W' v)_i = lambda v_i
    v = ahp_affinity(losses)
    a = np.array([[1, 2, 2], [0.5, 1, 2], [0.5, 0.5, 1]])
    lam = (a @ v) / v
    np.testing.assert_allclose(lam, lam[0], rtol=1e-10)
    np.testing.assert_allclose(v, _ahp_power(losses), rtol=1e-9)
    assert v[0] > v[1] > v[2] and abs(v.sum() - 1) < 1e-12


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 6), st.integers(3, 30), st.integers(0, 2**31 - 1))
def test_ahp_matches_power_iteration(k, n, seed):
    losses = np.random.default_rng(seed).random((k, n))
    np.testing.assert_allclose(ahp_affinity(losses), _ahp_power(losses), rtol=1e-7)


def test_diverged_run_loses_every_comparison():
    losses = np.array([[0.3, 0.2, 0.9], [np.inf, np.inf, np.inf], [0.5, 0.1, 0.4]])
    w = win_rates(losses)
    assert w[1, 0] == 0 and w[1, 2] == 0
    assert ahp_affinity(losses).argmin() == 1


def test_normalized_gain_hand_case_and_no_gain():
    np.testing.assert_allclose(normalized_gain([0.5, 0.7, 0.9], 0.6), [0.0, 1 / 3, 1.0], rtol=1e-12)
    np.testing.assert_array_equal(normalized_gain([0.5, 0.55], 0.6), [0.0, 0.0])


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    losses = torch.tensor([[0.1, 0.1, 0.1, 0.5], [0.2, 0.2, 0.2, 0.2]], dtype=torch.float64)
    v = ahp_affinity(losses)
    assert isinstance(v, torch.Tensor)
    np.testing.assert_allclose(v.numpy(), [0.75, 0.25], rtol=1e-12)
    g = normalized_gain(torch.tensor([0.5, 0.7, 0.9], dtype=torch.float64), 0.6)
    assert isinstance(g, torch.Tensor)
    assert isinstance(win_rates(losses), torch.Tensor)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="losses"):
        win_rates(np.array([[0.1, np.nan], [0.2, 0.3]]))
    with pytest.raises(ValueError, match="losses"):
        ahp_affinity(np.array([[0.1, 0.2]]))  # one competitor
    with pytest.raises(ValueError, match="losses"):
        win_rates(np.zeros(3))
    with pytest.raises(ValueError, match="clip"):
        ahp_affinity(np.ones((2, 2)), clip=0.5)
    with pytest.raises(ValueError, match="scores"):
        normalized_gain(np.array([np.nan, 1.0]), 0.0)
    with pytest.raises(ValueError, match="baseline"):
        normalized_gain([0.1, 0.2], float("nan"))
