"""Soft-HGR (Eq. 3 of the H-score paper): HGR maximal correlation of continuous variables with two networks."""

from __future__ import annotations

import copy

import numpy as np

from .._dispatch import backend_of
from .._validation import check_array, check_int, check_positive, check_scalar, describe, is_torch


def soft_hgr_loss(f, g):
    """Negative soft-HGR objective of a batch of paired features (Eq. 3), to minimise.

    ``loss = -( E[f(X)^T g(Y)] - 1/2 tr(cov(f(X)) cov(g(Y))) )`` with f and g centred over the batch (the
    zero-mean constraint of Eq. 3) and ``1 / (m - 1)`` sample normalisation. Its minimum over all f, g with k
    outputs is ``-1/2 sum_{i<=k} sigma_i^2`` (sigma_i the HGR maximal correlations), reached by scaled HGR
    feature functions, without the whitening constraints of Eq. 2.

    Parameters
    ----------
    f, g : (m, k) torch tensors (m >= 2), the two networks' outputs on m paired samples; same dtype and device.

    Returns
    -------
    torch.Tensor
        A scalar, differentiable with respect to f and g.

    Notes
    -----
    O(m k^2) time, O(k^2) extra memory. Deterministic for deterministic torch kernels.

    Examples
    --------
    >>> import torch
    >>> from tasklens.hgr import soft_hgr_loss
    >>> f = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    >>> round(float(soft_hgr_loss(f, f)), 4)  # E[f g] = 4/3, cov(f) cov(g) = 16/9
    -0.4444
    """
    for name, v in (("f", f), ("g", g)):
        if not is_torch(v):
            raise TypeError(f"soft_hgr_loss: {name} must be a torch tensor, got {describe(v)}")
    f = check_array(f, "f", ndim=2, min_rows=2)
    g = check_array(g, "g", ndim=2, shape=tuple(f.shape))
    if f.dtype != g.dtype or f.device != g.device:
        raise TypeError(f"soft_hgr_loss: f and g must share dtype and device ({describe(f)}; {describe(g)})")
    m = f.shape[0]
    f0 = f - f.mean(dim=0, keepdim=True)
    g0 = g - g.mean(dim=0, keepdim=True)
    cross = (f0 * g0).sum() / (m - 1)
    cov_f = f0.T @ f0 / (m - 1)
    cov_g = g0.T @ g0 / (m - 1)
    return -(cross - 0.5 * (cov_f * cov_g).sum())


def _inv_sqrt(c, rtol: float = 1e-10):
    w, v = np.linalg.eigh(c)
    keep = w > rtol * max(w.max(initial=0.0), 1e-300)
    scale = np.zeros_like(w)
    scale[keep] = 1.0 / np.sqrt(w[keep])
    return (v * scale) @ v.T


