"""CUDA launch glue of the HGR module: device allocation for :func:`tasklens.hgr.ace` and its kernel launch."""

from __future__ import annotations

from .._dispatch import Backend, call


def ace_fit(a, s, na: int, ns: int, k: int, b: int, max_iter: int, tol: float, seed: int, backend: Backend):
    """ACE on CUDA codes ``a`` (alphabet ``na``) and ``s`` (alphabet ``ns``, the iterated side), on the caller's
    stream: returns (f_a (na, k), f_s (ns, k), correlations (k,), iterations, converged), float64 on the device."""
    import torch

    fa = torch.empty((na, k), dtype=torch.float64, device=a.device)
    fs = torch.empty((ns, k), dtype=torch.float64, device=a.device)
    corr = torch.empty((k,), dtype=torch.float64, device=a.device)
    iters, conv = call("ace_fit", backend, a, s, a.shape[0], na, ns, k, b, max_iter, tol, seed, fa, fs, corr)
    return fa, fs, corr, iters, conv
