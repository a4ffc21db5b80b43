"""Task2Box: box embeddings of datasets that capture asymmetric relations (Daroya et al., CVPR 2024).

>>> from tasklens.task2box import Task2Box, evaluate_hierarchy
>>> model = Task2Box(box_dim=5, seed=0)                       # doctest: +SKIP
>>> model.fit(X, relations, train_mask, val_mask)             # doctest: +SKIP
>>> lo, hi = model.embed(X_new)                               # doctest: +SKIP
>>> S = model.containment(X)                                  # doctest: +SKIP
>>> evaluate_hierarchy(relations, S, val_mask, test_mask)     # doctest: +SKIP

Modules: ``data`` (relations, base representations, splits), ``model`` (Task2Box), ``losses`` (Eq. 4-6),
``train`` (loop), ``evaluate`` (§4 protocol), ``baselines`` (§4.2), ``plots`` (box maps),
``checkpoint`` (save / load / resume). torch is imported only when a model is built or trained.
"""

from __future__ import annotations

from .data import (Taxa, base_representations, load_compact_taxonomy, load_taxonomy, novel_mask,
                   relations_from_parents, relations_from_taxonomy, split_novel, split_pairs)
from .evaluate import evaluate_hierarchy, select_threshold, spearman
from .model import Task2Box
from .baselines import (BASELINES, AsymmetricCosine, AsymmetricEuclidean, KLDivergence, LinearBaseline,
                        MLPBaseline, RandomBaseline)
from .plots import plot_boxes, plot_history

__all__ = [
    "Task2Box", "evaluate_hierarchy", "select_threshold", "spearman",
    "LinearBaseline", "MLPBaseline", "KLDivergence", "AsymmetricCosine", "AsymmetricEuclidean",
    "RandomBaseline", "BASELINES", "plot_boxes", "plot_history",
    "Taxa", "base_representations", "relations_from_parents", "relations_from_taxonomy", "split_pairs",
    "split_novel", "novel_mask", "load_taxonomy", "load_compact_taxonomy",
]
