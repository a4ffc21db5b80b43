"""How well does Task2Box's internal check choose a novel dataset's box? (issue 14, selection splits only)

For every seed, on the selection split of ``task2box_selection.py`` (built inside the benchmark's existing
datasets; no benchmark test pair or test dataset is read):

- the final model is fitted once (``neighbours=False``: training is the same for every choice) and its
  selection-novel F1 is measured with the encoder's boxes ``f(e)`` and with the neighbour boxes at each blend
  of ``--blends`` (the "truth" a choice rule should find);
- the internal check (:func:`tasklens.task2box.model.neighbour_check`) is run for each held-out fraction and
  draw of ``--checks``, giving its F1 for ``f(e)`` and for each blend.

One JSON line per run goes to ``--out``; ``--rules`` then scores choice rules on those lines without refitting.

    python benchmarks/task2box_auto_study.py --hierarchy2 --rep musigma --seeds 0 1 2 3 4 --out h2s.jsonl
    python benchmarks/task2box_auto_study.py --rules h2s.jsonl h2m.jsonl taxm.jsonl taxs.jsonl
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
from tasklens.task2box.model import neighbour_check, seen_datasets  # noqa: E402


def run(args, levels, R, X) -> None:
    n = R.shape[0]
    checks = [tuple(json.loads(c)) for c in args.checks]
    for seed in args.seeds:
        existing, novel = selection_split(n, levels, seed)
        tr, va, te = split_pairs(n, seed=seed, datasets=existing)
        nm = novel_mask(n, existing, novel)
        t = time.perf_counter()
        model = Task2Box(**{"box_dim": args.box_dim, "seed": seed, "epochs": args.epochs, "progress": False,
                            "standardize": "feature" if args.rep == "mu" else "global", **json.loads(args.task2box),
                            "neighbours": False})
        model.fit(X, R, tr, va)
        truth = [evaluate(R, model.containment(X), va, te, nm)["novel"]]
        model._attach_neighbours(X[model.seen_])
        for b in args.blends:
            model.net_.neighbour_blend.fill_(b)
            truth.append(evaluate(R, model.containment(X), va, te, nm)["novel"])
        seen = seen_datasets(tr, va)
        sub = (X[seen], R[np.ix_(seen, seen)], tr[np.ix_(seen, seen)], va[np.ix_(seen, seen)])
        found = {}
        for fraction, offset in checks:
            f = neighbour_check(model.config, *sub, fraction=fraction, draw=seed + offset, blends=args.blends)
            found[f"{fraction}/{offset}"] = f
        line = {"hierarchy": "h2" if args.hierarchy2 else "taxonomy", "rep": args.rep, "seed": seed,
                "task2box": args.task2box,
                "blends": args.blends, "truth": truth, "checks": found, "secs": time.perf_counter() - t}
        print(json.dumps(line), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(line) + "\n")


def rules(paths) -> None:
    lines = [json.loads(s) for p in paths for s in open(p) if s.strip()]
    keys = sorted({k for ln in lines for k in ln["checks"]})
    blends = lines[0]["blends"]
    oracle = np.mean([max(ln["truth"]) for ln in lines])
    print(f"{len(lines)} runs; F1 if the best placement were always known: {oracle:.3f}")
    for name, col in [("always f(e)", 0)] + [(f"always blend {b}", i + 1) for i, b in enumerate(blends)]:
        print(f"{name:>40}: mean novel F1 {np.mean([ln['truth'][col] for ln in lines]):.3f}")

    def score(pick):
        got = [ln["truth"][pick(ln)] for ln in lines]
        by = {}
        for ln, g in zip(lines, got):
            by.setdefault(f"{ln['hierarchy']} {ln['rep']}", []).append(g)
        parts = ", ".join(f"{k} {np.mean(v):.3f}" for k, v in sorted(by.items()))
        return np.mean(got), parts

    def choose(ln, ks, allowed, margin):
        f = np.mean([ln["checks"][k] for k in ks], axis=0)
        best = max(allowed, key=lambda i: (f[i], -i))
        return best if f[best] > f[0] + margin else 0

    configured = blends.index(0.7) + 1 if 0.7 in blends else 1
    for ks in [[k] for k in keys] + [keys]:
        for margin in (0.0, 0.02, 0.05):
            for label, allowed in (("f(e) or blend 0.7", [0, configured]),
                                   ("f(e) or any blend", list(range(len(blends) + 1)))):
                m, parts = score(lambda ln: choose(ln, ks, allowed, margin))
                print(f"checks {'+'.join(ks):>24}, margin {margin:.2f}, {label:>18}: {m:.3f}  ({parts})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_args(ap, seeds=(0, 1, 2, 3, 4))
    ap.add_argument("--box-dim", type=int, default=5)
    ap.add_argument("--blends", type=float, nargs="+", default=[0.35, 0.7, 1.0])
    ap.add_argument("--checks", nargs="+", default=["[0.1, 0]", "[0.2, 0]", "[0.2, 1]", "[0.3, 0]"],
                    help="held-out fraction and draw offset (added to the seed) of each internal check")
    ap.add_argument("--task2box", default="{}", help="Task2Box keyword arguments as JSON (neighbours is set here)")
    ap.add_argument("--out", help="append one JSON line per run here")
    ap.add_argument("--rules", nargs="+", help="score choice rules on these JSON-line files instead of fitting")
    args = ap.parse_args(argv)
    if args.rules:
        rules(args.rules)
        return 0
    _, _, levels, R, X = load_inputs(ap, args)
    run(args, levels, R, X)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
