"""Edge cases of the native CPU kernels (cpp/src) that used to crash the process."""

from __future__ import annotations

import subprocess
import sys

from conftest import subprocess_env


def test_dense_containment_backward_with_no_rows_of_a():
    """containment(a, b) with n = 0 rows of a: the backward divided by the number of row blocks (0) and the
    process died of SIGFPE. Now the gradients of b are zeros. Run in a child process so a crash is a failure."""
    code = """
import numpy as np, torch, tasklens.boxes as tb
for dt in (torch.float32, torch.float64):
    lo = torch.zeros((0, 3), dtype=dt, requires_grad=True); hi = (lo + 1).detach().requires_grad_()
    lb = torch.rand((4, 3), dtype=dt); hb = (lb + 0.5).requires_grad_(); lb.requires_grad_()
    for a, b in (((lo, hi), (lb, hb)), ((lb, hb), (lo, hi))):
        out = tb.containment(*a, *b)
        assert out.shape == (a[0].shape[0], b[0].shape[0])
        g = torch.autograd.grad(out.sum(), (*a, *b))
        assert all(x.shape == y.shape and float(x.abs().sum()) == 0.0 for x, y in zip(g, (*a, *b)))
print("ok")
"""
    env = subprocess_env()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", (res.returncode, res.stderr[-2000:])
