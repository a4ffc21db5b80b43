"""Graded task affinities from transfer results: Taskonomy's ordinal normalisation and the normalised gain.

- :func:`win_rates`: ``W[i, j]``, the share of test items on which competitor ``i`` has a lower loss than ``j``.
- :func:`ahp_affinity`: Taskonomy's Analytic Hierarchy Process normalisation (Zamir et al., CVPR 2018, Sec. 3.3):
  the principal eigenvector of ``W' = W / W^T``.
- :func:`normalized_gain`: ``clip((v - baseline) / (max v - baseline), 0, 1)``, the gain over a baseline (training
  from scratch) mapped to [0, 1] per target.

For one target task the competitors are the transfers from every source (and, as in this library's model-zoo
benchmark, training from scratch); applying :func:`ahp_affinity` and then :func:`normalized_gain` with the scratch
entry as the baseline gives a graded affinity in [0, 1] for each source (``benchmarks/task_affinity.py``).
"""

from __future__ import annotations

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_scalar, describe

__all__ = ["win_rates", "ahp_affinity", "normalized_gain"]


def _losses(losses):
    x = check_array(losses, "losses", ndim=2, finite=False)
    h = to_host(x).astype(np.float64, copy=False)
    if np.isnan(h).any() or (h == -np.inf).any():
        raise ValueError(f"losses: contains NaN or -inf ({describe(x)}); +inf (a diverged run) is allowed")
    if h.shape[0] < 2 or h.shape[1] < 1:
        raise ValueError(f"losses: expected (K, N) with K >= 2 competitors and N >= 1 items, got {describe(x)}")
    return x, h


def win_rates(losses):
    """Pairwise win rates of K competitors on N items (Taskonomy Sec. 3.3).

    ``W[i, j] = (#{n : l_in < l_jn} + 0.5 #{n : l_in = l_jn}) / N``, so ``W + W^T = 1`` and ``W[i, i] = 0.5``.

    Parameters
    ----------
    losses : (K, N) per-item test losses (lower is better) of K competitors on the same N items; ``+inf`` allowed.

    Returns
    -------
    (K, K) float64; numpy in -> numpy out, torch in -> torch out.

    Examples
    --------
    >>> win_rates([[0.1, 0.5], [0.2, 0.5]]).tolist()
    [[0.5, 0.75], [0.25, 0.5]]
    """
    x, h = _losses(losses)
    be = backend_of(losses=x)
    li, lj = h[:, None, :], h[None, :, :]
    w = (li < lj).mean(2) + 0.5 * (li == lj).mean(2)
    return be.out(w)


def ahp_affinity(losses, *, clip: float = 1e-3):
    """Taskonomy's ordinal (AHP) normalisation of K competitors on one target (Zamir et al. 2018, Sec. 3.3).

    ``W`` = :func:`win_rates` clipped to ``[clip, 1 - clip]``; ``W' = W / W^T`` element-wise (a positive reciprocal
    matrix); the result is its principal (Perron) eigenvector, scaled to sum to 1. When the win rates are
    consistent (``W'[i, j] = a_i / a_j``) the result is ``a / sum(a)``; e.g. for two competitors with
    ``W[0, 1] = p`` it is ``(p, 1 - p)``.

    Parameters
    ----------
    losses : (K, N) per-item losses (see :func:`win_rates`).
    clip : the win rates are clipped to ``[clip, 1 - clip]`` (Taskonomy: 0.001) so that ``W'`` stays finite.

    Returns
    -------
    (K,) float64, positive, summing to 1; numpy in -> numpy out, torch in -> torch out.

    Examples
    --------
    >>> ahp_affinity([[0.1, 0.1, 0.1, 0.5], [0.2, 0.2, 0.2, 0.2]]).round(3).tolist()
    [0.75, 0.25]
    """
    clip = check_scalar(clip, "clip", min=0.0, max=0.5, min_inclusive=False, max_inclusive=False)
    x, h = _losses(losses)
    be = backend_of(losses=x)
    li, lj = h[:, None, :], h[None, :, :]
    w = np.clip((li < lj).mean(2) + 0.5 * (li == lj).mean(2), clip, 1.0 - clip)
    ratio = w / w.T
    vals, vecs = np.linalg.eig(ratio)
    v = np.abs(np.real(vecs[:, int(np.argmax(np.real(vals)))]))
    return be.out(v / v.sum())


def normalized_gain(scores, baseline):
    """Gain over a baseline mapped to [0, 1]: ``clip((s - b) / (max(s) - b), 0, 1)``.

    1 = the best competitor, 0 = no better than the baseline (negative transfer is clipped to 0); all zeros when
    no competitor beats the baseline.

    Parameters
    ----------
    scores : (K,) higher-is-better scores of the competitors (accuracies, or :func:`ahp_affinity` weights).
    baseline : float, the baseline's score on the same scale (e.g. training from scratch).

    Returns
    -------
    (K,) float64; numpy in -> numpy out, torch in -> torch out.

    Examples
    --------
    >>> normalized_gain([0.5, 0.7, 0.9], 0.6).round(6).tolist()
    [0.0, 0.333333, 1.0]
    """
    x = check_array(scores, "scores", ndim=1, min_rows=1)
    be = backend_of(scores=x)
    s = to_host(x).astype(np.float64, copy=False)
    b = check_scalar(baseline, "baseline")
    top = s.max() - b
    if top <= 0:
        return be.out(np.zeros_like(s))
    return be.out(np.clip((s - b) / top, 0.0, 1.0))
