"""Transferability from a source model's outputs: LEEP, NCE and N-LEEP (higher is better).

- :func:`leep`: log expected empirical prediction from source-class probabilities (Nguyen et al., ICML 2020);
- :func:`nce`: negative conditional entropy of target labels given source labels (Tran et al., ICCV 2019);
- :func:`nleep`: LEEP on the posteriors of a seeded Gaussian mixture fitted to PCA-reduced features
  (Li et al., CVPR 2021).

All counts and sums are float64. Output: a float for labels (N,), a float64 array (T,) for labels (N, T);
torch input gives 0-d / (T,) float64 tensors on the input's device.
"""

from __future__ import annotations

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_int, check_labels, check_scalar, describe

__all__ = ["leep", "nce", "nleep"]

#: Largest deviation of a row sum of ``source_probs`` from 1 that :func:`leep` accepts.
PROB_ATOL = 1e-4


def _targets(labels, n: int):
    y, top = check_labels(labels, "labels", n=n, ndim=(1, 2), return_max=True)
    if y.ndim == 2 and y.shape[1] == 0:
        raise ValueError(f"labels: expected at least one target column, got {describe(y)}")
    return y, top + 1


def _leep_scores(theta: np.ndarray, y2: np.ndarray, num_classes: int) -> np.ndarray:
    n, z = theta.shape
    out = np.empty(y2.shape[1])
    pz = theta.sum(axis=0)  # n P(z)
    for t in range(y2.shape[1]):
        joint = np.zeros((num_classes, z))  # n P(y, z)
        np.add.at(joint, y2[:, t], theta)
        cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)  # P(y | z)
        eep = np.einsum("iz,iz->i", theta, cond[y2[:, t]])  # sum_z P(y_i | z) theta_z(x_i)
        out[t] = float(np.log(eep).mean())
    return out


def leep(source_probs, labels):
    r"""LEEP: log expected empirical prediction (Nguyen et al., ICML 2020).

    ``theta(x_i)`` (Z,) are the source model's class probabilities for target sample i. With the empirical
    joint ``P(y, z) = 1/N sum_{i: y_i = y} theta_z(x_i)`` and ``P(y | z) = P(y, z) / P(z)`` (Eqs. 1-2 of the
    paper), the score (Eq. 3) is

    ``T(theta, D) = 1/N sum_i log( sum_z P(y_i | z) theta_z(x_i) )``  (always <= 0).

    Parameters
    ----------
    source_probs : (N, Z) float array
        Rows of probabilities: non-negative, each summing to 1 within ``PROB_ATOL`` (1e-4); anything else
        (e.g. logits) is an error.
    labels : (N,) or (N, T) int target class codes

    Returns
    -------
    float, or float64 (T,) for labels (N, T). Exact up to float64 rounding (O(N Z) per target).

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import leep
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]])
    >>> round(leep(probs, [0, 0, 1, 1]), 6)
    -0.295476
    """
    p = check_array(source_probs, "source_probs", ndim=2, min_rows=1)
    y, c = _targets(labels, p.shape[0])
    be = backend_of(source_probs=p, labels=y)
    theta = np.asarray(to_host(p), dtype=np.float64)
    if (theta < 0).any():
        raise ValueError(f"source_probs: probabilities must be non-negative, found {theta.min():g} "
                         f"({describe(p)}); pass softmax outputs, not logits")
    sums = theta.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > PROB_ATOL:
        raise ValueError(f"source_probs: every row must sum to 1 (within {PROB_ATOL:g}); row {worst} sums to "
                         f"{sums[worst]:.6g} ({describe(p)}); pass softmax outputs, not logits")
    yn = np.asarray(to_host(y))
    out = _leep_scores(theta, yn.reshape(yn.shape[0], -1), c)
    return be.out(out if yn.ndim == 2 else float(out[0]))


