"""Transferability (Def. 3), source selection (Def. 4) and higher-order transfer (§5.2, Fig. 8).

Reference: Bao, Li, Huang, Zheng and Tian, "An information-theoretic approach to transferability in task
transfer learning", ICLR 2019.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Mapping, Sequence

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_choice, check_int, check_labels, describe
from ..hgr._codes import renumber_codes
from .hscore import HScoreAccumulator, compact_labels, hscore, hscore_from_state, hscore_values

__all__ = ["transferability", "select_source", "rank_sources", "rank_source_pairs"]

_OPTIMAL_METHODS = ("dtm", "ace")
#: Largest total feature width for which all sources share one accumulator (pairs are read from its blocks).
SHARED_STATE_MAX_FEATURES = 4096


def _optimal_from_hgr(method: str, inputs, labels: np.ndarray, k: int | None) -> np.ndarray:
    """H_T(f_opt) per target from the HGR maximal correlation of (X, Y_T): ||B~||_F^2 or sum of rho_i^2.

    The codes are renumbered to the ones that occur first (the value does not depend on the numbering), so sparse
    codes cost nothing; a target or input with one value has H_T(f_opt) = 0 exactly.
    """
    import tasklens.hgr as hgr  # the HGR module is imported only when asked for

    x = check_labels(inputs, "inputs", n=labels.shape[0], ndim=1)
    x, used_x = renumber_codes(to_host(x))
    out = []
    for j in range(labels.shape[1]):
        y, used_y = renumber_codes(labels[:, j])
        modes = min(used_x, used_y) - 1
        if modes <= 0:
            out.append(0.0)
        elif method == "dtm":
            out.append(float(hgr.dtm(x, y).optimal_hscore))
        else:
            rho = np.asarray(hgr.ace(x, y, k=min(k, modes) if k is not None else modes).correlations)
            out.append(float(np.sum(rho * rho)))
    return np.asarray(out, dtype=np.float64)


def transferability(source_features, target_labels, *, optimal: Any = "dtm", inputs=None, k: int | None = None,
                    shrinkage: str | None = None):
    """Task transferability T(S, T) = H_T(f_S) / H_T(f_T,opt) (Def. 3).

    Parameters
    ----------
    source_features : array (N, F)
        Source representation f_S(x) of the N target samples.
    target_labels : array (N,) or (N, T) of class codes
        Target labels Y_T (T target tasks scored in one pass).
    optimal : "dtm", "ace", float, array (T,), or array (N, K)
        Where H_T(f_opt) comes from:
        ``"dtm"`` — exact, ``||B~||_F^2`` of the divergence transition matrix (Def. 1) of (X, Y_T), for
        discrete X given as ``inputs``; ``"ace"`` — the sum of squared HGR maximal correlations found by ACE
        (Algorithm 1) on ``inputs`` with ``k`` modes (default ``min(|X|, |Y|) - 1``); a float or a (T,)
        array — the value(s) themselves; a 2-D array with N rows — target features f_T,opt supplied by the
        user (e.g. a network trained on the target), scored with :func:`hscore`.
    inputs : array (N,) of int codes, optional
        Discrete input X, required for ``"dtm"`` and ``"ace"``.
    k : int, optional
        ACE modes (at most ``min(|X|, |Y|) - 1`` are used).
    shrinkage : {None, "ledoit-wolf"}
        Passed to :func:`hscore` for the numerator (and for user-supplied target features).

    Returns
    -------
    float for labels (N,), float64 array (T,) for labels (N, T) (torch features: a float64 tensor, 0-d or
    (T,), on their device). Values lie in [0, 1] up to sampling error (the data processing inequality; finite
    samples can exceed 1 slightly).

    Raises
    ------
    ValueError
        When H_T(f_opt) is 0 for a target (a target with one class, or discrete inputs with one value): the
        ratio is undefined.

    Notes
    -----
    Cost: one :func:`hscore` pass, plus for ``"dtm"`` an SVD-free ``||B~||_F^2`` over the joint counts.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import transferability, hscore
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 600)
    >>> f_s = rng.normal(size=(600, 4)) + y[:, None]
    >>> t = transferability(f_s, y, optimal=1.0)
    >>> bool(np.isclose(t, hscore(f_s, y)))
    True
    """
    check_choice(shrinkage, "shrinkage", (None, "ledoit-wolf"))
    x = check_array(source_features, "source_features", ndim=2, finite=False, min_rows=2)
    y, top = check_labels(target_labels, "target_labels", n=x.shape[0], ndim=(1, 2), return_max=True)
    backend = backend_of(source_features=x)
    multi = y.ndim == 2
    num = hscore_values(x, y, top, backend, shrinkage=shrinkage)
    y2 = to_host(y).reshape(y.shape[0], -1)
    if isinstance(optimal, str):
        check_choice(optimal, "optimal", _OPTIMAL_METHODS)
        if inputs is None:
            raise ValueError(f"inputs: optimal={optimal!r} needs the discrete input X as inputs= (N,) int codes; "
                             "or pass target features or a value as optimal=")
        k = check_int(k, "k", min=1, allow_none=True)
        denom = _optimal_from_hgr(optimal, inputs, y2, k)
    else:
        opt = optimal if hasattr(optimal, "ndim") else np.asarray(optimal)
        if opt.ndim == 2:
            if opt.shape[0] != y2.shape[0]:
                raise ValueError(f"optimal: target features must have one row per sample ({y2.shape[0]}), "
                                 f"got {describe(opt)}")
            denom = np.atleast_1d(to_host(hscore(opt, y2 if multi else y2[:, 0], shrinkage=shrinkage)))
        elif opt.ndim <= 1:
            denom = np.atleast_1d(to_host(check_array(opt, "optimal", ndim=(0, 1)))).astype(np.float64)
            if denom.shape[0] not in (1, num.shape[0]):
                raise ValueError(f"optimal: expected a float or {num.shape[0]} values (one per target), "
                                 f"got {describe(opt)}")
        else:
            raise ValueError(f"optimal: expected 'dtm', 'ace', a float, a (T,) array or (N, K) target features, "
                             f"got {describe(opt)}")
    if np.any(denom <= 0):
        raise ValueError(f"optimal: H_T(f_opt) must be > 0, got {denom.tolist()} (a target with one class "
                         "cannot be transferred to)")
    ratio = num / denom
    return backend.out(ratio if multi else ratio[0])


def _as_named(sources, name: str):
    """(names, host float arrays, backend of the sources): the output rule follows the sources' kind."""
    if isinstance(sources, Mapping):
        names = [str(k) for k in sources]
        arrays = list(sources.values())
    elif isinstance(sources, Sequence) and not isinstance(sources, (str, bytes)):
        names = [str(i) for i in range(len(sources))]
        arrays = list(sources)
    else:
        raise TypeError(f"{name}: expected a dict name -> features or a list of feature arrays, "
                        f"got {type(sources).__name__}")
    if not arrays:
        raise ValueError(f"{name}: needs at least one source")
    checked = {f"{name}[{key!r}]": check_array(arr, f"{name}[{key!r}]", ndim=2, min_rows=2)
               for key, arr in zip(names, arrays)}
    backend = backend_of(**checked)
    out = [to_host(a) for a in checked.values()]
    n = {a.shape[0] for a in out}
    if len(n) > 1:
        raise ValueError(f"{name}: every source must have the same number of rows (samples), got {sorted(n)}")
    return names, out, backend


