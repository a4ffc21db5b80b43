"""Shared estimator machinery: device choice, seeding, batching, progress, prediction, save / load."""

from __future__ import annotations

import abc

import contextlib
import sys
import time

import numpy as np
import torch

from tasklens._validation import is_torch

from ._data import as_images, as_labels


def pick_device(device) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def show_progress(progress) -> bool:
    """Bars only when asked (True) or, by default (None), when stderr is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


@contextlib.contextmanager
def deterministic():
    """Deterministic kernels for the duration of a fit (restores the caller's setting)."""
    was = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn)


class Batches:
    """Endless seeded shuffles of ``n`` indices, ``size`` at a time (reshuffled after each pass)."""

    def __init__(self, n: int, size: int, gen: torch.Generator):
        self.n, self.size, self.gen = n, size, gen
        self.perm, self.pos = torch.randperm(n, generator=gen), 0

    def next(self) -> torch.Tensor:
        out = []
        need = self.size
        while need:
            if self.pos == self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
            take = min(need, self.n - self.pos)
            out.append(self.perm[self.pos:self.pos + take])
            self.pos += take
            need -= take
        return torch.cat(out)


class Estimator(abc.ABC):
    """Base of CDLM, DANN, SourceOnly and TargetOnly (scikit-learn style; see each class)."""

    _modules: tuple[str, ...] = ()
    #: training batches over which BatchNorm statistics are recomputed at the end of ``fit`` (see ``_finish``)
    calibration_batches = 100

    def __init__(self, *, seed=0, epochs=10, batch_size=64, width=64, latent=64, device="auto",
                 progress=None):
        self.config = dict(seed=int(seed), epochs=int(epochs), batch_size=int(batch_size), width=int(width),
                           latent=int(latent))
        if self.config["epochs"] < 1 or self.config["batch_size"] < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        self.device = pick_device(device)
        self.progress = progress
        self.meta_: dict | None = None
        self.history_: list[dict] = []

    # -- fitting helpers -----------------------------------------------------------------
    def _setup(self, channels: int, size: int, n_classes: int) -> None:
        self.meta_ = dict(channels=int(channels), size=int(size), n_classes=int(n_classes))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config["seed"])
            self._build()
            from .nets import init_weights

            for name in self._modules:
                init_weights(getattr(self, name))
        for name in self._modules:
            getattr(self, name).to(self.device)

    @abc.abstractmethod
    def _build(self) -> None:
        """Create the networks of the method as attributes listed in ``_modules``."""

    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(self.config["seed"] + 1)
        return g

    def _bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not show_progress(self.progress), leave=False)

    def _log_epoch(self, epoch: int, t0: float, sums: dict, steps: int) -> None:
        """Append an epoch's mean losses and its elapsed seconds to ``history_``."""
        self.history_.append({"epoch": epoch + 1, "seconds": time.perf_counter() - t0,
                              **{k: v / steps for k, v in sums.items()}})

    def _finish(self, bar, forward_batch, batches: int):
        """End of ``fit``: recompute the batch-normalisation statistics, close the progress bar, switch to
        evaluation mode and return the fitted estimator.

        ``forward_batch()`` runs one training-mode forward pass on a fresh training batch (the same kind of
        batch a training step sees). With the weights frozen, every BatchNorm layer's running mean and
        variance are reset and recomputed as plain averages over ``batches`` such passes: the population
        statistics of Ioffe & Szegedy's inference procedure (ICML 2015, Alg. 2) instead of the exponential
        averages collected while the weights moved. Measured on CDLM, whose test mode chains encoder,
        decoder and classifier: the moving averages left C(D(h)) at chance even on the training source
        images (0.33 on a 3-class toy), the recomputed statistics give 0.95; every method gets the same
        treatment.
        """
        norms = [m for name in self._modules for m in getattr(self, name).modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if norms and batches > 0:
            saved = [m.momentum for m in norms]
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # cumulative average
            self._train_mode(True)
            with torch.no_grad():
                for _ in range(batches):
                    forward_batch()
            for m, mom in zip(norms, saved):
                m.momentum = mom
        bar.close()
        self._train_mode(False)
        return self

    def _check_fitted(self) -> None:
        if self.meta_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def _images(self, x, name: str = "x"):
        self._check_fitted()
        s = self.meta_["size"]
        return as_images(x, name, channels=self.meta_["channels"], size=(s, s))

    def _train_mode(self, on: bool) -> None:
        for name in self._modules:
            getattr(self, name).train(on)

    # -- inference ----------------------------------------------------------------------
    @abc.abstractmethod
    def _logits(self, xb: torch.Tensor) -> torch.Tensor:
        """Class logits (B, classes) of a batch of images, as the method classifies at test time."""

    @abc.abstractmethod
    def _features(self, xb: torch.Tensor) -> torch.Tensor:
        """Deep features (B, d) of a batch of images (:meth:`transform`)."""

    @torch.no_grad()
    def _map(self, fn, x, name: str, batch: int = 256) -> torch.Tensor:
        xt = self._images(x, name)
        self._train_mode(False)
        out = [fn(xt[i:i + batch].to(self.device)).cpu() for i in range(0, xt.shape[0], batch)]
        return torch.cat(out)

    @staticmethod
    def _out(t: torch.Tensor, like):
        if is_torch(like):
            return t.to(like.device)
        return t.numpy()

    def predict_proba(self, x):
        """Class probabilities (N, K); numpy in -> numpy out, torch in -> torch out."""
        return self._out(torch.softmax(self._map(self._logits, x, "x"), 1), x)

    def predict(self, x):
        """Predicted class codes (N,), int64."""
        return self._out(self._map(self._logits, x, "x").argmax(1), x)

    def score(self, x, y) -> float:
        """Accuracy of :meth:`predict` on (x, y)."""
        xt = self._images(x, "x")
        yt = as_labels(y, "y", xt.shape[0], self.meta_["n_classes"])
        pred = self._map(self._logits, xt, "x").argmax(1)
        return float((pred == yt).double().mean())

    def transform(self, x):
        """Deep features (N, d) of the images (for H-score or domain distances)."""
        return self._out(self._map(self._features, x, "x"), x)

    # -- persistence --------------------------------------------------------------------
    def save(self, path) -> None:
        """Write configuration, metadata and weights to ``path`` (torch.save, loadable with weights_only)."""
        self._check_fitted()
        state = {name: {k: v.detach().cpu() for k, v in getattr(self, name).state_dict().items()}
                 for name in self._modules}
        torch.save({"class": type(self).__name__, "config": dict(self.config), "meta": dict(self.meta_),
                    "state": state, "history": [dict(h) for h in self.history_]}, path)

    @classmethod
    def load(cls, path, device="auto"):
        """Rebuild a fitted estimator written by :meth:`save`."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("class") != cls.__name__:
            raise ValueError(f"path: {path} holds a {blob.get('class')} model, not a {cls.__name__}")
        model = cls(device=device, **blob["config"])
        meta = blob["meta"]
        model._setup(meta["channels"], meta["size"], meta["n_classes"])
        for name in cls._modules:
            getattr(model, name).load_state_dict(blob["state"][name])
        model.history_ = list(blob.get("history", []))
        return model

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"