def nce(source_labels, labels):
    r"""NCE: negative conditional entropy of the target labels given the source labels (Tran et al., ICCV 2019).

    From the joint counts of (source label z_i, target label y_i): ``P(y, z) = #{i: y_i = y, z_i = z} / N``,

    ``NCE(Y | Z) = -H(Y | Z) = sum_{y, z} P(y, z) log( P(y, z) / P(z) )``  (Eq. 2 / Def. 2 of the paper; <= 0).

    Parameters
    ----------
    source_labels : (N,) int codes (e.g. the source model's predicted classes)
    labels : (N,) or (N, T) int target class codes

    Returns
    -------
    float, or float64 (T,) for labels (N, T). Exact up to float64 rounding.

    Examples
    --------
    >>> from tasklens.metrics import nce
    >>> nce([0, 0, 1, 1], [1, 1, 0, 0])
    0.0
    >>> round(nce([0, 0, 0, 0], [0, 1, 0, 1]), 6)
    -0.693147
    """
    z, zc = check_labels(source_labels, "source_labels", ndim=1, return_max=True)
    if z.shape[0] == 0:
        raise ValueError(f"source_labels: needs at least one sample, got {describe(z)}")
    y, c = _targets(labels, z.shape[0])
    be = backend_of(source_labels=z, labels=y)
    zn = np.asarray(to_host(z))
    yn = np.asarray(to_host(y))
    y2 = yn.reshape(yn.shape[0], -1)
    n = float(zn.shape[0])
    out = np.empty(y2.shape[1])
    for t in range(y2.shape[1]):
        joint = np.bincount(y2[:, t] * (zc + 1) + zn, minlength=c * (zc + 1)).reshape(c, zc + 1) / n
        pz = joint.sum(axis=0)
        nz = joint > 0
        out[t] = float((joint[nz] * np.log(joint[nz] / np.broadcast_to(pz, joint.shape)[nz])).sum())
    return be.out(out if yn.ndim == 2 else float(out[0]))


def nleep(features, labels, *, n_components: int | None = None, pca_variance: float = 0.8, seed: int = 0):
    r"""N-LEEP: LEEP on the posteriors of a Gaussian mixture over PCA-reduced features (Li et al., CVPR 2021).

    Following the paper (Sec. 3.2) and the authors' code: the features are reduced by PCA to the components
    that keep ``pca_variance`` (80%) of the variance, a Gaussian mixture with full covariances and
    ``n_components`` components (default 5 x the number of target classes) is fitted (scikit-learn
    ``GaussianMixture``, ``random_state=seed``), and LEEP (Eq. 3 of Nguyen et al., see :func:`leep`) is
    computed with the mixture posteriors ``p(v | x_i)`` in place of the source classifier's probabilities.
    For labels (N, T) one mixture (sized by the largest class count over the targets) serves every target.

    The mixture makes the score depend on ``seed`` (the same seed gives the same score); its EM converges to
    scikit-learn's default tolerance (1e-3 on the lower bound). O(N D^2) for PCA plus the EM iterations.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import nleep
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> x = rng.normal(size=(200, 3)) + 5 * y[:, None]
    >>> bool(nleep(x, y, n_components=2) > -0.05)
    True
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    x = check_array(features, "features", ndim=2, min_rows=2)
    y, c = _targets(labels, x.shape[0])
    be = backend_of(features=x, labels=y)
    pca_variance = check_scalar(pca_variance, "pca_variance", min=0.0, max=1.0, min_inclusive=False)
    seed = check_int(seed, "seed", min=0)
    yn = np.asarray(to_host(y))
    y2 = yn.reshape(yn.shape[0], -1)
    if n_components is None:
        n_components = 5 * max(int(np.unique(y2[:, t]).size) for t in range(y2.shape[1]))
    n_components = check_int(n_components, "n_components", min=1, max=x.shape[0])
    xn = np.asarray(to_host(x), dtype=np.float64)
    if pca_variance < 1.0:
        reduced = PCA(n_components=pca_variance, svd_solver="full").fit_transform(xn)
    else:
        reduced = xn - xn.mean(axis=0)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # EM on small matrices: threads only add spin-waits (40x slower when loaded)
        post = GaussianMixture(n_components=n_components, random_state=seed).fit(reduced).predict_proba(reduced)
    out = _leep_scores(post, y2, c)
    return be.out(out if yn.ndim == 2 else float(out[0]))
