"""Task2Box training losses (paper Eq. 4-6), computed with the native box kernels of ``tasklens.boxes``.

All functions take torch tensors (autograd flows through :func:`tasklens.boxes.containment`,
:func:`tasklens.boxes.containment_pairs` and :func:`tasklens.boxes.log_volume`) and return scalars.

- :func:`relation_loss`  — L_E of Eq. 4: (weighted) mean squared error between the target relation
  ``d(D_i, D_j)`` and ``d_box(z_i, z_j) = vol(z_i ∩ z_j) / vol(z_i)`` (Eq. 5) over training pairs.
- :func:`center_loss`    — L_D of Eq. 4: over training pairs with ``d > 0``, the squared distance between
  separated boxes (default) or between box centres.
- :func:`regularization` — L_R of Eq. 6: ``alpha/k^2 * sum_{a<b} |s_a - s_b| + beta * vol(z)^(-1/k)``,
  averaged over boxes.
- :func:`size_order_loss` — optional dataset-size term (§5.3, Fig. 5): hinge that orders box
  log-volumes like dataset sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BoxGeometry", "relation_loss", "relation_loss_pairs", "center_loss", "regularization",
           "size_order_loss"]


@dataclass(frozen=True)
class BoxGeometry:
    """Box-volume settings passed to the kernels (defaults: the Task2Box reference training)."""

    mode: str = "gumbel"
    volume_temperature: float = 0.1
    intersection_temperature: float = 1e-4

    def kwargs(self) -> dict:
        return {"mode": self.mode, "volume_temperature": self.volume_temperature,
                "intersection_temperature": self.intersection_temperature}


def _boxes():
    import tasklens.boxes as tb

    return tb


def relation_loss(lo, hi, target, weight, geometry: BoxGeometry = BoxGeometry()):
    """L_E over all pairs with a dense weight matrix (one fused all-pairs kernel, Eq. 4-5).

    Parameters
    ----------
    lo, hi : torch.Tensor (N, k) — box corners.
    target : torch.Tensor (N, N) — ``d(D_i, D_j)`` in [0, 1].
    weight : torch.Tensor (N, N) — pair weights (0 for pairs not trained on; class-balancing weights
        otherwise). The loss is ``sum(w * (d_box - d)^2) / sum(w)``.

    Memory: O(N^2) for the score and weight matrices, no (N, N, k) intermediate.

    Examples
    --------
    >>> import torch
    >>> lo = torch.tensor([[0., 0.], [0., 0.]]); hi = torch.tensor([[1., 1.], [2., 2.]])
    >>> w = 1 - torch.eye(2)
    >>> float(relation_loss(lo, hi, torch.tensor([[0., 1.], [0., 0.]]), w, BoxGeometry("hard")))
    0.03125
    """
    S = _boxes().containment(lo, hi, **geometry.kwargs())
    return (weight * (S - target) ** 2).sum() / weight.sum().clamp_min(1e-12)


def relation_loss_pairs(lo, hi, idx_i, idx_j, target, weight, geometry: BoxGeometry = BoxGeometry()):
    """L_E over P index pairs (mini-batches): ``sum(w_p (d_box(z_i, z_j) - d_p)^2) / sum(w_p)``."""
    s = _boxes().containment_pairs(lo, hi, lo, hi, idx_i, idx_j, **geometry.kwargs())
    return (weight * (s - target) ** 2).sum() / weight.sum().clamp_min(1e-12)


def center_loss(lo, hi, idx_i, idx_j, *, disjoint_only: bool = True):
    """L_D of Eq. 4 over the related pairs ``(i, j)`` (``d > 0``), summed and divided by their number.

    ``disjoint_only=False``: the paper's centre distance ``||c_i - c_j||^2`` with ``c = (lo + hi) / 2``.

    ``disjoint_only=True`` (default, used in training): only separated pairs contribute, as in §3.2
    ("minimised when starting from a non-overlapping state"): the squared distance between the two boxes,
    ``sum_d max(0, max(lo_i, lo_j) - min(hi_i, hi_j))^2``. It is 0 for boxes that overlap or touch, and
    continuous (with a continuous gradient) as they separate, so it pulls separated related boxes together
    and leaves overlapping ones to L_E. An earlier form gated the centre distance by disjointness: it jumped
    from 0 to ``||c_i - c_j||^2`` the moment a pair separated, and that switching made the training loss spike
    (x4.7 from one epoch to the next in the 300-epoch demo run; x1.5 at most with this form).

    Examples
    --------
    >>> import torch
    >>> lo = torch.tensor([[0., 0.], [3., 0.]]); hi = torch.tensor([[1., 1.], [4., 1.]])
    >>> float(center_loss(lo, hi, torch.tensor([0]), torch.tensor([1])))  # gap of 2 in dimension 0
    4.0
    >>> float(center_loss(lo, hi, torch.tensor([0]), torch.tensor([1]), disjoint_only=False))
    9.0
    """
    if idx_i.numel() == 0:
        return lo.sum() * 0.0
    if disjoint_only:
        import torch

        gap = (torch.maximum(lo[idx_i], lo[idx_j]) - torch.minimum(hi[idx_i], hi[idx_j])).clamp_min(0)
        d2 = (gap ** 2).sum(-1)
    else:
        c = 0.5 * (lo + hi)
        d2 = ((c[idx_i] - c[idx_j]) ** 2).sum(-1)
    return d2.sum() / idx_i.numel()


def regularization(lo, hi, alpha: float, beta: float, geometry: BoxGeometry = BoxGeometry()):
    """L_R of Eq. 6, averaged over the N boxes.

    ``alpha / k^2 * sum_{a<b} |s_a - s_b|`` (regular shapes; ``s = hi - lo``) plus
    ``beta * vol(z)^(-1/k) = beta * exp(-log_volume(z) / k)`` (no collapse to zero volume), the volume
    from :func:`tasklens.boxes.log_volume` with the training geometry.
    """
    k = lo.shape[-1]
    out = lo.new_zeros(())
    if alpha:
        s = hi - lo
        diff = (s[:, :, None] - s[:, None, :]).abs()
        out = out + alpha / k ** 2 * 0.5 * diff.sum((1, 2)).mean()
    if beta:
        lv = _boxes().log_volume(lo, hi, **geometry.kwargs())
        out = out + beta * (-lv / k).exp().mean()
    return out


def size_order_loss(lo, hi, sizes, geometry: BoxGeometry = BoxGeometry(), margin: float = 0.0):
    """Dataset-size term: mean over pairs with ``size_i > size_j`` of ``relu(margin + lv_j - lv_i)``
    on per-dimension log-volumes ``lv = log_volume / k`` (bigger datasets get bigger boxes, §5.3)."""
    k = lo.shape[-1]
    lv = _boxes().log_volume(lo, hi, **geometry.kwargs()) / k
    bigger = (sizes[:, None] > sizes[None, :]).to(lv.dtype)
    viol = (margin + lv[None, :] - lv[:, None]).clamp_min(0)
    return (bigger * viol).sum() / bigger.sum().clamp_min(1.0)
