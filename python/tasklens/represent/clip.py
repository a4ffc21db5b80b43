"""CLIP features with open_clip (Radford et al. 2021; Cherti et al. 2023) for Task2Box §3.1 (Eq. 1-2).

Each item gets ``[phi(x_i), psi(y_i)]``: the L2-normalised image embedding followed by the L2-normalised text
embedding of its label's prompt ("a photo of a {class}."). :func:`tasklens.represent.mean_var` turns those into
the dataset representation ``[mu]`` or ``[mu, sigma^2]``.

open_clip (the ``clip`` extra) and torch are imported only when a function here runs. Weights come from a local
checkpoint file (works offline), a hub tag (downloaded by open_clip; needs the network), or ``None`` (random
weights: for tests and timing only).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._validation import check_int, describe

CLIP_PROMPT = "a photo of a {}."
OFFLINE_ENVS = ("TASKLENS_OFFLINE", "HF_HUB_OFFLINE")
_INSTALL = ("open_clip could not be imported ({}); install the `clip` extra: pip install 'tasklens[clip]' "
            "(open_clip needs torchvision; on CPU-only machines use a matching torch/torchvision pair, e.g. "
            "pip install torch==2.14.1 torchvision==0.29.1 open_clip_torch)")


def open_clip_available() -> tuple[bool, str]:
    """``(True, "")`` when open_clip imports, else ``(False, reason)``."""
    try:
        import open_clip  # noqa: F401
    except Exception as exc:  # ImportError, or torchvision failing against the installed torch
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def _open_clip():
    ok, why = open_clip_available()
    if not ok:
        raise ImportError(_INSTALL.format(why))
    import open_clip

    return open_clip


def _offline() -> bool:
    return any(os.environ.get(e, "").strip() not in ("", "0") for e in OFFLINE_ENVS)


def _hint(model: str) -> str:
    return (f"pass a local checkpoint file instead: weights='/path/to/{model}.bin' (Python) or --clip-weights FILE "
            "(CLI); a file saved by open_clip (e.g. open_clip_pytorch_model.bin from the model's hub page, "
            "downloaded once on a machine with network access) works")


class ClipModel:
    """A loaded open_clip model with its tokenizer; ``model_id`` names model and weights (the cache key)."""

    def __init__(self, model, tokenizer, model_id: str, device: str):
        self.model, self.tokenizer, self.model_id, self.device = model, tokenizer, model_id, device
        vis = model.visual
        size = getattr(vis, "image_size", 224)
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        self.mean = getattr(vis, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
        self.std = getattr(vis, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)


def load_clip(model: str = "ViT-B-32", weights: str | None = None, *, device: str = "cpu", seed: int = 0):
    """Create an open_clip model.

    Parameters
    ----------
    model : open_clip architecture name (``open_clip.list_models()``), e.g. ``"ViT-B-32"``.
    weights : a local checkpoint path (offline), a hub tag such as ``"laion2b_s34b_b79k"`` (downloads; an error
        when ``$TASKLENS_OFFLINE`` or ``$HF_HUB_OFFLINE`` is set), or None for random weights (seeded).
    device : torch device.
    """
    open_clip = _open_clip()
    import torch

    seed = check_int(seed, "seed", min=0)
    if model not in open_clip.list_models():
        raise ValueError(f"model: unknown open_clip architecture {model!r}; e.g. {open_clip.list_models()[:5]}")
    if weights is None:
        torch.manual_seed(seed)
        net = open_clip.create_model(model, pretrained=None, device=device)
        model_id = f"open_clip:{model}:random:seed{seed}"
    elif os.path.isfile(os.fspath(weights)):
        path = os.path.abspath(os.fspath(weights))
        st = os.stat(path)
        net = open_clip.create_model(model, pretrained=path, device=device)
        model_id = f"open_clip:{model}:file:{path}:{st.st_size}:{st.st_mtime_ns}"
    else:
        w = os.fspath(weights)
        if os.sep in w or w.endswith((".bin", ".pt", ".pth", ".safetensors")):
            raise FileNotFoundError(f"weights: checkpoint file {w} does not exist")
        tags = [t for m, t in open_clip.list_pretrained() if m == model]
        if w not in tags:
            raise ValueError(f"weights: {w!r} is neither a file nor a hub tag of {model} (tags: {tags})")
        if _offline():
            raise RuntimeError(f"weights: hub tag {w!r} needs a download, but this process is offline "
                               f"({' or '.join('$' + e for e in OFFLINE_ENVS)} is set); {_hint(model)}")
        try:
            net = open_clip.create_model(model, pretrained=w, device=device)
        except Exception as exc:  # network errors come from several libraries
            raise RuntimeError(f"weights: could not download hub tag {w!r} ({type(exc).__name__}: {exc}); "
                               f"{_hint(model)}") from None
        model_id = f"open_clip:{model}:hub:{w}"
    net.eval()
    return ClipModel(net, open_clip.get_tokenizer(model), model_id, device)


def _autocast(clip: ClipModel):
    import contextlib

    import torch

    if str(clip.device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _bar(progress, total, desc):
    from .fisher import _progress

    return _progress(progress, total, desc)


def clip_image_features(clip: ClipModel, images: Any, *, batch_size: int = 64, progress: bool | None = None):
    """L2-normalised image embeddings ``phi(x)``, float32 numpy ``(N, D)``. ``images``: uint8/float
    ``(N, C, H, W)`` or ``(N, H, W)``; gray is repeated to RGB, resized bilinearly to the model's input size and
    normalised with the model's mean and std. Batched; fp16 autocast on CUDA."""
    import torch

    from .fisher import prepare_images

    batch_size = check_int(batch_size, "batch_size", min=1)
    x = prepare_images(images, (3, *clip.image_size))
    mean = torch.tensor(clip.mean, dtype=torch.float32).reshape(1, 3, 1, 1)
    std = torch.tensor(clip.std, dtype=torch.float32).reshape(1, 3, 1, 1)
    out = []
    bar = _bar(progress, len(x), "CLIP images")
    with torch.no_grad(), _autocast(clip):
        for s in range(0, len(x), batch_size):
            xb = ((x[s:s + batch_size] - mean) / std).to(clip.device)
            f = clip.model.encode_image(xb).float()
            out.append(torch.nn.functional.normalize(f, dim=1).cpu())
            if bar is not None:
                bar.update(len(xb))
    if bar is not None:
        bar.close()
    return torch.cat(out).numpy()


