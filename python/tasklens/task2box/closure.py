"""Relations implied by the training pairs (transitivity of containment), for Task2Box's ``closure`` option.

Containment is transitive: from training pairs ``i ⊂ k`` and ``k ⊂ j`` follows ``i ⊂ j``; from ``i ⊂ k``,
``i ⊄ j`` and ``j' ⊂ j`` follows ``k ⊄ j'`` (otherwise ``i ⊂ k ⊂ j' ⊂ j``). Box containment (Eq. 5) has the same
property, so a box model that fits the training pairs should also fit the pairs they imply; :func:`closure_targets`
makes them explicit training targets. Only the labels of ``train_mask`` are read.
"""

from __future__ import annotations

import numpy as np

__all__ = ["closure_targets", "implied_relations"]


def implied_relations(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P, Q)``, boolean (N, N): every pair implied positive / negative by the known pairs.

    ``P`` is the transitive closure of ``positive`` (``P[i, j]``: a chain ``i ⊂ ... ⊂ j`` of known positives);
    ``Q[k, m]`` holds when some known negative ``i ⊄ j`` has ``i = k`` or ``i ⊂ k`` in ``P``, and ``j = m`` or
    ``m ⊂ j`` in ``P``, i.e. ``Q = A^T N A^T`` with ``A = I + P``. The diagonal is never set. Pairs implied both
    ways (inconsistent inputs) are left out of both.
    """
    pos = np.asarray(positive, dtype=bool)
    neg = np.asarray(negative, dtype=bool)
    n = pos.shape[0]
    if pos.shape != (n, n) or neg.shape != (n, n):
        raise ValueError(f"positive / negative: expected two square (N, N) masks, got {pos.shape} and {neg.shape}")
    P = pos.copy()
    np.fill_diagonal(P, False)
    while True:  # repeated squaring: chains of length up to 2^t after t rounds
        Pf = P.astype(np.float64)
        nxt = P | (Pf @ Pf > 0)
        np.fill_diagonal(nxt, False)
        if (nxt == P).all():
            break
        P = nxt
    A = P.astype(np.float64) + np.eye(n)
    Q = (A.T @ neg.astype(np.float64) @ A.T) > 0
    np.fill_diagonal(Q, False)
    both = P & Q
    return P & ~both, Q & ~both


def closure_targets(R: np.ndarray, train_mask: np.ndarray, keep_out: np.ndarray | None = None,
                    negatives: bool = True):
    """``(mask, targets)``: ``train_mask`` extended by the pairs its labels imply (:func:`implied_relations`),
    and a target matrix equal to ``R`` on ``train_mask`` and to the implied label (1 or 0) on the added pairs.

    ``R[i, j] > 0.5`` means ``i ⊂ j``; only ``R[train_mask]`` is read. Pairs in ``keep_out`` (e.g. the validation
    pairs, so that early stopping and thresholds stay on pairs never trained) and pairs of datasets without a
    training pair are never added; neither are pairs whose implied labels conflict. ``negatives=False`` adds the
    implied positives only.
    """
    R = np.asarray(R, dtype=np.float64)
    tr = np.asarray(train_mask, dtype=bool)
    pos, neg = tr & (R > 0.5), tr & ~(R > 0.5)
    P, Q = implied_relations(pos, neg)
    seen = tr.any(0) | tr.any(1)
    add = (P | Q if negatives else P) & ~tr & seen[:, None] & seen[None, :]
    if keep_out is not None:
        add &= ~np.asarray(keep_out, dtype=bool)
    targets = np.where(tr, R, 0.0)
    targets[add & P] = 1.0
    return tr | add, targets
