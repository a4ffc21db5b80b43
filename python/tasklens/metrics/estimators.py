"""Feature-based transferability estimators (higher is better), all from one pass of sufficient statistics.

- :func:`logme`: LogME, the log maximum evidence of a Bayesian linear model (You et al., ICML 2021);
- :func:`transrate`: TransRate, a coding-rate difference (Huang et al., ICML 2022);
- :func:`gbc`: Gaussian Bhattacharyya coefficient (Pándy et al., CVPR 2022);
- :func:`sfda`: self-challenging Fisher discriminant analysis (Shao et al., ECCV 2022);
- :func:`transferability_report`: every one of them and the H-score from a single pass over the features.

Each estimator reads the features once in chunks into a :class:`~tasklens.metrics.feature_stats.FeatureStats`
(float64 sums, independent of the chunk size up to rounding) and computes its score from those sums, except for
two per-sample parts: TransRate reads each class's rows once more after the pass for its class rates (n_c x n_c
kernels, :mod:`~tasklens.metrics.class_rates`), and SFDA reads the features twice more, because its ConfMix step
and its score are per sample. H-score and LogME share one tridiagonal reduction of the F x F scatter
(:mod:`~tasklens.metrics.shared_eigen`).

Inputs: ``features`` (N, F) float32/float64 numpy array or torch tensor (CUDA tensors are copied to the host),
``labels`` (N,) or (N, T) integer class codes. Output: a float for labels (N,), a float64 array (T,) for labels
(N, T); torch input gives 0-d / (T,) float64 tensors on the input's device. Classes that do not occur in a target
are ignored (as ``np.unique`` does in the authors' code).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_int, check_labels, check_positive, check_scalar, describe
from .class_rates import _logdet_pd, class_log_dets
from .feature_stats import FeatureStats, _gram, default_chunk_rows
from .hscore import default_rtol
from .shared_eigen import SharedEigen

__all__ = ["logme", "transrate", "gbc", "sfda", "transferability_report", "FEATURE_METRICS"]

#: The estimators :func:`transferability_report` can compute, by function name.
FEATURE_METRICS = ("hscore", "logme", "transrate", "gbc", "sfda")


# ---------------------------------------------------------------------------------------------- input and pass

def _prepare(features, labels, min_rows: int = 2):
    x = check_array(features, "features", ndim=2, min_rows=min_rows)
    y, top = check_labels(labels, "labels", n=x.shape[0], ndim=(1, 2), return_max=True)
    if y.ndim == 2 and y.shape[1] == 0:
        raise ValueError(f"labels: expected at least one target column, got {describe(y)}")
    be = backend_of(features=x, labels=y)
    xn = to_host(x)
    yn = np.ascontiguousarray(to_host(y))
    return xn, yn.reshape(yn.shape[0], -1), top + 1, y.ndim == 2, be


def _chunk_rows(x, chunk_rows):
    if chunk_rows is None:
        return default_chunk_rows(x.shape[1], x.dtype.itemsize)
    return check_int(chunk_rows, "chunk_rows", min=1)


def _collect(x, y, num_classes, *, squares=False, chunk_rows=None) -> FeatureStats:
    """One chunked pass over (x, y) in row order into a FeatureStats (count, sums, Gram, class sums and counts,
    class sums of squares when ``squares``)."""
    st = FeatureStats(x.shape[1], num_classes, y.shape[1], squares=squares)
    step = _chunk_rows(x, chunk_rows)
    for r0 in range(0, x.shape[0], step):
        st.update(np.ascontiguousarray(x[r0:r0 + step]), y[r0:r0 + step])
    return st


def _finish(values, multi: bool, be):
    values = np.asarray(values, dtype=np.float64)
    return be.out(values if multi else float(values[0]))


def _one_thread():
    """BLAS/LAPACK on one thread: an F x F factorisation gains little from threads, and on a loaded machine a
    multi-threaded call spin-waits (a 256 x 256 Cholesky measured 0.12 s instead of 1 ms)."""
    import scipy.linalg  # noqa: F401  (loaded first: threadpool_limits only limits the BLAS libraries loaded)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _spectra(st: FeatureStats) -> SharedEigen:
    """Eigendecompositions of the centred scatter (H-score) and the raw Gram (LogME) from one reduction."""
    return SharedEigen(st.scatter(), float(st.n), st.mean())


# ---------------------------------------------------------------------------------------------- LogME

#: Relative change of alpha / beta below which the LogME fixed-point iteration stops (see :func:`logme`).
LOGME_TOL = 1e-10
LOGME_MAX_ITER = 1000
#: alpha / beta above this multiple of the largest eigenvalue counts as infinite (the prior switches w off; the
#: evidence then equals its alpha -> infinity limit to about 1e-14 per direction).
LOGME_T_INF = 1e14
#: |y|^2 - |U^T y|^2 at or below this fraction of |y|^2 counts as 0 (y in the column space of the features).
LOGME_RES_ZERO = 1e-12
_LIVE, _W_ZERO, _NOISE_FREE = 0, 1, 2


def _logme_from_stats(st: FeatureStats, rtol: float | None = None, spectra: SharedEigen | None = None) -> np.ndarray:
    n, d = float(st.n), st.num_features
    spectra = _spectra(st) if spectra is None else spectra
    sig = spectra.raw_values
    top = float(sig.max()) if sig.size else 0.0
    if rtol is None:  # the eigensolver's error on the raw Gram, or the rounding of chunk Grams formed in float32
        thr = max(d * float(np.finfo(np.float64).eps) * top,
                  float(np.finfo(np.dtype(st.dtype)).eps) * float(np.trace(st.scatter())))
    else:
        thr = rtol * top
    keep = sig > thr if top > 0 else np.zeros(d, dtype=bool)
    sig_k = sig[keep]
    out = np.empty(st.num_targets)
    # V^T X^T y_c = sigma^(1/2) U^T y_c for every target and class, (T, C, F)
    proj_all = spectra.project(st.raw_class_sums().reshape(-1, d).T, raw=True).T.reshape(st.num_targets, -1, d)
    for t in range(st.num_targets):
        counts = st.class_counts[t]
        present = counts > 0
        proj = proj_all[t, present][:, keep]
        x2 = proj * proj / sig_k  # (U^T y_c)^2 over the non-zero singular directions
        out[t] = _logme_evidence(x2, counts[present], sig_k, n, d).mean()
    return out


def _logme_evidence(x2: np.ndarray, yy: np.ndarray, sig: np.ndarray, n: float, d: int) -> np.ndarray:
    """Maximum evidence / n per target column (rows of x2) by the fixed-point iteration of You et al.

    ``x2[c, i] = (u_i^T y_c)^2`` over the k non-zero eigenvalues ``sig`` of ``F^T F``, ``yy[c] = |y_c|^2``; the
    other ``d - k`` eigenvalues are exactly 0 and enter ``log|A|`` as ``log(alpha)`` each (the padding).
    Two boundary maxima are taken as limits: ``alpha / beta -> inf`` (no evidence in the features: w = 0) and,
    when y lies in the column space of F, ``alpha / beta -> 0`` (noise-free fit, ``beta -> inf``).
    """
    res0 = yy - x2.sum(axis=1)  # |y|^2 - |U^T y|^2: the part of y outside the column space
    res0[res0 <= LOGME_RES_ZERO * yy] = 0.0
    k = sig.size
    alpha = np.ones(x2.shape[0])
    beta = np.ones(x2.shape[0])
    mode = np.where(x2.sum(axis=1) <= 0, _W_ZERO, _LIVE)  # y orthogonal to every feature direction: w = 0
    big = LOGME_T_INF * (float(sig.max()) if k else 1.0)
    small = float(sig.min()) / LOGME_T_INF if k else 0.0
    for _ in range(LOGME_MAX_ITER):
        live = np.flatnonzero(mode == _LIVE)
        if live.size == 0:
            break
        t = alpha[live] / beta[live]
        den = sig + t[:, None]
        gamma = (sig / den).sum(axis=1)
        m2 = (sig * x2[live] / (den * den)).sum(axis=1)
        res2 = (x2[live] * (t[:, None] / den) ** 2).sum(axis=1) + res0[live]
        a_new, b_new = gamma / m2, (n - gamma) / res2
        t_new = a_new / b_new
        alpha[live], beta[live] = a_new, b_new
        mode[live[t_new > big]] = _W_ZERO
        mode[live[(t_new < small) & (res0[live] == 0)]] = _NOISE_FREE
        if (np.abs(t_new - t) <= LOGME_TOL * t).all():
            break
    ev = np.empty(x2.shape[0])
    live = mode == _LIVE
    a, b = alpha[live], beta[live]
    t = a / b
    den = sig + t[:, None]
    m2 = (sig * x2[live] / (den * den)).sum(axis=1)
    res2 = (x2[live] * (t[:, None] / den) ** 2).sum(axis=1) + res0[live]
    logdet = np.log(a[:, None] + b[:, None] * sig).sum(axis=1) + (d - k) * np.log(a)
    ev[live] = (d / 2.0 * np.log(a) + n / 2.0 * np.log(b) - 0.5 * logdet - b / 2.0 * res2 - a / 2.0 * m2
                - n / 2.0 * np.log(2.0 * np.pi))
    # alpha -> infinity: w = 0, y ~ N(0, I / beta) with beta = n / |y|^2
    zero = mode == _W_ZERO
    ev[zero] = n / 2.0 * np.log(n / yy[zero]) - n / 2.0 - n / 2.0 * np.log(2.0 * np.pi)
    # beta -> infinity with y in the span: y ~ N(0, F F^T / alpha) on the k-dimensional span, maximised at
    # alpha = n / sum(x2 / sig); unbounded (+inf) when the span has k < n dimensions
    free = mode == _NOISE_FREE
    if free.any():
        q = (x2[free] / sig).sum(axis=1)
        af = n / q
        ev[free] = (n / 2.0 * np.log(af) - 0.5 * np.log(sig).sum() - n / 2.0 - n / 2.0 * np.log(2.0 * np.pi)
                    if k == n else np.inf)
    return ev / n


def logme(features, labels, *, rtol: float | None = None, chunk_rows: int | None = None):
    r"""LogME: the average per-class log maximum evidence of a Bayesian linear model (You et al., ICML 2021).

    For each class c the one-hot target ``y_c`` (N,) is modelled as ``y = F w + e`` with prior
    ``w ~ N(0, alpha^-1 I_D)`` and noise ``e ~ N(0, beta^-1 I_N)``; the evidence (Eq. 2 of the paper) is

    ``L(alpha, beta) = N/2 log beta + D/2 log alpha - N/2 log 2 pi - beta/2 |F m - y|^2 - alpha/2 m^T m
    - 1/2 log|A|``, with ``A = alpha I + beta F^T F`` and ``m = beta A^-1 F^T y``,

    maximised by the fixed-point iteration of Algorithm 1 (``gamma = sum_i beta s_i / (alpha + beta s_i)``,
    ``alpha <- gamma / m^T m``, ``beta <- (N - gamma) / |F m - y|^2``, from ``alpha = beta = 1``). The score is
    ``L / N`` averaged over the classes present. No centring (as in the paper).

    Computation: with ``F^T F = V diag(s) V^T`` (eigendecomposition of the Gram from the one pass, obtained from
    the tridiagonal reduction of the centred scatter that H-score shares, see
    :class:`~tasklens.metrics.shared_eigen.SharedEigen`), the
    projections on the left singular vectors are ``U^T y_c = V^T F^T y_c / s^(1/2)`` and ``F^T y_c`` are the
    class sums, so the cost is O(D^3 + C D^2), independent of N. ``log|A|`` runs over all D eigenvalues: the
    ``D - rank`` zero ones contribute ``log alpha`` each, which keeps the evidence right for N < D (the public
    implementation's truncated SVD drops them).

    Parameters
    ----------
    features : (N, D) float array (numpy or torch)
    labels : (N,) or (N, T) int class codes
    rtol : float, optional
        Eigenvalues of ``F^T F`` at or below ``rtol * largest`` count as zero. Default: the larger of
        ``D * eps64 * largest`` (the eigensolver's error) and ``eps * tr(scatter)`` with eps of the input dtype
        (the rounding of chunk Grams formed in float32; the centred scatter, not the raw Gram, sets that scale).
    chunk_rows : int, optional
        Rows per chunk of the pass (default about 32 MiB of features).

    Returns
    -------
    float (labels (N,)) or float64 (T,) (labels (N, T)); torch input gives float64 tensors.

    Notes
    -----
    The iteration stops when ``alpha / beta`` changes by at most ``1e-10`` relative (at most 1000 steps), so
    the score is the maximum to about 1e-12 relative. Against a float64 reference by the SVD of the features,
    float64 input agrees to about 1e-10 relative; float32 input (chunk Grams formed in float32, then summed in
    float64) to a few 1e-6 when the features have full rank and about 1e-4 when N < D. If ``y_c`` is
    orthogonal to every feature direction the maximum is at ``alpha = inf`` and its limit
    ``N/2 log(N / n_c) - N/2 - N/2 log 2 pi`` (over N) is used; likewise when the iteration drives
    ``alpha / beta`` above ``1e14`` times the largest eigenvalue (features carry no evidence for that class).
    When ``y_c`` lies in the column space of the features (``|y|^2 - |U^T y|^2 <= 1e-12 |y|^2``, e.g. N = D)
    and the iteration drives ``alpha / beta`` below ``1e-14`` times the smallest non-zero eigenvalue, the
    maximum is the noise-free limit ``beta -> inf``: ``N/2 log(alpha) - 1/2 sum log s_i - N/2 - N/2 log 2 pi``
    with ``alpha = N / sum_i (u_i^T y)^2 / s_i`` when rank = N, and ``+inf`` when rank < N (the evidence is
    unbounded: the features fit the class indicator exactly).

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import logme
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 200)
    >>> x = rng.normal(size=(200, 5)) + np.eye(3, 5)[y] * 3
    >>> bool(logme(x, y) > logme(rng.normal(size=(200, 5)), y))
    True
    """
    x, y, c, multi, be = _prepare(features, labels, min_rows=1)
    if rtol is not None:
        rtol = check_positive(rtol, "rtol", allow_zero=True)
    st = _collect(x, y, c, chunk_rows=chunk_rows)
    return _finish(_logme_from_stats(st, rtol), multi, be)


# ---------------------------------------------------------------------------------------------- TransRate

def _transrate_from_stats(x: np.ndarray, y: np.ndarray, st: FeatureStats, eps: float, step: int) -> np.ndarray:
    n, f = float(st.n), st.num_features
    a = st.scatter() / (n * eps)
    a.flat[:: f + 1] += 1.0
    with _one_thread():
        rate = 0.5 * _logdet_pd(a)
    dets = class_log_dets(x, y, st.num_classes, st.mean(), eps, step)
    return rate - 0.5 * np.nanmean(dets, axis=1)


def transrate(features, labels, *, eps: float = 1e-4, chunk_rows: int | None = None):
    r"""TransRate: coding rate of the features minus their class-conditional rate (Huang et al., ICML 2022).

    With ``Z`` the globally centred features (N, D) and ``Z_c`` the rows of class c (``n_c`` rows):

    ``TrR = R(Z, eps) - R(Z, eps | Y)``, ``R(Z, eps) = 1/2 log det(I_D + Z^T Z / (N eps))``,
    ``R(Z, eps | Y) = 1/K sum_c 1/2 log det(I_D + Z_c^T Z_c / (n_c eps))``,

    the rate-distortion estimate of the mutual information between features and labels (Sec. 3 of the paper:
    the coding rate of Ma et al. (2007), Eqs. 3-5). The scaling ``1 / (n eps)`` and the plain average over
    the K classes present follow the authors' released implementation (the paper writes the rate with
    ``D / (n eps^2)`` and class weights ``n_c / N``); ``eps = 1e-4`` is its default.

    Cost: one pass for the Gram (``R(Z)``, one D x D Cholesky factorisation), then each class's rows once more
    (:func:`~tasklens.metrics.class_rates.class_log_dets`): a class with ``n_c < D`` rows by Sylvester's identity
    ``det(I_D + a Z_c^T Z_c) = det(I_{n_c} + a Z_c Z_c^T)`` from its ``n_c x n_c`` kernel (``n_c^2 D / 2``
    multiply-adds, an ``n_c^3 / 3`` factorisation), a larger class from its D x D Gram; no per-class D x D state is
    kept. Agrees with a float64 reference (``slogdet`` on the data) to about 1e-10 relative on float64 input and
    about 1e-4 on float32 input (Grams and kernels of rows centred on the float32-rounded mean formed in float32,
    factorised in float64).

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import transrate
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> x = rng.normal(size=(300, 4)) + np.eye(3, 4)[y] * 2
    >>> bool(transrate(x, y) > transrate(rng.normal(size=(300, 4)), y))
    True
    """
    eps = check_scalar(eps, "eps", min=0.0, min_inclusive=False)
    x, y, c, multi, be = _prepare(features, labels, min_rows=1)
    step = _chunk_rows(x, chunk_rows)
    st = _collect(x, y, c, chunk_rows=step)
    return _finish(_transrate_from_stats(x, y, st, eps, step), multi, be)


# ---------------------------------------------------------------------------------------------- GBC

def _gbc_from_stats(st: FeatureStats, var_floor: float) -> np.ndarray:
    out = np.empty(st.num_targets)
    for t in range(st.num_targets):
        counts = st.class_counts[t]
        present = np.flatnonzero(counts)
        cnt = counts[present][:, None]
        mu = st.class_sums[t, present] / cnt
        var = np.maximum(st.class_squares[t, present] / cnt - mu * mu, var_floor)
        logv = np.log(var)
        total = 0.0
        for i in range(present.size):
            avg = 0.5 * (var[i] + var)
            diff = mu[i] - mu
            db = (diff * diff / avg).sum(axis=1) / 8.0 + 0.5 * (
                np.log(avg).sum(axis=1) - 0.5 * logv[i].sum() - 0.5 * logv.sum(axis=1))
            bc = np.exp(-db)
            bc[i] = 0.0
            total += float(bc.sum())
        out[t] = -total
    return out


def gbc(features, labels, *, var_floor: float = 1e-4, chunk_rows: int | None = None):
    r"""GBC: minus the summed Bhattacharyya coefficients between per-class diagonal Gaussians (Pándy et al., 2022).

    Each class c is a Gaussian ``N(mu_c, diag(sigma_c^2))`` with the class mean and the (biased) per-dimension
    class variance, floored at ``var_floor`` (1e-4, as in the authors' code, so constant features and one-sample
    classes stay finite). The Bhattacharyya distance (Eq. 2 of the paper, with ``Sigma = (Sigma_i + Sigma_j) / 2``)

    ``D_B(i, j) = 1/8 (mu_i - mu_j)^T Sigma^-1 (mu_i - mu_j) + 1/2 ln(det Sigma / sqrt(det Sigma_i det Sigma_j))``

    gives the coefficient ``BC = exp(-D_B)`` (Eq. 1), and ``GBC = - sum_{i != j} BC(i, j)`` (Eq. 3) over the
    classes present (each unordered pair counted twice, as in the paper). Higher (closer to 0) is better.

    From per-class counts, sums and sums of squares of one pass: O(N D + C^2 D). Agrees with a direct float64
    computation to about 1e-10 relative (float64 input); the variances come from sums of squares about the
    global mean, so a class whose spread is below ``1e-8`` of its distance to the global mean loses digits.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import gbc
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> x = rng.normal(size=(300, 4))
    >>> bool(gbc(x + np.eye(3, 4)[y] * 4, y) > gbc(x, y))
    True
    """
    var_floor = check_scalar(var_floor, "var_floor", min=0.0, min_inclusive=False)
    x, y, c, multi, be = _prepare(features, labels, min_rows=1)
    st = _collect(x, y, c, squares=True, chunk_rows=chunk_rows)
    return _finish(_gbc_from_stats(st, var_floor), multi, be)


# ---------------------------------------------------------------------------------------------- SFDA

def _power_top(a: np.ndarray, steps: int = 3) -> float:
    """Largest eigenvalue of a symmetric PSD matrix by the fixed 3-step power iteration of the SFDA code."""
    x = a.sum(axis=1)
    y = x
    for _ in range(steps):
        tmp = a @ x
        y = tmp / np.linalg.norm(tmp)
        tmp = a @ y
        x = tmp / np.linalg.norm(tmp)
    return float(x @ a @ y)


def _fisher_fit(n: float, counts: np.ndarray, means: np.ndarray, gram: np.ndarray, lam: float | None):
    """Shrinkage-regularised LDA of the SFDA paper from (counts, shifted class means, shifted Gram).

    Returns (coef (K, F), intercept (K,), lam): class scores ``z coef^T + intercept`` of shifted rows ``z``.
    """
    f = gram.shape[0]
    from scipy.linalg import cho_factor, cho_solve

    with _one_thread():
        weighted = means.T * np.sqrt(counts)
        sw = weighted @ weighted.T  # BLAS syrk: sum_c n_c mu_c mu_c^T
        np.subtract(gram, sw, out=sw)
        sw /= n  # sum_c prior_c cov_c (biased class covariances)
        if lam is None:
            lam = max(float(np.exp(-5.0 * _power_top(sw))), 1e-10)
        ridge = lam * float(np.trace(sw)) / f
        sw *= 1.0 - lam  # the shrunk matrix, in place
        sw.flat[:: f + 1] += ridge
        # sw.T is Fortran-ordered: factorised in place; its upper triangle is sw's lower one
        coef = cho_solve(cho_factor(sw.T, lower=False, overwrite_a=True, check_finite=False), means.T,
                         check_finite=False).T
    intercept = -0.5 * np.einsum("kf,kf->k", means, coef) + np.log(counts / n)
    return coef, intercept, lam


#: Rows per float64 block of :func:`_shifted_product` (a block of 2048 features is 4 MiB: it stays in cache).
SCORE_BLOCK_ROWS = 256


def _shifted_product(x: np.ndarray, shift: np.ndarray, coef_t: np.ndarray) -> np.ndarray:
    """``(x - shift) @ coef_t`` in float64 (x in its dtype, shift and coef_t float64), converted block by block so
    the float64 copy of the rows never leaves the cache; each row's product does not depend on the blocking."""
    out = np.empty((x.shape[0], coef_t.shape[1]))
    buf = np.empty((min(SCORE_BLOCK_ROWS, x.shape[0]), x.shape[1]))
    for r0 in range(0, x.shape[0], SCORE_BLOCK_ROWS):
        r1 = min(x.shape[0], r0 + SCORE_BLOCK_ROWS)
        z = buf[:r1 - r0]
        np.subtract(x[r0:r1], shift, out=z)
        np.matmul(z, coef_t, out=out[r0:r1])
    return out


