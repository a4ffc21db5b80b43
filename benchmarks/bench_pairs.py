"""Benchmark: 10^6 ordered dataset pairs with tasklens.pairs.score_pairs vs faiss-cpu and torch.cdist.

Data: M datasets x n rows x d dims float32 (default 1000 x 100 x 128 = 10^6 ordered pairs), one .npy file
per dataset in a store directory (what score_pairs reads). Every contender runs in a fresh child process
with the same thread count; peak memory is the growth of the peak resident size over the size before the
run (VmHWM reset through /proc/self/clear_refs), as in bench_distance.py.

- tasklens.pairs.score_pairs (local backend, automatic tile from the default 4GB budget): all 10^6 pairs,
  written as Parquet tiles; the dense matrix is read back for the checks.
- faiss-cpu IndexFlatL2, per ordered pair: one index per source dataset, each target dataset searched
  separately (k = 1), mean of the square-rooted minima.
- torch.cdist in row blocks: blocks of target rows against all N rows, per-source minima (amin over each
  source's rows), means per target dataset.
The peers run on the first --peer-targets target datasets against all M sources (a subset of the pairs, so
that they finish on the shared CPU); their full time is extrapolated linearly (each target costs the same).
Results are compared on that subset (relative difference of the off-diagonal entries), and tasklens against a float64 brute force on
sampled pairs.

tasklens and the peers alternate --repeats times (default 2; per-pair faiss once) and the fastest run of
each is reported, as the CPU is shared. Then: resume (a run killed with SIGKILL once half of the tiles are done, restarted with resume=True; its
result must equal the uninterrupted run bit for bit), and the Ray backend with 1 and 2 workers (local Ray
runtime with num_cpus = workers, one kernel thread per task).

Usage: python benchmarks/bench_pairs.py [--m 1000 --n 100 --d 128] [--threads 2] [--peer-targets 50]
       [--skip-ray] [--skip-resume] [--workdir DIR] [--baseline OLD/python]
       python benchmarks/bench_pairs.py --profile-tile    (where one tile's time goes)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from memory import status_kib as _status_kib

HERE = os.path.dirname(os.path.abspath(__file__))
# children of --baseline import the tasklens given by the parent (BENCH_PAIRS_PYTHON), not this checkout's
sys.path.insert(0, os.environ.get("BENCH_PAIRS_PYTHON") or os.path.join(HERE, "..", "python"))


def make_store(path, m, n, d, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    for k in range(m):
        centre = rng.standard_normal(d, dtype=np.float32) * 0.5
        np.save(os.path.join(path, f"ds{k:05d}.npy"), rng.standard_normal((n, d), dtype=np.float32) + centre)


def load_store(path):
    files = sorted(f for f in os.listdir(path) if f.endswith(".npy"))
    return [np.load(os.path.join(path, f)) for f in files]




def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident size (VmHWM) to the current one
    return _status_kib("VmRSS")


def _cpu():
    """CPU seconds (user + system) of this process and its threads: on a shared machine the CPU time a
    contender needs is steadier than its wall time."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def set_threads(n):
    import tasklens
    from threadpoolctl import threadpool_limits

    tasklens.set_num_threads(n)
    return threadpool_limits(limits=n)


# ---- contenders (each in its own child process) ----------------------------------------------------------

def child_tasklens(a):
    import tasklens
    from tasklens.pairs import score_pairs

    limits = set_threads(a.threads)  # noqa: F841
    before = _reset_peak()
    c0, t0 = _cpu(), time.perf_counter()
    res = score_pairs(a.store, a.out, resume=a.resume, progress=False)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"wall": wall, "cpu": cpu, "pairs": res["pairs"], "tiles_run": res["tiles_run"], "tiles": res["tiles"],
            "tile": res["tile"], "rss_growth_mib": (_status_kib("VmHWM") - before) / 1024,
            "package": os.path.dirname(tasklens.__file__)}


def child_faiss(a):
    import faiss

    data = load_store(a.store)
    limits = set_threads(a.threads)  # noqa: F841
    faiss.omp_set_num_threads(a.threads)
    m, T = len(data), a.peer_targets
    out = np.zeros((T, m))
    before = _reset_peak()
    c0, t0 = _cpu(), time.perf_counter()
    for s in range(m):
        index = faiss.IndexFlatL2(data[s].shape[1])
        index.add(data[s])
        for t in range(T):
            dist2, _ = index.search(data[t], 1)
            out[t, s] = np.sqrt(np.maximum(dist2[:, 0].astype(np.float64), 0.0)).mean()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    np.save(a.out, out)
    return {"wall": wall, "cpu": cpu, "pairs": T * m, "rss_growth_mib": (_status_kib("VmHWM") - before) / 1024}


