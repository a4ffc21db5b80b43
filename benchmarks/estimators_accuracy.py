"""Accuracy of the one-pass report against the independent float64 references of tests/test_estimators.py.

Data: N x F Gaussian features (standard deviation 2) plus class means (0.15 x Gaussian) plus 3, C classes, seed 0;
float32 and float64 copies of the same values. Prints, for each estimator, the reference value (float64 NumPy
written from the papers, on the float32 values read as float64) and the relative difference of
``transferability_report`` on the float32 input and on the float64 input (SFDA with ``log=True``).

Usage: python benchmarks/estimators_accuracy.py [--n 20000] [--features 512] [--classes 50] [--code DIR]
(``--code`` puts another tree's ``python/`` first on the path, e.g. an archive of an earlier commit.)
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--features", type=int, default=512)
    p.add_argument("--classes", type=int, default=50)
    p.add_argument("--code", default=os.path.join(os.path.dirname(__file__), "..", "python"))
    args = p.parse_args()
    sys.path.insert(0, args.code)
    import tasklens
    from tasklens.metrics import sfda, transferability_report

    sys.path.append(os.path.join(os.path.dirname(__file__), "..", "tests"))
    import test_estimators as ref

    print(f"tasklens from {os.path.dirname(tasklens.__file__)}")
    rng = np.random.default_rng(0)
    n, f, c = args.n, args.features, args.classes
    y = rng.integers(0, c, n)
    x32 = (rng.standard_normal((n, f)) * 2 + rng.normal(size=(c, f))[y] * 0.15 + 3.0).astype(np.float32)
    x64 = x32.astype(np.float64)
    got32, got64 = transferability_report(x32, y), transferability_report(x64, y)
    got32["sfda"], got64["sfda"] = sfda(x32, y, log=True), sfda(x64, y, log=True)
    refs = {"hscore": ref.ref_hscore, "logme": ref.ref_logme, "transrate": ref.ref_transrate, "gbc": ref.ref_gbc,
            "sfda": lambda a, b: ref.ref_sfda(a, b, log=True)}
    for name, fn in refs.items():
        want = fn(x64, y)
        scale = max(abs(want), 1e-300)
        print(f"{name:10s} reference {want:.10g}; float32 input: rel. {abs(got32[name] - want) / scale:.1e}; "
              f"float64 input: rel. {abs(got64[name] - want) / scale:.1e}", flush=True)


if __name__ == "__main__":
    main()