def clip_text_features(clip: ClipModel, classes, *, prompt: str = CLIP_PROMPT, batch_size: int = 256):
    """L2-normalised text embeddings ``psi(y)`` of ``prompt.format(class)`` for every class, float32 ``(K, D)``."""
    import torch

    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("classes: expected at least one class name, got none")
    if "{}" not in prompt:
        raise ValueError(f"prompt: expected a template with '{{}}' for the class name, got {prompt!r}")
    out = []
    with torch.no_grad(), _autocast(clip):
        for s in range(0, len(classes), batch_size):
            tok = clip.tokenizer([prompt.format(c.replace("_", " ")) for c in classes[s:s + batch_size]])
            f = clip.model.encode_text(tok.to(clip.device)).float()
            out.append(torch.nn.functional.normalize(f, dim=1).cpu())
    return torch.cat(out).numpy()


def clip_item_embeddings(clip: ClipModel, images: Any, labels: Any, classes, *, prompt: str = CLIP_PROMPT,
                         batch_size: int = 64, progress: bool | None = None) -> np.ndarray:
    """Per-item ``[phi(x_i), psi(y_i)]`` (Task2Box §3.1), float32 numpy ``(N, 2 D)``."""
    from .stats import item_table

    img = clip_image_features(clip, images, batch_size=batch_size, progress=progress)
    txt = clip_text_features(clip, classes, prompt=prompt)
    if len(np.asarray(labels)) != len(img):
        raise ValueError(f"labels: expected {len(img)} labels (one per image), got {describe(labels)}")
    return item_table(img, labels, txt).astype(np.float32)
