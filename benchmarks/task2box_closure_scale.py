"""Time and peak memory of ``tasklens.task2box.closure.implied_relations`` (sparse closure, bit-packed
products) against the earlier dense float64 formula (repeated N x N squaring, ``Q = A^T N A^T``), on synthetic
hierarchies of N datasets.

Data: a random recursive tree (node i > 0 gets a parent drawn uniformly among 0..i-1; ``i ⊂ j`` when j is a
proper ancestor of i) or, with ``--shape dag``, a random DAG (every node i > 1 gets two distinct parents among
0..i-1). Half of the off-diagonal pairs, drawn with seed 0, are the training pairs (positive: ``i ⊂ j``,
negative: the others), as in a 50 % pair split of the benchmarks.

Each contender runs in its own fresh process: the data is built first, then the peak-RSS mark is reset
(/proc/self/clear_refs) and one call is made; its peak memory is VmHWM after the call minus VmRSS before it
(``benchmarks/memory.py``), its time the best of ``--repeat`` calls. The outputs of both contenders are compared
for equality at every N where the dense one runs. The dense contender is skipped above ``--dense-max``
(default 2000: at N = 8000 it holds ~6 float64 N x N matrices, ~3 GB, and does ~5 dense N^3 products).

    PYTHONPATH=python python benchmarks/task2box_closure_scale.py [--sizes 500 2000 8000 20000] [--shape tree]
        [--dense-max 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from memory import status_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


def hierarchy(n: int, shape: str, seed: int = 0):
    """``(positive, negative)`` training masks: half of the off-diagonal pairs of a random tree / DAG."""
    rng = np.random.default_rng(seed)
    ancestors = [np.zeros(0, dtype=np.int64)]
    for i in range(1, n):
        k = 1 if shape == "tree" or i < 2 else 2
        parents = rng.choice(i, size=k, replace=False)
        ancestors.append(np.unique(np.concatenate([parents] + [ancestors[p] for p in parents])))
    R = np.zeros((n, n), dtype=bool)
    for i, a in enumerate(ancestors):
        R[i, a] = True
    del ancestors
    tr = np.empty((n, n), dtype=bool)
    for lo in range(0, n, 1024):  # row blocks: no float (N, N) temporary
        tr[lo:lo + 1024] = rng.random((min(1024, n - lo), n), dtype=np.float32) < 0.5
    np.fill_diagonal(tr, False)
    pos = tr & R
    tr &= ~R
    return pos, tr


def dense_formula(positive, negative):
    """The earlier implementation: P by repeated dense float64 squaring, Q = (A^T N A^T > 0), A = I + P."""
    pos = np.asarray(positive, dtype=bool)
    neg = np.asarray(negative, dtype=bool)
    n = pos.shape[0]
    P = pos.copy()
    np.fill_diagonal(P, False)
    while True:
        Pf = P.astype(np.float64)
        nxt = P | (Pf @ Pf > 0)
        np.fill_diagonal(nxt, False)
        if (nxt == P).all():
            break
        P = nxt
    A = P.astype(np.float64) + np.eye(n)
    Q = (A.T @ neg.astype(np.float64) @ A.T) > 0
    np.fill_diagonal(Q, False)
    both = P & Q
    return P & ~both, Q & ~both


def child(which: str, n: int, shape: str, repeat: int, compare: str | None) -> None:
    import scipy.sparse  # noqa: F401  (imported before the baseline, as the library would be)

    from tasklens.task2box.closure import implied_relations

    pos, neg = hierarchy(n, shape)
    fn = implied_relations if which == "sparse" else dense_formula
    base = status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak-RSS mark (VmHWM) to the current RSS
        fh.write("5")
    t0 = time.perf_counter()
    P, Q = fn(pos, neg)
    times = [time.perf_counter() - t0]
    peak = (status_kib("VmHWM") - base) / 1024.0
    for _ in range(repeat - 1):
        del P, Q
        t0 = time.perf_counter()
        P, Q = fn(pos, neg)
        times.append(time.perf_counter() - t0)
    out = {"time": min(times), "peak_mib": peak, "nnz_pos": int(pos.sum()), "nnz_neg": int(neg.sum()),
           "nnz_P": int(P.sum()), "nnz_Q": int(Q.sum())}
    if compare:  # a file with the other contender's outputs
        ref = np.load(compare)
        out["equal"] = bool(np.array_equal(ref["P"], P) and np.array_equal(ref["Q"], Q))
    elif which == "dense" and os.environ.get("CLOSURE_SAVE"):
        np.savez(os.environ["CLOSURE_SAVE"], P=P, Q=Q)
    print(json.dumps(out))


def run_child(which, n, shape, repeat, compare=None, save=None):
    env = dict(os.environ)
    if save:
        env["CLOSURE_SAVE"] = save
    cmd = [sys.executable, os.path.abspath(__file__), "--child", which, str(n), shape, str(repeat)]
    if compare:
        cmd.append(compare)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000, 20000])
    ap.add_argument("--shape", choices=("tree", "dag"), default="tree")
    ap.add_argument("--dense-max", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, n, shape, repeat, *cmp = args.child
        child(which, int(n), shape, int(repeat), cmp[0] if cmp else None)
        return
    import tempfile

    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"numpy {np.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"{args.shape}, 50 % of the pairs as training pairs, best of {args.repeat}; peak = extra RSS of one call")
    print(f"{'N':>6s} {'pos':>9s} {'neg':>11s} {'|P|':>9s} {'|Q|':>11s} | {'dense s':>8s} {'MiB':>7s} | "
          f"{'new s':>7s} {'MiB':>7s} | {'speed-up':>8s} {'memory':>7s} equal")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            dense = None
            if n <= args.dense_max:
                path = os.path.join(tmp, "dense.npz")
                dense = run_child("dense", n, args.shape, args.repeat, save=path)
                new = run_child("sparse", n, args.shape, args.repeat, compare=path)
            else:
                new = run_child("sparse", n, args.shape, args.repeat)
        row = (f"{n:6d} {new['nnz_pos']:9d} {new['nnz_neg']:11d} {new['nnz_P']:9d} {new['nnz_Q']:11d} | ")
        if dense:
            row += (f"{dense['time']:8.3f} {dense['peak_mib']:7.0f} | {new['time']:7.3f} {new['peak_mib']:7.0f} | "
                    f"{dense['time'] / new['time']:7.1f}x {dense['peak_mib'] / max(new['peak_mib'], 1):6.1f}x "
                    f"{new['equal']}")
        else:
            row += (f"{'skipped':>8s} {'':>7s} | {new['time']:7.3f} {new['peak_mib']:7.0f} | {'':>8s} {'':>7s} "
                    f"(dense above --dense-max)")
        print(row, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
