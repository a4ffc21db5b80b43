"""tasklens demo: the main job, end to end on data shipped inside the package.

Builds 469 datasets (taxa with >= 5 species of the compact iNaturalist 2018 + CUB-200 taxonomy) and their
containment relations, holds out 10 % of the datasets as novel, splits the pairs of the existing ones
80/10/10, trains Task2Box 2-D, the MLP pair classifier (10 passes over the training pairs with early stopping, to
stay within two minutes; benchmarks/task2box_taxonomy.py gives it 30) and the asymmetric cosine distance (Eq. 7),
evaluates hierarchy F1 on existing pairs and on novel-vs-existing pairs, and writes metrics.csv, box_map.png,
box_map_highlight.png, history.png and model.pt into the --out folder.
"""

from __future__ import annotations

import csv
import os
import time

from ._args import add_progress, int_type, show_progress

QUICK_CLASSES = ("Liliopsida", "Actinopterygii", "Mammalia", "Reptilia", "Amphibia")


def register(sub) -> None:
    p = sub.add_parser("demo", help="run Task2Box end to end on the bundled taxonomy (the main job)",
                       description=__doc__.split("\n", 1)[1].strip())
    p.add_argument("--out", default="tasklens-demo", help="output folder")
    p.add_argument("--box-dim", type=int_type(min=1), default=2, help="box dimension k")
    p.add_argument("--epochs", type=int_type(min=1), default=None,
                   help="Task2Box epochs (default: 300; 60 with --quick)")
    p.add_argument("--mlp-epochs", type=int_type(min=1), default=None,
                   help="MLP epochs over all training pairs, with early stopping (default: 10; 1 with --quick)")
    p.add_argument("--seed", type=int_type(min=0), default=0, help="seed of the splits and the training")
    p.add_argument("--classes", default=None,
                   help="comma-separated taxonomic classes to keep (default: all; with --quick: "
                        + ",".join(QUICK_CLASSES) + ")")
    p.add_argument("--quick", action="store_true", help="a reduced run (seconds) for smoke tests")
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from tasklens.task2box import (AsymmetricCosine, MLPBaseline, Task2Box, base_representations, evaluate_hierarchy,
                                   load_compact_taxonomy, novel_mask, plot_boxes, plot_history,
                                   relations_from_taxonomy, split_novel, split_pairs)

    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    table, emb = load_compact_taxonomy()
    taxa = relations_from_taxonomy(table)
    classes = args.classes.split(",") if args.classes else (QUICK_CLASSES if args.quick else None)
    if classes:
        known = {g.split(":", 1)[1]: i for i, g in enumerate(taxa.group_names)}
        missing = [c for c in classes if c not in known]
        if missing:
            raise ValueError(f"--classes: unknown class(es) {missing}; known: {sorted(known)}")
        taxa = taxa.subset(np.nonzero(np.isin(taxa.group, [known[c] for c in classes]))[0])
    X = base_representations(emb, taxa.members)
    R = taxa.relations
    n = len(taxa)
    existing, novel = split_novel(n, fraction=0.1, seed=args.seed, stratify=taxa.levels)
    tr, va, te = split_pairs(n, seed=args.seed, datasets=existing)
    nm = novel_mask(n, existing, novel)
    print(f"{n} datasets ({len(existing)} existing, {len(novel)} novel), {int(R.sum())} containment pairs; "
          f"train/val/test pairs {int(tr.sum())}/{int(va.sum())}/{int(te.sum())}")
    epochs = args.epochs or (60 if args.quick else 300)
    mlp_epochs = args.mlp_epochs or (1 if args.quick else 10)
    prog = show_progress(args)
    rows = []
    t = time.perf_counter()
    model = Task2Box(box_dim=args.box_dim, seed=args.seed, epochs=epochs, progress=prog)
    model.fit(X, R, tr, va, checkpoint=os.path.join(args.out, "model.pt"))
    t_box = time.perf_counter() - t
    S = model.containment(X)
    rows.append((f"Task2Box ({args.box_dim}-D)", S, t_box))
    t = time.perf_counter()
    mlp = MLPBaseline(seed=args.seed, epochs=mlp_epochs, progress=prog).fit(X, R, tr, va)
    rows.append((f"MLP ({mlp_epochs} pass{'' if mlp_epochs == 1 else 'es'})", mlp.score(X), time.perf_counter() - t))
    t = time.perf_counter()
    cos = AsymmetricCosine().fit(X, R, tr, va)
    rows.append(("Asym. cosine", cos.score(X), time.perf_counter() - t))
    table_rows = []
    for name, scores, secs in rows:
        ex = evaluate_hierarchy(R, scores, va, te)
        nv = evaluate_hierarchy(R, scores, va, nm)
        table_rows.append({"method": name, "existing_f1": ex["f1"], "existing_precision": ex["precision"],
                           "existing_recall": ex["recall"], "novel_f1": nv["f1"],
                           "novel_precision": nv["precision"], "novel_recall": nv["recall"],
                           "train_seconds": secs})
    path = os.path.join(args.out, "metrics.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table_rows[0]))
        w.writeheader()
        w.writerows(table_rows)
    print(f"\n{'method':<18} {'existing F1':>11} {'(P / R)':>13} {'novel F1':>9} {'(P / R)':>13} {'train s':>8}")
    for r in table_rows:
        print(f"{r['method']:<18} {r['existing_f1']:>11.3f} {r['existing_precision']:>6.2f}/{r['existing_recall']:<6.2f}"
              f" {r['novel_f1']:>9.3f} {r['novel_precision']:>6.2f}/{r['novel_recall']:<6.2f} {r['train_seconds']:>8.1f}")
    lo, hi = model.embed(X)
    labels = [s.split(":", 1)[1] for s in taxa.names]
    plot_boxes(lo, hi, os.path.join(args.out, "box_map.png"), labels=labels, groups=taxa.group,
               group_names=[g.split(":", 1)[1] for g in taxa.group_names], max_labels=70,
               title=f"Task2Box {args.box_dim}-D box map of {n} taxa (colour = class)")
    focus = int(np.argmax((R[:, :] > 0.5).sum(0) * (taxa.levels == "order")))
    plot_boxes(lo, hi, os.path.join(args.out, "box_map_highlight.png"), labels=labels, groups=taxa.group,
               highlight=focus, relations=R, max_labels=40,
               title=f"{labels[focus]}: its box, the taxa it contains and the taxa containing it")
    plot_history(model.history_, os.path.join(args.out, "history.png"))
    print(f"\nwrote {path}, box_map.png, box_map_highlight.png, history.png, model.pt to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0
