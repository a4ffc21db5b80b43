"""Comparing two rankings of the same items (e.g. predicted vs. measured transferability of sources).

Every function takes two score vectors of equal length, higher = better (pass negated values for
distances). Ties are handled explicitly: average ranks (Spearman, as ``scipy.stats.spearmanr``), tau-b (Kendall,
as ``scipy.stats.kendalltau``), tie-averaged gains (DCG), index order (top-k). All are O(n log n) and
deterministic. These are the library's only Spearman and Kendall implementations: other modules (domain
analysis, Task2Box evaluation) call them.

Output rule: a Python float for numpy (or list) input, a 0-d float64 tensor for torch input (on its device).
"""

from __future__ import annotations

import numpy as np

from .._dispatch import Backend, backend_of, to_host
from .._validation import check_array, check_choice, check_int, describe

__all__ = ["rankdata", "spearman", "kendall_tau", "dcg_score", "ndcg_score", "top_k_agreement"]


def _pair(a, b, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray, Backend]:
    """Two validated equal-length score vectors as float64 numpy arrays, and their backend."""
    a = check_array(a, name_a, ndim=1)
    b = check_array(b, name_b, ndim=1)
    backend = backend_of(**{name_a: a, name_b: b})
    if a.shape != b.shape:
        raise ValueError(f"{name_b}: expected the same length as {name_a} ({a.shape[0]}), got {describe(b)}")
    if a.shape[0] < 2:
        raise ValueError(f"{name_a}: need at least 2 items to compare rankings, got {describe(a)}")
    return to_host(a).astype(np.float64, copy=False), to_host(b).astype(np.float64, copy=False), backend


def rankdata(scores):
    """Ranks 1..n of a 1-D score vector (1 = smallest), ties sharing their average rank (float64; the
    ``"average"`` method of ``scipy.stats.rankdata``). numpy in, numpy out; torch in, torch out."""
    x = check_array(scores, "scores", ndim=1)
    return backend_of(scores=x).out(_ranks(to_host(x).astype(np.float64, copy=False)))


def _ranks(s: np.ndarray) -> np.ndarray:
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.shape[0]]
    avg = (starts + ends + 1) / 2.0  # mean of positions start+1 .. end
    ranks = np.empty(s.shape[0])
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(a, b) -> float:
    """Spearman rank correlation: Pearson correlation of the ranks of ``a`` and ``b``.

    Ties: tied values share their average rank, as in ``scipy.stats.spearmanr`` (which this matches to
    rounding). Returns NaN when either vector is constant (the correlation is undefined). A Python float
    (a 0-d float64 tensor for torch input).

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 40, 30])
    0.8
    """
    a, b, backend = _pair(a, b, "a", "b")
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra @ ra) * (rb @ rb))
    return backend.out(float(ra @ rb / denom) if denom > 0 else float("nan"))


