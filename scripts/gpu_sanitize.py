"""Tiny CUDA workloads, one per kernel family, for compute-sanitizer (memcheck, racecheck) in scripts/gpu-check.

Usage: python scripts/gpu_sanitize.py {boxes,distance,hscore,ace,all}

Each family runs every CUDA kernel it has once on small inputs with ragged sizes (sizes that are not multiples
of the tile or block widths, so the bounds checks are exercised) and compares with the CPU path, so that the
run also fails on a wrong answer. Run it under compute-sanitizer with PYTORCH_NO_CUDA_MEMORY_CACHING=1, so
every tensor is its own allocation and an out-of-bounds access cannot land silently in a cached block.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402

DEV = "cuda"


def _close(gpu, cpu, tol):
    gpu = gpu.detach().cpu().double().numpy() if isinstance(gpu, torch.Tensor) else np.asarray(gpu)
    cpu = cpu.detach().cpu().double().numpy() if isinstance(cpu, torch.Tensor) else np.asarray(cpu)
    np.testing.assert_allclose(gpu, cpu, rtol=tol, atol=tol)


def boxes():
    import tasklens.boxes as tb

    rng = np.random.default_rng(0)
    for n, m, k in ((19, 23, 3), (17, 5, 37)):  # k = 37: two dimension chunks
        la = rng.uniform(-1, 1, (n, k))
        ha = la + rng.uniform(0.05, 1, (n, k))
        lb = rng.uniform(-1, 1, (m, k))
        hb = lb + rng.uniform(0.05, 1, (m, k))
        ia, ib = rng.integers(0, n, 41), rng.integers(0, m, 41)
        for mode in ("hard", "soft", "gumbel"):
            res = {}
            for dev in ("cpu", DEV):
                ts = [torch.tensor(x, device=dev, requires_grad=True) for x in (la, ha, lb, hb)]
                d = tb.containment(*ts, mode=mode, log=(mode == "soft"))
                g = torch.autograd.grad(d.sum(), ts)
                ts2 = [t.detach().requires_grad_() for t in ts]
                p = tb.containment_pairs(*ts2, torch.tensor(ia, device=dev), torch.tensor(ib, device=dev), mode=mode)
                gp = torch.autograd.grad(p.sum(), ts2)
                lv = tb.log_volume(ts[0], ts[1], mode=mode)
                gl = torch.autograd.grad(lv.sum(), ts[:2])
                imode = "hard" if mode == "soft" else mode
                r = min(n, m)
                lo, hi = tb.intersection(ts[0][:r], ts[1][:r], ts[2][:r], ts[3][:r], mode=imode,
                                         clip=(mode == "gumbel"))
                gi = torch.autograd.grad((lo - 2 * hi).sum(), ts)
                res[dev] = [d, *g, p, *gp, lv, *gl, lo, hi, *gi]
            for a, b in zip(res[DEV], res["cpu"]):
                _close(a, b, 1e-8)


def distance():
    from tasklens.domain import domain_distance, domain_distance_matrix, nearest

    rng = np.random.default_rng(1)
    ds = [rng.standard_normal((n, 19)) for n in (70, 1, 130)]  # ragged against the 64-row tiles
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        for dtype in ("float32", "float64"):
            parts = [x.astype(dtype) for x in ds]
            cpu = domain_distance_matrix(parts, metric=metric)
            gpu = domain_distance_matrix([torch.from_numpy(x).to(DEV) for x in parts], metric=metric)
            _close(gpu, cpu, 1e-5)
        d, i = nearest(torch.from_numpy(ds[0]).to(DEV), torch.from_numpy(ds[2]).to(DEV), metric=metric)
        _close(d, nearest(ds[0], ds[2], metric=metric)[0], 1e-5)
    got = domain_distance(torch.from_numpy(ds[0] * 1e200).to(DEV), torch.from_numpy(ds[2] * 1e200).to(DEV))
    assert abs(float(got) / domain_distance(ds[0] * 1e200, ds[2] * 1e200) - 1) < 1e-5


def hscore():
    from tasklens.metrics import hscore as h

    rng = np.random.default_rng(2)
    y = rng.integers(0, 7, 333)
    x = rng.standard_normal((333, 45)) + rng.standard_normal((7, 45))[y]
    for dtype in ("float32", "float64"):
        cpu = h(x.astype(dtype), y)
        gpu = h(torch.from_numpy(x.astype(dtype)).to(DEV), torch.from_numpy(y).to(DEV))
        _close(gpu, cpu, 1e-4 if dtype == "float32" else 1e-9)


def ace():
    from tasklens.hgr import ace as run

    rng = np.random.default_rng(3)
    x = rng.integers(0, 37, 5000)
    y = (x * 3 + rng.integers(0, 4, 5000)) % 23
    cpu = run(x, y, k=3, method="alternate", max_iter=300)
    gpu = run(torch.from_numpy(x).to(DEV), torch.from_numpy(y).to(DEV), k=3, max_iter=300)
    _close(gpu.correlations, cpu.correlations, 1e-8)


FAMILIES = {"boxes": boxes, "distance": distance, "hscore": hscore, "ace": ace}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in (*FAMILIES, "all"):
        raise SystemExit(f"usage: python {sys.argv[0]} {{{','.join(FAMILIES)},all}}")
    for name in FAMILIES if sys.argv[1] == "all" else [sys.argv[1]]:
        FAMILIES[name]()
        torch.cuda.synchronize()
        print(f"{name}: ok", flush=True)
