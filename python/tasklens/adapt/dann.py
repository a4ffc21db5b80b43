"""DANN (Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016) and the source-only /
target-only bounds, all on the same backbone and budget.

Backbone: :class:`~tasklens.adapt.nets.FeatureNet` (UNIT-style trunk + a ``latent``-wide ReLU feature
layer G_f), label classifier G_y (two-layer MLP, 100 hidden units) and, for DANN, domain classifier G_d
(two-layer MLP, 100 hidden units, batch-normalised hidden layer) behind a gradient reversal layer
(Ganin et al., Sect. 4-5).

Training (Sect. 5.2.2): SGD with momentum 0.9; ``epochs`` passes over the labelled set, each of
ceil(n / batch_size) steps; progress p in [0, 1] over all steps; learning rate mu_p = lr / (1 + 10 p)^0.75;
adaptation factor lambda_p = 2 / (1 + exp(-10 p)) - 1 on the reversal layer. Each DANN step uses one
labelled source batch and one unlabelled target batch of the same size; the loss is
CE(G_y(G_f(x_s)), y_s) + (BCE(G_d(R(G_f(x_s))), 1) + BCE(G_d(R(G_f(x_t))), 0)) / 2, the domain term
being the mean over all 2 x batch domain predictions; the gradient norm is clipped at ``clip`` (5).
Source-only and target-only use the same steps (and clipping) without the domain term. At the end of
``fit`` the BatchNorm statistics are recomputed over training batches ([x_s; x_t] for DANN, labelled
batches otherwise) with frozen weights (``Estimator._finish``).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ._data import as_images, as_labels, check_geometry, pair_domains
from .base import Batches, Estimator, deterministic
from .losses import adversarial, dann_lambda, dann_lr
from .nets import FeatureNet, grad_reverse, mlp


class _Supervised(Estimator):
    _modules = ("features", "classifier", "domain")
    _adversarial = False

    def __init__(self, *, seed=0, epochs=10, batch_size=64, lr=0.01, momentum=0.9, width=64, latent=64,
                 clip=5.0, n_classes=None, device="auto", progress=None):
        super().__init__(seed=seed, epochs=epochs, batch_size=batch_size, width=width, latent=latent,
                         device=device, progress=progress)
        self.config.update(lr=float(lr), momentum=float(momentum), clip=float(clip),
                           n_classes=None if n_classes is None else int(n_classes))

    def _build(self):
        c, s, k, cfg = self.meta_["channels"], self.meta_["size"], self.meta_["n_classes"], self.config
        self.features = FeatureNet(c, s, cfg["width"], cfg["latent"])
        self.classifier = mlp(cfg["latent"], 100, k)
        self.domain = mlp(cfg["latent"], 100, 1, norm=True)

    def _logits(self, xb):
        return self.classifier(self.features(xb))

    def _features(self, xb):
        return self.features(xb)

    def _n_classes(self, y) -> int:
        k = self.config["n_classes"]
        k = int(y.max()) + 1 if k is None else k
        if int(y.max()) >= k:
            raise ValueError(f"labels: max label {int(y.max())} >= n_classes={k}")
        return k

    def _train(self, x, y, target=None):
        cfg, dev = self.config, self.device
        check_geometry(x.shape[2], x.shape[3], "images")
        self._setup(x.shape[1], x.shape[2], self._n_classes(y))
        params = [p for m in self._modules for p in getattr(self, m).parameters()]
        opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"])
        gen = self._generator()
        steps_per_epoch = math.ceil(x.shape[0] / cfg["batch_size"])
        total = cfg["epochs"] * steps_per_epoch
        src = Batches(x.shape[0], min(cfg["batch_size"], x.shape[0]), gen)
        tgt = Batches(target.shape[0], min(cfg["batch_size"], x.shape[0]), gen) if target is not None else None
        self.history_ = []
        bar = self._bar(total, type(self).__name__)
        step = 0
        with deterministic():
            self._train_mode(True)
            for epoch in range(cfg["epochs"]):
                t0, sums = time.perf_counter(), {"cls": 0.0, "dom": 0.0}
                for _ in range(steps_per_epoch):
                    p = step / total
                    for g in opt.param_groups:
                        g["lr"] = dann_lr(cfg["lr"], p)
                    i = src.next()
                    xs, ys = x[i].to(dev), y[i].to(dev)
                    if self._adversarial:
                        xt = target[tgt.next()].to(dev)
                        f = self.features(torch.cat([xs, xt]))
                        fs, ft = f[:xs.shape[0]], f[xs.shape[0]:]
                        cls = F.cross_entropy(self.classifier(fs), ys)
                        d = self.domain(grad_reverse(torch.cat([fs, ft]), dann_lambda(p)))[:, 0]
                        dom = 0.5 * adversarial(d[:xs.shape[0]], d[xs.shape[0]:])
                        loss = cls + dom
                        sums["dom"] += float(dom.detach())
                    else:
                        cls = F.cross_entropy(self.classifier(self.features(xs)), ys)
                        loss = cls
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
                    opt.step()
                    sums["cls"] += float(cls.detach())
                    step += 1
                    bar.update(1)
                self._log_epoch(epoch, t0, sums, steps_per_epoch)

            def forward_batch():
                xb = x[src.next()].to(dev)
                if self._adversarial:
                    xb = torch.cat([xb, target[tgt.next()].to(dev)])
                self.features(xb)

            return self._finish(bar, forward_batch, min(total, self.calibration_batches))


class DANN(_Supervised):
    """Domain-adversarial neural network (Ganin et al. 2016); see the module docstring for the exact recipe.

    ``fit(source_x, source_y, target_x)``; ``transform`` returns the G_f features (N, latent).
    """

    _adversarial = True

    def fit(self, source_x, source_y, target_x):
        xs, xt = pair_domains(source_x, target_x)
        ys = as_labels(source_y, "source_y", xs.shape[0], self.config["n_classes"])
        return self._train(xs, ys, xt)


class SourceOnly(_Supervised):
    """Lower bound: the DANN backbone trained on labelled source images only (no domain term).

    ``target_x`` is optional and used only to check its image size and to match its channel count."""

    def fit(self, source_x, source_y, target_x=None):
        if target_x is not None:
            xs, _ = pair_domains(source_x, target_x)
        else:
            xs = as_images(source_x, "source_x")
        ys = as_labels(source_y, "source_y", xs.shape[0], self.config["n_classes"])
        return self._train(xs, ys)


class TargetOnly(_Supervised):
    """Upper bound: the same backbone and budget trained on labelled target images: ``fit(target_x, target_y)``."""

    def fit(self, target_x, target_y):
        xt = as_images(target_x, "target_x")
        yt = as_labels(target_y, "target_y", xt.shape[0], self.config["n_classes"])
        return self._train(xt, yt)
