"""A disk cache of computed representations, keyed by a content hash of the data and the model id."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

CACHE_ENV = "TASKLENS_CACHE"


def default_cache_dir() -> Path:
    """``$TASKLENS_CACHE``, else ``$XDG_CACHE_HOME/tasklens``, else ``~/.cache/tasklens``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tasklens"


def content_hash(*parts) -> str:
    """SHA-256 (hex) of arrays (dtype, shape and bytes), strings, numbers and nested lists/tuples/dicts of them."""
    h = hashlib.sha256()

    def feed(p):
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"array:{a.dtype.str}:{a.shape}:".encode())
            h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
        elif isinstance(p, (list, tuple)):
            h.update(f"seq:{len(p)}:".encode())
            for q in p:
                feed(q)
        elif isinstance(p, dict):
            h.update(f"dict:{len(p)}:".encode())
            for k in sorted(p):
                feed(str(k))
                feed(p[k])
        else:
            h.update(f"{type(p).__name__}:{json.dumps(p, default=str)};".encode())

    for p in parts:
        feed(p)
    return h.hexdigest()


class FeatureCache:
    """Arrays stored as ``<dir>/<kind>/<key>.npz``, where ``key = content_hash(data..., model_id, options)``.

    Parameters
    ----------
    directory : cache folder (default :func:`default_cache_dir`); ``False`` disables caching (every lookup
        misses and nothing is written).

    Writes are atomic (temporary file then rename), so concurrent runs never read half a file. ``hits`` and
    ``misses`` count lookups since construction.
    """

    def __init__(self, directory=None):
        self.enabled = directory is not False
        self.directory = default_cache_dir() if directory in (None, True) else (
            Path(os.fspath(directory)) if self.enabled else None)
        self.hits = 0
        self.misses = 0

    def path(self, kind: str, key: str) -> Path:
        return self.directory / kind / f"{key}.npz"

    def get(self, kind: str, key: str) -> dict | None:
        """The stored arrays, or None (a missing or unreadable file is a miss)."""
        if not self.enabled:
            self.misses += 1
            return None
        p = self.path(kind, key)
        try:
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            self.misses += 1
            return None
        self.hits += 1
        return out

    def put(self, kind: str, key: str, arrays: dict) -> None:
        if not self.enabled:
            return
        p = self.path(kind, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp.npz")
        os.close(fd)
        try:
            np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def fetch(self, kind: str, key: str, compute) -> dict:
        """``get``, else ``compute()`` (a dict of arrays), stored and returned."""
        found = self.get(kind, key)
        if found is not None:
            return found
        value = {k: np.asarray(v) for k, v in compute().items()}
        self.put(kind, key, value)
        return value
