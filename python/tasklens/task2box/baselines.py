"""Baselines of the Task2Box paper (§4.2), with the same ``fit`` / score-matrix interface as Task2Box.

Every baseline has ``fit(X, relations, train_mask, val_mask=None)`` returning ``self`` and
``score(X_a, X_b=None)`` returning an (N_a, N_b) matrix, higher = more likely ``a_i ⊂ b_j``
(``containment`` is an alias, so a baseline can replace a Task2Box model in evaluation code).
Thresholds are chosen by :func:`tasklens.task2box.evaluate_hierarchy` on validation pairs, as for Task2Box.

- :class:`LinearBaseline`, :class:`MLPBaseline`: pair classifiers on ``[e_i, e_j]`` (1 and 4 layers),
  trained with class-weighted binary cross-entropy (positives weighted sqrt(n_neg / n_pos) by default,
  as in Task2Box's L_E; ``pos_weight="balanced"`` or a number also accepted), Adam, mini-batches of pairs, validation F1 and
  early stopping: the same loop and budget as Task2Box. Graded relations are soft targets (see ``fit``). The first layer is applied to ``e_i`` and
  ``e_j`` separately (``W [e_i, e_j] = W_a e_i + W_b e_j``), so pair features are never materialised.
- :class:`KLDivergence`: ``-KL(N_i || N_j)`` between diagonal Gaussians from ``[mu, sigma^2]`` rows.
- :class:`AsymmetricCosine`, :class:`AsymmetricEuclidean`: ``-(d(e_i, e_j) - alpha d(e_i, e_o))``
  (Eq. 7) with the trivial embedding ``e_o`` = mean of the representations of the datasets in
  ``train_mask | val_mask`` and ``alpha`` chosen on the training pairs.

Rows of ``X`` outside ``train_mask | val_mask`` (e.g. novel datasets) influence no fitted statistic.
- :class:`RandomBaseline`: uniform random scores.
"""

from __future__ import annotations

import numpy as np

from .._dispatch import backend_of, to_host
from .._validation import check_array, check_int, check_positive, describe
from .._validation import check_devices
from .evaluate import validation_f1
from .model import check_training_options, class_weights, held_out_score, is_graded, prepare_fit, seen_datasets
from .train import run_training, torch_threads

__all__ = ["LinearBaseline", "MLPBaseline", "KLDivergence", "AsymmetricCosine", "AsymmetricEuclidean",
           "RandomBaseline", "BASELINES"]


class _ScoreBase:
    """Shared input handling: fitted dimension, numpy/torch in -> same kind out."""

    in_dim_ = None

    def _inputs(self, X_a, X_b):
        if self.in_dim_ is None:
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(X, relations, train_mask) first")
        check_devices(X_a=X_a, X_b=X_b)
        A = check_array(X_a, "X_a", shape=(None, self.in_dim_))
        B = A if X_b is None else check_array(X_b, "X_b", shape=(None, self.in_dim_))
        be = backend_of(X_a=A, X_b=None if X_b is None else B)
        return np.asarray(to_host(A), np.float64), np.asarray(to_host(B), np.float64), be

    def score(self, X_a, X_b=None):
        """(N_a, N_b) scores, higher = more likely ``a_i ⊂ b_j``; ``X_b`` defaults to ``X_a``."""
        A, B, be = self._inputs(X_a, X_b)
        S = self._score(A, B)
        return be.out(S.astype(be.dtype))

    def containment(self, X_a, X_b=None):
        """Alias of :meth:`score` (the Task2Box method name)."""
        return self.score(X_a, X_b)