def _tie_pairs(sorted_values: np.ndarray) -> int:
    """Number of pairs of equal values in a sorted vector."""
    if sorted_values.size == 0:
        return 0
    runs = np.diff(np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1], True]))
    return int((runs * (runs - 1) // 2).sum())


def _count_inversions(r: np.ndarray) -> int:
    """Pairs i < j with r[i] > r[j] for non-negative integer codes r, by bits: O(n log n log max)."""
    n_bits = int(r.max()).bit_length() if r.size else 0
    total = 0
    for bit in range(n_bits - 1, -1, -1):
        group = r >> (bit + 1)  # pairs that agree above this bit are decided by it
        ones = (r >> bit) & 1
        order = np.argsort(group, kind="stable")  # keeps the original order within each group
        g, o = group[order], ones[order]
        cum = np.cumsum(o)
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        before = cum - o - np.repeat(np.r_[0, cum[starts[1:] - 1]], np.diff(np.r_[starts, g.size]))
        total += int(before[o == 0].sum())
    return total


def kendall_tau(a, b) -> float:
    """Kendall rank correlation tau-b between score vectors ``a`` and ``b`` (ties handled as in tau-b).

    ``tau_b = (n_c - n_d) / sqrt((n_0 - n_a)(n_0 - n_b))`` with n_0 = n(n-1)/2 pairs, n_a, n_b tied pairs in
    ``a`` and ``b``; a pair tied in both counts in n_a and n_b and in neither n_c nor n_d. This is the tau-b
    of ``scipy.stats.kendalltau`` (its default ``variant="b"``), which this matches to rounding. Computed in
    O(n log n) by counting discordant pairs as inversions (Knight's method). Returns NaN when either vector is
    constant. A Python float (a 0-d float64 tensor for torch input).

    Examples
    --------
    >>> kendall_tau([1, 2, 3, 4], [10, 20, 40, 30])
    0.6666666666666666
    """
    a, b, backend = _pair(a, b, "a", "b")
    n = a.shape[0]
    order = np.lexsort((b, a))  # by a, ties by b
    a_s, b_s = a[order], b[order]
    n0 = n * (n - 1) // 2
    ties_a = _tie_pairs(a_s)
    joint = _tie_pairs_joint(a_s, b_s)
    ties_b = _tie_pairs(np.sort(b))
    codes = np.unique(b_s, return_inverse=True)[1].astype(np.int64)
    discordant = _count_inversions(codes)
    concordant_minus = n0 - ties_a - ties_b + joint - 2 * discordant
    denom = np.sqrt(float(n0 - ties_a) * float(n0 - ties_b))
    return backend.out(float(concordant_minus / denom) if denom > 0 else float("nan"))


def _tie_pairs_joint(a_s: np.ndarray, b_s: np.ndarray) -> int:
    change = np.r_[True, (a_s[1:] != a_s[:-1]) | (b_s[1:] != b_s[:-1]), True]
    runs = np.diff(np.flatnonzero(change))
    return int((runs * (runs - 1) // 2).sum())


def _gains(relevance: np.ndarray, gains: str) -> np.ndarray:
    check_choice(gains, "gains", ("linear", "exponential"))
    return relevance if gains == "linear" else np.exp2(relevance) - 1.0


def _dcg(gain: np.ndarray, scores: np.ndarray, k: int) -> float:
    """DCG of items ranked by descending score; tied scores share the mean gain of their group."""
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gain[order]
    discount = 1.0 / np.log2(np.arange(2, s.size + 2))
    discount[k:] = 0.0
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group_gain = np.add.reduceat(g, starts) / np.diff(np.r_[starts, s.size])
    return float((group_gain * np.add.reduceat(discount, starts)).sum())


def _k(k, n: int) -> int:
    k = check_int(k, "k", min=1, allow_none=True)
    return n if k is None else min(k, n)


def dcg_score(relevance, scores, *, k: int | None = None, gains: str = "linear") -> float:
    """Discounted cumulative gain of ranking items by ``scores`` given their true ``relevance``.

    ``DCG@k = sum_{i<=k} gain(rel_(i)) / log2(i + 1)`` over items sorted by descending score, with
    gain = rel (``"linear"``) or 2^rel - 1 (``"exponential"``). Items with tied scores share the average gain
    of their tie group (so the result does not depend on how ties are ordered).
    """
    rel, sc, backend = _pair(relevance, scores, "relevance", "scores")
    return backend.out(_dcg(_gains(rel, gains), sc, _k(k, rel.size)))


def ndcg_score(relevance, scores, *, k: int | None = None, gains: str = "linear") -> float:
    """Normalised DCG: ``DCG@k(scores) / DCG@k(relevance)`` in [0, 1] for non-negative relevance (1 = ideal).

    Returns NaN when the ideal DCG is 0 (all relevances zero).

    Examples
    --------
    >>> round(ndcg_score([3, 2, 1, 0], [0.9, 0.8, 0.1, 0.3]), 6)
    0.985442
    """
    rel, sc, backend = _pair(relevance, scores, "relevance", "scores")
    gain = _gains(rel, gains)
    kk = _k(k, rel.size)
    ideal = _dcg(gain, rel, kk)
    return backend.out(_dcg(gain, sc, kk) / ideal if ideal != 0 else float("nan"))


def top_k_agreement(a, b, k: int) -> float:
    """Fraction of the k highest-scored items under ``a`` that are also among the k highest under ``b``.

    ``|top_k(a) & top_k(b)| / k``; ties at the cut are broken by item index (first item wins), so the result
    is deterministic. 1 means the two rankings select the same k items (e.g. the same best sources).
    """
    a, b, backend = _pair(a, b, "a", "b")
    kk = _k(k, a.size)
    top_a = np.argsort(-a, kind="stable")[:kk]
    top_b = np.argsort(-b, kind="stable")[:kk]
    return backend.out(float(np.intersect1d(top_a, top_b).size / kk))
