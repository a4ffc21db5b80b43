"""Checkpoint files for Task2Box models and their training state.

A checkpoint is one ``torch.save`` file holding a dict:

- ``kind``: the estimator's class name (``"Task2Box"``, ``"MLPBaseline"``, ...);
- ``config``: its constructor arguments; ``in_dim``: the base-representation dimension;
- ``model``: the module's ``state_dict`` (includes the input standardisation buffers);
- ``history``: the loss / validation history;
- ``train`` (every checkpoint written by ``fit(checkpoint=...)``, periodic or final; not by ``save``):
  optimizer state, epoch, early-stopping state, best and last parameters and the RNG states, so that a
  run resumed from any of them ends with exactly the parameters of an uninterrupted one.

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
    """Read a checkpoint written by :func:`save_checkpoint` (tensors mapped to CPU).

    Raises FileNotFoundError for a missing file and one ValueError naming the file for anything that is not
    a readable tasklens checkpoint: an empty, truncated or corrupt file, a directory, another pickle.
    """
    import pickle

    import torch

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the checkpoint file is empty (0 bytes); it was not written completely")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, ValueError, AttributeError, ImportError,
            IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a readable tasklens checkpoint (truncated or corrupt file? "
                         f"{type(exc).__name__}: {reason})") from None
    if not isinstance(data, dict) or "kind" not in data or "model" not in data:
        raise ValueError(f"{path}: not a tasklens checkpoint (missing 'kind'/'model')")
    return data
