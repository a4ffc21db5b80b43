"""Task2Vec (Achille et al., "Task2Vec: Task Embedding for Meta-Learning", ICCV 2019) and the built-in probe.

A dataset is embedded by the diagonal Fisher information of a probe network's feature-extractor weights,

    F = E_{x ~ D} E_{y ~ p_w(y | x)} [ (d/dw log p_w(y | x))^2 ],                              (Task2Vec Eq. 1)

estimated by Monte Carlo with labels sampled from the model's own predictive distribution (the "empirical"
x, "model" y Fisher of the paper), after a linear classifier head has been fitted to the dataset on the frozen
features (§3 of the paper: only the classifier is re-trained on the task). Entries of one filter (one output
channel of a convolution, one output unit of a linear layer) are averaged, giving one number per filter.
Task2Box (§3.1) uses this vector as a base representation; :func:`task2vec_distance` is the normalised cosine
distance of the Task2Vec paper (§3.1: ``d_sym(F_a, F_b) = d_cos(F_a / (F_a + F_b), F_b / (F_a + F_b))`` and the
asymmetric ``d_asym(a -> b) = d_sym(a, b) - alpha d_sym(a, 0)``).

torch is imported only inside the functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_labels, check_scalar, describe, is_torch

PROBE_SOURCE_ITEMS = 12000
PROBE_EPOCHS = 2


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("tasklens.represent.task2vec needs torch: pip install torch") from exc
    return torch


def build_probe(in_channels: int = 1, num_classes: int = 10, widths=(8, 16, 32), size: int = 28):
    """The built-in probe: three 3x3 conv + ReLU blocks (max-pool after the first two), global average pooling
    and a linear head. ``probe.features`` maps ``(N, in_channels, size, size)`` images in [0, 1] to
    ``(N, widths[-1])``; ``probe.head`` is the classifier. ~6k weights for the default widths."""
    torch = _torch()
    nn = torch.nn
    in_channels = check_int(in_channels, "in_channels", min=1)
    num_classes = check_int(num_classes, "num_classes", min=1)
    size = check_int(size, "size", min=4)
    widths = tuple(check_int(w, "widths", min=1) for w in widths)
    layers, c = [], in_channels
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU()]
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.head = nn.Linear(c, num_classes)
    model.forward = lambda x: model.head(model.features(x))  # noqa: E731 - an instance-level forward
    model.input_shape = (in_channels, size, size)
    model.config = {"in_channels": in_channels, "size": size, "widths": widths, "num_classes": num_classes}
    return model


def _split(probe):
    """``(features, input_shape or None)`` of a probe: its ``.features`` when it has one, else the module."""
    torch = _torch()
    if not isinstance(probe, torch.nn.Module):
        raise TypeError(f"probe: expected a torch.nn.Module (a feature extractor, or a model with .features), "
                        f"got {type(probe).__name__}")
    feats = probe.features if isinstance(getattr(probe, "features", None), torch.nn.Module) else probe
    return feats, getattr(probe, "input_shape", None)


def prepare_images(images: Any, input_shape=None, name: str = "images"):
    """uint8 or float ``(N, C, H, W)`` (or ``(N, H, W)``) images -> float32 torch ``(N, C, H, W)`` in [0, 1],
    with channels and size matched to ``input_shape = (C, H, W)`` when given (BT.601 luma / repeat, bilinear)."""
    torch = _torch()
    from ..datasets.images import match_channels, resize, to_float_images

    x = images
    if getattr(x, "ndim", None) == 3:
        x = x[:, None]
    x = to_float_images(x, name)
    if input_shape is not None:
        c, h, w = input_shape
        x = match_channels(x, c, name)
        x = resize(x, (h, w), name)
    return x if is_torch(x) else torch.from_numpy(np.ascontiguousarray(x))


def _progress(progress, total, desc):
    from ..task2box.train import show_progress

    if not show_progress(progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def train_probe(images: Any, labels: Any, *, num_classes: int | None = None, epochs: int = PROBE_EPOCHS,
                seed: int = 0, batch_size: int = 128, lr: float = 2e-3, progress: bool | None = None,
                threads: int | None = None):
    """Train the built-in probe (:func:`build_probe`) on a labelled source set (Adam, cross-entropy, seeded).

    ``images`` uint8/float ``(N, C, H, W)``; the probe takes their channels and (square) size. Deterministic for a
    seed on CPU. Returns the trained module in eval mode.
    """
    torch = _torch()
    epochs = check_int(epochs, "epochs", min=1)
    seed = check_int(seed, "seed", min=0)
    batch_size = check_int(batch_size, "batch_size", min=1)
    check_scalar(lr, "lr", min=0.0, min_inclusive=False)
    x = prepare_images(images)
    y = check_labels(labels, "labels", n=x.shape[0], num_classes=num_classes)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    k = int(num_classes if num_classes is not None else int(y.max()) + 1)
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"images: the built-in probe needs square images, got {describe(x)}")
    torch.manual_seed(seed)
    model = build_probe(x.shape[1], k, size=x.shape[2])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    bar = _progress(progress, epochs * ((len(x) + batch_size - 1) // batch_size), "training the probe")
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for s in range(0, len(x), batch_size):
                idx = order[s:s + batch_size]
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if bar is not None:
                    bar.update(1)
    finally:
        torch.set_num_threads(old)
        if bar is not None:
            bar.close()
    return model.eval()


def save_probe(probe, path) -> str:
    """Write a built-in probe (config and weights) to ``path`` (torch.save); returns the path."""
    torch = _torch()
    path = os.fspath(path)
    cfg = getattr(probe, "config", None)
    if cfg is None:
        raise TypeError("probe: only built-in probes (build_probe / train_probe) can be saved with save_probe; "
                        "save other modules with torch.save")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = path + ".tmp"
    torch.save({"config": dict(cfg, widths=list(cfg["widths"])), "state": probe.state_dict()}, tmp)
    os.replace(tmp, path)
    return path


def load_probe(path):
    """A probe written by :func:`save_probe` (loaded with ``weights_only=True``), in eval mode."""
    torch = _torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"probe: checkpoint {path} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "config" not in payload or "state" not in payload:
        raise ValueError(f"probe: {path} is not a checkpoint written by tasklens.represent.save_probe")
    cfg = payload["config"]
    model = build_probe(cfg["in_channels"], cfg["num_classes"], tuple(cfg["widths"]), cfg["size"])
    model.load_state_dict(payload["state"])
    return model.eval()


def _source_set(source: str):
    """The default probe's training images: Fashion-MNIST's train split when installed, else scikit-learn's
    handwritten digits (bundled with scikit-learn, so always offline) resized to 28x28."""
    check_choice(source, "source", ("auto", "fashion-mnist", "digits"))
    if source in ("auto", "fashion-mnist"):
        from ..datasets.idx import load_fashion_mnist

        try:
            x, y = load_fashion_mnist("train")
            return "fashion-mnist", x[:PROBE_SOURCE_ITEMS, None], y[:PROBE_SOURCE_ITEMS]
        except FileNotFoundError:
            if source == "fashion-mnist":
                raise
    from ..datasets.digits import load_handwritten_digits

    d = load_handwritten_digits(28)
    return "digits", d.x, d.y


def default_probe(*, cache_dir=None, source: str = "auto", seed: int = 0, progress: bool | None = None):
    """The built-in probe trained on a source set, cached as ``<cache>/probe/<source>-seed<seed>.pt``.

    The first call trains it (:func:`train_probe`, ``PROBE_EPOCHS`` epochs on ``PROBE_SOURCE_ITEMS`` images of
    Fashion-MNIST's train split, or on scikit-learn's digits when Fashion-MNIST is not installed); later calls
    load the checkpoint. ``cache_dir=False`` trains without writing.
    """
    from .cache import default_cache_dir

    seed = check_int(seed, "seed", min=0)
    name, x, y = _source_set(source)
    path = None
    if cache_dir is not False:
        base = default_cache_dir() if cache_dir in (None, True) else Path(os.fspath(cache_dir))
        path = base / "probe" / f"{name}-seed{seed}-e{PROBE_EPOCHS}-n{len(x)}.pt"
        if path.is_file():
            return load_probe(path)
    model = train_probe(x, y, num_classes=int(y.max()) + 1, seed=seed, progress=progress)
    model.source = name
    if path is not None:
        save_probe(model, path)
    return model


def probe_features(images: Any, probe=None, *, batch_size: int = 256, device: str = "cpu"):
    """Per-item features ``(N, d)`` (float32 numpy) of the probe's feature extractor (``probe.features`` when the
    module has one). ``probe=None`` uses :func:`default_probe`."""
    torch = _torch()
    batch_size = check_int(batch_size, "batch_size", min=1)
    probe = default_probe() if probe is None else probe
    feats, shape = _split(probe)
    x = prepare_images(images, shape)
    feats = feats.to(device).eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            out.append(feats(x[s:s + batch_size].to(device)).reshape(min(batch_size, len(x) - s), -1).cpu())
    return torch.cat(out).numpy().astype(np.float32)


# --------------------------------------------------------------------------- Fisher information
def fisher_diagonal(model, x, *, samples: int = 1, exact: bool = False, seed: int = 0, batch_size: int = 128,
                    params=None):
    """Diagonal Fisher information ``E_x E_{y ~ p(y|x)} [(d log p(y|x) / dw)^2]`` (Task2Vec Eq. 1).

    Parameters
    ----------
    model : torch module mapping a batch ``x`` to logits ``(n, K)`` (evaluated in eval mode).
    x : torch tensor ``(N, ...)``, the inputs.
    samples : labels drawn from ``softmax(model(x_i))`` per input (Monte-Carlo estimate).
    exact : take the expectation over ``y`` exactly (sum over the K classes weighted by ``p(y|x)``) instead.
    seed : seed of the label draws (a CPU ``torch.Generator``; one ``multinomial`` draw per batch and sample).
    params : names of the parameters to differentiate (default: every parameter with ``requires_grad``).

    Returns
    -------
    dict name -> tensor of the parameter's shape (float, on the parameter's device): the mean over the N inputs
    (and the samples) of squared per-sample gradients, computed with ``torch.func.vmap(grad(...))``.
    """
    torch = _torch()
    from torch.func import functional_call, grad, vmap

    samples = check_int(samples, "samples", min=1)
    seed = check_int(seed, "seed", min=0)
    batch_size = check_int(batch_size, "batch_size", min=1)
    if not is_torch(x):
        raise TypeError(f"x: expected a torch tensor, got {describe(x)}")
    named = dict(model.named_parameters())
    names = [n for n, p in named.items() if p.requires_grad] if params is None else list(params)
    unknown = [n for n in names if n not in named]
    if unknown:
        raise KeyError(f"params: {unknown} are not parameters of the model (it has {list(named)[:8]}...)")
    if not names:
        raise ValueError("params: no parameter to differentiate")
    fixed = {n: p.detach() for n, p in named.items() if n not in names}
    buffers = dict(model.named_buffers())
    was_training = model.training
    model.eval()

    def log_lik(p, xi, yi):
        out = functional_call(model, ({**fixed, **p, **buffers}), (xi[None],))
        return torch.log_softmax(out, dim=1)[0].gather(0, yi.reshape(1))[0]

    per_sample = vmap(grad(log_lik), in_dims=(None, 0, 0))
    theta = {n: named[n].detach() for n in names}
    acc = {n: torch.zeros_like(t) for n, t in theta.items()}
    gen = torch.Generator().manual_seed(seed)
    try:
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            with torch.no_grad():
                prob = torch.softmax(model(xb), dim=1)
            if exact:
                draws = [(torch.full((len(xb),), c, dtype=torch.int64, device=xb.device), prob[:, c])
                         for c in range(prob.shape[1])]
            else:
                draws = []
                for _ in range(samples):
                    y = torch.multinomial(prob.detach().cpu().to(torch.float64), 1, generator=gen)[:, 0]
                    draws.append((y.to(xb.device), None))
            for y, w in draws:
                g = per_sample(theta, xb, y)
                for n in names:
                    sq = g[n] ** 2
                    if w is not None:
                        sq = sq * w.reshape(-1, *([1] * (sq.ndim - 1))).to(sq.dtype)
                    acc[n] += sq.sum(0)
    finally:
        model.train(was_training)
    scale = 1.0 / (len(x) * (1 if exact else samples))
    return {n: a * scale for n, a in acc.items()}


def per_filter(fisher: dict) -> np.ndarray:
    """Average each weight tensor (ndim >= 2) of a Fisher dict over all but its first axis: one value per filter
    (conv output channel) or output unit (linear layer), concatenated in the dict's order (float64 numpy).
    Biases and other 1-d parameters are left out, as in Task2Vec's filter-wise embedding."""
    parts = [v.detach().reshape(v.shape[0], -1).mean(1).cpu().double().numpy()
             for v in fisher.values() if v.ndim >= 2]
    if not parts:
        raise ValueError("fisher: no weight tensor with 2 or more dimensions")
    return np.concatenate(parts)