def _shared_state(arrays: list[np.ndarray], y: np.ndarray):
    """One accumulator over all sources side by side; returns its state and each source's column range."""
    dtype = np.float64 if any(a.dtype == np.float64 for a in arrays) else np.float32
    widths = [a.shape[1] for a in arrays]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    y2, num_classes = compact_labels(y.reshape(y.shape[0], -1), int(offsets[-1]), int(y.max()) + 1)
    acc = HScoreAccumulator(int(offsets[-1]), num_classes, num_targets=y2.shape[1])
    step = 65536
    for r0 in range(0, arrays[0].shape[0], step):
        block = np.concatenate([a[r0:r0 + step].astype(dtype, copy=False) for a in arrays], axis=1)
        acc.update(block, y2[r0:r0 + step])
    return acc.state_dict(), [np.arange(offsets[i], offsets[i + 1]) for i in range(len(arrays))]


def _substate(state: dict, idx: np.ndarray) -> dict:
    """State restricted to the features idx (exact for the mean, scatter and class sums)."""
    return {**state, "mean": state["mean"][idx], "scatter": state["scatter"][np.ix_(idx, idx)],
            "shift": state["shift"][idx], "class_sums": state["class_sums"][..., idx]}


def _scores(arrays, y, groups, shrinkage):
    """H-score per group of source indices; one shared pass when possible, else one pass per group."""
    total = sum(a.shape[1] for a in arrays)
    if shrinkage is None and total <= SHARED_STATE_MAX_FEATURES:
        state, cols = _shared_state(arrays, y)
        return [hscore_from_state(_substate(state, np.concatenate([cols[i] for i in g])))
                for g in groups]
    out = []
    for g in groups:
        feats = arrays[g[0]] if len(g) == 1 else np.concatenate([arrays[i] for i in g], axis=1)
        out.append(np.atleast_1d(hscore(feats, y, shrinkage=shrinkage)))
    return out


