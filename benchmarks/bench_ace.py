"""ACE (tasklens.hgr.ace) against scipy.sparse.linalg.svds on the DTM, from the same integer samples.

Data: |X| = 100,000 codes with Zipf-like frequencies, |Y| = 100, N = 10 million samples. Each x has a latent
a(x) ~ N(0, 1) and y is the percentile bin of rho * a(x) + sqrt(1 - rho^2) * noise, so the leading
maximal correlations decay like rho^i (a discretised Gaussian channel) above the sampling-noise floor.

Peer: the joint counts as a scipy sparse matrix (coo -> csr, which sums duplicates), the sparse
B = D_Y^-1/2 P_YX D_X^-1/2 and ``svds(B, k + 1)``. The trivial singular value 1 (constant functions) is
dropped; it is exactly what Def. 1 subtracts (B~ = B - sqrt(P_Y) sqrt(P_X)^T), and keeping B sparse is what
makes the peer fast. Both contenders are timed end to end from the samples (counting included).

Order: correctness (ACE correlations vs svds, 1e-6), warm-up, timing (best of --repeat, one process), then
peak memory of each contender in its own subprocess (peak RSS over the RSS after loading the data; Linux).

Usage: python benchmarks/bench_ace.py [--quick] [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from memory import status_kib as _status_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


def make_data(nx: int, ny: int, n: int, rho: float = 0.9, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = 1.0 / (np.arange(nx) + 10.0) ** 0.8
    x = rng.choice(nx, size=n, p=p / p.sum())
    latent = rng.normal(size=nx)
    z = rho * latent[x] + np.sqrt(1 - rho * rho) * rng.normal(size=n)
    edges = np.quantile(z[: min(n, 1_000_000)], np.linspace(0, 1, ny + 1)[1:-1])
    y = np.searchsorted(edges, z)
    return x.astype(np.int64), y.astype(np.int64)


def run_tasklens(x, y, k, method="auto"):
    from tasklens.hgr import ace

    r = ace(x, y, k=k, method=method)
    return np.asarray(r.correlations), r


def run_svds(x, y, k, nx, ny):
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    n = x.shape[0]
    counts = sp.coo_matrix((np.ones(n), (y, x)), shape=(ny, nx)).tocsr()  # duplicates summed
    py = np.asarray(counts.sum(axis=1)).ravel() / n
    px = np.asarray(counts.sum(axis=0)).ravel() / n
    inv = lambda p: np.divide(1.0, np.sqrt(p), out=np.zeros_like(p), where=p > 0)  # noqa: E731
    b = sp.diags(inv(py)) @ (counts / n) @ sp.diags(inv(px))
    s = svds(b, k=k + 1, return_singular_vectors=False, random_state=0)
    s = np.sort(s)[::-1]
    assert abs(s[0] - 1.0) < 1e-9, f"trivial singular value should be 1, got {s[0]}"
    return s[1:k + 1]


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def child(which: str, path: str, k: int, nx: int, ny: int, method: str) -> None:
    import scipy.sparse.linalg  # noqa: F401  (imports before the baseline)
    import tasklens.hgr  # noqa: F401

    x, y = np.load(path + ".x.npy"), np.load(path + ".y.npy")
    base = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak-RSS mark (VmHWM) to the current RSS
        fh.write("5")
    if which == "tasklens":
        run_tasklens(x, y, k, method)
    else:
        run_svds(x, y, k, nx, ny)
    print((_status_kib("VmHWM") - base) / 1024.0)  # MiB




def peak_mib(which, path, k, nx, ny, method):
    out = subprocess.run([sys.executable, __file__, "--child", which, path, str(k), str(nx), str(ny), method],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="|X| = 10,000, N = 1 million")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, path, k, nx, ny, method = args.child
        child(which, path, int(k), int(nx), int(ny), method)
        return

    import tasklens

    if args.threads:
        tasklens.set_num_threads(args.threads)
    nx, ny, n = (10_000, 100, 1_000_000) if args.quick else (100_000, 100, 10_000_000)
    k = args.k
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, tasklens threads {tasklens.get_num_threads()}, "
          f"python {platform.python_version()}")
    print(f"data: |X|={nx:,} |Y|={ny} N={n:,} k={k}")
    t0 = time.perf_counter()
    x, y = make_data(nx, ny, n)
    print(f"generated in {time.perf_counter() - t0:.1f} s")

    # Correctness (doubles as warm-up).
    ref = run_svds(x, y, k, nx, ny)
    results = {}
    for method in ("auto", "alternate"):
        corr, r = run_tasklens(x, y, k, method)
        err = float(np.max(np.abs(corr - ref)))
        results[method] = r
        print(f"tasklens ace method={method} -> {r.method}: iterations {r.iterations}, converged {r.converged}, "
              f"max |ace - svds| = {err:.2e}")
        assert r.converged and err < 1e-6, "ACE correlations differ from svds by more than 1e-6"
    print("correlations:", np.array2string(ref, precision=6))

    t_svds = best_time(lambda: run_svds(x, y, k, nx, ny), args.repeat)
    t_auto = best_time(lambda: run_tasklens(x, y, k, "auto"), args.repeat)
    t_alt = best_time(lambda: run_tasklens(x, y, k, "alternate"), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "codes")
        np.save(path + ".x.npy", x)
        np.save(path + ".y.npy", y)
        m_svds = peak_mib("svds", path, k, nx, ny, "auto")
        m_auto = peak_mib("tasklens", path, k, nx, ny, "auto")
        m_alt = peak_mib("tasklens", path, k, nx, ny, "alternate")
    print(f"{'contender':34s} {'time (s)':>9s} {'speed-up vs svds':>17s} {'peak extra RSS (MiB)':>21s}")
    print(f"{'scipy coo->csr + svds(k+1)':34s} {t_svds:9.3f} {1.0:17.2f} {m_svds:21.0f}")
    print(f"{'tasklens ace (auto: ' + results['auto'].method + ')':34s} {t_auto:9.3f} {t_svds / t_auto:17.2f} "
          f"{m_auto:21.0f}")
    print(f"{'tasklens ace (alternate)':34s} {t_alt:9.3f} {t_svds / t_alt:17.2f} {m_alt:21.0f}")


if __name__ == "__main__":
    main()
