"""Benchmark: the all-pairs domain-distance matrix (Eq. 1) vs faiss-cpu IndexFlatL2 and torch.cdist + min.

M datasets x n rows x d dims float32 (default 50 x 1000 x 512), every ordered pair (target, source):
- tasklens.domain_distance_matrix (one pass, segmented minima, exact),
- faiss: per source dataset, IndexFlatL2 (k = 1) searched with all target rows (same thread count),
- torch.cdist + min per ordered pair (same thread count).
Correctness first (1e-5 relative on the off-diagonal entries), then one warm-up, then timed runs; peak
memory is measured with tracemalloc (numpy/tasklens allocations) and as the RSS growth of a fresh child
process per contender. Usage: python benchmarks/bench_distance.py [--quick] [--threads 2]

GPU rows (``--device cuda``): tasklens' CUDA kernel and torch.cdist + min on the GPU (float32 CUDA tensors),
checked against the exact CPU matrix (1e-5 relative off the diagonal), timed after a warm-up with
torch.cuda.synchronize, with the peak of torch.cuda.max_memory_allocated. Usage:
python benchmarks/bench_distance.py --device cuda [--m 10 --n 1000 --d 512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from memory import status_kib as _status_kib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))


def make_data(m, n, d, seed=0):
    rng = np.random.default_rng(seed)
    x = np.empty((m * n, d), dtype=np.float32)  # filled per dataset: no large temporaries
    for k in range(m):
        centre = rng.standard_normal(d, dtype=np.float32) * 0.5
        x[k * n:(k + 1) * n] = rng.standard_normal((n, d), dtype=np.float32) + centre
    return x, np.arange(m + 1, dtype=np.int64) * n


def run_tasklens(x, off):
    import tasklens

    return tasklens.domain_distance_matrix(x, offsets=off)


def run_faiss(x, off):
    import faiss

    m = len(off) - 1
    d = x.shape[1]
    out = np.zeros((m, m))
    for s in range(m):
        index = faiss.IndexFlatL2(d)
        index.add(x[off[s]:off[s + 1]])
        dist2, _ = index.search(x, 1)
        dist = np.sqrt(np.maximum(dist2[:, 0].astype(np.float64), 0.0))
        out[:, s] = np.add.reduceat(dist, off[:-1]) / np.diff(off)
    return out


def run_torch(x, off):
    import torch

    m = len(off) - 1
    xt = torch.from_numpy(x)
    out = np.zeros((m, m))
    for t in range(m):
        for s in range(m):
            out[t, s] = torch.cdist(xt[off[t]:off[t + 1]], xt[off[s]:off[s + 1]]).min(dim=1).values.double().mean()
    return out


RUNNERS = {"tasklens": run_tasklens, "faiss": run_faiss, "torch.cdist": run_torch}


def set_threads(n):
    import tasklens

    tasklens.set_num_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass
    import torch

    torch.set_num_threads(n)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)




def child(name, m, n, d, threads):
    """Peak RSS growth of one contender in a fresh process (MiB): the peak (VmHWM, reset through
    /proc/self/clear_refs just before the run) minus the resident size before it. Covers allocations that
    tracemalloc cannot see (faiss' and torch's own allocators)."""
    x, off = make_data(m, n, d)
    limits = set_threads(threads)  # noqa: F841 - keeps the BLAS limit alive
    RUNNERS[name](x[: 2 * n], off[:3])  # import and warm up on a small slice
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident size to the current one
    before = _status_kib("VmRSS")
    RUNNERS[name](x, off)
    print(json.dumps({"rss_growth_mib": (_status_kib("VmHWM") - before) / 1024}))


def run_torch_gpu(xt, off):
    import torch

    m = len(off) - 1
    out = torch.zeros((m, m), dtype=torch.float64, device=xt.device)
    for t in range(m):
        for s in range(m):
            out[t, s] = torch.cdist(xt[off[t]:off[t + 1]], xt[off[s]:off[s + 1]]).min(dim=1).values.double().mean()
    return out


def gpu_rows(m, n, d, repeats):
    """tasklens (CUDA) and torch.cdist (CUDA) on the same float32 CUDA tensor; prints one row each."""
    import torch

    import tasklens

    x, off = make_data(m, n, d)
    ref = run_tasklens(x, off)  # exact CPU matrix
    xt = torch.from_numpy(x).cuda()
    print(f"device {torch.cuda.get_device_name()}: M={m} datasets x {n} rows x {d} dims float32, {m * m} pairs")
    mask = ~np.eye(m, dtype=bool)
    runners = {"tasklens (cuda)": lambda: tasklens.domain_distance_matrix(xt, offsets=off),
               "torch.cdist (cuda)": lambda: run_torch_gpu(xt, off)}
    for name, fn in runners.items():
        got = fn().cpu().numpy()  # warm-up and check
        rel = float(np.max(np.abs(got[mask] - ref[mask]) / np.abs(ref[mask])))
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        print(f"{name:20s} {best:8.4f} s   max rel. diff vs CPU {rel:.1e}   peak GPU memory {peak:8.1f} MiB")
        assert rel < 1e-5, f"{name} disagrees with the CPU matrix by {rel}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="M = 10 datasets, fewer repeats")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--m", type=int, default=None)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: the GPU rows only")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    m = a.m or (10 if a.quick else 50)
    if a.device == "cuda":
        return gpu_rows(m, a.n, a.d, a.repeats or 3)
    if a.child:
        return child(a.child, m, a.n, a.d, a.threads)
    repeats = a.repeats or 2
    import tracemalloc

    x, off = make_data(m, a.n, a.d)
    limits = set_threads(a.threads)  # noqa: F841
    print(f"M={m} datasets x {a.n} rows x {a.d} dims float32, {m * m} ordered pairs, threads={a.threads}")

    # correctness first
    ref = run_tasklens(x, off)
    off_diag = ~np.eye(m, dtype=bool)
    small = make_data(4, 200, a.d, seed=1)
    small_ref = run_tasklens(*small)
    for name in ("faiss", "torch.cdist"):
        got = run_faiss(x, off) if name == "faiss" else run_torch(*small)
        want = ref if name == "faiss" else small_ref
        mask = off_diag if name == "faiss" else ~np.eye(4, dtype=bool)
        rel = float(np.max(np.abs(got[mask] - want[mask]) / np.abs(want[mask])))
        print(f"check {name}: max relative difference off the diagonal {rel:.2e}")
        assert rel < 1e-5, f"{name} disagrees with tasklens by {rel}"

    times = {}
    for name, fn in RUNNERS.items():
        if name == "torch.cdist" and m > 10 and a.quick:
            continue
        fn(x[: 2 * a.n], off[:3])  # warm-up
        best = np.inf
        for _ in range(repeats if name != "torch.cdist" else 1):
            tracemalloc.start()
            t0 = time.perf_counter()
            fn(x, off)
            best = min(best, time.perf_counter() - t0)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        times[name] = best
        rss = subprocess.run([sys.executable, __file__, "--child", name, "--m", str(m), "--n", str(a.n), "--d",
                              str(a.d), "--threads", str(a.threads)], capture_output=True, text=True)
        growth = json.loads(rss.stdout.strip().splitlines()[-1])["rss_growth_mib"] if rss.returncode == 0 else float("nan")
        print(f"{name:12s} {best:8.3f} s  (child rc={rss.returncode})   tracemalloc peak {peak / 2**20:8.1f} MiB   RSS growth {growth:8.1f} MiB")
    for name in ("faiss", "torch.cdist"):
        if name in times:
            print(f"speed-up of tasklens over {name}: {times[name] / times['tasklens']:.2f}x")


if __name__ == "__main__":
    main()
