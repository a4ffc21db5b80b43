"""Proxy A-distance between two feature sets (Ben-David et al., NeurIPS 2007; CDLM paper Sect. 4.4, Fig. 6)."""

from __future__ import annotations

import numpy as np

from .._validation import check_array, is_torch


def a_distance(source_features, target_features, *, seed: int = 0, test_fraction: float = 0.5,
               C: float = 1.0) -> float:
    """Proxy A-distance d_A = 2 (1 - 2 eps).

    eps is the held-out error of a linear domain classifier (scikit-learn ``LogisticRegression``, L2
    penalty ``C``, on features standardised with the training part's mean and standard deviation).

    Split: the larger set is first subsampled (seeded) to the size of the smaller one, so both domains
    count equally and chance error is 0.5; the pooled rows are then split by a seeded, stratified
    ``train_test_split`` into ``1 - test_fraction`` for training and ``test_fraction`` held out; eps is
    the error on the held-out part. d_A is near 0 for indistinguishable sets (it can be slightly
    negative by sampling noise) and 2 for linearly separable ones.

    Parameters
    ----------
    source_features, target_features : (n_s, d) and (n_t, d) arrays (numpy or torch), at least 2 rows each.
    seed : seeds the subsampling and the split.
    test_fraction : held-out share, in (0, 1).
    C : inverse regularisation strength of the logistic regression.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    def as_np(x, name):
        x = check_array(x.detach().cpu() if is_torch(x) else x, name, ndim=2, min_rows=2)
        return np.asarray(x.numpy() if is_torch(x) else x, dtype=np.float64)

    s, t = as_np(source_features, "source_features"), as_np(target_features, "target_features")
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"target_features: has {t.shape[1]} columns, source_features has {s.shape[1]}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    n = min(len(s), len(t))
    s = s[rng.choice(len(s), n, replace=False)] if len(s) > n else s
    t = t[rng.choice(len(t), n, replace=False)] if len(t) > n else t
    X = np.concatenate([s, t])
    d = np.r_[np.zeros(n, np.int64), np.ones(n, np.int64)]
    Xtr, Xte, dtr, dte = train_test_split(X, d, test_size=float(test_fraction), random_state=seed, stratify=d)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd[sd == 0] = 1.0
    clf = LogisticRegression(C=C, max_iter=2000).fit((Xtr - mu) / sd, dtr)
    eps = float(np.mean(clf.predict((Xte - mu) / sd) != dte))
    return 2.0 * (1.0 - 2.0 * eps)
