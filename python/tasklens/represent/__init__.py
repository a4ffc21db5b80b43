"""Dataset representations for Task2Box (Daroya et al., CVPR 2024, §3.1): from images and labels to vectors.

- :func:`mean_var`: the dataset representation of Eq. 1-2, ``[mu]`` or ``[mu, sigma^2]`` of per-item embeddings.
- :mod:`tasklens.represent.fisher`: Task2Vec (Achille et al., ICCV 2019), the diagonal Fisher information of
  a probe network's weights (:func:`fisher_diagonal`, :func:`task2vec`, :func:`task2vec_distance`), the built-in
  small probe CNN (:func:`build_probe`, :func:`train_probe`, :func:`default_probe`) and its per-item features
  (:func:`probe_features`).
- :mod:`tasklens.represent.clip`: CLIP with open_clip (:func:`load_clip`, :func:`clip_image_features`,
  :func:`clip_text_features`, :func:`clip_item_embeddings`).
- :mod:`tasklens.represent.cache`: a disk cache keyed by content hash and model id (:class:`FeatureCache`).

torch and open_clip are imported only when a function that needs them runs.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "mean_var": "stats", "item_table": "stats",
    "FeatureCache": "cache", "content_hash": "cache", "default_cache_dir": "cache",
    "build_probe": "fisher", "train_probe": "fisher", "default_probe": "fisher", "save_probe": "fisher",
    "load_probe": "fisher", "probe_features": "fisher", "fisher_diagonal": "fisher",
    "task2vec": "fisher", "task2vec_distance": "fisher",
    "represent": "run", "METHODS": "run",
    "load_clip": "clip", "clip_image_features": "clip", "clip_text_features": "clip",
    "clip_item_embeddings": "clip", "open_clip_available": "clip", "CLIP_PROMPT": "clip",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
