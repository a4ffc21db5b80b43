"""Evaluation protocol of Task2Box (paper §4.1): hierarchy F1 with a validation-tuned threshold,
and Spearman's rho for graded relations.

Hierarchy rule: ``i ⊂ j`` is predicted when ``S[i, j] > S[j, i]`` (the relation is antisymmetric) and
``S[i, j] > t``; ``t`` maximises F1 on the validation pairs, and F1 / precision / recall are reported
on the test pairs. A pair is a true positive when ``relations[i, j] > 0.5``.
"""

from __future__ import annotations

import numpy as np

from .._dispatch import to_host
from .._validation import check_array
from .._validation import check_devices

__all__ = ["evaluate_hierarchy", "select_threshold", "f1_score_at", "spearman", "validation_f1", "transfer_f1"]


def _mask(m, n: int, name: str) -> np.ndarray:
    """A boolean (n, n) mask from a bool or 0/1 array or tensor (any device)."""
    if m is None:
        raise TypeError(f"{name}: expected a boolean ({n}, {n}) mask, got None")
    m = np.asarray(to_host(m))
    if m.shape != (n, n):
        raise ValueError(f"{name}: expected a boolean mask of shape ({n}, {n}), got shape {m.shape}, dtype {m.dtype}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"{name}: expected a boolean mask, got non-0/1 values (dtype {m.dtype})")
        m = m.astype(bool)
    return m


def _eligible_scores(S: np.ndarray, antisymmetric: bool) -> np.ndarray:
    """Scores with pairs that lose the antisymmetry test (S[i,j] <= S[j,i]) set to -inf."""
    if not antisymmetric:
        return S
    out = S.copy()
    if S.shape[0] == S.shape[1]:
        out[S <= S.T] = -np.inf
    return out


def select_threshold(scores, labels) -> float:
    """Threshold ``t`` maximising F1 of the prediction ``score > t``.

    Parameters
    ----------
    scores : (P,) float (``-inf`` = never predicted positive); labels : (P,) bool.

    Returns
    -------
    float — the midpoint between the lowest score kept and the next lower score (ties kept together),
    so that ``scores > t`` reproduces the best cut; ``inf`` when there is no positive label or no
    finite score. O(P log P).

    Examples
    --------
    >>> select_threshold(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0], bool))
    0.55
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    fin = np.isfinite(s)
    if not y.any() or not fin.any():
        return float("inf")
    s_f, y_f = s[fin], y[fin]
    order = np.argsort(-s_f, kind="stable")
    s_sorted, y_sorted = s_f[order], y_f[order]
    tp = np.cumsum(y_sorted)
    # only cut where the next score differs (ties are predicted together)
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    k = np.nonzero(last)[0]
    f1 = 2 * tp[k] / (k + 1 + y.sum())
    best = k[int(np.argmax(f1))]
    nxt = s_sorted[best + 1] if best + 1 < s_sorted.size else -np.inf
    if not np.isfinite(nxt):
        return float(s_sorted[best] - 1.0) if np.isfinite(s_sorted[best]) else float("-inf")
    return float(0.5 * (s_sorted[best] + nxt))


def f1_score_at(scores, labels, threshold: float) -> dict:
    """F1, precision, recall of ``score > threshold`` (0 when undefined)."""
    pred = np.asarray(scores, dtype=np.float64).ravel() > threshold
    y = np.asarray(labels, dtype=bool).ravel()
    tp = float(np.sum(pred & y))
    p = tp / float(pred.sum()) if pred.sum() else 0.0
    r = tp / float(y.sum()) if y.sum() else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"f1": float(f1), "precision": float(p), "recall": float(r)}


def evaluate_hierarchy(relations, S, val_mask, test_mask, *, antisymmetric: bool = True) -> dict:
    """Hierarchy F1 on test pairs with the threshold chosen on validation pairs (paper §4.1.1).

    Parameters
    ----------
    relations : (N, N) array in [0, 1]; ``relations[i, j] > 0.5`` means ``i ⊂ j``.
    S : (N, N) score matrix (higher = more likely ``i ⊂ j``), e.g. ``Task2Box.containment(X)``
        (Eq. 5) or a baseline's scores; numpy or torch.
    val_mask, test_mask : (N, N) boolean masks of the validation and test pairs.
    antisymmetric : require ``S[i, j] > S[j, i]`` as well (the paper's rule for boxes).

    Returns
    -------
    dict with ``f1``, ``precision``, ``recall`` (test pairs), ``threshold`` and ``val_f1``.

    Examples
    --------
    >>> R = np.array([[0, 1.], [0, 0]]); S = np.array([[0, .9], [.2, 0]])
    >>> m = ~np.eye(2, dtype=bool)
    >>> evaluate_hierarchy(R, S, m, m)["f1"]
    1.0
    """
    check_devices(relations=relations, S=S)
    R = np.asarray(to_host(check_array(relations, "relations", ndim=2)), dtype=np.float64)
    n = R.shape[0]
    if R.shape != (n, n):
        raise ValueError(f"relations: expected a square (N, N) matrix, got shape {R.shape}")
    S = check_array(S, "S", shape=(n, n), finite=False)
    S = np.asarray(to_host(S), dtype=np.float64)
    if np.isnan(S).any():
        raise ValueError(f"S: contains NaN values (shape {S.shape}); scores must be numbers or +-inf")
    vm, tm = _mask(val_mask, n, "val_mask"), _mask(test_mask, n, "test_mask")
    E = _eligible_scores(S, antisymmetric)
    Y = R > 0.5
    t = select_threshold(E[vm], Y[vm])
    out = f1_score_at(E[tm], Y[tm], t)
    out["threshold"] = t
    out["val_f1"] = f1_score_at(E[vm], Y[vm], t)["f1"]  # python floats throughout
    return out


def validation_f1(S: np.ndarray, R: np.ndarray, mask: np.ndarray, antisymmetric: bool = True) -> float:
    """F1 on the pairs of ``mask`` at the threshold that maximises it there (early stopping of the trained
    models; the hierarchy rule of :func:`evaluate_hierarchy`)."""
    return transfer_f1(S, R, mask, mask, antisymmetric)


def transfer_f1(S: np.ndarray, R: np.ndarray, threshold_mask: np.ndarray, score_mask: np.ndarray,
                antisymmetric: bool = True) -> float:
    """F1 on the pairs of ``score_mask`` at the threshold that maximises F1 on ``threshold_mask`` (the novel
    protocol of §4: threshold from existing pairs, F1 on pairs with a held-out dataset)."""
    E = _eligible_scores(S, antisymmetric)
    t = select_threshold(E[threshold_mask], R[threshold_mask] > 0.5)
    y = R[score_mask] > 0.5
    pred = E[score_mask] > t
    den = pred.sum() + y.sum()
    return float(2 * (pred & y).sum() / den) if den else 0.0


def spearman(relations, S, mask) -> float:
    """Spearman's rho between true and predicted relation values on the masked pairs (§4.1.2).

    The masked entries of ``relations`` and ``S`` go to :func:`tasklens.metrics.ranking.spearman` (average
    ranks for ties); NaN when either is constant on the mask (rho is undefined).

    Examples
    --------
    >>> R = np.array([[0, .9, .1], [.2, 0, .5], [.3, .4, 0]]); S = R ** 2
    >>> spearman(R, S, ~np.eye(3, dtype=bool))
    1.0
    """
    from ..metrics.ranking import spearman as rank_correlation

    check_devices(relations=relations, S=S)
    R = to_host(check_array(relations, "relations", ndim=2))
    n = R.shape[0]
    S = to_host(check_array(S, "S", shape=(n, n)))
    m = _mask(mask, n, "mask")
    return rank_correlation(R[m], S[m])
