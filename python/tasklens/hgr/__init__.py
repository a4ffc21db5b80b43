"""HGR maximal correlation: the DTM (Def. 1), ACE (Algorithm 1) and soft-HGR (Eq. 3).

- :func:`dtm`: the dense divergence transition matrix of two discrete variables, its singular values and
  the optimal H-score ``||B~||_F^2``.
- :func:`ace`: the k leading maximal correlations and feature maps f, g from integer codes (native kernels,
  CPU and CUDA), for alphabets too large for a dense DTM.
- :func:`soft_hgr_loss` and :class:`SoftHGR`: the soft-HGR objective as a torch loss and an estimator that
  trains two networks f(x), g(y) for continuous variables.

torch is imported only by the soft-HGR parts.
"""

from __future__ import annotations

from .ace import ACEResult, ace
from .dtm import DTMResult, dtm

__all__ = ["dtm", "DTMResult", "ace", "ACEResult", "soft_hgr_loss", "SoftHGR"]


def __getattr__(name: str):
    if name in ("soft_hgr_loss", "SoftHGR"):
        from . import soft_hgr

        return getattr(soft_hgr, name)
    raise AttributeError(f"module 'tasklens.hgr' has no attribute {name!r}")
