"""Task2Box with graded relations (values strictly between 0 and 1, e.g. transfer affinities, paper §4.2): no
closure targets, and early stopping / the "auto" check score by Spearman's rho (§4.1.2) instead of F1."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from scipy.stats import spearmanr  # noqa: E402

from tasklens.task2box import Task2Box, split_pairs  # noqa: E402
from tasklens.task2box.evaluate import transfer_f1  # noqa: E402
from tasklens.task2box.model import held_out_score, is_graded  # noqa: E402


def graded_problem(n=14, seed=0):
    """X (n, 5) and an affinity R in [0, 1] that depends on X (so it can be learned), diagonal 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    R = 1 / (1 + np.exp(-(X @ rng.normal(size=(5, 5)) @ X.T) / 3))
    np.fill_diagonal(R, 0.0)
    return X, R


def small(**kw):
    return Task2Box(**{"box_dim": 2, "seed": 0, "epochs": 30, "hidden": (8, 8, 8), "eval_every": 5,
                       "progress": False, "neighbours": False, **kw})


def params(m):
    return torch.cat([p.detach().flatten() for p in m.net_.state_dict().values() if p.is_floating_point()])


def test_is_graded_reads_only_the_masked_pairs():
    R = np.eye(3)
    R[0, 1] = 0.4
    m = np.zeros((3, 3), dtype=bool)
    m[1, 0] = True
    assert not is_graded(R, m) and not is_graded(np.eye(3), ~m)
    m[0, 1] = True
    assert is_graded(R, m)


def test_graded_relations_get_no_closure_targets_and_true_is_refused():
    X, R = graded_problem()
    tr, va, _ = split_pairs(len(X), seed=0)
    auto, off = small().fit(X, R, tr, va), small(closure=False).fit(X, R, tr, va)
    assert auto.graded_ and torch.equal(params(auto), params(off))
    with pytest.raises(ValueError, match="closure=True"):
        small(closure=True).fit(X, R, tr, va)


def test_binary_relations_keep_the_closure():
    """0/1 containment of a random tree (B[i, j] = 1: j is an ancestor of i): "auto" trains like True."""
    X, _ = graded_problem()
    parent = [-1] + [int(p) for p in np.random.default_rng(5).integers(0, np.arange(1, len(X)))]
    B = np.zeros((len(X), len(X)))
    for i in range(len(X)):
        j = parent[i]
        while j >= 0:
            B[i, j], j = 1.0, parent[j]
    tr, va, _ = split_pairs(len(X), seed=0)
    auto, on, off = (small(closure=c).fit(X, B, tr, va) for c in ("auto", True, False))
    assert not auto.graded_
    assert torch.equal(params(auto), params(on)) and not torch.equal(params(auto), params(off))


def test_graded_early_stopping_scores_spearman_on_the_validation_pairs():
    X, R = graded_problem(seed=1)
    tr, va, _ = split_pairs(len(X), seed=1)
    m = small(ema=0.0, patience=100).fit(X, R, tr, va)
    best_epoch, best = m.history_["best_epoch"], m.history_["best_val"]
    assert dict(m.history_["val"])[best_epoch] == best
    # the kept parameters are the best epoch's: their rho on the val pairs (scipy, float64) is the best score
    rho = spearmanr(R[va], m.containment(X).astype(np.float64)[va]).statistic
    assert rho == pytest.approx(best, abs=1e-9)


def test_held_out_score_is_spearman_for_graded_and_f1_for_binary():
    X, R = graded_problem(seed=2)
    S = np.random.default_rng(3).random(R.shape)
    thr, score, _ = split_pairs(len(X), seed=2)
    assert held_out_score(S, R, thr, score, True) == pytest.approx(spearmanr(R[score], S[score]).statistic,
                                                                   abs=1e-12)
    assert held_out_score(np.ones_like(S), R, thr, score, True) == -1.0  # rho undefined: the worst score
    B = (R > 0.5).astype(float)
    assert held_out_score(S, B, thr, score, False) == transfer_f1(S, B, thr, score, True)


def test_graded_auto_check_scores_rho():
    X, R = graded_problem(n=20, seed=4)
    tr, va, _ = split_pairs(len(X), seed=4)
    m = small(neighbours="auto", neighbour_holdout=0.2).fit(X, R, tr, va)
    f = m.neighbour_f1_
    assert f is not None and all(-1.0 <= v <= 1.0 for v in f)
    assert m.neighbours_ == (f[1] > f[0])


def test_graded_relations_weigh_every_pair_the_same_under_a_class_balancing():
    X, R = graded_problem(seed=6)
    tr, va, _ = split_pairs(len(X), seed=6)
    one = small(pos_weight=1.0).fit(X, R, tr, va)
    for pw in ("sqrt", "balanced"):
        assert torch.equal(params(small(pos_weight=pw).fit(X, R, tr, va)), params(one))
    assert not torch.equal(params(small(pos_weight=3.0).fit(X, R, tr, va)), params(one))  # a number still counts
    B = np.where(R > 0.5, 1.0, 0.0)  # 0/1 relations: the balancing is on
    balanced, plain = (small(pos_weight=pw).fit(X, B, tr, va) for pw in ("sqrt", 1.0))
    assert not torch.equal(params(balanced), params(plain))


@pytest.mark.parametrize("cls", ["LinearBaseline", "MLPBaseline"])
def test_pair_classifiers_learn_graded_relations_as_soft_targets(cls):
    """Every affinity lies in [0.2, 0.4]: as 0/1 labels all pairs would be negatives (mean prediction -> 0); as soft
    BCE targets the fitted probabilities average the targets (the bias's score equation)."""
    import tasklens.task2box.baselines as bl

    X, R = graded_problem(seed=7)
    R = 0.2 + 0.2 * R
    np.fill_diagonal(R, 0.0)
    tr, va, _ = split_pairs(len(X), seed=7)
    m = getattr(bl, cls)(seed=0, epochs=300, lr=1e-2, progress=False).fit(X, R, tr)
    p = 1 / (1 + np.exp(-m.score(X)[tr]))
    assert m.graded_ and abs(p.mean() - R[tr].mean()) < 0.03
    with_val = getattr(bl, cls)(seed=0, epochs=40, eval_every=5, patience=100, progress=False).fit(X, R, tr, va)
    best = with_val.history_["best_val"]
    assert dict(with_val.history_["val"])[with_val.history_["best_epoch"]] == best
    assert spearmanr(R[va], with_val.score(X)[va]).statistic == pytest.approx(best, abs=1e-9)