def _softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max(axis=1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    return s


def _sfda_target(x: np.ndarray, yt: np.ndarray, st: FeatureStats, t: int, step: int, log: bool) -> float:
    counts_all = st.class_counts[t]
    present = np.flatnonzero(counts_all)
    k = present.size
    if k < 2:
        raise ValueError(f"labels: SFDA needs at least 2 classes in each target, target {t} has {k}")
    code = np.full(st.num_classes, -1)
    code[present] = np.arange(k)
    yk = code[yt]
    n = float(st.n)
    counts = counts_all[present]
    means = st.class_sums[t, present] / counts[:, None]
    coef, icpt, lam = _fisher_fit(n, counts, means, st.gram, None)
    # ConfMix: x~_i = p_i x_i + (1 - p_i) m_{y_i}, m_c the mean of the other classes' means
    others = (means.sum(axis=0) - means) / (k - 1)
    shift = st.shift
    shift_x = shift.astype(x.dtype)  # exact: the shift is rounded to the input dtype (FeatureStats.update)
    coef_t = np.ascontiguousarray(coef.T)
    p = np.empty(x.shape[0])
    f = st.num_features
    wgram = np.zeros((f, f))
    a = np.zeros((k, f))
    u = np.zeros((k, f))
    b = np.zeros(k)
    w = np.zeros(k)
    for r0 in range(0, x.shape[0], step):
        xc = x[r0:r0 + step]
        yc = yk[r0:r0 + step]
        scores = _shifted_product(xc, shift, coef_t)
        scores += icpt
        prob = _softmax(_softmax(scores))  # the code's "soften" step: softmax of the posteriors
        pc = prob[np.arange(xc.shape[0]), yc]
        p[r0:r0 + step] = pc
        # class-sorted p_i z_i in the input dtype (z_i = x_i - shift exactly as the pass formed it): its Gram
        # (summed in float64) and per-class sums are contiguous slices
        order = np.argsort(yc, kind="stable")
        ps = pc[order]
        pz = xc[order]
        pz -= shift_x
        pz *= ps.astype(x.dtype)[:, None]
        _gram(pz, out=wgram)
        weights = np.stack([np.ones_like(ps), 1.0 - ps]).astype(x.dtype)
        bounds = np.concatenate(([0], np.cumsum(np.bincount(yc, minlength=k))))
        for c in np.flatnonzero(bounds[1:] > bounds[:-1]):
            sl = slice(bounds[c], bounds[c + 1])
            au = weights[:, sl] @ pz[sl]  # (sum p z, sum (1 - p) p z) of the class's rows in this chunk
            a[c] += au[0]
            u[c] += au[1]
        b += np.bincount(yc, weights=1.0 - pc, minlength=k)
        w += np.bincount(yc, weights=(1.0 - pc) ** 2, minlength=k)
    means2 = (a + b[:, None] * others) / counts[:, None]
    cross = u.T @ others
    mixed = others.T * np.sqrt(w)
    gram2 = wgram  # sum_i x~_i x~_i^T about the shift, in place: p^2 z z^T + cross terms + (1 - p)^2 m m^T
    gram2 += cross
    gram2 += cross.T
    gram2 += mixed @ mixed.T
    coef2, icpt2, _ = _fisher_fit(n, counts, means2, gram2, lam)
    mix = others @ coef2.T  # (K, K): score of each class's mix target under every class
    coef2_t = np.ascontiguousarray(coef2.T)
    total = 0.0
    for r0 in range(0, x.shape[0], step):
        xc = x[r0:r0 + step]
        yc = yk[r0:r0 + step]
        pc = p[r0:r0 + step, None]
        scores = _shifted_product(xc, shift, coef2_t)
        scores *= pc
        scores += (1.0 - pc) * mix[yc]
        scores += icpt2
        prob = _softmax(scores)
        mine = prob[np.arange(xc.shape[0]), yc]
        total += float(np.log(mine).sum() if log else mine.sum())
    return total / n


def _sfda_from_stats(x, y, st: FeatureStats, step: int, log: bool) -> np.ndarray:
    # (rows x F) @ (F x K) products and F x F solves: one BLAS thread (the Grams use the tasklens pool)
    with _one_thread():
        return np.array([_sfda_target(x, y[:, t], st, t, step, log) for t in range(st.num_targets)])


def sfda(features, labels, *, log: bool = False, chunk_rows: int | None = None):
    r"""SFDA: self-challenging Fisher discriminant analysis score (Shao et al., ECCV 2022).

    Implemented as the authors' released code does it (the paper's Sec. 3.2-3.3):

    1. Regularised Fisher space (Eq. 4-6): within-class covariance ``S_w = sum_c (n_c/N) cov_c`` (biased class
       covariances), shrunk as ``(1 - lam) S_w + lam tr(S_w)/D I`` with ``lam = max(exp(-5 s), 1e-10)``, ``s``
       the largest eigenvalue of ``S_w`` from 3 power-iteration steps started at ``S_w 1`` (the code's
       ``iterative_A``). The code projects on all generalized eigenvectors V of (S_b, S_w) and scores with
       ``mu_c V V^T``; since ``V V^T = S_w^-1`` this is the shrinkage-LDA score
       ``x S_w^-1 mu_c - 1/2 mu_c S_w^-1 mu_c + log(n_c / N)``, computed here by a Cholesky solve.
    2. Self-challenge, ConfMix (Eq. 7): with ``p_i`` the true-class entry of ``softmax(softmax(scores_i))`` (the
       code softens the posteriors by a second softmax), ``x~_i = p_i x_i + (1 - p_i) m_{y_i}``, where ``m_c``
       is the mean of the other classes' means.
    3. Refit the Fisher space on ``x~`` with the same ``lam``; the score (Eq. 8) is the mean posterior
       probability of the true class, ``1/N sum_i p(y_i | x~_i)`` (the code drops the log "for stability");
       ``log=True`` gives the paper's mean log-likelihood ``1/N sum_i log p(y_i | x~_i)`` instead.

    The statistics of step 1 come from the one pass; steps 2 and 3 need the samples, so SFDA reads the
    features twice more (a weighted Gram of ``p_i x_i`` and per-class weighted sums, then the scores):
    O(N D^2 + N D K + D^3). Agrees with a direct float64 implementation of the code to about 1e-9 relative on
    float64 input (the Grams of float32 input are formed in float32: about 1e-5).
    Needs at least 2 classes per target.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import sfda
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> x = rng.normal(size=(300, 4))
    >>> bool(sfda(x + np.eye(3, 4)[y] * 3, y) > sfda(x, y))
    True
    """
    x, y, c, multi, be = _prepare(features, labels)
    step = _chunk_rows(x, chunk_rows)
    st = _collect(x, y, c, chunk_rows=step)
    return _finish(_sfda_from_stats(x, y, st, step, bool(log)), multi, be)


# ---------------------------------------------------------------------------------------------- report

def _hscore_from_stats(st: FeatureStats, spectra: SharedEigen) -> np.ndarray:
    """H-score (Bao et al. 2019) ``tr(Sigma^+ Sigma_between)`` from the centred scatter's eigendecomposition, with
    the pseudo-inverse rule of :func:`~tasklens.metrics.hscore_from_state` (eigenvalues above ``F eps * largest``
    kept, eps of the input dtype); equal to :func:`~tasklens.metrics.hscore` up to rounding."""
    n, f = float(st.n), st.num_features
    lam = spectra.centred_values / n
    top = float(lam.max()) if lam.size else 0.0
    if top <= 0.0:
        return np.zeros(st.num_targets)
    keep = lam > default_rtol(f, st.dtype) * top
    inv = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
    counts = st.class_counts
    dev = st.class_sums / np.where(counts > 0, counts, 1.0)[..., None] - st.centre()  # mu_tc - mu
    proj = spectra.project(dev.reshape(-1, f).T, raw=False).T  # (T * C, F) in the eigenbasis
    h = (proj * proj) @ inv * (counts / n).reshape(-1)
    h = h.reshape(st.num_targets, -1).sum(axis=1)
    h[(counts > 0).sum(axis=1) <= 1] = 0.0  # one class: the between-class covariance is exactly 0
    return h


def transferability_report(features, labels, metrics=("hscore", "logme", "transrate", "gbc", "sfda"), *,
                           chunk_rows: int | None = None) -> dict:
    """Several transferability estimators from ONE pass of sufficient statistics over the features.

    The pass accumulates (float64, chunked, mergeable; see :class:`~tasklens.metrics.feature_stats.FeatureStats`)
    the count, the shifted Gram and sums, per-class counts and sums, per-class sums of squares when ``"gbc"``
    is asked; every estimator is then computed from it with its default parameters: ``hscore`` (Bao et al.,
    2019; the rule of :func:`~tasklens.metrics.hscore_from_state`) and :func:`logme` from one shared tridiagonal
    reduction of the scatter (:class:`~tasklens.metrics.shared_eigen.SharedEigen`), :func:`transrate` (whose
    class rates read each class's rows once more), :func:`gbc` and :func:`sfda` (whose ConfMix step and score
    read the features twice more). Values equal the separate calls to rounding (about 1e-12 relative on float64
    input; ``hscore`` runs a different engine: about 1e-9 on float64, 1e-6 on float32 input).

    Parameters
    ----------
    features : (N, F) float array; labels : (N,) or (N, T) int class codes
    metrics : iterable of names from :data:`FEATURE_METRICS`
    chunk_rows : rows per chunk (results do not depend on it beyond rounding)

    Returns
    -------
    dict name -> float (labels (N,)) or float64 (T,) array, in the order asked; torch input gives tensors.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.metrics import transferability_report, logme
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(500, 6)), rng.integers(0, 4, 500)
    >>> report = transferability_report(x, y)
    >>> sorted(report)
    ['gbc', 'hscore', 'logme', 'sfda', 'transrate']
    >>> bool(np.isclose(report["logme"], logme(x, y), rtol=1e-10))
    True
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    for m in metrics:
        if m not in FEATURE_METRICS:
            raise ValueError(f"metrics: unknown estimator {m!r}; choose from {', '.join(FEATURE_METRICS)}")
    if not metrics:
        raise ValueError("metrics: expected at least one estimator name")
    x, y, c, multi, be = _prepare(features, labels)
    step = _chunk_rows(x, chunk_rows)
    st = _collect(x, y, c, squares="gbc" in metrics, chunk_rows=step)
    values = {}
    # The shared F x F reduction (LAPACK, memory-bound) runs on a side thread while the per-sample parts
    # (TransRate's class kernels, SFDA's sweeps) run here; every part runs on one BLAS thread, under one
    # process-wide limit held for the whole section (the inner limits then restore 1), so the values do not
    # depend on the overlap.
    with _one_thread(), ThreadPoolExecutor(1) as side:
        spectra = side.submit(_spectra, st) if {"hscore", "logme"} & set(metrics) else None
        if "transrate" in metrics:
            values["transrate"] = _transrate_from_stats(x, y, st, 1e-4, step)
        if "gbc" in metrics:
            values["gbc"] = _gbc_from_stats(st, 1e-4)
        if "sfda" in metrics:
            values["sfda"] = _sfda_from_stats(x, y, st, step, False)
        if spectra is not None:
            spectra = spectra.result()
            if "hscore" in metrics:
                values["hscore"] = _hscore_from_stats(st, spectra)
            if "logme" in metrics:
                values["logme"] = _logme_from_stats(st, None, spectra)
    return {m: _finish(values[m], multi, be) for m in metrics}
