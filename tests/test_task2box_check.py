"""Task2Box's internal check of novel-dataset placement (:func:`tasklens.task2box.model.neighbour_check`), the
held-out replay of the novel protocol that ``neighbours="auto"`` decides with."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tasklens.task2box import Task2Box, split_pairs  # noqa: E402
from tasklens.task2box.episodes import holdout_split  # noqa: E402
from tasklens.task2box.model import neighbour_check, seen_datasets  # noqa: E402


def nested_sets(seed=0):
    """(X, R): 21 datasets of a three-level tree over 40 random items (root, 4 children of 10 items, 8
    grandchildren of 5, 8 random 3-item subsets of the grandchildren); X = item means, R[i, j] = D_i ⊂ D_j."""
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(40, 6))
    sets = [np.arange(40)] + [np.arange(10 * c, 10 * c + 10) for c in range(4)]
    sets += [np.arange(5 * g, 5 * g + 5) for g in range(8)]
    sets += [np.sort(rng.choice(np.arange(5 * g, 5 * g + 5), size=3, replace=False)) for g in range(8)]
    X = np.stack([items[s].mean(0) for s in sets])
    R = np.array([[float(i != j and set(a) <= set(b)) for j, b in enumerate(sets)] for i, a in enumerate(sets)])
    return X, R


def small(**kw):
    return {**Task2Box(box_dim=2, seed=0, epochs=8, hidden=(8, 8, 8), eval_every=2, progress=False, **kw).config}


def test_blend_zero_scores_exactly_like_the_encoder_boxes():
    X, R = nested_sets()
    tr, va, _ = split_pairs(len(X), seed=0)
    f = neighbour_check(small(), X, R, tr, va, fraction=0.25, draw=3, blends=[0.0, 0.7, 1.0])
    assert len(f) == 4 and all(0.0 <= v <= 1.0 for v in f)
    assert f[1] == f[0]  # blend 0: every corner is the encoder's own


def test_auto_decides_with_the_check_of_its_own_seed_and_fraction():
    X, R = nested_sets(1)
    tr, va, _ = split_pairs(len(X), seed=1)
    m = Task2Box(box_dim=2, seed=2, epochs=8, hidden=(8, 8, 8), eval_every=2, progress=False,
                 neighbours="auto", neighbour_holdout=0.2).fit(X, R, tr, va)
    seen = seen_datasets(tr, va)
    sub = (X[seen], R[np.ix_(seen, seen)], tr[np.ix_(seen, seen)], va[np.ix_(seen, seen)])
    f = neighbour_check(m.config, *sub, fraction=0.2, draw=2)
    assert tuple(f) == m.neighbour_f1_
    assert m.neighbours_ == (f[1] > f[0])
    g = neighbour_check(m.config, *sub, fraction=0.2, draw=2, blends=[m.config["neighbour_blend"], 0.0])
    assert g[:2] == f and g[2] == g[0]


def test_a_draw_that_leaves_nothing_to_threshold_returns_none():
    """A star: dataset 0 is related to every other one and no other pair is labelled. Holding out 0 leaves
    the kept datasets without a pair, so no threshold can be chosen."""
    n = 6
    X = np.random.default_rng(0).normal(size=(n, 3))
    R = np.zeros((n, n))
    R[1:, 0] = 1
    tr = np.zeros((n, n), dtype=bool)
    tr[0, 1:] = tr[1:, 0] = True
    draw = next(d for d in range(100) if holdout_split(tr, 0.2, d)[0])
    assert neighbour_check(small(), X, R, tr, None, fraction=0.2, draw=draw) is None