def child_torch(a):
    import torch

    data = load_store(a.store)
    limits = set_threads(a.threads)  # noqa: F841
    torch.set_num_threads(a.threads)
    m, n, T = len(data), data[0].shape[0], a.peer_targets
    x = torch.from_numpy(np.concatenate(data))
    rows = torch.from_numpy(np.concatenate(data[:T]))
    out = np.zeros((T, m))
    block = 2000  # target rows per block (20 datasets of 100 rows); the (block, N) distances fit in 800 MB
    before = _reset_peak()
    c0, t0 = _cpu(), time.perf_counter()
    with torch.no_grad():
        for b0 in range(0, rows.shape[0], block):
            d = torch.cdist(rows[b0:b0 + block], x)                     # (B, N)
            mins = d.view(d.shape[0], m, n).amin(dim=2).double()         # per-source minima (B, M)
            out[b0 // n:(b0 + d.shape[0]) // n] = mins.view(-1, n, m).mean(dim=1).numpy()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    np.save(a.out, out)
    return {"wall": wall, "cpu": cpu, "pairs": T * m, "rss_growth_mib": (_status_kib("VmHWM") - before) / 1024}


def child_ray(a):
    import ray

    from tasklens.pairs import score_pairs

    ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False)
    t0 = time.perf_counter()
    res = score_pairs(a.store, a.out, backend="ray", progress=False)
    wall = time.perf_counter() - t0
    ray.shutdown()
    return {"wall": wall, "pairs": res["pairs"], "tiles": res["tiles"], "tile": res["tile"]}


CHILDREN = {"tasklens": child_tasklens, "faiss": child_faiss, "torch": child_torch, "ray": child_ray}


def run_child(name, store, out, a, python_dir=None, **extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--store", store, "--out", out,
           "--threads", str(a.threads), "--peer-targets", str(a.peer_targets)]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    env = {**os.environ, "PYTHONPATH": _pythonpath(python_dir), "BENCH_PAIRS_PYTHON": python_dir or ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pythonpath(python_dir=None):
    return os.pathsep.join([python_dir or os.path.join(HERE, "..", "python"), os.environ.get("PYTHONPATH", "")])


def tile_costs(out):
    from tasklens.pairs.manifest import read_manifest

    man = read_manifest(out)
    secs = np.array([v["seconds"] for v in man["tiles"].values()])
    rows = np.array([v["rows"] for v in man["tiles"].values()])
    return {"tiles": len(secs), "median_s": float(np.median(secs)), "max_s": float(secs.max()),
            "pairs_per_s_median": float(np.median(rows / secs)), "full_tile_pairs": int(rows.max())}


def brute_force_check(data, dense, pairs):
    worst = 0.0
    for t, s in pairs:
        a, b = data[t].astype(np.float64), data[s].astype(np.float64)
        ref = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1).mean()
        worst = max(worst, abs(dense[t, s] - ref) / ref if ref else abs(dense[t, s]))
    return worst


