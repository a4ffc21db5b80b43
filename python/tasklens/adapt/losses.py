"""CDLM's reparameterisation and loss terms (Hou et al., Sect. 3.3-3.4), as plain functions.

Reductions: image terms are summed over pixels and channels and averaged over the batch (nats / squared
error per image); the KL term is summed over latent dimensions and averaged over the batch; the
adversarial term is averaged over each domain's batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def modulate(mu, sigma, h_other, eps, gamma1: float = 1.0, gamma2: float = 0.1):
    """Modified reparameterisation, Eq. 1-2: z = mu + sigma * (gamma1 * h_other + gamma2 * eps)."""
    return mu + sigma * (gamma1 * h_other + gamma2 * eps)


def generation_code(h, eps, gamma1: float = 1.0, gamma2: float = 0.1):
    """Decoder input of the generations of Eq. 6: gamma1 * h + gamma2 * eps."""
    return gamma1 * h + gamma2 * eps


def transfer_moments(mu, sigma, h_other, gamma1: float = 1.0, gamma2: float = 0.1):
    """Moments of the transfer latent variable, Eq. 3-5.

    ``mu_h`` and ``sigma_h`` of the other domain's deep representation are its batch mean and (biased)
    batch standard deviation per dimension. Returns (mu_st, sigma_st), each (N, d):
    mu_st = mu + gamma1 sigma mu_h; sigma_st = sigma sqrt(gamma1^2 sigma_h^2 + gamma2^2).
    """
    mu_h = h_other.mean(0, keepdim=True)
    var_h = h_other.var(0, unbiased=False, keepdim=True) if h_other.shape[0] > 1 else torch.zeros_like(mu_h)
    return mu + gamma1 * sigma * mu_h, sigma * torch.sqrt(gamma1 ** 2 * var_h + gamma2 ** 2)


def kl_standard_normal(mu, sigma):
    """KL(N(mu, diag sigma^2) || N(0, I)), summed over dimensions, averaged over the batch (Eq. 9)."""
    return 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * torch.log(sigma)).sum(1).mean()


def kl_transfer(mu_s, sigma_s, h_t, mu_t, sigma_t, h_s, gamma1: float = 1.0, gamma2: float = 0.1):
    """L_KL of Eq. 9: KL(q(z_st) || p(z)) + KL(q(z_ts) || p(z)) with the moments of Eq. 5."""
    a = kl_standard_normal(*transfer_moments(mu_s, sigma_s, h_t, gamma1, gamma2))
    b = kl_standard_normal(*transfer_moments(mu_t, sigma_t, h_s, gamma1, gamma2))
    return a + b


def reconstruction(x_hat, x):
    """L_Rec of Eq. 9: -log p(x_s | z_st) under a Bernoulli decoder (binary cross-entropy summed over
    pixels, averaged over the batch)."""
    return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x, reduction="sum") / x.shape[0]


def consistency(a, b):
    """One consistency term of Eq. 11 with the MSE choice of the paper: squared error summed over pixels,
    averaged over the batch (a Gaussian log-likelihood difference up to constants)."""
    return (a - b).pow(2).sum() / a.shape[0]


def adversarial(logit_s, logit_t):
    """Discriminator loss = -L_adv of Eq. 10: -(E log Xi(h_s) + E log(1 - Xi(h_t))), Xi = sigmoid(logit);
    source is label 1, target label 0."""
    return (F.binary_cross_entropy_with_logits(logit_s, torch.ones_like(logit_s))
            + F.binary_cross_entropy_with_logits(logit_t, torch.zeros_like(logit_t)))


def dann_lambda(p: float) -> float:
    """Adaptation factor lambda_p = 2 / (1 + exp(-10 p)) - 1 (Ganin et al., Sect. 5.2.2)."""
    import math

    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def dann_lr(lr0: float, p: float) -> float:
    """Annealed learning rate mu_p = mu_0 / (1 + 10 p)^0.75 (Ganin et al., Sect. 5.2.2)."""
    return lr0 / (1.0 + 10.0 * p) ** 0.75
