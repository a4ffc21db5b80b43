"""Table 1 analogue on the real iNaturalist 2018 + CUB-200 taxonomy (../shared/data/taxonomy).

Datasets = taxa (class, order, family, genus) with >= 5 species (469); base representation = mean [mu]
or mean and variance [mu, sigma^2] of member species' text embeddings (Eq. 1-2); ground truth =
taxonomic containment. Per seed: 10 % of the datasets (stratified by level) are novel; the pairs of the
existing ones are split 80/10/10. Every method sees the same splits; thresholds (and, for every method
alike, whether the antisymmetry rule S[i,j] > S[j,i] is applied) are chosen on the validation pairs.
Reported: hierarchy F1 on test pairs (existing) and on novel-vs-existing pairs (both directions),
mean ± std over seeds.

    python benchmarks/task2box_taxonomy.py [--seeds 0 1 2] [--dims 2 3 5] [--reps mu musigma]
                                           [--methods ...] [--quick] [--json out.json] [--map PNG]
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

from tasklens.task2box import (BASELINES, Task2Box, base_representations, evaluate_hierarchy,  # noqa: E402
                               load_taxonomy, novel_mask, plot_boxes, relations_from_taxonomy, split_novel,
                               split_pairs)
from tasklens.task2box.closure import closure_targets  # noqa: E402

BASELINE_ORDER = ["MLP", "Linear", "KL", "AsymCosine", "AsymEuclidean", "Random"]


def evaluate(R, S, va, te, nm):
    """Existing and novel F1, with the antisymmetry rule chosen on validation (same for all methods)."""
    best = None
    for anti in (True, False):
        ex = evaluate_hierarchy(R, S, va, te, antisymmetric=anti)
        if best is None or ex["val_f1"] > best[0]["val_f1"] + 1e-12:
            best = (ex, evaluate_hierarchy(R, S, va, nm, antisymmetric=anti), anti)
    return {"existing": best[0]["f1"], "novel": best[1]["f1"], "antisymmetric": best[2],
            "val": best[0]["val_f1"]}


def run_table(R, reps, levels, args, plot=None, members=None):
    """Every method on every seed and representation (the Table 1 protocol); one result dict per run.

    ``args`` holds ``seeds, dims, reps, methods, epochs, mlp_epochs, standardize`` (and optionally ``task2box``,
    extra Task2Box keyword arguments as JSON); ``plot(model, X)`` is called for Task2Box 2-D on the first seed
    and representation. Method ``"Task2Box+members"``: Task2Box fitted with ``members=members`` (per-dataset
    member embeddings, member-subset augmentation).
    """
    n = R.shape[0]
    rows = []
    for seed in args.seeds:
        existing, novel = split_novel(n, fraction=0.1, seed=seed, stratify=levels)
        tr, va, te = split_pairs(n, seed=seed, datasets=existing)
        nm = novel_mask(n, existing, novel)
        for rep in args.reps:
            X = reps[rep]
            for method in args.methods:
                if method == "Task2Box":
                    variants = [(f"Task2Box ({k}-D)", k) for k in args.dims]
                elif method == "Task2Box+members":
                    variants = [(f"Task2Box ({k}-D) + members", k) for k in args.dims]
                else:
                    variants = [(method, None)]
                for name, k in variants:
                    if method == "KL" and rep == "mu":
                        continue  # [mu] is not a distribution (paper Table 1 "-")
                    t = time.perf_counter()
                    if k is not None:
                        std = args.standardize[0 if rep == "mu" else 1]
                        kw = {} if method == "Task2Box" else {"members": members}
                        model = Task2Box(box_dim=k, seed=seed, epochs=args.epochs, standardize=std, progress=False,
                                         **json.loads(getattr(args, "task2box", "{}"))).fit(X, R, tr, va, **kw)
                        S = model.containment(X)
                        if k == 2 and seed == args.seeds[0] and rep == args.reps[0] and plot is not None:
                            plot(model, X)
                    else:
                        cls = BASELINES[method.removesuffix("+closure")]
                        fit_R, fit_tr = R, tr
                        if method.endswith("+closure"):  # the pairs Task2Box(closure=True) also trains on
                            fit_tr, implied = closure_targets(R, tr, keep_out=va)
                            fit_R = np.where(fit_tr, implied, R)
                        if method.startswith(("MLP", "Linear")):
                            m = cls(seed=seed, epochs=args.mlp_epochs, eval_every=1, patience=5, progress=False)
                        elif method == "Random":
                            m = cls(seed=seed)
                        else:
                            m = cls()
                        S = m.fit(X, fit_R, fit_tr, va).score(X)
                    secs = time.perf_counter() - t
                    res = evaluate(R, S, va, te, nm)
                    res.update(method=name, rep=rep, seed=seed, seconds=secs)
                    rows.append(res)
                    print(f"seed {seed} {rep:<8} {name:<16} existing {res['existing']:.3f}  novel {res['novel']:.3f}"
                          f"  (val {res['val']:.3f}, antisym {res['antisymmetric']}, {secs:.1f} s)", flush=True)
    return rows


def print_table(rows, seeds):
    """The markdown table: F1 (%) mean ± std (population) over seeds, and the mean training seconds."""
    print("\n| method | existing [mu] | existing [mu, s2] | novel [mu] | novel [mu, s2] | train s |")
    print("|---|---|---|---|---|---|")
    names = list(dict.fromkeys(r["method"] for r in rows))
    for name in names:
        cells = []
        for split in ("existing", "novel"):
            for rep in ("mu", "musigma"):
                v = [r[split] for r in rows if r["method"] == name and r["rep"] == rep]
                cells.append(f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}" if v else "-")
        secs = np.mean([r["seconds"] for r in rows if r["method"] == name])
        print(f"| {name} | " + " | ".join(cells) + f" | {secs:.1f} |")
    print(f"\nF1 in %, mean ± std over seeds {seeds}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "taxonomy"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3, 5])
    ap.add_argument("--reps", nargs="+", default=["mu", "musigma"], choices=["mu", "musigma"])
    ap.add_argument("--methods", nargs="+", default=["Task2Box"] + BASELINE_ORDER,
                    help="Task2Box, Task2Box+members (fit with members=: species embeddings per taxon), baselines, "
                         "or a baseline with +closure (trained on the implied pairs too, as Task2Box closure=True)")
    ap.add_argument("--epochs", type=int, default=300, help="Task2Box epochs (full batch)")
    ap.add_argument("--mlp-epochs", type=int, default=30, help="Linear / MLP epochs (mini-batches of pairs)")
    ap.add_argument("--task2box", default="{}", help="extra Task2Box keyword arguments as JSON (default: none)")
    ap.add_argument("--standardize", nargs=2, default=["feature", "global"], metavar=("MU", "MUSIGMA"),
                    help="Task2Box input standardisation for [mu] and [mu, s2] (chosen on validation F1 "
                         "of seed 0: per-feature scaling drowns the mean half of [mu, s2] in 384 "
                         "rescaled variance columns)")
    ap.add_argument("--quick", action="store_true", help="one seed, dims 2 and 5, [mu] only, short budgets")
    ap.add_argument("--json", default=None, help="write raw results here")
    ap.add_argument("--map", default=os.path.join(HERE, "figures", "task2box_taxonomy_map.png"),
                    help="box map of Task2Box 2-D (first seed, [mu]); '' to skip")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.dims, args.reps = args.seeds[:1], [2, 5], ["mu"]
        args.epochs, args.mlp_epochs = 100, 3
    try:
        table, emb = load_taxonomy(args.data)
    except FileNotFoundError as exc:
        raise SystemExit(f"error: {exc}")
    taxa = relations_from_taxonomy(table)
    R = taxa.relations
    n = len(taxa)
    reps = {"mu": base_representations(emb, taxa.members),
            "musigma": base_representations(emb, taxa.members, variance=True)}
    print(f"{n} datasets, {int(R.sum())} containment pairs; seeds {args.seeds}, dims {args.dims}, reps {args.reps}")
    plot = None
    if args.map:
        def plot(model, X):
            lo, hi = model.embed(X)
            os.makedirs(os.path.dirname(os.path.abspath(args.map)), exist_ok=True)
            plot_boxes(lo, hi, args.map, labels=[s.split(":", 1)[1] for s in taxa.names],
                       groups=taxa.group, group_names=[g.split(":", 1)[1] for g in taxa.group_names],
                       max_labels=90, dpi=100,
                       title=f"Task2Box 2-D: {n} taxa of iNaturalist 2018 + CUB-200 (colour = class)")
    rows = run_table(R, reps, taxa.levels, args, plot=plot, members=[emb[m] for m in taxa.members])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print_table(rows, args.seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
