"""The toy hierarchy of the Task2Box tests: a small taxonomy of member sets, its relations, the members' mean
representations, and the seeded novel-dataset split (existing / novel datasets and their pair masks)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tasklens.task2box import novel_mask, split_novel, split_pairs


def tree():
    """Members of a small taxonomy: 2 roots, 3 middle nodes each, 2 leaves per middle node (members =
    item indices); returns (members list of sets, relations ``R[i, j] = members_i ⊊ members_j``)."""
    leaves, members = [], []
    item = 0
    roots = [set(), set()]
    mids = []
    for r in range(2):
        for m in range(3):
            mid = set()
            for _ in range(2):
                leaf = set(range(item, item + 4))
                item += 4
                leaves.append(leaf)
                mid |= leaf
            mids.append((mid, r))
            roots[r] |= mid
    members = roots + [m for m, _ in mids] + leaves
    n = len(members)
    R = np.array([[float(i != j and members[i] <= members[j]) for j in range(n)] for i in range(n)])
    return members, R


def reps(members, d=6, seed=0):
    """(X, items): every dataset's representation is the mean of its members' random item vectors."""
    items = np.random.default_rng(seed).normal(size=(max(max(m) for m in members) + 1, d))
    return np.stack([items[sorted(m)].mean(0) for m in members]), items


class Toy(NamedTuple):
    members: list
    R: np.ndarray
    X: np.ndarray
    items: np.ndarray
    existing: np.ndarray
    novel: np.ndarray
    tr: np.ndarray
    va: np.ndarray
    te: np.ndarray
    nm: np.ndarray


def toy_split(seed: int = 0) -> Toy:
    """The tree, its representations and the novel protocol's split with ``seed``: 20 % of the datasets novel
    (``split_novel``), the pairs among the existing ones split into train / val / test (``split_pairs``), and
    ``nm`` the pairs that involve a novel dataset (``novel_mask``)."""
    members, R = tree()
    X, items = reps(members)
    n = len(members)
    existing, novel = split_novel(n, fraction=0.2, seed=seed)
    tr, va, te = split_pairs(n, seed=seed, datasets=existing)
    return Toy(members, R, X, items, existing, novel, tr, va, te, novel_mask(n, existing, novel))
