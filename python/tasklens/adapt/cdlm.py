"""Cross-Domain Latent Modulation (Hou et al., "Cross-Domain Latent Modulation for Variational Transfer
Learning", Sect. 3).

Model
-----
- E_phi (:class:`~tasklens.adapt.nets.CDLMEncoder`), one encoder for both domains: h' from a UNIT-style trunk,
  mu = W_mu h' + b_mu, sigma = exp((W_s h' + b_s) / 2) (the log-variance head of [16], which keeps sigma > 0),
  and the deep representation h = sigmoid(W_h h' + b_h); mu, sigma and h are ``latent``-dimensional.
- Transfer latent codes by the modified reparameterisation (Eq. 1-2), pairing the i-th source and target
  images of a batch: z_st = mu_s + sigma_s (gamma1 h_t + gamma2 eps), z_ts = mu_t + sigma_t (gamma1 h_s +
  gamma2 eps), eps ~ N(0, I).
- D_theta (:class:`~tasklens.adapt.nets.Decoder`), the source-domain decoder: reconstructions
  x^_st = D(z_st), x^_ts = D(z_ts) and generations x~_s = D(gamma1 h_s + gamma2 eps), x~_ts = D(gamma1 h_t +
  gamma2 eps) (Eq. 6).
- Xi, a two-layer MLP discriminator (100 hidden units, batch-normalised) on h behind a gradient reversal
  layer (Eq. 10).
- C, the classifier of the test mode: the same conv trunk as the baselines plus a two-layer MLP head.

Losses (reductions in :mod:`tasklens.adapt.losses`)
---------------------------------------------------
L_Rec = -log p(x_s | z_st) (Bernoulli; source only, Eq. 9); L_KL = KL(q(z_st) || N(0, I)) + KL(q(z_ts) ||
N(0, I)) with the moments of Eq. 3-5 (batch mean / std of the other domain's h); L_adv = BCE of Xi on h_s
(label 1) and h_t (label 0), i.e. -Eq. 10; L_c = beta1 ||x^_st - x~_s||^2 + beta2 ||x^_ts - x~_ts||^2 (Eq. 11,
MSE); L_cls = CE(C(x_s), y_s) + CE(C(x~_s), y_s); L_ent = mean entropy of C(x~_ts) (off by default).

Updates (Eq. 12), from separate gradients of the objectives in each step:
- phi (encoder): SGD with momentum on adv_weight L_adv (through the reversal layer) + lambda1 L_KL +
  lambda2 L_Rec (+ L_cls + entropy_weight L_ent through x~_s, x~_ts when ``joint_classifier``), gradient
  norm clipped at ``clip``; learning rate lr_phi / (1 + 10 p)^0.75 and reversal factor
  lambda_p = 2 / (1 + exp(-10 p)) - 1 as in DANN (the paper gives no schedule).
- theta (decoder): Adam (betas 0.5, 0.999) on L_Rec + L_c (+ L_cls + entropy_weight L_ent when
  ``joint_classifier``). L_c reaches theta only, as Eq. 12 writes it (``consistency_to_encoder=True`` lets it
  reach phi too).
- Xi (discriminator): its own Adam (lr_theta, betas 0.5, 0.999) on L_adv. Eq. 12 names phi and theta only.
- C: Adam on L_cls (+ entropy_weight L_ent).

Classification (the paper's test mode, Sect. 3.3): an image x goes through E_phi to h, is translated to the
source style x~ = D(gamma1 h) (eps = 0, the mean of the noise, so predictions are deterministic), and C
classifies x~. C is trained on labelled source images: the real x_s and their generations x~_s (same
labels), since it has to classify generated images at test time. C never sees the x^_st reconstructions.
Each step puts the translated target images x~_ts = D(gamma1 h_t + gamma2 eps) through C in the same batch as
[x_s; x~_s] (no label, no loss by default): C's BatchNorm statistics then cover the images it classifies at
test time. With ``joint_classifier`` the gradient through those batch statistics also reaches theta and
phi. Eq. 12 has no supervised term. With the default ``joint_classifier=True`` the classifier's loss on x~_s
also reaches theta and phi, and that is what makes h carry the class. The paper's text does not say
how its encoder becomes class-discriminative. With ``joint_classifier=False`` C learns on detached images.
``transform`` returns h; ``translate`` returns x~_ts. At the end of ``fit`` the BatchNorm statistics of
encoder and classifier are recomputed with frozen weights over training batches of the same kind as the
training steps ([x_s; x_t] for E_phi, [x_s; x~_s; x~_ts] for C), see ``Estimator._finish``: with the moving
averages of training the chain E -> D -> C classified even the source images at chance.

Choices where the paper is silent, measured on the shifted toy pair of ``tests/test_adapt.py`` (3 classes,
512 images per domain, 480 steps of 32, target accuracy over training seeds 0 / 1 / 2; source-only 0.728 /
0.517 / 0.632, DANN 0.833 / 0.748 / 0.790 on the same data):

- Diagnosis of the earlier defaults (L_adv weight 1, Xi in phi's SGD and its gradient clip, L_c into phi):
  0.515 / 0.525 / 0.552. Diagnosis on seed 0 after 15 epochs (0.448): h was not aligned across domains.
  The mean |E h_s - E h_t| per dimension grew to 0.40, and a linear probe fitted on h_s scored 0.37 on h_t
  (chance 0.33). The discriminator's accuracy
  swung between 0.08 and 0.85 from epoch to epoch: the encoder overshot, then the discriminator caught up.
  The translations x~_ts = D(h_t) therefore fell on the wrong source classes: C gave 0.95 on D(h_s) and
  0.45 on D(h_t). The decoder did use h (swapping h in z_st changed D(z_st) about as much as permuting
  mu), and the sigmoid was not saturated (5 % of source units, 0 % of target units beyond 0.02 / 0.98).
- L_adv at weight 0.5 (DANN's mean over 2 x batch predictions): 0.647 / 0.522 / 0.670.
- Xi on its own Adam as well, out of the encoder's gradient clip, so that it keeps pace with the encoder:
  0.565 / 0.762 / 0.870.
- L_c on theta only (Eq. 12 literally) as well: 0.757 / 0.845 / 0.698.
- x~_ts in C's batch as well (the defaults): 0.843 / 0.772 / 0.752. On a second draw of the toy data:
  0.795 / 0.700 / 0.680, where source-only gave 0.393 / 0.530 / 0.715 and DANN 0.775 / 0.590 / 0.968.
- Tried without a consistent gain:
  - entropy_weight 0.1: 0.730 / 0.895 / 0.685, and 0.785 / 0.825 / 0.843 on the second draw.
  - A direct classifier head on h: 0.715 / 0.830 / 0.672, measured before the last two changes.
  - lr_phi 0.003: 0.608 / 0.600 / 0.507.
  - 15 instead of 30 epochs: about 0.6.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ._data import as_labels, check_geometry, pair_domains
from .base import Batches, Estimator, deterministic
from .losses import (adversarial, consistency, dann_lambda, dann_lr, generation_code, kl_transfer, modulate,
                     reconstruction)
from .nets import CDLMEncoder, Decoder, FeatureNet, grad_reverse, mlp


class CDLM(Estimator):
    """Cross-domain latent modulation; see the module docstring for the exact model, losses and test mode.

    Parameters
    ----------
    seed, epochs, batch_size : training seed, passes over the source set, batch size (paper: 64).
    gamma1, gamma2 : modulation weights of Eq. 1-2 (paper: 1.0, 0.1).
    lambda1, lambda2 : weights of L_KL and L_Rec in the phi update of Eq. 12 (paper: 1e-4 each).
    beta1, beta2 : weights of L_c^s and L_c^t in Eq. 11 (paper: 0.1, 0.01).
    lr_phi, momentum : SGD for phi; lr_theta : Adam for theta and the classifier.
    width, latent : trunk width w (channels w, 2w, 4w) and dimension of mu, sigma, h.
    joint_classifier : let the classifier's loss on generated source images reach theta and phi.
    consistency_to_encoder : let L_c (Eq. 11) reach phi as well as theta (default False: Eq. 12 literally).
    adv_weight : weight of L_adv (sum of the two domain means of Eq. 10) in phi's objective; 0.5 makes it the
        mean over all 2 x batch domain predictions, DANN's weighting.
    entropy_weight : weight of the mean prediction entropy of C on the translated target images x~_ts
        (0: off; see the module docstring).
    clip : gradient-norm clip of the phi update (as DANN's).
    n_classes : number of classes (default: max source label + 1).
    device : "auto" (CUDA when present), "cpu", "cuda", ... ; progress : tqdm bar (None: when stderr is a TTY).
    """

    _modules = ("encoder", "decoder", "disc", "clf_features", "clf_head")

    def __init__(self, *, seed=0, epochs=10, batch_size=64, gamma1=1.0, gamma2=0.1, lambda1=1e-4,
                 lambda2=1e-4, beta1=0.1, beta2=0.01, lr_phi=0.01, momentum=0.9, lr_theta=1e-3, width=64,
                 latent=64, joint_classifier=True, consistency_to_encoder=False, adv_weight=0.5,
                 entropy_weight=0.0, clip=5.0, n_classes=None, device="auto", progress=None):
        super().__init__(seed=seed, epochs=epochs, batch_size=batch_size, width=width, latent=latent,
                         device=device, progress=progress)
        self.config.update(gamma1=float(gamma1), gamma2=float(gamma2), lambda1=float(lambda1),
                           lambda2=float(lambda2), beta1=float(beta1), beta2=float(beta2),
                           lr_phi=float(lr_phi), momentum=float(momentum), lr_theta=float(lr_theta),
                           joint_classifier=bool(joint_classifier),
                           consistency_to_encoder=bool(consistency_to_encoder),
                           adv_weight=float(adv_weight), entropy_weight=float(entropy_weight), clip=float(clip),
                           n_classes=None if n_classes is None else int(n_classes))

    def _build(self):
        c, s, k, cfg = self.meta_["channels"], self.meta_["size"], self.meta_["n_classes"], self.config
        self.encoder = CDLMEncoder(c, s, cfg["width"], cfg["latent"])
        self.decoder = Decoder(cfg["latent"], c, s, cfg["width"])
        self.disc = mlp(cfg["latent"], 100, 1, norm=True)
        self.clf_features = FeatureNet(c, s, cfg["width"], cfg["latent"])
        self.clf_head = mlp(cfg["latent"], 100, k)

    # -- test mode -------------------------------------------------------------------------------------
    def _translate(self, xb):
        _, _, h = self.encoder(xb)
        return self.decoder(self.config["gamma1"] * h)

    def _classify(self, images):
        return self.clf_head(self.clf_features(images))

    def _logits(self, xb):
        return self._classify(self._translate(xb))

    def _features(self, xb):
        return self.encoder(xb)[2]

    def translate(self, target_x):
        """Source-style images x~_ts = D(gamma1 h_t) of Eq. 6 (eps = 0), shape (N, C, H, W), in [0, 1]."""
        return self._out(self._map(self._translate, target_x, "target_x"), target_x)

    # -- training --------------------------------------------------------------------------------------
    def losses(self, xs, ys, xt, eps, lambd):
        """All loss terms of one step (a dict of scalar tensors) for source batch (xs, ys), target batch xt
        and noise ``eps`` of shape (4, N, latent): [z_st, z_ts, x~_s, x~_ts]."""
        cfg = self.config
        g1, g2 = cfg["gamma1"], cfg["gamma2"]
        n = xs.shape[0]
        mu, sigma, h = self.encoder(torch.cat([xs, xt]))
        mu_s, mu_t, sg_s, sg_t, h_s, h_t = mu[:n], mu[n:], sigma[:n], sigma[n:], h[:n], h[n:]
        z_st = modulate(mu_s, sg_s, h_t, eps[0], g1, g2)
        z_ts = modulate(mu_t, sg_t, h_s, eps[1], g1, g2)
        out = self.decoder(torch.cat([z_st, z_ts, generation_code(h_s, eps[2], g1, g2),
                                      generation_code(h_t, eps[3], g1, g2)]))
        x_st, x_ts, x_s_gen, x_ts_gen = out[:n], out[n:2 * n], out[2 * n:3 * n], out[3 * n:]
        d = self.disc(grad_reverse(h, lambd))[:, 0]
        joint = cfg["joint_classifier"]
        gen_s, gen_t = (x_s_gen, x_ts_gen) if joint else (x_s_gen.detach(), x_ts_gen.detach())
        # one batch [x_s; x~_s; x~_ts] through C: the unlabelled x~_ts share its batch statistics (the images
        # it classifies at test time); only the first 2n are labelled
        logits = self._classify(torch.cat([xs, gen_s, gen_t]))
        lt = logits[2 * n:]
        return {
            "rec": reconstruction(x_st, xs),
            "kl": kl_transfer(mu_s, sg_s, h_t, mu_t, sg_t, h_s, g1, g2),
            "adv": adversarial(d[:n], d[n:]),
            "cs": consistency(x_st, x_s_gen),
            "ct": consistency(x_ts, x_ts_gen),
            "cls": F.cross_entropy(logits[:2 * n], torch.cat([ys, ys])),
            "ent": -(torch.softmax(lt, 1) * torch.log_softmax(lt, 1)).sum(1).mean(),
        }

    def fit(self, source_x, source_y, target_x):
        """Train on labelled source images and unlabelled target images (see the module docstring)."""
        xs_all, xt_all = pair_domains(source_x, target_x)
        ys_all = as_labels(source_y, "source_y", xs_all.shape[0], self.config["n_classes"])
        check_geometry(xs_all.shape[2], xs_all.shape[3], "source_x")
        k = self.config["n_classes"] or int(ys_all.max()) + 1
        self._setup(xs_all.shape[1], xs_all.shape[2], k)
        cfg, dev = self.config, self.device
        phi = list(self.encoder.parameters())
        xi = list(self.disc.parameters())
        theta = list(self.decoder.parameters())
        clf = list(self.clf_features.parameters()) + list(self.clf_head.parameters())
        opt_phi = torch.optim.SGD(phi, lr=cfg["lr_phi"], momentum=cfg["momentum"])
        opt_theta = torch.optim.Adam(theta + clf + xi, lr=cfg["lr_theta"], betas=(0.5, 0.999))
        gen = self._generator()
        bs = min(cfg["batch_size"], xs_all.shape[0])
        steps_per_epoch = math.ceil(xs_all.shape[0] / cfg["batch_size"])
        total = cfg["epochs"] * steps_per_epoch
        src, tgt = Batches(xs_all.shape[0], bs, gen), Batches(xt_all.shape[0], bs, gen)
        b1, b2, l1, l2 = cfg["beta1"], cfg["beta2"], cfg["lambda1"], cfg["lambda2"]
        joint, w_adv, w_ent = cfg["joint_classifier"], cfg["adv_weight"], cfg["entropy_weight"]
        self.history_ = []
        bar = self._bar(total, "CDLM")
        step = 0
        with deterministic():
            self._train_mode(True)
            for epoch in range(cfg["epochs"]):
                t0, sums = time.perf_counter(), {}
                for _ in range(steps_per_epoch):
                    p = step / total
                    for g in opt_phi.param_groups:
                        g["lr"] = dann_lr(cfg["lr_phi"], p)
                    i = src.next()
                    xs, ys, xt = xs_all[i].to(dev), ys_all[i].to(dev), xt_all[tgt.next()].to(dev)
                    eps = torch.randn((4, bs, cfg["latent"]), generator=gen).to(dev)
                    L = self.losses(xs, ys, xt, eps, dann_lambda(p))
                    l_c = b1 * L["cs"] + b2 * L["ct"]
                    l_sup = L["cls"] + w_ent * L["ent"]
                    loss_phi = (w_adv * L["adv"] + l1 * L["kl"] + l2 * L["rec"]
                                + (l_c if cfg["consistency_to_encoder"] else 0.0) + (l_sup if joint else 0.0))
                    loss_theta = L["rec"] + l_c + (l_sup if joint else 0.0)
                    g_phi = torch.autograd.grad(loss_phi, phi, retain_graph=True, allow_unused=True)
                    g_rest = torch.autograd.grad(loss_theta, theta, retain_graph=True, allow_unused=True)
                    g_xi = torch.autograd.grad(L["adv"], xi, retain_graph=True, allow_unused=True)
                    g_clf = torch.autograd.grad(l_sup, clf, allow_unused=True)
                    for ps, gs in ((phi, g_phi), (theta, g_rest), (xi, g_xi), (clf, g_clf)):
                        for prm, gr in zip(ps, gs):
                            prm.grad = gr
                    torch.nn.utils.clip_grad_norm_(phi, cfg["clip"])
                    opt_phi.step()
                    opt_theta.step()
                    for k2, v in L.items():
                        sums[k2] = sums.get(k2, 0.0) + float(v.detach())
                    step += 1
                    bar.update(1)
                self._log_epoch(epoch, t0, sums, steps_per_epoch)

            def forward_batch():
                i = src.next()
                xs = xs_all[i].to(dev)
                _, _, h = self.encoder(torch.cat([xs, xt_all[tgt.next()].to(dev)]))
                eps = torch.randn((2 * bs, cfg["latent"]), generator=gen).to(dev)
                self._classify(torch.cat([xs, self.decoder(generation_code(h, eps, cfg["gamma1"], cfg["gamma2"]))]))

            return self._finish(bar, forward_batch, min(total, self.calibration_batches))
