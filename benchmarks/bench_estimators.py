"""Transferability estimators benchmark: the one-pass report vs one ``X.T @ X``, and LogME vs the plain algorithm.

Data: N x F float32 features in memory (class means + correlated noise), C classes.

Contenders, timed in ONE process: ``--repeats`` interleaved rounds of (``X.T @ X`` default threads, ``X.T @ X`` one
BLAS thread, the report, the report without SFDA), each round's ratios printed, the table from the best of the
rounds; then each estimator alone (one run), and with ``--stages`` the time of each stage of the report:
- NumPy ``X.T @ X`` on the float32 features (BLAS syrk): the time unit of the first target
  (all estimators from one pass <= 2.5x of it), with numpy's default BLAS threads and with one thread (on a
  loaded machine multi-threaded BLAS spin-waits, so both are shown);
- ``transferability_report(X, y)``: hscore, logme, transrate, gbc, sfda from one pass of statistics
  (TransRate reads each class's rows once more for its n_c x n_c kernels; SFDA reads the features twice more:
  its ConfMix step and its score are per sample), and the same without SFDA;
- each estimator called alone (its own pass);
- LogME: tasklens ``logme`` vs the reference algorithm written plainly in NumPy (float64 SVD of the features,
  per-class projections ``U^T y_c``, the fixed-point iteration per class), both on the float64 features:
  target >= 10x faster, equal to 1e-8 relative.

Peak memory is the ``tracemalloc`` peak of each call (numpy allocations; the input array is not counted),
as in benchmarks/bench_hscore.py.

Usage: python benchmarks/bench_estimators.py [--n 100000] [--features 2048] [--classes 100] [--repeats 1]
       [--stages] [--skip-singles] [--skip-reference]
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


def stages(x, y):
    """Seconds of each stage of the report: the pass, the shared spectra, each estimator from the statistics."""
    import time

    from tasklens.metrics import estimators as est

    xx, yy, c, _, _ = est._prepare(x, y)
    step = est._chunk_rows(xx, None)
    out = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        res = fn()
        out[name] = time.perf_counter() - t0
        return res

    st = timed("pass (count, sums, Gram, class sums and squares)", lambda: est._collect(xx, yy, c, squares=True,
                                                                                         chunk_rows=step))
    spectra = timed("spectra (one tridiagonal reduction for hscore + logme)", lambda: est._spectra(st))
    timed("hscore from the spectra", lambda: est._hscore_from_stats(st, spectra))
    timed("logme from the spectra", lambda: est._logme_from_stats(st, None, spectra))
    timed("transrate (F x F rate + class kernels)", lambda: est._transrate_from_stats(xx, yy, st, 1e-4, step))
    timed("gbc", lambda: est._gbc_from_stats(st, 1e-4))
    timed("sfda (two more sweeps: weighted Gram, scores)", lambda: est._sfda_from_stats(xx, yy, st, step, False))
    print(f"stages (load {os.getloadavg()[0]:.1f}):")
    for name, t in out.items():
        print(f"  {name:58s} {t:8.2f} s")


def mib(b):
    return b / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--features", type=int, default=2048)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=1, help="interleaved rounds of X.T @ X and the report")
    p.add_argument("--stages", action="store_true", help="also time the stages of the report (one run)")
    p.add_argument("--skip-singles", action="store_true", help="do not time each estimator alone")
    p.add_argument("--skip-reference", action="store_true",
                   help="do not run the plain LogME reference (its float64 SVD of N x F is the slowest part)")
    args = p.parse_args()
    n, f, c = args.n, args.features, args.classes
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}")
    print(f"data: N = {n:,} x F = {f} float32 ({mib(n * f * 4):.0f} MiB), C = {c}")
    x, y = make_data(n, f, c)

    from threadpoolctl import threadpool_limits

    four = ("hscore", "logme", "transrate", "gbc")
    best = {}  # contender -> (seconds, peak bytes): the best of the interleaved rounds

    def keep(name, t, m):
        best[name] = (min(t, best.get(name, (np.inf, 0))[0]), max(m, best.get(name, (0, 0))[1]))

    # Interleaved rounds in this one process: X.T @ X (default and one BLAS thread), the report, the report
    # without SFDA; each round's ratio is printed, so a load change on the shared machine shows up
    for r in range(args.repeats):
        t_gram, m_gram, _ = measure(lambda: x.T @ x)
        with threadpool_limits(1):
            t1, m1, _ = measure(lambda: x.T @ x)
        t_rep, m_rep, report = measure(lambda: transferability_report(x, y))
        t_four, m_four, _ = measure(lambda: transferability_report(x, y, four))
        keep("numpy X.T @ X (float32, default BLAS threads)", t_gram, m_gram)
        keep("numpy X.T @ X (float32, one BLAS thread)", t1, m1)
        keep("transferability_report (5 estimators, one pass)", t_rep, m_rep)
        keep("transferability_report without sfda (4 estimators)", t_four, m_four)
        print(f"round {r + 1}: load {os.getloadavg()[0]:.1f}; X.T@X {t_gram:.2f} s (one thread {t1:.2f} s); report "
              f"{t_rep:.2f} s = {t_rep / t_gram:.2f}x / {t_rep / t1:.2f}x; without sfda {t_four:.2f} s = "
              f"{t_four / t_gram:.2f}x / {t_four / t1:.2f}x", flush=True)
    if args.stages:
        stages(x, y)
    if not args.skip_singles:
        for name, fn in (("hscore", hscore), ("logme", logme), ("transrate", transrate), ("gbc", gbc),
                         ("sfda", sfda)):
            t, m, v = measure(lambda: fn(x, y), 1)
            rel = abs(v - report[name]) / max(abs(report[name]), 1e-300)
            keep(f"{name} alone (equal to the report to {rel:.1e} rel.)", t, m)
    t_gram = best["numpy X.T @ X (float32, default BLAS threads)"][0]
    t1 = best["numpy X.T @ X (float32, one BLAS thread)"][0]
    print()
    print(f"{'contender (best of the rounds)':58s} {'time (s)':>9s} {'x X.T@X':>8s} {'x 1 thr':>8s} {'peak MiB':>9s}")
    for name, (t, m) in best.items():
        print(f"{name:58s} {t:9.2f} {t / t_gram:8.2f} {t / t1:8.2f} {mib(m):9.1f}")
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
