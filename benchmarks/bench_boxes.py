"""All-pairs box containment, forward + backward: tasklens.boxes vs the Task2Box reference approach.

The reference is what the Task2Box reference training does with box-embeddings 0.1.0: repeat the N boxes
to N^2 pairs (``repeat_interleave`` / ``repeat``), wrap them in ``BoxTensor``s, apply ``Intersection`` and
``Volume`` and take ``exp(log vol(a ∩ b) - log vol(a))``; the loss here is the sum of the N x N scores.
tasklens computes the same matrix with one fused kernel per direction (``tasklens.boxes.containment``).

For every configuration the script first checks that both give the same scores and gradients (on a
smaller N), then runs each contender in its own subprocess: one warm-up call, whose peak resident memory
above the pre-call level is the reported peak memory (VmHWM reset through /proc/self/clear_refs), then the
best of a few timed calls. On CUDA (``--device cuda``) the peak is torch.cuda.max_memory_allocated.

Usage::

    python benchmarks/bench_boxes.py            # N = 512, 2048, 8192; k = 2, 5, 8; gumbel and hard
    python benchmarks/bench_boxes.py --quick    # N = 512 only, k = 8
    python benchmarks/bench_boxes.py --device cuda --sizes 16384 --dims 8 --modes gumbel
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.join(os.path.dirname(HERE), "python")
# Peak memory of the reference per (pair, dimension), measured: 75-85 bytes in gumbel mode, ~50 in hard mode
# (2.4 GB at N=2048, k=8, gumbel). It is skipped where the estimate exceeds --ref-memory-gb.
REF_BYTES_PER_PAIR_DIM = 90


def make_boxes(n, k, dtype, device, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(n, k, generator=g, dtype=torch.float64)
    hi = lo + 0.05 + 0.5 * torch.rand(n, k, generator=g, dtype=torch.float64)
    return (lo.to(dtype=dtype, device=device).requires_grad_(), hi.to(dtype=dtype, device=device).requires_grad_())


def reference_containment(lo, hi, mode):
    """Task2Box reference: box-embeddings on N^2-repeated tensors."""
    import torch
    from box_embeddings.modules.intersection.intersection import Intersection
    from box_embeddings.modules.volume.volume import Volume
    from box_embeddings.parameterizations.box_tensor import BoxTensor

    n = lo.shape[0]
    if mode == "gumbel":
        volume = Volume(volume_temperature=0.1, intersection_temperature=1e-4)
        inter = Intersection(intersection_temperature=1e-4)
    else:
        volume, inter = Volume(), Intersection()
    a = BoxTensor((lo.repeat_interleave(n, 0), hi.repeat_interleave(n, 0)))
    b = BoxTensor((lo.repeat(n, 1), hi.repeat(n, 1)))
    return torch.exp(volume(inter(a, b)) - volume(a)).view(n, n)


def tasklens_containment(lo, hi, mode):
    import tasklens.boxes as tb

    return tb.containment(lo, hi, mode=mode)


CONTENDERS = {"tasklens": tasklens_containment, "reference": reference_containment}


def step(fn, lo, hi, mode):
    lo.grad = hi.grad = None
    d = fn(lo, hi, mode)
    d.sum().backward()
    return d


def have_reference() -> bool:
    try:
        import box_embeddings  # noqa: F401
    except ImportError:
        return False
    return True


def check(n, k, mode, device):
    """Max |difference| of the scores and of the gradients between tasklens and the reference (box-embeddings;
    without it, tasklens' CPU path, which tests/test_boxes.py checks against an independent reference)."""
    import torch

    lo, hi = make_boxes(n, k, torch.float64, device, seed=1)
    if have_reference():
        d_ref = step(reference_containment, lo, hi, mode).detach()
    else:
        lo_c, hi_c = (t.detach().cpu().requires_grad_() for t in (lo, hi))
        d_ref = step(tasklens_containment, lo_c, hi_c, mode).detach().to(device)
        lo.grad, hi.grad = lo_c.grad.to(device), hi_c.grad.to(device)
    g_ref = (lo.grad.clone(), hi.grad.clone())
    d = step(tasklens_containment, lo, hi, mode).detach()
    dv = float((d - d_ref).abs().max())
    dg = max(float((lo.grad - g_ref[0]).abs().max()), float((hi.grad - g_ref[1]).abs().max()))
    scale = max(float(g_ref[0].abs().max()), float(g_ref[1].abs().max()), 1.0)
    return dv, dg / scale


def _rss_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def worker(args):
    """Run one contender on one configuration (in a subprocess) and print a JSON line."""
    import resource

    import torch

    fn = CONTENDERS[args.contender]
    dtype = getattr(torch, args.dtype)
    lo, hi = make_boxes(args.n, args.k, dtype, args.device)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset = _rss_reset()
        base = _status_kb("VmRSS") * 1024
        base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step(fn, lo, hi, args.mode)  # warm-up, also the memory measurement
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        hwm = _status_kb("VmHWM") * 1024 if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = hwm - base if reset else max(0, hwm - max(base, base_max))
    times = []
    t_end = time.perf_counter() + args.budget
    while len(times) < args.repeats and (not times or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        step(fn, lo, hi, args.mode)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"time": min(times), "peak": peak, "runs": len(times)}))


