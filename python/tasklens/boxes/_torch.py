"""The box formulas as plain torch operations: the differentiable backward used for double backward.

The native backward kernels return first-order gradients only. When a caller asks for a gradient that is
itself differentiable (``torch.autograd.grad(..., create_graph=True)``, e.g. a gradient penalty), the
autograd wrappers of :mod:`tasklens.boxes.ops` recompute the forward with the torch operations below and
differentiate them with ``create_graph=True``, so second (and higher) derivatives are exact. The formulas
are those of :mod:`tasklens.boxes.ops` (box-embeddings 0.1.0, ``eps = 1e-13``), including the gradient
conventions of the native kernels: the hard width passes its gradient where ``w >= eps``, ties of the
hard intersection split the gradient equally (``torch.maximum``), and the gumbel corners use the stable
``max(x, y) + t log1p(exp(-|x - y| / t))``.

Cost: the same as an unfused torch implementation, O(N M k) memory for the dense :func:`containment`
(only on the double-backward path; first-order gradients always use the fused native kernels).
"""

from __future__ import annotations

EPS = 1e-13
EULER_GAMMA = 0.5772156649015329
HARD, SOFT, GUMBEL = 0, 1, 2


def _torch():
    import torch

    return torch


def log_width(w, mode: int, vt: float, it: float):
    """Per-dimension log-width term of :func:`tasklens.boxes.log_volume` (``mode``: 0 hard, 1 soft, 2 gumbel)."""
    torch = _torch()
    if mode == HARD:
        return torch.log(torch.where(w >= EPS, w, torch.full_like(w, EPS)))
    shift = 2.0 * EULER_GAMMA * it if mode == GUMBEL else 0.0
    z = (w - shift) / vt
    # torch's softplus: derivative sigmoid(z) without cancellation (1/2 at z = 0, as the kernels'); linear only
    # above z = 40, where log1p(exp(-z)) < 5e-18
    softplus = vt * torch.nn.functional.softplus(z, threshold=40.0)
    return torch.log(softplus + EPS)


def _smooth_max(x, y, gumbel: bool, it: float):
    torch = _torch()
    m = torch.maximum(x, y)
    if not gumbel:
        return m
    return m + it * torch.log1p(torch.exp(-(x - y).abs() / it))


def intersection(la, ha, lb, hb, mode: int, it: float, clip: bool):
    """Corners of ``a_i ∩ b_i`` (broadcasting), as :func:`tasklens.boxes.intersection`."""
    torch = _torch()
    gumbel = mode == GUMBEL
    lo = _smooth_max(la, lb, gumbel, it)
    hi = -_smooth_max(-ha, -hb, gumbel, it)
    if gumbel and clip:
        lo = torch.maximum(lo, torch.maximum(la, lb))
        hi = torch.minimum(hi, torch.minimum(ha, hb))
    return lo, hi


def log_volume(lo, hi, mode: int, vt: float, it: float):
    return log_width(hi - lo, mode, vt, it).sum(-1)


def _log_containment(la, ha, lb, hb, mode: int, vt: float, it: float):
    """``log vol(a ∩ b) - log vol(a)`` with broadcasting over the leading dimensions (Task2Box Eq. 5)."""
    lo, hi = intersection(la, ha, lb, hb, GUMBEL if mode == GUMBEL else HARD, it, False)
    return log_volume(lo, hi, mode, vt, it) - log_volume(la, ha, mode, vt, it)


def containment(la, ha, lb, hb, mode: int, vt: float, it: float, log: bool):
    """All-pairs (N, M) containment, as :func:`tasklens.boxes.containment`."""
    out = _log_containment(la[:, None, :], ha[:, None, :], lb[None, :, :], hb[None, :, :], mode, vt, it)
    return out if log else out.exp()


def containment_pairs(la, ha, lb, hb, ia, ib, mode: int, vt: float, it: float, log: bool):
    """(P,) containment of index pairs, as :func:`tasklens.boxes.containment_pairs`."""
    out = _log_containment(la[ia], ha[ia], lb[ib], hb[ib], mode, vt, it)
    return out if log else out.exp()


def differentiable_vjp(formula, inputs, grads, *args):
    """Vector-Jacobian product of ``formula(*inputs, *args)`` with ``grads``, itself differentiable.

    Called inside a backward with ``create_graph=True``: returns one gradient per input (None for inputs
    that do not require grad), each a function of the inputs and ``grads`` that autograd can differentiate
    again. The same tensor passed twice (``b = a``) gets its two gradients separately.
    """
    torch = _torch()
    with torch.enable_grad():
        views = [x.view_as(x) for x in inputs]  # distinct graph nodes, also for repeated inputs
        wanted = [i for i, x in enumerate(views) if x.requires_grad]
        out = formula(*views, *args)
        outs = out if isinstance(out, tuple) else (out,)
        grads = grads if isinstance(grads, tuple) else (grads,)
        pairs = [(o, g) for o, g in zip(outs, grads) if g is not None]
        result = [None] * len(inputs)
        if wanted and pairs:
            got = torch.autograd.grad([o for o, _ in pairs], [views[i] for i in wanted], [g for _, g in pairs],
                                      create_graph=True, allow_unused=True)
            for i, g in zip(wanted, got):
                result[i] = torch.zeros_like(inputs[i]) if g is None else g
    return result