def _ranked(keys, scores, multi):
    if multi:
        return [(key, np.asarray(s)) for key, s in zip(keys, scores)]
    ranked = sorted(zip(keys, (float(s[0]) for s in scores)), key=lambda kv: -kv[1])
    return ranked


def rank_sources(sources, target_labels, *, shrinkage: str | None = None):
    """Rank source representations for a target by H-score (Def. 4: argmax_i H_T(f_Si)).

    Parameters
    ----------
    sources : dict name -> array (N, F_i), or list of arrays (named "0", "1", ...)
        Source features f_Si of the same N target samples.
    target_labels : array (N,) of class codes, or (N, T)
    shrinkage : {None, "ledoit-wolf"}

    Returns
    -------
    For labels (N,): list of (name, H-score), best first. For labels (N, T): list of (name, scores (T,))
    in input order (rank each column yourself, e.g. with ``np.argsort(-scores, axis=0)``).

    Notes
    -----
    The denominator H_T(f_opt) of Def. 3 is common to all sources, so ranking by H-score equals ranking
    by transferability. Without shrinkage and with sum F_i <= 4096, all sources share one pass (one
    accumulator over the side-by-side features); each source's score is read from its diagonal block.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import rank_sources
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 400)
    >>> srcs = {"good": rng.normal(size=(400, 3)) + y[:, None], "noise": rng.normal(size=(400, 3))}
    >>> rank_sources(srcs, y)[0][0]
    'good'
    """
    check_choice(shrinkage, "shrinkage", (None, "ledoit-wolf"))
    names, arrays, backend = _as_named(sources, "sources")
    y = to_host(check_labels(target_labels, "target_labels", n=arrays[0].shape[0], ndim=(1, 2)))
    scores = _scores(arrays, y, [(i,) for i in range(len(arrays))], shrinkage)
    return backend.out(_ranked(names, scores, y.ndim == 2))


def select_source(sources, target_labels, *, shrinkage: str | None = None) -> str:
    """Name of the source with the largest H-score for the target (Def. 4). See :func:`rank_sources`."""
    y = check_labels(target_labels, "target_labels", ndim=1)
    return rank_sources(sources, y, shrinkage=shrinkage)[0][0]


def rank_source_pairs(sources, target_labels, *, shrinkage: str | None = None, include_singles: bool = False):
    """Second-order transfer: rank pairs of sources by the H-score of their concatenated features (§5.2).

    Parameters
    ----------
    sources, target_labels, shrinkage : as in :func:`rank_sources` (labels (N,) only).
    include_singles : bool
        Also rank each source alone (first-order), so a pair can be compared with its members.

    Returns
    -------
    list of ((name_a, name_b), H-score) best first (singles appear as ``(name,)``).

    Notes
    -----
    Without shrinkage (and sum F_i <= 4096) one pass over all sources side by side gives every pair's
    scatter and class sums as sub-blocks, so P sources cost one pass plus O(P^2 (2F)^3) small
    eigendecompositions instead of P^2 / 2 passes.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import rank_source_pairs
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 4, 500)
    >>> srcs = {"a": (y % 2)[:, None] + 0.1 * rng.normal(size=(500, 1)),
    ...         "b": (y // 2)[:, None] + 0.1 * rng.normal(size=(500, 1)),
    ...         "c": rng.normal(size=(500, 1))}
    >>> rank_source_pairs(srcs, y)[0][0]
    ('a', 'b')
    """
    check_choice(shrinkage, "shrinkage", (None, "ledoit-wolf"))
    names, arrays, backend = _as_named(sources, "sources")
    if len(arrays) < 2:
        raise ValueError("sources: pairs need at least two sources")
    y = to_host(check_labels(target_labels, "target_labels", n=arrays[0].shape[0], ndim=1))
    groups = list(combinations(range(len(arrays)), 2))
    if include_singles:
        groups = [(i,) for i in range(len(arrays))] + groups
    scores = _scores(arrays, y, groups, shrinkage)
    keys = [tuple(names[i] for i in g) for g in groups]
    return backend.out(_ranked(keys, scores, False))
