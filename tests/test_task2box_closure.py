"""Task2Box issue 14: training targets implied by transitivity (``closure=``, ``tasklens.task2box.closure``).
References are brute-force chain searches over the known pairs (not the matrix formula of the module); leak tests
corrupt every label outside the training pairs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasklens.task2box import split_pairs
from tasklens.task2box.closure import closure_targets, implied_relations

from _task2box_toy import toy_split, tree


def brute_force(pos, neg):
    """Positive: a chain of known positives i ⊂ ... ⊂ j (breadth-first). Negative (k, m): a known negative i ⊄ j
    with (i == k or i ⊂* k) and (j == m or m ⊂* j)."""
    n = pos.shape[0]
    reach = np.zeros((n, n), dtype=bool)
    for s in range(n):
        todo, seen = [s], set()
        while todo:
            a = todo.pop()
            for b in np.flatnonzero(pos[a]):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        for b in seen:
            if b != s:
                reach[s, b] = True
    up = reach | np.eye(n, dtype=bool)
    negs = np.zeros((n, n), dtype=bool)
    for i, j in zip(*np.nonzero(neg)):
        for k, m in itertools.product(np.flatnonzero(up[i]), np.flatnonzero(up[:, j])):
            if k != m:
                negs[k, m] = True
    both = reach & negs
    return reach & ~both, negs & ~both


def dense_formula(pos, neg):
    """The docstring's matrix formula in dense float64: the chains of known positives grown one step at a time
    (``reach <- reach + reach @ pos``) until nothing changes, diagonal cleared (P); ``A = I + P``;
    ``Q = A^T N A^T > 0`` off the diagonal; pairs in both dropped from both."""
    n = pos.shape[0]
    step = pos.astype(np.float64)
    reach = step.copy()
    while True:
        grown = ((reach + reach @ step) > 0).astype(np.float64)
        if np.array_equal(grown, reach):
            break
        reach = grown
    off = ~np.eye(n, dtype=bool)
    P = (reach > 0) & off
    A = np.eye(n) + P
    Q = ((A.T @ neg.astype(np.float64) @ A.T) > 0) & off
    both = P & Q
    return P & ~both, Q & ~both


def random_graph(rng, n, p_pos, p_neg, cycles):
    """Known positives on a random DAG (edges from lower to higher index, relabelled at random), plus
    ``cycles`` mutual pairs i ⊂ j, j ⊂ i; known negatives elsewhere."""
    pos = np.triu(rng.random((n, n)) < p_pos, 1)
    for _ in range(cycles):
        i = rng.integers(n)
        j = (i + 1 + rng.integers(n - 1)) % n
        pos[i, j] = pos[j, i] = True
    perm = rng.permutation(n)
    pos = pos[np.ix_(perm, perm)]
    neg = (rng.random((n, n)) < p_neg) & ~pos
    return pos, neg


@pytest.mark.parametrize("block", [None, 1, 24])
@pytest.mark.parametrize("n, cycles", [(1, 0), (2, 1), (7, 0), (13, 2), (40, 0), (40, 3), (67, 5)])
def test_implied_relations_equal_the_dense_float64_formula(monkeypatch, n, cycles, block):
    import tasklens.task2box.closure as closure_module

    if block is not None:  # tiny blocks: every row of the packed products in its own block, or a few per block
        monkeypatch.setattr(closure_module, "_BLOCK_BYTES", block)
    rng = np.random.default_rng(n * 100 + cycles)
    for p_pos, p_neg in [(0.0, 0.0), (0.0, 0.3), (0.3, 0.0), (2.0 / max(n, 2), 0.3), (0.2, 0.5)]:
        pos, neg = random_graph(rng, n, p_pos, p_neg, cycles if p_pos else 0)
        P, Q = implied_relations(pos, neg)
        rP, rQ = dense_formula(pos, neg)
        assert P.dtype == Q.dtype == np.bool_ and P.shape == Q.shape == (n, n)
        assert np.array_equal(P, rP) and np.array_equal(Q, rQ)
    if cycles:  # mutual pairs, no negatives: both directions implied, never the diagonal
        pos, _ = random_graph(rng, n, 0.0, 0.0, cycles)
        P, Q = implied_relations(pos, np.zeros_like(pos))
        assert (P & P.T).sum() >= 2 and not P.diagonal().any() and not Q.any()


def test_many_parallel_chains_and_empty_inputs():
    # 300 chains 0 ⊂ k ⊂ 301, and 302 ⊄ k for k = 1..301: a counting product in 8 bits would wrap (300 -> 44,
    # 256 -> 0); 302 ⊄ 0 follows 301 ways
    n = 303
    pos = np.zeros((n, n), dtype=bool)
    pos[0, 1:301] = pos[1:301, 301] = True
    neg = np.zeros((n, n), dtype=bool)
    neg[302, 1:302] = True
    P, Q = implied_relations(pos, neg)
    rP, rQ = dense_formula(pos, neg)
    assert P[0, 301] and np.array_equal(P, rP) and np.array_equal(Q, rQ)
    assert {tuple(q) for q in np.argwhere(Q)} == {(302, k) for k in range(302)}
    for m in (0, 1):
        empty = np.zeros((m, m), dtype=bool)
        P, Q = implied_relations(empty, empty)
        assert P.shape == Q.shape == (m, m) and not P.any() and not Q.any()
    P, Q = implied_relations(np.ones((1, 1), dtype=bool), np.ones((1, 1), dtype=bool))  # diagonal ignored
    assert not P.any() and not Q.any()
    with pytest.raises(ValueError, match="positive / negative"):
        implied_relations(np.zeros((3, 2), dtype=bool), np.zeros((3, 2), dtype=bool))


def test_chain_and_negative_propagation_by_hand():
    # 0 ⊂ 1 ⊂ 2 ⊂ 3 known; 4 ⊄ 3 known; 0 ⊄ 5 known
    n = 6
    pos = np.zeros((n, n), dtype=bool)
    neg = np.zeros((n, n), dtype=bool)
    pos[0, 1] = pos[1, 2] = pos[2, 3] = True
    neg[4, 3] = neg[0, 5] = True
    P, Q = implied_relations(pos, neg)
    assert {tuple(p) for p in np.argwhere(P)} == {(0, 1), (1, 2), (2, 3), (0, 2), (1, 3), (0, 3)}
    # 4 ⊄ 3 and 0, 1, 2 ⊂ 3  ->  4 ⊄ 0, 1, 2;  0 ⊄ 5 and 0 ⊂ 1, 2, 3  ->  1, 2, 3 ⊄ 5
    assert {tuple(q) for q in np.argwhere(Q)} == {(4, 3), (4, 0), (4, 1), (4, 2), (0, 5), (1, 5), (2, 5),
                                                 (3, 5)}


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(0, 10 ** 6), st.floats(0.0, 0.4), st.floats(0.0, 0.4))
def test_implied_relations_match_a_brute_force_chain_search(n, seed, p_pos, p_neg):
    rng = np.random.default_rng(seed)
    pos = rng.random((n, n)) < p_pos
    neg = (rng.random((n, n)) < p_neg) & ~pos
    np.fill_diagonal(pos, False)
    np.fill_diagonal(neg, False)
    P, Q = implied_relations(pos, neg)
    rP, rQ = brute_force(pos, neg)
    assert np.array_equal(P, rP) and np.array_equal(Q, rQ)


def test_implied_labels_of_a_true_hierarchy_are_all_correct_and_many():
    members, R = tree()
    n = len(members)
    tr, va, te = split_pairs(n, seed=0)
    mask, T = closure_targets(R, tr, keep_out=va)
    added = mask & ~tr
    assert added.any() and not (added & va).any() and (mask & tr).sum() == tr.sum()
    assert np.array_equal(T[added] > 0.5, R[added] > 0.5)  # deduction never contradicts the true relations
    assert np.array_equal(T[tr], R[tr])
    assert (added & te).sum() > 0.3 * te.sum()  # most test pairs of a tree follow from 80 % of its pairs


def test_only_training_labels_are_read_and_unseen_datasets_get_nothing():
    _, R, _, _, _, _, tr, va, _, nm = toy_split()
    a = closure_targets(R, tr, keep_out=va)
    R2 = R.copy()
    R2[~tr] = 1 - R2[~tr]  # every label outside the training pairs flipped
    b = closure_targets(R2, tr, keep_out=va)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not (a[0] & nm).any()


def test_inconsistent_labels_are_left_out():
    pos = np.zeros((3, 3), dtype=bool)
    neg = np.zeros((3, 3), dtype=bool)
    pos[0, 1] = pos[1, 2] = True
    neg[0, 2] = True  # contradicts 0 ⊂ 1 ⊂ 2
    P, Q = implied_relations(pos, neg)
    assert not P[0, 2] and not Q[0, 2]
    with pytest.raises(ValueError, match="positive / negative"):
        implied_relations(pos, neg[:2])


def test_negatives_false_adds_implied_positives_only():
    # chain 0 ⊂ 1 ⊂ 2 and 3 ⊄ 2 known; 0 ⊂ 2 and 3 ⊄ 0, 1 implied
    R = np.zeros((4, 4))
    R[0, 1] = R[1, 2] = R[0, 2] = 1
    tr = np.zeros((4, 4), dtype=bool)
    tr[0, 1] = tr[1, 2] = tr[3, 2] = True
    full, T_full = closure_targets(R, tr)
    pos_only, T = closure_targets(R, tr, negatives=False)
    assert {tuple(p) for p in np.argwhere(pos_only & ~tr)} == {(0, 2)} and T[0, 2] == 1
    assert {tuple(p) for p in np.argwhere(full & ~tr)} == {(0, 2), (3, 0), (3, 1)}
    assert T_full[3, 0] == 0 and T_full[3, 1] == 0
    keep = np.zeros((4, 4), dtype=bool)
    keep[3, 1] = True
    assert not closure_targets(R, tr, keep_out=keep)[0][3, 1]


# --------------------------------------------------------------------------- Task2Box(closure=True)
torch = pytest.importorskip("torch")
from tasklens.task2box import Task2Box  # noqa: E402


def small(**kw):
    return Task2Box(**{"box_dim": 2, "seed": 0, "epochs": 8, "hidden": (8, 8, 8), "eval_every": 2,
                       "progress": False, "neighbours": False, **kw})


def test_closure_fit_reads_only_training_labels_and_is_deterministic():
    _, R, _, _, _, _, tr, va, te, nm = toy_split()
    X = np.random.default_rng(0).normal(size=(len(R), 5))
    a = small(closure=True).fit(X, R, tr, va)
    R2 = R.copy()
    R2[te | nm] = 1 - R2[te | nm]
    b = small(closure=True).fit(X, R2, tr, va)
    assert np.array_equal(a.containment(X), b.containment(X))
    off = small(closure=False).fit(X, R, tr, va)
    assert not np.array_equal(a.containment(X), off.containment(X))  # the implied pairs do train


def test_closure_trains_the_implied_pairs_like_given_ones(monkeypatch):
    """Fitting with ``closure=True`` equals fitting without it on ``train_mask`` extended by the implied pairs
    (targets = their implied labels), except that L_D keeps the given positive pairs."""
    import tasklens.task2box.model as model_module

    members, R = tree()
    X = np.random.default_rng(1).normal(size=(len(members), 5))
    tr, va, _ = split_pairs(len(members), seed=0)
    mask, T = closure_targets(R, tr, keep_out=va)
    a = small(closure=True, lam=0.0).fit(X, R, tr, va)
    R_ext = np.where(mask, T, R)
    b = small(lam=0.0, closure=False).fit(X, R_ext, mask, va)
    assert np.allclose(a.containment(X), b.containment(X), atol=1e-6)
    with pytest.raises(TypeError, match="closure"):
        Task2Box(closure="yes")