class SoftHGR:
    """Estimate HGR maximal correlations of continuous (or one-hot) variables by soft-HGR training (Eq. 3).

    Two MLPs f: R^dx -> R^k and g: R^dy -> R^k (Fig. 2b) are trained with Adam to minimise
    :func:`soft_hgr_loss`. After training, the outputs are centred, whitened and rotated by a canonical
    correlation analysis, so ``transform``/``transform_y`` return features with zero mean and identity
    covariance and ``correlations_`` holds the estimated maximal correlations sigma_1 >= ... >= sigma_k.

    Parameters
    ----------
    k : number of modes (output units of each network).
    hidden : hidden layer widths of both networks (``()`` gives linear maps, exact for one-hot inputs).
    epochs : maximum number of epochs.
    batch_size : minibatch size (``None``: full batch).
    lr, weight_decay : Adam settings.
    patience : stop after this many epochs without improving the monitored loss by more than ``min_delta``.
    min_delta : smallest improvement that resets the patience counter.
    validation_fraction : fraction of samples held out to monitor early stopping (0: monitor the training loss).
    seed : seeds the split, the initial weights and the batch order (global RNG state is left untouched).
    device : torch device for training (default: the input's device, CPU for numpy input).

    Attributes
    ----------
    correlations_ : (k,) numpy float64, estimated maximal correlations on the data passed to ``fit``.
    objective_ : float, the soft-HGR objective (Eq. 3) of the final networks on that data.
    n_epochs_ : epochs run; ``history_``: monitored loss per epoch.
    f_net_, g_net_ : the trained torch modules.

    Notes
    -----
    Each epoch costs O(N (dx + dy) w + N k^2) for hidden width w. Deterministic on CPU for a fixed seed.

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.hgr import SoftHGR
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)); y = x + 0.5 * rng.normal(size=(2000, 1))
    >>> est = SoftHGR(k=1, hidden=(16,), epochs=200, seed=0).fit(x, y)
    >>> bool(0.8 < est.correlations_[0] < 0.95)   # Gaussian: rho = 1 / sqrt(1.25) = 0.894
    True
    """

    def __init__(self, k: int = 1, *, hidden=(64,), epochs: int = 500, batch_size: int | None = None,
                 lr: float = 1e-2, weight_decay: float = 0.0, patience: int = 20, min_delta: float = 1e-7,
                 validation_fraction: float = 0.0, seed: int = 0, device=None):
        self.k = k
        self.hidden = tuple(hidden)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.min_delta = min_delta
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.device = device

    # -- helpers -------------------------------------------------------------------------------------------
    def _tensor(self, v, name: str, n=None):
        import torch

        v = check_array(v, name, ndim=(1, 2))
        if not is_torch(v):
            v = torch.from_numpy(v)
        if v.ndim == 1:
            v = v[:, None]
        if n is not None and v.shape[0] != n:
            raise ValueError(f"{name}: expected {n} rows (one per sample), got {describe(v)}")
        return v

    def _mlp(self, d_in: int):
        import torch

        layers, width = [], d_in
        for h in self.hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, self.k))
        return torch.nn.Sequential(*layers)

    def _check_params(self):
        for name in ("k", "epochs", "patience", "seed"):
            check_int(getattr(self, name), f"SoftHGR: {name}", min=0 if name == "seed" else 1)
        check_int(self.batch_size, "SoftHGR: batch_size", min=2, allow_none=True)
        for h in self.hidden:
            check_int(h, "SoftHGR: hidden", min=1)
        check_positive(self.lr, "lr")
        check_positive(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive(self.min_delta, "min_delta", allow_zero=True)
        check_scalar(self.validation_fraction, "SoftHGR: validation_fraction", min=0.0, max=1.0,
                     max_inclusive=False)

    # -- API -----------------------------------------------------------------------------------------------
    def fit(self, x, y) -> "SoftHGR":
        """Train f on x ((N,) or (N, dx)) and g on y ((N,) or (N, dy)); numpy arrays or torch tensors."""
        import torch

        self._check_params()
        self._kind = "torch" if is_torch(x) else "numpy"
        xt = self._tensor(x, "x")
        yt = self._tensor(y, "y", n=xt.shape[0])
        n = xt.shape[0]
        n_val = int(round(self.validation_fraction * n))
        if n - n_val < 2 or (n_val and n_val < 2):
            raise ValueError(f"SoftHGR: need >= 2 training and validation samples, got N={n}, "
                             f"validation_fraction={self.validation_fraction}")
        device = torch.device(self.device) if self.device is not None else xt.device
        dtype = torch.float64 if xt.dtype == torch.float64 or yt.dtype == torch.float64 else torch.float32
        xt, yt = xt.to(device, dtype), yt.to(device, dtype)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            gen = torch.Generator().manual_seed(self.seed)
            perm = torch.randperm(n, generator=gen).to(device)
            val_idx, tr_idx = perm[:n_val], perm[n_val:]
            self.f_net_ = self._mlp(xt.shape[1]).to(device, dtype)
            self.g_net_ = self._mlp(yt.shape[1]).to(device, dtype)
            params = list(self.f_net_.parameters()) + list(self.g_net_.parameters())
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
            bs = len(tr_idx) if self.batch_size is None else min(int(self.batch_size), len(tr_idx))
            best, best_state, wait, self.history_ = np.inf, None, 0, []
            for epoch in range(int(self.epochs)):
                order = tr_idx[torch.randperm(len(tr_idx), generator=gen).to(device)] if bs < len(tr_idx) else tr_idx
                total = 0.0
                for start in range(0, len(order) - 1, bs):
                    idx = order[start:start + bs]
                    if len(idx) < 2:
                        continue
                    loss = soft_hgr_loss(self.f_net_(xt[idx]), self.g_net_(yt[idx]))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                if n_val:
                    with torch.no_grad():
                        monitored = float(soft_hgr_loss(self.f_net_(xt[val_idx]), self.g_net_(yt[val_idx])))
                else:
                    monitored = total / len(order)
                self.history_.append(monitored)
                if monitored < best - self.min_delta:
                    best, wait = monitored, 0
                    best_state = (copy.deepcopy(self.f_net_.state_dict()), copy.deepcopy(self.g_net_.state_dict()))
                else:
                    wait += 1
                    if wait >= self.patience:
                        break
            self.n_epochs_ = epoch + 1
            if best_state is not None:
                self.f_net_.load_state_dict(best_state[0])
                self.g_net_.load_state_dict(best_state[1])
        self._fit_cca(xt, yt)
        return self

    def _fit_cca(self, xt, yt) -> None:
        import torch

        with torch.no_grad():
            fo = self.f_net_(xt).double().cpu().numpy()
            go = self.g_net_(yt).double().cpu().numpy()
            self.objective_ = -float(soft_hgr_loss(torch.from_numpy(fo), torch.from_numpy(go)))
        self._mu_f, self._mu_g = fo.mean(axis=0), go.mean(axis=0)
        f0, g0 = fo - self._mu_f, go - self._mu_g
        n = fo.shape[0]
        wf, wg = _inv_sqrt(f0.T @ f0 / n), _inv_sqrt(g0.T @ g0 / n)
        u, s, vt = np.linalg.svd(wf @ (f0.T @ g0 / n) @ wg)
        self._wf, self._wg = wf @ u, wg @ vt.T
        self.correlations_ = np.clip(s, 0.0, 1.0)

    def _apply(self, side, v, name):
        import torch

        if not hasattr(self, "correlations_"):
            raise RuntimeError("SoftHGR: call fit(x, y) first")
        net, mu, w = getattr(self, f"{side}_net_"), getattr(self, f"_mu_{side}"), getattr(self, f"_w{side}")
        v = check_array(v, name, ndim=(1, 2))
        backend = backend_of(**{name: v})
        t = self._tensor(v, name)
        p = next(net.parameters())
        with torch.no_grad():
            o = net(t.to(p.device, p.dtype)).double().cpu().numpy()
        return backend.out((o - mu) @ w)

    def transform(self, x):
        """Whitened f(x) (N, k): zero mean, identity covariance on the fit data, aligned with ``correlations_``."""
        return self._apply("f", x, "x")

    def transform_y(self, y):
        """Whitened g(y) (N, k), paired with :meth:`transform` so that E[f g^T] = diag(correlations_)."""
        return self._apply("g", y, "y")

    def fit_transform(self, x, y):
        """``fit(x, y).transform(x)``."""
        return self.fit(x, y).transform(x)