def run_worker(contender, n, k, mode, dtype, device, repeats, budget):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--contender", contender, "--n", str(n), "--k",
           str(k), "--mode", mode, "--dtype", dtype, "--device", device, "--repeats", str(repeats), "--budget",
           str(budget)]
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{contender} N={n} k={k} {mode} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 512 and k = 8 only")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 8192])
    p.add_argument("--dims", type=int, nargs="+", default=[2, 5, 8])
    p.add_argument("--modes", nargs="+", default=["gumbel", "hard"], choices=["gumbel", "soft", "hard"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--ref-memory-gb", type=float, default=8.0,
                   help="skip the reference where its estimated peak exceeds this many GB (default 8: the "
                        "development machine is shared)")
    # internal: one contender in a subprocess
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--contender", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--budget", type=float, default=5.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.sizes, args.dims = [512], [8]
    sys.path.insert(0, PYTHON_DIR)
    import tasklens

    print(f"tasklens {tasklens.__version__}, threads {tasklens.get_num_threads()}, device {args.device}, "
          f"dtype {args.dtype}")
    reference = have_reference()
    print("correctness (float64, N=96): max |d - d_ref|, max |grad - grad_ref| / max |grad_ref|"
          + ("" if reference else " (box-embeddings not installed: against tasklens' CPU path; reference "
                                  "timings skipped)"))
    for mode in args.modes:
        for k in args.dims:
            dv, dg = check(96, k, mode, args.device)
            print(f"  {mode:6s} k={k}: {dv:.2e}  {dg:.2e}")
            if dv > 1e-6 or dg > 1e-6:
                raise SystemExit(f"tasklens and the reference disagree for mode={mode} k={k}")
    header = (f"{'N':>6} {'k':>2} {'mode':6} | {'tasklens ms':>11} {'ref ms':>9} {'speed-up':>8} | "
              f"{'tasklens MB':>11} {'ref MB':>8} {'mem ratio':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for n in args.sizes:
        for k in args.dims:
            for mode in args.modes:
                ours = run_worker("tasklens", n, k, mode, args.dtype, args.device, 3 if n <= 2048 else 2, 5.0)
                ref_gb = REF_BYTES_PER_PAIR_DIM * n * n * k / 2**30 * (2 if args.dtype == "float64" else 1)
                ref = None
                if reference and ref_gb <= args.ref_memory_gb:
                    ref = run_worker("reference", n, k, mode, args.dtype, args.device, 2 if n <= 512 else 1, 1.0)
                line = (f"{n:>6} {k:>2} {mode:6} | {ours['time'] * 1e3:>11.1f} "
                        + (f"{ref['time'] * 1e3:>9.1f} {ref['time'] / ours['time']:>7.1f}x" if ref else
                           f"{'skipped':>9} {'-':>8}")
                        + f" | {ours['peak'] / 2**20:>11.1f} "
                        + (f"{ref['peak'] / 2**20:>8.0f} {ref['peak'] / max(ours['peak'], 1):>8.1f}x" if ref else
                           f"{('(~' + format(ref_gb, '.0f') + ' GB)') if reference else 'n/a':>8} {'-':>9}"))
                print(line, flush=True)
                rows.append((n, k, mode, ours, ref))
    if reference and any(r[4] is None for r in rows):
        print(f"reference skipped where its estimated peak exceeds {args.ref_memory_gb:.1f} GB (--ref-memory-gb)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