def _fit_head(features, y, k: int, *, seed: int, steps: int = 200, lr: float = 0.05):
    """A linear classifier on frozen features: full-batch Adam on cross-entropy, seeded."""
    torch = _torch()
    torch.manual_seed(seed)
    head = torch.nn.Linear(features.shape[1], k)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(head(features), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def task2vec(images: Any, labels: Any, *, probe=None, num_classes: int | None = None, samples: int = 1,
             max_items: int | None = 500, seed: int = 0, batch_size: int = 128, head_steps: int = 200,
             device: str = "cpu"):
    """The Task2Vec embedding of one labelled image set: per-filter diagonal Fisher information of the probe's
    feature extractor (Task2Vec Eq. 1, filter-wise averages), float64 numpy ``(n_filters,)``.

    Parameters
    ----------
    images : ``(N, C, H, W)`` (or ``(N, H, W)``) uint8 or float images; matched to the probe's ``input_shape``.
    labels : ``(N,)`` int class codes.
    probe : a torch module: a feature extractor, or a model with ``.features`` (then its ``.head`` is ignored);
        ``None`` = :func:`default_probe`. A new linear head with one output per class is fitted on the frozen
        features (``head_steps`` full-batch Adam steps), then the Fisher of the extractor's weights is taken.
    samples : Monte-Carlo label draws per image (labels from the model's predictive distribution).
    max_items : images used (a seeded random subset when there are more); None = all.
    """
    torch = _torch()
    seed = check_int(seed, "seed", min=0)
    max_items = check_int(max_items, "max_items", min=1, allow_none=True)
    head_steps = check_int(head_steps, "head_steps", min=1)
    probe = default_probe() if probe is None else probe
    feats, shape = _split(probe)
    x = prepare_images(images, shape)
    y = np.asarray(check_labels(labels, "labels", n=x.shape[0], num_classes=num_classes))
    if max_items is not None and len(x) > max_items:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), size=max_items, replace=False))
        x, y = x[torch.from_numpy(keep)], y[keep]
    k = int(num_classes if num_classes is not None else y.max() + 1)
    feats = feats.to(device).eval()
    x = x.to(device)
    with torch.no_grad():
        f = torch.cat([feats(x[s:s + 256]).reshape(min(256, len(x) - s), -1) for s in range(0, len(x), 256)])
    yt = torch.as_tensor(y, dtype=torch.int64, device=device)
    head = _fit_head(f.cpu(), yt.cpu(), k, seed=seed, steps=head_steps).to(device)
    model = torch.nn.Sequential(feats, torch.nn.Flatten(), head)
    names = [f"0.{n}" for n, p in feats.named_parameters() if p.requires_grad]
    fisher = fisher_diagonal(model, x, samples=samples, seed=seed, batch_size=batch_size, params=names)
    return per_filter(fisher)


