"""Transferability estimators benchmark: the one-pass report vs one ``X.T @ X``, and LogME vs the plain algorithm.

Data: N x F float32 features in memory (class means + correlated noise), C classes.

Contenders (correctness checked first, then timed; each timed call is one run, best of ``--repeats``):
- NumPy ``X.T @ X`` on the float32 features (BLAS syrk): the time unit of the first target
  (all estimators from one pass <= 2.5x of it), with numpy's default BLAS threads and with one thread (on a
  loaded machine multi-threaded BLAS spin-waits, so both are shown);
- ``transferability_report(X, y)``: hscore, logme, transrate, gbc, sfda from one pass of statistics
  (SFDA reads the features twice more: its ConfMix step and its score are per sample);
- each estimator called alone (its own pass);
- LogME: tasklens ``logme`` vs the reference algorithm written plainly in NumPy (float64 SVD of the features,
  per-class projections ``U^T y_c``, the fixed-point iteration per class), both on the float64 features:
  target >= 10x faster, equal to 1e-8 relative.

Peak memory is the ``tracemalloc`` peak of each call (numpy allocations; the input array is not counted),
as in benchmarks/bench_hscore.py.

Usage: python benchmarks/bench_estimators.py [--n 100000] [--features 2048] [--classes 100] [--repeats 1]
       [--skip-singles] [--skip-reference]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from tasklens.metrics import gbc, hscore, logme, sfda, transferability_report, transrate  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_hscore import measure  # noqa: E402  (best seconds, tracemalloc peak, result)


def reference_logme(x, y):
    """LogME as the plain algorithm: SVD of the (float64) features, per-class projections, fixed point."""
    n, d = x.shape
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    keep = s * s > d * np.finfo(np.float64).eps * s.max() ** 2
    u, s2 = u[:, keep], s[keep] ** 2
    out = []
    for c in np.unique(y):
        yc = (y == c).astype(np.float64)
        x2 = (u.T @ yc) ** 2
        res0 = yc @ yc - x2.sum()
        res0 = 0.0 if res0 <= 1e-12 * (yc @ yc) else res0
        a = b = 1.0
        for _ in range(1000):
            t = a / b
            g = (s2 / (s2 + t)).sum()
            m2 = (s2 * x2 / (s2 + t) ** 2).sum()
            r2 = (x2 * (t / (s2 + t)) ** 2).sum() + res0
            a, b = g / m2, (n - g) / r2
            if abs(a / b - t) <= 1e-10 * t:
                break
        t = a / b
        m2 = (s2 * x2 / (s2 + t) ** 2).sum()
        r2 = (x2 * (t / (s2 + t)) ** 2).sum() + res0
        logdet = np.log(a + b * s2).sum() + (d - s2.size) * np.log(a)
        out.append((d / 2 * np.log(a) + n / 2 * np.log(b) - 0.5 * logdet - b / 2 * r2 - a / 2 * m2
                    - n / 2 * np.log(2 * np.pi)) / n)
    return float(np.mean(out))


def make_data(n, f, c, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    means = (rng.normal(size=(c, f)) * 0.3).astype(np.float32)
    mix = (rng.normal(size=(f, f)) / np.sqrt(f)).astype(np.float32)
    x = np.empty((n, f), dtype=np.float32)
    for r0 in range(0, n, 16384):
        r1 = min(n, r0 + 16384)
        x[r0:r1] = rng.standard_normal((r1 - r0, f), dtype=np.float32) @ mix + means[y[r0:r1]] + 2.0
    return x, y


def mib(b):
    return b / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--features", type=int, default=2048)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--skip-singles", action="store_true", help="do not time each estimator alone")
    p.add_argument("--skip-reference", action="store_true",
                   help="do not run the plain LogME reference (its float64 SVD of N x F is the slowest part)")
    args = p.parse_args()
    n, f, c = args.n, args.features, args.classes
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}")
    print(f"data: N = {n:,} x F = {f} float32 ({mib(n * f * 4):.0f} MiB), C = {c}")
    x, y = make_data(n, f, c)

    rows = []
    t_gram, m_gram, _ = measure(lambda: x.T @ x, args.repeats)
    rows.append(("numpy X.T @ X (float32, default BLAS threads)", t_gram, m_gram))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        t1, m1, _ = measure(lambda: x.T @ x, args.repeats)
    rows.append(("numpy X.T @ X (float32, one BLAS thread)", t1, m1))
    t_rep, m_rep, report = measure(lambda: transferability_report(x, y), args.repeats)
    rows.append(("transferability_report (5 estimators, one pass)", t_rep, m_rep))
    if not args.skip_singles:
        for name, fn in (("hscore", hscore), ("logme", logme), ("transrate", transrate), ("gbc", gbc),
                         ("sfda", sfda)):
            t, m, v = measure(lambda: fn(x, y), args.repeats)
            rel = abs(v - report[name]) / max(abs(report[name]), 1e-300)
            rows.append((f"{name} alone (equal to the report to {rel:.1e} rel.)", t, m))
    print()
    print(f"{'contender':58s} {'time (s)':>9s} {'x X.T@X':>8s} {'peak MiB':>9s}")
    for name, t, m in rows:
        print(f"{name:58s} {t:9.2f} {t / t_gram:8.2f} {mib(m):9.1f}")
    print("report:", {k: round(float(v), 6) for k, v in report.items()})

    if args.skip_reference:
        return
    x64 = x.astype(np.float64)
    t_ours, m_ours, v_ours = measure(lambda: logme(x64, y), args.repeats)
    t_ref, m_ref, v_ref = measure(lambda: reference_logme(x64, y), 1)
    t_32, m_32, v_32 = measure(lambda: logme(x, y), args.repeats)
    print()
    print(f"LogME (float64 features): tasklens {t_ours:.2f} s, peak {mib(m_ours):.1f} MiB; reference "
          f"(SVD + per-class projections) {t_ref:.2f} s, peak {mib(m_ref):.1f} MiB; speed-up "
          f"{t_ref / t_ours:.1f}x; values {v_ours:.12f} vs {v_ref:.12f} "
          f"(rel. diff {abs(v_ours - v_ref) / abs(v_ref):.1e})")
    print(f"LogME (float32 features): tasklens {t_32:.2f} s, peak {mib(m_32):.1f} MiB; value {v_32:.12f} "
          f"(rel. diff to the float64 reference {abs(v_32 - v_ref) / abs(v_ref):.1e})")


if __name__ == "__main__":
    main()
