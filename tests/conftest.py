"""Shared fixtures: dtypes, devices (CUDA tests are marked ``cuda`` and skipped without a GPU), threads.

CUDA tests are skipped only when torch sees no GPU. When torch sees one, they run, and they fail (never skip)
when tasklens was built without CUDA kernels or its CUDA runtime cannot use the driver: that is what a GPU
machine must reveal (``scripts/gpu-check``).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest


@functools.lru_cache(maxsize=None)
def cuda_available() -> bool:
    """True when torch sees a GPU (whether tasklens can use it is what the CUDA tests check)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU visible to torch")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["float32", "float64"])
def dtype(request) -> str:
    return request.param


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request) -> str:
    """Torch device string; the CUDA variant is skipped without a GPU."""
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def threads():
    """Run a block under a given thread count and restore the default afterwards."""
    import tasklens

    yield tasklens.set_num_threads
    tasklens.set_num_threads(None)


def subprocess_env(**extra: str) -> dict:
    """Environment for a child Python that imports the same tasklens as this process (installed or in the tree)."""
    import os

    import tasklens

    root = os.path.dirname(os.path.dirname(os.path.abspath(tasklens.__file__)))
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **extra)
