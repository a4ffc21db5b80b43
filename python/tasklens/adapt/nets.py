"""Networks shared by the adaptation models: a UNIT-style convolutional trunk, the decoder, heads and the
gradient reversal layer of Ganin et al. (JMLR 2016, Sect. 5).

The trunk first centres pixels from [0, 1] to [-1, 1], then follows the digit networks of UNIT (Liu et al.,
NeurIPS 2017): three strided convolutions
(width w, 2w, 4w; kernels 5, 5, 3; stride 2; LeakyReLU 0.2; batch normalisation after the second and
third; He-initialised), so a 28x28 image becomes 4w x 4 x 4 and a
32x32 image 4w x 4 x 4 too. Its flattened output is h' of CDLM's Sect. 3.3. The decoder mirrors it from a
latent vector: a linear layer to 4w x (H/4) x (W/4), two stride-2 transposed convolutions and a 3x3
convolution with a sigmoid to C x H x W.
"""

from __future__ import annotations

import torch
from torch import nn


class GradReverse(torch.autograd.Function):
    """Identity forward, ``-lambda`` times the incoming gradient backward (Ganin et al., Eq. 14-15)."""

    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Gradient reversal layer R_lambda: R(x) = x, dR/dx = -lambda I."""
    return GradReverse.apply(x, lambd)


def init_weights(module: nn.Module) -> None:
    """He initialisation (fan-in, LeakyReLU slope 0.2) of every convolution and linear layer, zero biases:
    keeps activations from shrinking through the trunk so that SGD trains from the first steps."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _out_size(n: int) -> int:
    for k, p in ((5, 2), (5, 2), (3, 1)):
        n = (n + 2 * p - k) // 2 + 1
    return n


class Trunk(nn.Module):
    """Three strided convolutions (UNIT digit encoder); output h' flattened, ``self.out_dim`` wide."""

    centre = True

    def __init__(self, channels: int, size: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 5, 2, 2), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 5, 2, 2), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1), nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2),
            nn.Flatten())
        self.out_dim = 4 * width * _out_size(size) ** 2

    def forward(self, x):
        # pixels in [0, 1] are centred to [-1, 1] (the input normalisation of the usual DANN / UNIT digit
        # networks): with He-initialised convolutions and no centring, every first-layer unit starts with a
        # large positive bias that differs between a dark and a bright domain.
        return self.net(x * 2.0 - 1.0) if self.centre else self.net(x)


class Decoder(nn.Module):
    """D_theta: latent (N, d) -> images (N, C, H, W) in (0, 1)."""

    def __init__(self, latent: int, channels: int, size: int, width: int):
        super().__init__()
        self.s0, self.w = size // 4, 4 * width
        self.fc = nn.Sequential(nn.Linear(latent, self.w * self.s0 * self.s0), nn.LeakyReLU(0.2))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, channels, 3, 1, 1), nn.Sigmoid())

    def forward(self, z):
        return self.net(self.fc(z).view(-1, self.w, self.s0, self.s0))


def mlp(inp: int, hidden: int, out: int, norm: bool = False) -> nn.Sequential:
    """Two-layer fully connected network (classifier heads); ``norm`` adds batch normalisation to the hidden
    layer (used by the domain discriminators, where it keeps the adversarial game from oscillating)."""
    mid = [nn.BatchNorm1d(hidden)] if norm else []
    return nn.Sequential(nn.Linear(inp, hidden), *mid, nn.ReLU(), nn.Linear(hidden, out))


class FeatureNet(nn.Module):
    """Trunk + linear feature layer (ReLU): the deep features of DANN / source-only / target-only."""

    def __init__(self, channels: int, size: int, width: int, features: int):
        super().__init__()
        self.trunk = Trunk(channels, size, width)
        self.fc = nn.Sequential(nn.Linear(self.trunk.out_dim, features), nn.ReLU())

    def forward(self, x):
        return self.fc(self.trunk(x))


class CDLMEncoder(nn.Module):
    """E_phi of CDLM Sect. 3.3: h' from the trunk, mu = W_mu h' + b_mu, log sigma^2 = W_s h' + b_s,
    h = sigmoid(W_h h' + b_h)."""

    def __init__(self, channels: int, size: int, width: int, latent: int):
        super().__init__()
        self.trunk = Trunk(channels, size, width)
        self.mu = nn.Linear(self.trunk.out_dim, latent)
        self.logvar = nn.Linear(self.trunk.out_dim, latent)
        self.h = nn.Linear(self.trunk.out_dim, latent)

    def forward(self, x):
        hp = self.trunk(x)
        return self.mu(hp), torch.exp(0.5 * self.logvar(hp)), torch.sigmoid(self.h(hp))