def resume_run(a, store, out, full_dense):
    """Kill a run once half of its tiles are in the manifest, resume it; returns timings."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "tasklens", "--store", store, "--out", out,
           "--threads", str(a.threads)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": _pythonpath()})
    from tasklens.pairs.manifest import read_manifest

    done = total = 0
    while proc.poll() is None:
        try:
            man = read_manifest(out)
            done = len(man["tiles"])
            b = man["params"]["tile"]
            nb = -(-len(man["inputs"]["names"]) // b)
            total = nb * (nb + 1) // 2
            if done >= total / 2:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.05)
    killed_after = time.perf_counter() - t0
    res = run_child("tasklens", store, out, a, resume=1)
    noop = run_child("tasklens", store, out, a, resume=1)  # finished run: the fixed cost of resuming
    from tasklens.pairs import read_pairs

    equal = bool(np.array_equal(read_pairs(out, dense=True), full_dense))
    return {"killed_after_s": killed_after, "tiles_done_at_kill": done, "tiles": total,
            "resumed_s": res["wall"], "tiles_rerun": res["tiles_run"], "noop_resume_s": noop["wall"],
            "equal_bitwise": equal}


def profile_tile(a):
    """Where one full off-diagonal tile's time goes (cProfile of compute_tile, one thread per kernel)."""
    import cProfile
    import pstats

    from tasklens.pairs.tiles import MAX_SIDE_ROWS, compute_tile

    limits = set_threads(a.threads)  # noqa: F841
    b = MAX_SIDE_ROWS // a.n
    rng = np.random.default_rng(0)

    def block():
        x = rng.standard_normal((b * a.n, a.d), dtype=np.float32)
        x += np.repeat(rng.standard_normal((b, a.d), dtype=np.float32) * 0.5, a.n, axis=0)
        return x, np.arange(b + 1, dtype=np.int64) * a.n

    (xi, oi), (xj, oj) = block(), block()
    ids = np.arange(b)
    compute_tile(xi, oi, ids, xj, oj, ids + b, ["target_to_source"], "euclidean")  # warm-up
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(compute_tile, xi, oi, ids, xj, oj, ids + b, ["target_to_source"], "euclidean")
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats
    parts = {}
    for (file, _, func), (_, _, tottime, _, _) in stats.items():
        key = {"distance_reduce_rows": "reduce_rows (native)", "distance_reduce_cols": "reduce_cols (native)",
               "distance_finalize": "finalize (native, float64)", "segmented_nearest": "sgemm + Python loop",
               "_segmented_nearest": "sgemm + Python loop",
               "_guard": "error-bound guard"}.get(func.split(".")[-1].rstrip(">").split(" ")[-1])
        if key:
            parts[key] = parts.get(key, 0.0) + tottime
    print(f"one {b} x {b}-dataset tile ({2 * b * b} pairs, {b * a.n} rows per side), {a.threads} threads: "
          f"{wall:.3f} s")
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {k:28s} {v:7.3f} s  {100 * v / wall:5.1f}%")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--m", type=int, default=1000)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--peer-targets", type=int, default=50, help="target datasets the peers are timed on")
    p.add_argument("--repeats", type=int, default=2, help="alternating runs of tasklens and the peers; best kept")
    p.add_argument("--peers", default="faiss,torch")
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--skip-resume", action="store_true")
    p.add_argument("--workdir", default=None)
    p.add_argument("--baseline", default=None, metavar="DIR",
                   help="also time the tasklens package in DIR (e.g. an older build's python/), alternating with "
                        "the current one on the same data, and check that its result is identical")
    p.add_argument("--profile-tile", action="store_true", help="only: where one tile's time goes")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--store", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--resume", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(CHILDREN[a.child](a)))
        return
    if a.profile_tile:
        profile_tile(a)
        return
    from tasklens.pairs import read_pairs

    work = a.workdir or tempfile.mkdtemp(prefix="bench_pairs_")
    store = os.path.join(work, "store")
    if not os.path.isdir(store):
        make_store(store, a.m, a.n, a.d)
    m = a.m
    print(f"M = {m} datasets x {a.n} rows x {a.d} dims float32 = {m * m} ordered pairs; {a.threads} threads; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    res = {}
    out = os.path.join(work, "tasklens")
    data = load_store(store)
    dense = None

    def best(old, new):  # best of the repeats (the CPU is shared: the fastest run is the least disturbed)
        new["walls"] = (old["walls"] if old else []) + [new["wall"]]
        new["cpus"] = (old["cpus"] if old else []) + [new.get("cpu", float("nan"))]
        if old and old["wall"] <= new["wall"]:
            old["walls"], old["cpus"] = new["walls"], new["cpus"]
            return old
        return new

    # tasklens and the peers alternate, --repeats times, so that they see the same load on a shared machine
    for rep in range(a.repeats):
        shutil.rmtree(out, ignore_errors=True)
        r = run_child("tasklens", store, out, a)
        r["tile_costs"] = tile_costs(out)
        r["load"] = os.getloadavg()[0]
        res["tasklens"] = best(res.get("tasklens"), r)
        print("tasklens", r, flush=True)
        if dense is None:
            dense = read_pairs(out, dense=True)
            rng = np.random.default_rng(1)
            res["rel_err_vs_float64"] = brute_force_check(data, dense, rng.integers(0, m, size=(30, 2)))
        else:
            assert np.array_equal(read_pairs(out, dense=True), dense)
        if a.baseline:
            bout = os.path.join(work, "baseline")
            shutil.rmtree(bout, ignore_errors=True)
            r = run_child("tasklens", store, bout, a, python_dir=os.path.abspath(a.baseline))
            r["load"] = os.getloadavg()[0]
            r["identical"] = bool(np.array_equal(read_pairs(bout, dense=True), dense))
            res["baseline"] = best(res.get("baseline"), r)
            print("baseline", r, flush=True)
        for name in a.peers.split(","):
            if name == "faiss" and rep > 0:
                continue  # per-pair faiss is ~20x slower than the others: timed once
            path = os.path.join(work, f"{name}.npy")
            r = run_child(name, store, path, a)
            sub = np.load(path)
            ref = dense[:a.peer_targets]
            off = ~np.eye(a.peer_targets, m, dtype=bool)  # off-diagonal: D(T|T) = 0 exactly only for exact methods
            r["rel_diff_vs_tasklens"] = float(np.max(np.abs(sub - ref)[off] / np.abs(ref)[off]))
            r["abs_diag_max"] = float(np.max(np.abs(np.diagonal(sub))))
            r["full_wall_extrapolated"] = r["wall"] * m / a.peer_targets
            r["full_cpu_extrapolated"] = r["cpu"] * m / a.peer_targets
            r["load"] = os.getloadavg()[0]
            res[name] = best(res.get(name), r)
            print(name, r, flush=True)
    if not a.skip_resume:
        rout = os.path.join(work, "resume")
        shutil.rmtree(rout, ignore_errors=True)
        res["resume"] = resume_run(a, store, rout, dense)
        print("resume", res["resume"], flush=True)
    if not a.skip_ray:
        for rep in range(a.repeats):
            for w in (1, 2):
                rout = os.path.join(work, f"ray{w}")
                shutil.rmtree(rout, ignore_errors=True)
                r = run_child("ray", store, rout, a, workers=w)
                r["tile_costs"] = tile_costs(rout)
                r["equal_local"] = bool(np.array_equal(read_pairs(rout, dense=True), dense))
                r["load"] = os.getloadavg()[0]
                res[f"ray{w}"] = best(res.get(f"ray{w}"), r)
                print(f"ray {w} worker(s)", r, flush=True)

    t = res["tasklens"]
    peer = min(res[p]["full_wall_extrapolated"] for p in a.peers.split(","))
    print()
    print("| contender | wall (s) | pairs/s | peak RSS growth (MiB) | max rel. diff vs tasklens |")
    print("|---|---|---|---|---|")
    print(f"| tasklens.pairs.score_pairs (tile {t['tile']}, {t['tiles']} tiles) | {t['wall']:.1f} | "
          f"{t['pairs'] / t['wall']:.0f} | {t['rss_growth_mib']:.0f} | (vs float64: {res['rel_err_vs_float64']:.1e}) |")
    for name, label in (("faiss", "faiss-cpu IndexFlatL2 per pair"), ("torch", "torch.cdist row blocks + amin")):
        if name not in res:
            continue
        r = res[name]
        print(f"| {label} ({r['pairs']} pairs, extrapolated x{m / a.peer_targets:.0f}) | "
              f"{r['full_wall_extrapolated']:.1f} | {r['pairs'] / r['wall']:.0f} | {r['rss_growth_mib']:.0f} | "
              f"{r['rel_diff_vs_tasklens']:.1e} |")
    print(f"speed-up of tasklens over the faster peer: {peer / t['wall']:.2f}x (wall time)")
    cpu_peer = min(res[p]["full_cpu_extrapolated"] for p in a.peers.split(","))
    cpu_ours = min(res["tasklens"]["cpus"])
    print(f"CPU seconds: tasklens {cpu_ours:.1f} (least of the runs), faster peer {cpu_peer:.1f} (extrapolated): "
          f"{cpu_peer / cpu_ours:.2f}x")
    if "baseline" in res:
        bl = res["baseline"]
        print(f"baseline ({a.baseline}): wall {bl['wall']:.1f} s, CPU {min(bl['cpus']):.1f} s (least of the runs), "
              f"identical result: {bl['identical']}; current / baseline CPU: {cpu_ours / min(bl['cpus']):.2f}, "
              f"wall: {t['wall'] / bl['wall']:.2f}; baseline vs faster peer (CPU): {cpu_peer / min(bl['cpus']):.2f}x")
    if "ray1" in res:
        e = res["ray1"]["wall"] / (2 * res["ray2"]["wall"])
        print(f"ray: 1 worker {res['ray1']['wall']:.1f} s, 2 workers {res['ray2']['wall']:.1f} s, "
              f"scaling efficiency {e:.2f}")
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"raw results: {os.path.join(work, 'results.json')}")
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
