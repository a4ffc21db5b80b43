"""Represent many datasets at once, with the disk cache: per-item features (for D(T|S)) and one vector each
(the Task2Box base representation)."""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_int
from .cache import FeatureCache, content_hash

METHODS = ("task2vec", "features", "clip")


def _probe_id(probe) -> str:
    state = probe.state_dict()
    return "probe:" + content_hash({k: v.detach().cpu().numpy() for k, v in state.items()})[:16]


def _data_key(d) -> list:
    return [np.asarray(d.x), None if d.y is None else np.asarray(d.y), list(d.classes)]


def represent(datasets, method: str = "task2vec", *, probe=None, clip=None, variance: bool = True,
              max_items: int | None = 500, samples: int = 1, seed: int = 0, cache_dir=None,
              progress: bool | None = None, device: str = "cpu"):
    """Per-item features and dataset vectors for ``datasets`` (:class:`~tasklens.datasets.ImageDomain` or
    :class:`~tasklens.datasets.sources.FeatureSet`).

    Parameters
    ----------
    method :
        ``"task2vec"``: vector = per-filter Fisher (:func:`~tasklens.represent.task2vec`), items = the probe's
        features; ``"features"``: vector = ``[mu, sigma^2]`` (Task2Box Eq. 1-2, or ``[mu]`` when ``variance`` is
        False) of the items, which are the probe's features for images and the given rows for feature sets
        (precomputed features and attribute tables pass through); ``"clip"``: items = ``[phi(x), psi(y)]``
        (open_clip), vector = ``[mu, sigma^2]``.
    probe : torch module for task2vec/features (default :func:`~tasklens.represent.default_probe`).
    clip : a :class:`~tasklens.represent.clip.ClipModel` from :func:`~tasklens.represent.load_clip` (clip).
    max_items : images per dataset used by Task2Vec (seeded subset).
    cache_dir : the :class:`FeatureCache` folder; False disables the cache. Keys: the content hash of images,
        labels and class names, the model id (probe weights hash or CLIP model and weights) and the options.
        The built-in probe itself is always kept in the default cache folder (:func:`default_probe`).

    Returns
    -------
    (vectors, items, info): ``vectors`` float64 ``(M, D)``; ``items`` list of M float32 ``(n_i, d)`` arrays;
    ``info`` dict with ``model_id``, ``cache_hits`` and ``cache_misses``.
    """
    from ..datasets.domains import ImageDomain
    from ..task2box.train import show_progress
    from .stats import mean_var

    check_choice(method, "method", METHODS)
    seed = check_int(seed, "seed", min=0)
    datasets = list(datasets)
    if not datasets:
        raise ValueError("datasets: expected at least one dataset, got none")
    cache = FeatureCache(cache_dir)
    images = any(isinstance(d, ImageDomain) for d in datasets)
    if method == "clip":
        if clip is None:
            raise ValueError("clip: method 'clip' needs a model: clip=tasklens.represent.load_clip(name, weights)")
        model_id = clip.model_id
    elif images or method == "task2vec":
        from .fisher import default_probe

        probe = default_probe(progress=progress) if probe is None else probe  # the probe lives in the default cache
        model_id = _probe_id(probe)
    else:
        model_id = "features"
    options = dict(method=method, variance=bool(variance), max_items=max_items, samples=samples, seed=seed)
    bar = None
    if show_progress(progress) and len(datasets) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(datasets), desc=f"representing ({method})", leave=False)
    vectors, items = [], []
    for d in datasets:
        is_image = isinstance(d, ImageDomain)
        if method in ("task2vec", "clip") and not is_image:
            raise ValueError(f"datasets: {d.name} holds precomputed features; method {method!r} needs images "
                             "(use method='features')")
        if method in ("task2vec", "clip") and len(d.classes) == 0:
            raise ValueError(f"datasets: {d.name} has no class names; {method} needs labelled images")
        key = content_hash(_data_key(d), model_id, options)

        def compute(d=d, is_image=is_image):
            if method == "clip":
                from .clip import clip_item_embeddings

                it = clip_item_embeddings(clip, d.x, d.y, d.classes, progress=progress)
                return {"items": it, "vector": mean_var(it.astype(np.float64), variance=variance)}
            from .fisher import probe_features, task2vec

            it = probe_features(d.x, probe, device=device) if is_image else np.asarray(d.x, np.float32)
            if method == "task2vec":
                vec = task2vec(d.x, d.y, probe=probe, num_classes=len(d.classes), samples=samples,
                               max_items=max_items, seed=seed, device=device)
            else:
                vec = mean_var(np.asarray(it if is_image else d.x, np.float64), variance=variance)
            return {"items": it, "vector": vec}

        got = cache.fetch("represent", key, compute)
        vectors.append(np.asarray(got["vector"], np.float64))
        items.append(np.asarray(got["items"], np.float32))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    widths = {v.shape[0] for v in vectors}
    if len(widths) > 1:
        raise ValueError(f"datasets: representations differ in length ({sorted(widths)}); feature sets must share "
                         "one number of columns")
    return np.stack(vectors), items, {"model_id": model_id, "cache_hits": cache.hits, "cache_misses": cache.misses}
