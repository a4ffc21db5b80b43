"""Checkpoint files for Task2Box models and their training state.

A checkpoint is one ``torch.save`` file holding a dict:

- ``kind``: the estimator's class name (``"Task2Box"``, ``"MLPBaseline"``, ...);
- ``config``: its constructor arguments; ``in_dim``: the base-representation dimension;
- ``model``: the module's ``state_dict`` (includes the input standardisation buffers);
- ``history``: the loss / validation history;
- ``train`` (only while training): optimizer state, epoch, early-stopping state, best parameters and
  the RNG states, so that a resumed run ends with exactly the parameters of an uninterrupted one.

Files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import copy
import os

__all__ = ["save_checkpoint", "load_checkpoint", "snapshot"]


def snapshot(module) -> dict:
    """A detached deep copy of a module's ``state_dict``."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def save_checkpoint(path: str, payload: dict) -> str:
    """Write ``payload`` to ``path`` atomically; returns the path."""
    import torch

    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    torch.save(copy.copy(payload), tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors mapped to CPU)."""
    import torch

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    data = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(data, dict) or "kind" not in data or "model" not in data:
        raise ValueError(f"{path}: not a tasklens checkpoint (missing 'kind'/'model')")
    return data
