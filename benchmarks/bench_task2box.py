"""Task2Box training speed: one full-batch epoch (forward + backward + Adam step) at N datasets.

tasklens: f_theta on the N rows, then ONE fused all-pairs containment kernel (tasklens.boxes.containment)
and the Eq. 4 loss on the N x N score matrix.
Reference: the Task2Box reference training approach — the same f_theta, then box-embeddings' BoxTensor,
GumbelIntersection and BesselApproxVolume on N^2-repeated box tensors (pairs built with
repeat_interleave / repeat), the same loss.

Correctness is checked first (containment scores of both approaches on the same boxes), then each
contender runs in its own subprocess (warm-up excluded) so that peak RSS is measured per contender.

    python benchmarks/bench_task2box.py [--n 1000] [--k 5] [--epochs 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

VT, IT = 0.1, 1e-4


def setup(n, k, d, seed=0):
    import numpy as np
    import torch

    from tasklens.task2box.data import relations_from_parents

    rng = np.random.default_rng(seed)
    parent = np.array([rng.integers(0, max(i, 1)) for i in range(1, n)])
    R = relations_from_parents(np.arange(1, n), parent, n)
    X = torch.tensor(rng.normal(size=(n, d)), dtype=torch.float32)
    W = torch.tensor(np.where(R > 0.5, 10.0, 1.0) * (1 - np.eye(n)), dtype=torch.float32)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, 256), torch.nn.BatchNorm1d(256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 256), torch.nn.BatchNorm1d(256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 256), torch.nn.BatchNorm1d(256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 2 * k))
    return X, torch.tensor(R, dtype=torch.float32), W, net


def boxes(net, X, k):
    import torch

    out = net(X)
    lo = out[:, :k]
    return lo, lo + torch.nn.functional.softplus(out[:, k:]) + 1e-3


def scores_tasklens(lo, hi):
    import tasklens.boxes as tb

    return tb.containment(lo, hi, mode="gumbel", volume_temperature=VT, intersection_temperature=IT)


def scores_reference(lo, hi):
    from box_embeddings.modules.intersection import GumbelIntersection
    from box_embeddings.modules.volume import BesselApproxVolume
    from box_embeddings.parameterizations.box_tensor import BoxTensor

    n = lo.shape[0]
    inter = GumbelIntersection(intersection_temperature=IT)
    vol = BesselApproxVolume(log_scale=True, volume_temperature=VT, intersection_temperature=IT)
    a = BoxTensor.from_zZ(lo.repeat_interleave(n, 0), hi.repeat_interleave(n, 0))
    b = BoxTensor.from_zZ(lo.repeat(n, 1), hi.repeat(n, 1))
    return (vol(inter(a, b)) - vol(a)).exp().view(n, n)


def run_one(which, n, k, d, epochs):
    import torch

    threads = int(os.environ["BENCH_THREADS"])
    torch.set_num_threads(threads)  # both contenders get the same number of threads

    import tasklens

    tasklens.set_num_threads(threads)
    X, R, W, net = setup(n, k, d)
    fn = scores_tasklens if which == "tasklens" else scores_reference
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def epoch():
        opt.zero_grad()
        lo, hi = boxes(net, X, k)
        S = fn(lo, hi)
        loss = (W * (S - R) ** 2).sum() / W.sum()
        loss.backward()
        opt.step()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    epoch()  # warm-up
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"which": which, "median_s": sorted(times)[len(times) // 2], "min_s": min(times),
            "peak_extra_mib": (peak - base) / 1024.0}


def check(n=64, k=5):
    import torch

    torch.manual_seed(1)
    lo = torch.randn(n, k, dtype=torch.float64)
    hi = lo + torch.rand(n, k, dtype=torch.float64) + 0.05
    a, b = scores_tasklens(lo, hi), scores_reference(lo, hi)
    err = float((a - b).abs().max())
    print(f"correctness: max |tasklens - box-embeddings| containment = {err:.2e} (N={n}, k={k})")
    if err > 1e-5:
        raise SystemExit("containment scores disagree; not timing")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and the tasklens kernels (both)")
    ap.add_argument("--quick", action="store_true", help="N = 300, 3 epochs")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.epochs = 300, 3
    if args._child:
        print(json.dumps(run_one(args._child, args.n, args.k, args.d, args.epochs)))
        return 0
    check()
    res = {}
    for which in ("tasklens", "reference"):
        out = subprocess.run([sys.executable, __file__, "--_child", which, "--n", str(args.n), "--k", str(args.k),
                              "--d", str(args.d), "--epochs", str(args.epochs)],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "BENCH_THREADS": str(args.threads)})
        res[which] = json.loads(out.stdout.strip().splitlines()[-1])
        r = res[which]
        print(f"{which:<10} N={args.n} k={args.k} threads={args.threads}: epoch {r['median_s'] * 1e3:9.1f} ms (median of {args.epochs}), "
              f"peak extra RSS {r['peak_extra_mib']:8.1f} MiB")
    t, ref = res["tasklens"], res["reference"]
    print(f"speed-up {ref['median_s'] / t['median_s']:.1f}x, memory ratio "
          f"{ref['peak_extra_mib'] / max(t['peak_extra_mib'], 0.1):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
