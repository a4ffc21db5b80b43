"""Diagnostics on the Task2Box selection split (issue 14): one fit per seed and setting, several readings.

Per seed and setting (``task2box_selection.py``'s split; nothing of the benchmark's test pairs or novel datasets is
read), the model is fitted once with ``neighbours=False`` and reports: F1 on the selection-test pairs (existing), on
the training pairs (fit) at the validation threshold, the epoch kept by early stopping, and selection-novel F1 for
several placements of the novel rows, all computed from the same fitted boxes:

* ``own``: the encoder's boxes f(e);
* ``raw``: :func:`tasklens.task2box.neighbour_boxes` with the similarity of the raw rows (the model's kernel);
* ``std``: the same kernel on the standardised rows (the network's input);
* ``fstd``: the same kernel on the rows standardised feature by feature (mean and standard deviation of the seen
  rows), whatever the network's ``standardize``.

    python benchmarks/task2box_diagnose.py --hierarchy2 --rep musigma --seeds 0 1 2 3 4 --configs '{}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

from task2box_selection import add_split_args, load_inputs, selection_split  # noqa: E402
from task2box_taxonomy import evaluate  # noqa: E402
from tasklens.task2box import Task2Box, novel_mask, split_pairs  # noqa: E402
from tasklens.task2box.evaluate import evaluate_hierarchy  # noqa: E402
from tasklens.task2box.model import neighbour_boxes  # noqa: E402


def placements(model, X, seen):
    """Score matrices (N, N) for the placements of the module docstring."""
    import torch

    net = model.net_
    net.eval()
    xt = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        z = (xt - net.x_mean) / net.x_scale
        lo, hi = net._boxes(z)
        out = {"own": model._scores(lo, hi, lo, hi)}
        novel = np.ones(X.shape[0], dtype=bool)
        novel[seen] = False
        nv = torch.as_tensor(np.flatnonzero(novel))
        sv = torch.as_tensor(seen)
        c = model.config
        sd = torch.as_tensor(X[seen].std(0) + 1e-12, dtype=torch.float32)
        f = (xt - torch.as_tensor(X[seen].mean(0), dtype=torch.float32)) / sd
        zero = torch.zeros_like(net.x_mean)
        for name, x, mean in (("raw", xt, net.x_mean), ("std", z, zero), ("fstd", f, zero)):
            lo_n, hi_n = neighbour_boxes(x[nv], x[sv], mean, lo[sv], hi[sv], lo[nv], hi[nv],
                                         c["neighbour_tau"], c["neighbour_scale"], c["neighbour_blend"])
            l2, h2 = lo.index_copy(0, nv, lo_n), hi.index_copy(0, nv, hi_n)
            out[name] = model._scores(l2, h2, l2, h2)
    return {k: v.numpy().astype(np.float64) for k, v in out.items()}


def free_boxes(model, X, R, tr, va, lr: float):
    """(S, best epoch): scores after training the boxes of all rows as free parameters (see the docstring)."""
    import torch

    from tasklens.task2box.closure import closure_targets
    from tasklens.task2box.evaluate import validation_f1
    from tasklens.task2box.losses import relation_loss
    from tasklens.task2box.model import class_weights

    lo0, hi0 = (torch.as_tensor(a) for a in model.embed(X))
    trc, Rf = closure_targets(R, tr, keep_out=va)
    w_neg, w_pos = class_weights(Rf[trc] > 0.5, model.config["pos_weight"])
    W = torch.as_tensor(np.where(trc, np.where(Rf > 0.5, w_pos, w_neg), 0.0), dtype=torch.float32)
    Rt = torch.as_tensor(Rf, dtype=torch.float32)
    lo, log_side = torch.nn.Parameter(lo0.clone()), torch.nn.Parameter((hi0 - lo0).log())
    opt = torch.optim.Adam([lo, log_side], lr=lr)

    def scores():
        with torch.no_grad():
            hi = lo + log_side.exp()
            return model._scores(lo, hi, lo, hi).numpy().astype(np.float64)

    best, bad = (validation_f1(scores(), R, va), scores(), 0), 0
    for epoch in range(1, 1001):
        opt.zero_grad()
        relation_loss(lo, lo + log_side.exp(), Rt, W, model.geometry).backward()
        opt.step()
        if epoch % 10 == 0:
            S = scores()
            v = validation_f1(S, R, va)
            best, bad = ((v, S, epoch), 0) if v > best[0] + 1e-12 else (best, bad + 1)
            if bad >= 20:
                break
    return best[1], best[2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_args(ap)
    ap.add_argument("--configs", nargs="+", default=["{}"])
    ap.add_argument("--free-boxes", type=float, metavar="LR", help="also train the boxes as free parameters")
    args = ap.parse_args(argv)
    _, _, levels, R, X = load_inputs(ap, args)
    n = R.shape[0]
    for cfg in args.configs:
        kw = json.loads(cfg)
        rows = []
        for seed in args.seeds:
            existing, novel = selection_split(n, levels, seed)
            tr, va, te = split_pairs(n, seed=seed, datasets=existing)
            nm = novel_mask(n, existing, novel)
            t = time.perf_counter()
            model = Task2Box(**{"box_dim": 5, "seed": seed, "epochs": args.epochs, "progress": False,
                                "standardize": "feature" if args.rep == "mu" else "global",
                                **kw, "neighbours": False})
            model.fit(X, R, tr, va)
            secs = time.perf_counter() - t
            S = placements(model, X, model.seen_)
            res = evaluate(R, S["own"], va, te, nm)
            fit_f1 = evaluate_hierarchy(R, S["own"], va, tr, antisymmetric=res["antisymmetric"])["f1"]
            nov = {k: evaluate(R, s, va, te, nm)["novel"] for k, s in S.items()}
            row = [res["existing"], fit_f1, res["val"], nov["own"], nov["raw"], nov["std"], secs,
                   model.history_.get("best_epoch", -1), nov["fstd"]]
            rows.append(row)
            print(f"{cfg} seed {seed}: existing {row[0]:.3f} train {row[1]:.3f} val {row[2]:.3f} | novel own "
                  f"{row[3]:.3f} raw {row[4]:.3f} std {row[5]:.3f} fstd {row[8]:.3f} | best epoch {row[7]} ({secs:.1f} s)",
                  flush=True)
            if args.free_boxes:
                S_free, epoch = free_boxes(model, X, R, tr, va, args.free_boxes)
                free = evaluate(R, S_free, va, te, nm)
                fit_free = evaluate_hierarchy(R, S_free, va, tr, antisymmetric=free["antisymmetric"])["f1"]
                print(f"{cfg} seed {seed}: free boxes existing {free['existing']:.3f} train {fit_free:.3f} "
                      f"val {free['val']:.3f} (epoch {epoch})", flush=True)
        a = np.array(rows)
        m, s = a.mean(0), a.std(0)
        print(f"{cfg} MEAN seeds {args.seeds}: existing {m[0]:.3f} ± {s[0]:.3f} train {m[1]:.3f} val {m[2]:.3f} | "
              f"novel own {m[3]:.3f} ± {s[3]:.3f} raw {m[4]:.3f} ± {s[4]:.3f} std {m[5]:.3f} ± {s[5]:.3f} fstd {m[8]:.3f} ± {s[8]:.3f} | "
              f"{m[6]:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
