"""tasklens: measure and map relationships between machine-learning tasks and datasets.

Importing tasklens is cheap: it does not import torch, and submodules load on first use.

Areas
-----
- ``tasklens.boxes``: batched box volume / intersection / containment kernels with gradients.
- ``tasklens.task2box``: Task2Box box embeddings of datasets (model, training, evaluation, baselines, plots).
- ``tasklens.metrics``: H-score, regularized H-score, transferability, source selection, ranking comparison.
- ``tasklens.hgr``: HGR maximal correlation (DTM, ACE, soft-HGR).
- ``tasklens.domain``: min-distance domain measures D(T|S) between datasets and their analysis.
- ``tasklens.pairs``: all ordered pairs of many datasets in tiles (Parquet output, resumable, local or Ray).
- ``tasklens.datasets``: offline image data: IDX/Fashion-MNIST, Fashion-M (MNIST-M protocol), synthetic and
  handwritten digits, image folders.
- ``tasklens.represent``: dataset representations (Task2Vec, probe-CNN features, CLIP) with a disk cache.
- ``tasklens.map``: raw datasets -> Task2Box map (HTML, PNG, Parquet, metrics); also the function ``tasklens.map(...)``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from ._threads import get_num_threads, set_num_threads  # noqa: E402
from ._info import info  # noqa: E402

_SUBMODULES = {"boxes", "task2box", "metrics", "hgr", "domain", "pairs", "cli", "plots", "data", "datasets",
               "represent"}

# Public functions re-exported at the top level, loaded on first access.
_LAZY = {
    "hscore": "tasklens.metrics",
    "HScoreAccumulator": "tasklens.metrics",
    "transferability": "tasklens.metrics",
    "domain_distance": "tasklens.domain",
    "domain_distance_matrix": "tasklens.domain",
    "nearest": "tasklens.domain",
    "map": "tasklens.map",
}

__all__ = ["__version__", "info", "get_num_threads", "set_num_threads", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"tasklens.{name}")
    raise AttributeError(f"module 'tasklens' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