# --------------------------------------------------------------------------- trained pair classifiers
def _build_pairnet(in_dim: int, hidden: tuple):
    import torch

    nn = torch.nn

    class PairNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("x_mean", torch.zeros(in_dim))
            self.register_buffer("x_scale", torch.ones(in_dim))
            first = hidden[0] if hidden else 1
            self.left = nn.Linear(in_dim, first)
            self.right = nn.Linear(in_dim, first, bias=False)
            layers, d = [], first
            for h in hidden[1:]:
                layers += [nn.ReLU(), nn.Linear(d, h)]
                d = h
            if hidden:
                layers += [nn.ReLU(), nn.Linear(d, 1)]
            self.rest = nn.Sequential(*layers)

        def halves(self, x):
            z = (x - self.x_mean) / self.x_scale
            return self.left(z), self.right(z)

        def pairs(self, a, b):
            return self.rest(a + b).squeeze(-1)

        def dense(self, xa, xb, chunk: int = 65536):
            a, _ = self.halves(xa)
            _, b = self.halves(xb)
            rows = max(1, chunk // max(b.shape[0], 1))
            out = [self.pairs(a[s:s + rows, None, :], b[None, :, :]) for s in range(0, a.shape[0], rows)]
            return torch.cat(out, 0)

    return PairNet()


class _PairClassifier(_ScoreBase):
    _hidden: tuple = ()

    def __init__(self, seed: int = 0, *, hidden=None, epochs: int = 100, lr: float = 1e-3,
                 weight_decay: float = 0.0, batch_size: int = 4096, pos_weight="sqrt",
                 eval_every: int = 5, patience: int = 10, progress: bool | None = None,
                 torch_threads: int | None = 1):
        check_positive(lr, "lr")
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        hidden, pos_weight, progress = check_training_options(self._hidden if hidden is None else hidden, pos_weight,
                                                              progress)
        self.config = dict(seed=check_int(seed, "seed", min=0), hidden=hidden,
                           epochs=check_int(epochs, "epochs", min=1), lr=float(lr), weight_decay=float(weight_decay),
                           batch_size=check_int(batch_size, "batch_size", min=1), pos_weight=pos_weight,
                           eval_every=check_int(eval_every, "eval_every", min=1),
                           patience=check_int(patience, "patience", min=1),
                           progress=progress, torch_threads=check_int(torch_threads, "torch_threads", min=1, allow_none=True))
        self.net_ = None
        self.history_ = None

    def fit(self, X, relations, train_mask, val_mask=None):
        """Train on the pairs of ``train_mask`` (class-balanced BCE); early stopping on validation F1.

        Graded relations (a value strictly between 0 and 1 on the masked pairs, e.g. transfer affinities, §4.2;
        recorded in ``graded_``): the BCE targets are the relation values themselves (soft labels), a string
        ``pos_weight`` weighs every pair 1, and early stopping scores Spearman's rho on the validation pairs."""
        with torch_threads(self.config["torch_threads"]):
            return self._fit(X, relations, train_mask, val_mask)

    def _fit(self, X, relations, train_mask, val_mask):
        import torch

        X, R, tr, va = prepare_fit(X, relations, train_mask, val_mask)
        c = self.config
        torch.manual_seed(c["seed"])
        self.in_dim_ = X.shape[1]
        net = _build_pairnet(X.shape[1], c["hidden"])
        Xs = X[seen_datasets(tr, va)]  # statistics of the datasets in the masks only (no novel dataset)
        with torch.no_grad():
            net.x_mean.copy_(torch.as_tensor(Xs.mean(0)))
            net.x_scale.copy_(torch.as_tensor(Xs.std(0) + 1e-8 * max(Xs.std(), 1e-30)))
        Xt = torch.as_tensor(X, dtype=torch.float32)
        ii, jj = (torch.as_tensor(a) for a in np.nonzero(tr))
        self.graded_ = graded = is_graded(R, tr, va)
        y = torch.as_tensor(R[tr] if graded else R[tr] > 0.5, dtype=torch.float32)
        _, w_pos = class_weights(R[tr] > 0.5, c["pos_weight"], graded)
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w_pos))
        opt = torch.optim.Adam(net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        gen = torch.Generator().manual_seed(c["seed"])

        def step(epoch):
            perm = torch.randperm(ii.numel(), generator=gen)
            tot, nb = 0.0, 0
            for s in range(0, perm.numel(), c["batch_size"]):
                sel = perm[s:s + c["batch_size"]]
                opt.zero_grad()
                a, b = net.halves(Xt)
                loss = bce(net.pairs(a[ii[sel]], b[jj[sel]]), y[sel])
                loss.backward()
                opt.step()
                tot += float(loss.detach())
                nb += 1
            return {"loss": tot / nb}

        validate = None
        if va is not None and va.any():
            def validate():
                S = net.dense(Xt, Xt).numpy().astype(np.float64)
                return held_out_score(S, R, va, va, True) if graded else validation_f1(S, R, va)

        self.net_ = net
        self.history_ = run_training(net, opt, step, epochs=c["epochs"], generator=gen, validate=validate,
                                     eval_every=c["eval_every"], patience=c["patience"],
                                     progress=c["progress"], desc=type(self).__name__)
        return self

    def _score(self, A, B):
        import torch

        self.net_.eval()
        with torch.no_grad(), torch_threads(self.config["torch_threads"]):
            return self.net_.dense(torch.as_tensor(A, dtype=torch.float32),
                                   torch.as_tensor(B, dtype=torch.float32)).numpy().astype(np.float64)


class LinearBaseline(_PairClassifier):
    """Logistic regression on ``[e_i, e_j]`` (paper §4.2 "Linear Model"); scores are logits."""

    _hidden = ()


class MLPBaseline(_PairClassifier):
    """4-layer MLP on ``[e_i, e_j]`` (paper §4.2 "MLP Model"), hidden sizes ``(256, 256, 256)``,
    ReLU; scores are logits. Training cost per epoch O(P h^2) for P training pairs."""

    _hidden = (256, 256, 256)


# --------------------------------------------------------------------------- distances
class KLDivergence(_ScoreBase):
    """``S[i, j] = -KL(N(mu_i, s2_i) || N(mu_j, s2_j))`` between diagonal Gaussians (§4.2).

    ``X`` rows are ``[mu, sigma^2]`` (even width; variances must be non-negative). Variances are floored at
    ``var_floor`` times a scale of the training rows: their mean variance, or, when every training variance is
    0 (e.g. one item per dataset), the variance of the means across datasets, or 1 when that is 0 too. The floor
    keeps every score finite (a zero variance would give ``log 0`` and NaN scores). Computed with three GEMMs:
    O(N_a N_b d) time, O(N_a N_b) memory.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0., 1., 0., 0.], [2., 3., 0., 0.]])   # zero variances
    >>> S = KLDivergence().fit(X).score(X)
    >>> bool(np.isfinite(S).all()), float(S[0, 1])
    (True, -4000.0)
    """

    def __init__(self, var_floor: float = 1e-3):
        self.var_floor = check_positive(var_floor, "var_floor")

    def fit(self, X, relations=None, train_mask=None, val_mask=None):
        check_devices(X=X)
        X = np.asarray(to_host(check_array(X, "X", ndim=2, min_rows=1)), np.float64)
        if X.shape[1] == 0 or X.shape[1] % 2:
            raise ValueError(f"X: KL divergence needs [mu, sigma^2] rows of even, non-zero width, got {describe(X)}")
        d = X.shape[1] // 2
        self._check_variances(X, "X")
        self.in_dim_ = X.shape[1]
        if train_mask is not None:  # the variance scale of the datasets in the masks only
            from .evaluate import _mask

            X = X[seen_datasets(_mask(train_mask, X.shape[0], "train_mask"),
                                None if val_mask is None else _mask(val_mask, X.shape[0], "val_mask"))]
        scale = float(np.mean(X[:, d:]))
        if scale <= 0:
            scale = float(np.mean(np.var(X[:, :d], axis=0)))
        self.floor_ = self.var_floor * (scale if scale > 0 else 1.0)
        return self

    @staticmethod
    def _check_variances(X, name):
        d = X.shape[1] // 2
        if (X[:, d:] < 0).any():
            raise ValueError(f"{name}: the variance half of [mu, sigma^2] holds negative values "
                             f"(min {X[:, d:].min():.3g}, {describe(X)}); variances must be >= 0")

    def _score(self, A, B):
        d = A.shape[1] // 2
        self._check_variances(A, "X_a")
        self._check_variances(B, "X_b")
        mu_a, va = A[:, :d], np.maximum(A[:, d:], self.floor_)
        mu_b, vb = B[:, :d], np.maximum(B[:, d:], self.floor_)
        ivb = 1.0 / vb
        kl = va @ ivb.T + (mu_b ** 2 * ivb).sum(1)[None, :] - 2 * mu_a @ (mu_b * ivb).T + (mu_a ** 2) @ ivb.T
        kl += np.log(vb).sum(1)[None, :] - np.log(va).sum(1)[:, None] - d
        return -0.5 * kl


class _Asymmetric(_ScoreBase):
    def __init__(self, alphas=None):
        self.alphas = np.linspace(0.0, 2.0, 21) if alphas is None else np.asarray(alphas, np.float64)

    def fit(self, X, relations, train_mask, val_mask=None):
        """Choose ``alpha`` maximising F1 on the training pairs (threshold tuned there too)."""
        X, R, tr, va = prepare_fit(X, relations, train_mask, val_mask)
        self.in_dim_ = X.shape[1]
        self.e0_ = X[seen_datasets(tr, va)].mean(0, keepdims=True)  # mean of the datasets in the masks
        D = self._dist(X, X)
        d0 = self._dist(X, self.e0_)[:, 0]
        best = (-1.0, 0.0)
        for a in self.alphas:
            f1 = validation_f1(-(D - a * d0[:, None]), R, tr)
            if f1 > best[0] + 1e-12:
                best = (f1, float(a))
        self.alpha_ = best[1]
        return self

    def _score(self, A, B):
        return -(self._dist(A, B) - self.alpha_ * self._dist(A, self.e0_))


class AsymmetricCosine(_Asymmetric):
    """Eq. 7 with the cosine distance: ``-(d_cos(e_i, e_j) - alpha d_cos(e_i, e_o))``."""

    def _dist(self, A, B):
        na = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-300)
        nb = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-300)
        return 1.0 - na @ nb.T


class AsymmetricEuclidean(_Asymmetric):
    """Eq. 7 with the Euclidean distance: ``-(||e_i - e_j|| - alpha ||e_i - e_o||)``."""

    def _dist(self, A, B):
        d2 = (A ** 2).sum(1)[:, None] + (B ** 2).sum(1)[None, :] - 2 * A @ B.T
        return np.sqrt(np.maximum(d2, 0.0))


class RandomBaseline(_ScoreBase):
    """Uniform random scores in [0, 1) (seeded)."""

    def __init__(self, seed: int = 0):
        self.seed = check_int(seed, "seed", min=0)

    def fit(self, X, relations=None, train_mask=None, val_mask=None):
        check_devices(X=X)
        X = check_array(X, "X", ndim=2, min_rows=1)
        self.in_dim_ = X.shape[1]
        return self

    def _score(self, A, B):
        return np.random.default_rng(self.seed).random((A.shape[0], B.shape[0]))


BASELINES = {"MLP": MLPBaseline, "Linear": LinearBaseline, "KL": KLDivergence,
             "AsymCosine": AsymmetricCosine, "AsymEuclidean": AsymmetricEuclidean, "Random": RandomBaseline}
