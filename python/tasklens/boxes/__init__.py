"""Batched box volumes, intersections and containment scores with gradients (Task2Box Eq. 5).

Boxes are given by lower and upper corners ``lo, hi`` of shape (N, k). Every function accepts numpy
arrays (numpy out, torch never imported) or torch tensors on CPU or CUDA (torch out on the same device,
with gradients through the native backward kernels, and exact second derivatives under
``create_graph=True``). See :mod:`tasklens.boxes.ops` for the conventions.

>>> import numpy as np, tasklens.boxes as tb
>>> lo = np.array([[0.0, 0.0], [0.5, 0.5]]); hi = np.array([[1.0, 1.0], [1.0, 1.0]])
>>> tb.containment(lo, hi, mode="hard").round(3)
array([[1.  , 0.25],
       [1.  , 1.  ]])
"""

from __future__ import annotations

from .ops import containment, containment_pairs, intersection, log_volume

__all__ = ["log_volume", "intersection", "containment", "containment_pairs"]