def task2vec_distance(a: Any, b: Any, *, trivial: Any = None, alpha: float = 0.0) -> float:
    """Normalised cosine distance of two Task2Vec embeddings (Task2Vec §3.1):
    ``d_sym(a, b) = d_cos(a / (a + b), b / (a + b))``; with ``trivial`` (the embedding of a trivial task) the
    asymmetric ``d_asym(a -> b) = d_sym(a, b) - alpha d_sym(a, trivial)``. Inputs are non-negative (d,) vectors."""
    alpha = check_scalar(alpha, "alpha", min=0.0)

    def vec(v, name):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 1 or (v < 0).any() or not np.isfinite(v).all():
            raise ValueError(f"{name}: expected a finite non-negative (d,) vector, got {describe(v)}")
        return v

    def d_sym(p, q):
        s = p + q
        s = np.where(s > 0, s, 1.0)
        u, v = p / s, q / s
        den = np.linalg.norm(u) * np.linalg.norm(v)
        return float(1.0 - (u @ v) / den) if den > 0 else 1.0

    a, b = vec(a, "a"), vec(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b: expected the same length, got {a.shape} and {b.shape}")
    d = d_sym(a, b)
    if trivial is not None:
        d -= alpha * d_sym(a, vec(trivial, "trivial"))
    return d
