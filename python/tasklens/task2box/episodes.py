"""Episodes and augmentation for Task2Box training (issue 14): held-out datasets inside training and
mixture datasets in representation space.

- :func:`holdout_split` — choose datasets to hold out inside ``fit`` (the novel protocol of §4 replayed on
  the training datasets): their pairs leave training and score model selection.
- :func:`holdout_score_masks` — the masks used to score a held-out episode: the pairs whose threshold is
  chosen (pairs among kept datasets) and the pairs scored (held-out vs kept, both directions).
- :func:`mixture_targets` — targets of mixture datasets: for a training pair ``i ⊂ j`` a dataset ``m`` made
  of all of ``D_i`` and part of ``D_j`` satisfies ``D_i ⊂ m ⊂ D_j``, hence ``m ⊂ k`` for every known
  ``D_j ⊂ D_k`` and ``k ⊂ m`` for every known ``D_k ⊂ D_i``; and ``m ⊄ k`` whenever ``D_i ⊄ D_k`` is known,
  ``k ⊄ m`` whenever ``D_k ⊄ D_j`` is known. With mean representations (Eq. 1) the representation of ``m``
  is ``w e_i + (1 - w) e_j`` (the mean of a union, ``w`` = share of members from ``D_i``).

All functions are numpy-only; the random draws come from the caller (seeded).
"""

from __future__ import annotations

import numpy as np

__all__ = ["holdout_split", "holdout_score_masks", "mixture_targets"]


def holdout_split(train_mask: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean (N,) mask of the datasets held out inside training.

    Only datasets that appear in ``train_mask`` can be drawn (a dataset absent from training, e.g. a test
    novel dataset, is never touched); ``round(fraction * n_seen)`` of them, at least one, at most all but
    two, drawn with ``numpy.random.default_rng(seed)``.
    """
    tr = np.asarray(train_mask, dtype=bool)
    seen = np.flatnonzero(tr.any(0) | tr.any(1))
    k = int(round(fraction * seen.size))
    k = min(max(k, 1), max(seen.size - 2, 0))
    held = np.zeros(tr.shape[0], dtype=bool)
    if k:
        held[np.random.default_rng(seed).choice(seen, size=k, replace=False)] = True
    return held


def holdout_score_masks(held: np.ndarray, train_mask: np.ndarray, val_mask: np.ndarray | None):
    """``(fit_mask, threshold_mask, score_mask)`` of one held-out episode.

    ``fit_mask``: training pairs among kept datasets. ``threshold_mask``: validation pairs among kept
    datasets (training pairs among them when ``val_mask`` is None), where the threshold is chosen as for
    existing datasets. ``score_mask``: labelled pairs (training or validation) between a held-out and a kept
    dataset, in both directions, where F1 is measured at that threshold (the novel protocol).
    """
    held = np.asarray(held, dtype=bool)
    tr = np.asarray(train_mask, dtype=bool)
    kept_pair = ~held[:, None] & ~held[None, :]
    cross = held[:, None] ^ held[None, :]
    labelled = tr if val_mask is None else tr | val_mask
    fit = tr & kept_pair
    thr = fit if val_mask is None else (val_mask & kept_pair)
    return fit, thr, labelled & cross


def mixture_targets(R: np.ndarray, train_mask: np.ndarray, i: np.ndarray, j: np.ndarray):
    """Targets and known-ness of mixture datasets ``m_p`` of pairs ``D_i[p] ⊂ D_j[p]`` (module docstring).

    Returns
    -------
    (T_out, K_out, T_in, K_in) : (P, N) arrays. ``T_out[p, k]`` target of ``m_p ⊂ D_k`` with ``K_out`` True
    where it is known; ``T_in[p, k]`` target of ``D_k ⊂ m_p`` with ``K_in``. Only relations in
    ``train_mask`` are used; the pairs ``(m, D_i)`` and ``(D_j, m)`` are left unknown (``m`` may be almost
    ``D_i`` or almost ``D_j``).
    """
    tr = np.asarray(train_mask, dtype=bool)
    pos = tr & (R > 0.5)
    neg = tr & ~(R > 0.5)
    n = R.shape[0]
    eye = np.eye(n, dtype=bool)
    out_pos = pos[j] | eye[j]          # m ⊂ j ⊂ k
    out_neg = neg[i]                   # i ⊄ k  =>  m ⊄ k
    in_pos = pos[:, i].T | eye[i]      # k ⊂ i ⊂ m
    in_neg = neg[:, j].T               # k ⊄ j  =>  k ⊄ m
    out_neg &= ~out_pos
    in_neg &= ~in_pos
    # (m, i) and (j, m): unknown
    out_known = out_pos | out_neg
    in_known = in_pos | in_neg
    out_known[np.arange(i.size), i] = False
    in_known[np.arange(j.size), j] = False
    return out_pos.astype(np.float64), out_known, in_pos.astype(np.float64), in_known
