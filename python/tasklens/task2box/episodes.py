"""Episodes and augmentation for Task2Box training (issue 14): held-out datasets inside training and
mixture datasets in representation space.

- :func:`holdout_split` — choose datasets to hold out inside ``fit`` (the novel protocol of §4 replayed on
  the training datasets): their pairs leave training and score model selection.
- :func:`holdout_score_masks` — the masks used to score a held-out episode: the pairs whose threshold is
  chosen (pairs among kept datasets) and the pairs scored (held-out vs kept, both directions).
- :func:`member_items` / :func:`subset_datasets` — member-subset augmentation (the ``members=`` input of
  ``Task2Box.fit``): for a training pair ``D_i ⊂ D_j``, ``m = D_i ∪ S`` with ``S`` a random part of the members of
  ``D_j`` not in ``D_i`` is a dataset with ``D_i ⊂ m ⊂ D_j`` (targets from :func:`mixture_targets`); its base
  representation is computed from its members exactly as the given ones are (Eq. 1-2: the mean, or the mean and
  the variance).
- :func:`mixture_targets` — targets of mixture datasets: for a training pair ``i ⊂ j`` a dataset ``m`` made
  of all of ``D_i`` and part of ``D_j`` satisfies ``D_i ⊂ m ⊂ D_j``, hence ``m ⊂ k`` for every known
  ``D_j ⊂ D_k`` and ``k ⊂ m`` for every known ``D_k ⊂ D_i``; and ``m ⊄ k`` whenever ``D_i ⊄ D_k`` is known,
  ``k ⊄ m`` whenever ``D_k ⊄ D_j`` is known. With mean representations (Eq. 1) the representation of ``m``
  is ``w e_i + (1 - w) e_j`` (the mean of a union, ``w`` = share of members from ``D_i``).

All functions are numpy-only; the random draws come from the caller (seeded).
"""

from __future__ import annotations

import numpy as np

__all__ = ["holdout_split", "holdout_score_masks", "mixture_targets", "member_items", "subset_datasets"]


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


def member_items(members, n: int, width: int):
    """Validated ``members`` as one item table: ``(items (n_items, d) float64, sets, variance)``.

    Parameters
    ----------
    members : sequence of ``n`` arrays (numpy or torch), ``members[i]`` of shape ``(n_i, d)`` with ``n_i >= 1``:
        the embeddings of the items of dataset ``i``. Rows that are equal (bit for bit) are the same item, so a
        dataset contained in another shares its member rows.
    n : number of datasets (rows of ``X``). width : columns of ``X``: ``d`` (base representation = mean, Eq. 1)
        or ``2 d`` (mean and variance, Eq. 2).

    Returns
    -------
    items : the distinct member rows. sets : list of ``n`` sorted int64 index arrays into ``items``.
    variance : whether representations are ``[mean, variance]``.
    """
    from .._dispatch import to_host
    from .._validation import check_array, describe

    if isinstance(members, (str, bytes)) or not hasattr(members, "__len__"):
        raise TypeError(f"members: expected a sequence of {n} arrays of member embeddings (one per dataset), "
                        f"got {type(members).__name__}")
    if len(members) != n:
        raise ValueError(f"members: expected {n} arrays (one per row of X), got {len(members)}")
    arrays, d = [], None
    for i, m in enumerate(members):
        a = np.asarray(to_host(check_array(m, f"members[{i}]", ndim=2, min_rows=1)), dtype=np.float64)
        if d is None:
            d = a.shape[1]
        elif a.shape[1] != d:
            raise ValueError(f"members[{i}]: expected {d} columns like members[0], got {describe(m)}")
        arrays.append(a)
    if width not in (d, 2 * d):
        raise ValueError(f"members: embeddings have {d} columns, so X must have {d} (mean) or {2 * d} (mean and "
                         f"variance) columns; X has {width}")
    index: dict = {}
    rows, sets = [], []
    for a in arrays:
        ids = []
        for r in a:
            key = r.tobytes()
            if key not in index:
                index[key] = len(rows)
                rows.append(r)
            ids.append(index[key])
        sets.append(np.unique(np.asarray(ids, dtype=np.int64)))
    return np.asarray(rows), sets, width == 2 * d


def subset_datasets(rng: np.random.Generator, items: np.ndarray, sets, variance: bool, i: np.ndarray,
                    j: np.ndarray) -> np.ndarray:
    """Representations ``(P, width)`` of the datasets ``m_p = D_i[p] ∪ S_p``, ``S_p`` a uniformly drawn part
    (1 to all but one member, when there are two or more) of the members of ``D_j[p]`` outside ``D_i[p]``; the
    mean (and the population variance) of the members of ``m_p``, as :func:`base_representations`."""
    out = np.empty((i.size, items.shape[1] * (2 if variance else 1)))
    for p, (a, b) in enumerate(zip(i, j)):
        rest = np.setdiff1d(sets[b], sets[a], assume_unique=True)
        take = rest
        if rest.size >= 2:
            take = rng.choice(rest, size=int(rng.integers(1, rest.size)), replace=False)
        e = items[np.concatenate([sets[a], take])]
        mu = e.mean(0)
        out[p, :mu.size] = mu
        if variance:
            out[p, mu.size:] = ((e - mu) ** 2).mean(0)
    return out
