"""Selection split for Task2Box settings (issue 14): the novel protocol replayed inside the existing datasets.

Per seed, the benchmark's split is made first (``split_novel(seed)``: 10 % novel datasets, stratified by level);
those novel datasets and every pair touching them are dropped. The remaining existing datasets are split again
(``split_novel(seed + 1000)``, 10 % "selection-novel", stratified by level) and the pairs among the rest 80/10/10.
A setting is scored by F1 on the selection-test pairs (existing) and on selection-novel-vs-rest pairs (novel),
thresholds and the antisymmetry rule chosen on the selection-validation pairs, exactly as in
``task2box_taxonomy.py``. Nothing here reads a test pair or a test dataset of the benchmark.

    python benchmarks/task2box_selection.py --data ../shared/data/taxonomy --seeds 0 1 2 \\
        --configs '{}' '{"geometric": false}' '{"mixtures": 0.5}'

``--hierarchy2`` builds the same selection split on the second hierarchy of ``task2box_hierarchy2.py`` (its
benchmark novel datasets and their pairs dropped first, as here) instead of the taxonomy.
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

from task2box_taxonomy import evaluate  # noqa: E402
from tasklens.task2box import (Task2Box, base_representations, load_taxonomy, novel_mask,  # noqa: E402
                               relations_from_taxonomy, split_novel, split_pairs)


def load_hierarchy(data, hierarchy2: bool):
    """(item embeddings, member sets, levels, R) of the taxonomy in folder ``data`` or of the second hierarchy."""
    if hierarchy2:
        from task2box_hierarchy2 import build_datasets, item_embeddings

        emb, item_class = item_embeddings()
        _, member_sets, levels, R = build_datasets(item_class)
        return emb, member_sets, levels, R
    table, emb = load_taxonomy(data)
    taxa = relations_from_taxonomy(table)
    return emb, taxa.members, taxa.levels, taxa.relations


def add_split_args(ap, seeds=(0, 1, 2)) -> None:
    """The options of every selection-split script: the hierarchy, seeds, representation and epoch budget."""
    ap.add_argument("--data", help="taxonomy folder (species.csv, species_text_embeddings.npy)")
    ap.add_argument("--hierarchy2", action="store_true",
                    help="use the Fashion-MNIST + digits hierarchy of task2box_hierarchy2.py instead")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    ap.add_argument("--rep", default="mu", choices=["mu", "musigma"])
    ap.add_argument("--epochs", type=int, default=300)


def load_inputs(ap, args):
    """(item embeddings, member sets, levels, R, X) of the hierarchy that :func:`add_split_args`' options name; X
    holds the base representations of ``--rep``."""
    if not args.hierarchy2 and args.data is None:
        ap.error("--data is required (or --hierarchy2)")
    emb, member_sets, levels, R = load_hierarchy(args.data, args.hierarchy2)
    return emb, member_sets, levels, R, base_representations(emb, member_sets, variance=args.rep == "musigma")


def selection_split(n: int, levels, seed: int):
    """(existing, novel) of the selection split: both inside the benchmark's existing datasets of ``seed``."""
    existing, _ = split_novel(n, fraction=0.1, seed=seed, stratify=levels)
    sub_e, sub_n = split_novel(existing.size, fraction=0.1, seed=seed + 1000, stratify=np.asarray(levels)[existing])
    return existing[sub_e], existing[sub_n]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_args(ap)
    ap.add_argument("--box-dim", type=int, default=5)
    ap.add_argument("--configs", nargs="+", default=["{}"],
                    help='Task2Box keyword arguments as JSON; "members": true fits with members= (species embeddings)')
    args = ap.parse_args(argv)
    emb, member_sets, levels, R, X = load_inputs(ap, args)
    n = R.shape[0]
    for cfg in args.configs:
        kw = json.loads(cfg)
        fit_kw = {"members": [emb[m] for m in member_sets]} if kw.pop("members", False) else {}
        rows = []
        for seed in args.seeds:
            existing, novel = selection_split(n, levels, seed)
            tr, va, te = split_pairs(n, seed=seed, datasets=existing)
            t = time.perf_counter()
            model = Task2Box(**{"box_dim": args.box_dim, "seed": seed, "epochs": args.epochs, "progress": False,
                                "standardize": "feature" if args.rep == "mu" else "global", **kw})
            model.fit(X, R, tr, va, **fit_kw)
            secs = time.perf_counter() - t
            res = evaluate(R, model.containment(X), va, te, novel_mask(n, existing, novel))
            rows.append((res["existing"], res["novel"], res["val"], secs))
            f1 = getattr(model, "neighbour_f1_", None)
            check = "" if f1 is None else f", check {f1[0]:.3f} / {f1[1]:.3f}"
            print(f"{cfg} seed {seed}: existing {res['existing']:.3f} novel {res['novel']:.3f} val {res['val']:.3f}"
                  f" neighbours {getattr(model, 'neighbours_', None)}{check} ({secs:.1f} s)", flush=True)
        a = np.array(rows)
        print(f"{cfg} mean over seeds {args.seeds}: existing {a[:, 0].mean():.3f} ± {a[:, 0].std():.3f}, "
              f"novel {a[:, 1].mean():.3f} ± {a[:, 1].std():.3f}, val {a[:, 2].mean():.3f}, {a[:, 3].mean():.1f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
