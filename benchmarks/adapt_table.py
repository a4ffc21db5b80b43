"""Table 1 / Table 5 / Fig. 6 analogue of the CDLM paper on offline data (issue 10).

Tasks: Fashion -> Fashion-M, Fashion-M -> Fashion, synthetic digits -> handwritten digits and back.
Methods: source-only, DANN, CDLM, target-only, every one with the same backbone width, batch size, number
of epochs (passes over the labelled training set) and training images. Reports target test accuracy mean
+- std over seeds, seconds per epoch, the proxy A-distance (tasklens.domain.a_distance) of raw pixels,
DANN features and CDLM features (2,000 test images per domain, seed 0 models), the Table 5 ablation of
the consistency terms on one task, and writes translation grids to benchmarks/figures/adapt_*.png.

The defaults are the full configuration (3 seeds, 10 epochs, all training images, width 64). A reduced
run, e.g. ``--seeds 0 --epochs 5 --subsample 2000 --width 16``, finishes on a shared 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from tasklens.cli.adapt import load_pair, run_adapt, save_translation_grid  # noqa: E402
from tasklens.domain import a_distance  # noqa: E402

TASKS = [("fashion-m", False), ("fashion-m", True), ("digits", False), ("digits", True)]
METHODS = ["source", "dann", "cdlm", "target"]
ABLATION = [("w/o L_c", 0.0, 0.0), ("+ L_c^t", 0.0, 0.01), ("+ L_c^s", 0.1, 0.0), ("+ L_c^s + L_c^t", 0.1, 0.01)]


def raw_features(x):
    x = x.astype(np.float32) / 255.0
    if x.shape[1] == 1:
        x = np.repeat(x, 3, 1)
    return x.reshape(len(x), -1)


def fmt(vals):
    if vals is None:
        return "-"
    vals = np.asarray(vals, float)
    return f"{vals.mean():.3f} ± {vals.std():.3f}" if len(vals) > 1 else f"{vals[0]:.3f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs for every method (default: 10)")
    ap.add_argument("--steps", type=int, default=None,
                    help="SGD steps per run instead of --epochs: each task gets ceil(steps / steps per epoch) "
                         "epochs of its labelled set, so every task and method sees about the same number of "
                         "batches of 64 and the DANN schedules span the whole run (default: use --epochs)")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS,
                    help="methods of the table (default: all four)")
    ap.add_argument("--no-table", action="store_true", help="skip the Table 1 runs (e.g. ablation only)")
    ap.add_argument("--subsample", type=int, default=None, help="training images per domain (default: all)")
    ap.add_argument("--width", type=int, default=64, help="trunk width for every method (default: 64)")
    ap.add_argument("--tasks", type=int, nargs="+", default=[0, 1, 2, 3],
                    help="task indices: 0 F->F-M, 1 F-M->F, 2 syn->hand, 3 hand->syn (default: all)")
    ap.add_argument("--ablation-task", type=int, default=0, help="task index of the Table 5 ablation (default: 0)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the ablation")
    ap.add_argument("--figures", default=os.path.join(os.path.dirname(__file__), "figures"),
                    help="directory for adapt_*.png (default: benchmarks/figures)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is much faster on a shared machine)")
    ap.add_argument("--rows", default=None, help="CSV file for every run's metrics row (default: none)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    rows, table, adist = [], [], []
    base = dict(width=args.width, device="auto")

    def budget(data, method="cdlm"):
        if args.steps is None:
            return dict(base, epochs=args.epochs)
        n = len(data["target" if method == "target" else "source"][0])
        return dict(base, epochs=max(1, -(-args.steps // -(-n // 64))))

    for ti in ([] if args.no_table else args.tasks):
        pair, rev = TASKS[ti]
        t0 = time.perf_counter()
        data = load_pair(pair, rev, args.subsample)
        src, tgt = data["names"]
        print(f"[{src} -> {tgt}] data {time.perf_counter() - t0:.1f} s, n_source {len(data['source'][0])}, "
              f"n_target {len(data['target'][0])}", flush=True)
        acc, spe = {}, {}
        for method in args.methods:
            for seed in args.seeds:
                row, model = run_adapt(method, pair, out=None, reverse=rev, seed=seed, data=data,
                                       return_model=True, **budget(data, method))
                row["variant"] = "default"
                rows.append(row)
                acc.setdefault(method, []).append(row["target_accuracy"])
                spe.setdefault(method, []).append(row["seconds_per_epoch"])
                print(f"  {method:6s} seed {seed}: target {row['target_accuracy']:.4f} source "
                      f"{row['source_accuracy']:.4f} {row['seconds_per_epoch']:.1f} s/epoch "
                      f"{row['epochs']} epochs {row['seconds']:.0f} s "
                      f"A-dist {row['a_distance']:.3f}", flush=True)
                if method == "cdlm" and seed == args.seeds[0]:
                    save_translation_grid(model, data["target_test"][0],
                                          os.path.join(args.figures, f"adapt_translation_{src}_to_{tgt}.png"))
        table.append((f"{src} -> {tgt}", acc, spe))
        xs, xt = data["source_test"][0][:2000], data["target_test"][0][:2000]
        first = {r["method"]: r["a_distance"] for r in rows
                 if r["source"] == src and r["target"] == tgt and r["seed"] == args.seeds[0]}
        adist.append((f"{src} -> {tgt}", a_distance(raw_features(xs), raw_features(xt), seed=0),
                      first.get("dann", float("nan")), first.get("cdlm", float("nan"))))

    abl = []
    if not args.no_ablation:
        pair, rev = TASKS[args.ablation_task]
        data = load_pair(pair, rev, args.subsample)
        for name, b1, b2 in ABLATION:
            accs = []
            for seed in args.seeds:
                row = run_adapt("cdlm", pair, out=None, reverse=rev, seed=seed, data=data, beta1=b1, beta2=b2,
                                **budget(data))
                row["variant"] = name
                rows.append(row)
                accs.append(row["target_accuracy"])
            abl.append((name, accs))
            print(f"  ablation {name}: {fmt(accs)} ({row['epochs']} epochs, {row['seconds']:.0f} s)", flush=True)

    print("\n| task | source-only | DANN | CDLM | target-only | s/epoch (SO / DANN / CDLM / TO) |")
    print("|---|---|---|---|---|---|")
    for task, acc, spe in table:
        s = " / ".join(f"{np.mean(spe[m]):.1f}" if m in spe else "-" for m in METHODS)
        print(f"| {task} | {fmt(acc.get('source'))} | {fmt(acc.get('dann'))} | {fmt(acc.get('cdlm'))} | "
              f"{fmt(acc.get('target'))} | {s} |")
    print("\n| task | A-distance raw pixels | DANN features | CDLM features (h) |")
    print("|---|---|---|---|")
    for task, raw, d, c in adist:
        print(f"| {task} | {raw:.3f} | {d:.3f} | {c:.3f} |")
    if abl:
        print(f"\n| CDLM variant (task {args.ablation_task}) | target accuracy |")
        print("|---|---|")
        for name, accs in abl:
            print(f"| {name} | {fmt(accs)} |")
    if args.rows and rows:
        with open(args.rows, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
