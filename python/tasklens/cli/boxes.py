"""tasklens boxes fit | eval | embed | plot: Task2Box box embeddings of your datasets.

  fit X RELATIONS --out MODEL      split the off-diagonal pairs (seeded, 80/10/10 by default), train, save
  eval MODEL X RELATIONS           hierarchy F1, precision and recall on the model's test pairs (same split)
  embed MODEL X --out BOXES        the boxes (lo, hi) of any rows: .npz (arrays lo, hi), .npy (N, 2, k),
                                   .csv or .parquet (columns lo_0..lo_k-1, hi_0..hi_k-1)
  plot SOURCE --out MAP.png        a box map of a boxes file, or of a model file and --x

X is an (N, d) matrix of base representations, one row per dataset. RELATIONS is an (N, N) matrix in [0, 1]
with R[i, j] = 1 when dataset i is contained in dataset j, or, with --edges, a child,parent edge list
(containment is then transitive: a child is contained in every ancestor).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from ._args import UsageError, add_progress, float_type, int_type, show_progress
from ._io import (InputError, check_out, load_npy, load_npz, make_parent, npz_arrays, read_frame, read_matrix,
                  short, split_spec, write_values)
from ._text import read_edges, read_names

MODEL_EXTS = (".pt", ".pth", ".ckpt")
BOXES_EXTS = (".npz", ".npy", ".csv", ".parquet")
IMAGE_EXTS = (".png", ".svg", ".pdf")

EDGES_HELP = ("with --edges: a child,parent edge list, one edge per line (comma, tab or spaces), entries are "
              "0-based row numbers of X or, with --names, names; a header line is skipped")


# ------------------------------------------------------------------------------------------- reading
def load_model(path: str):
    """A Task2Box model file; any failure to read it is one error naming the file."""
    from tasklens.task2box import Task2Box

    if not os.path.exists(path):
        raise FileNotFoundError(f"model: file not found: {path}")
    try:
        return Task2Box.load(path)
    except Exception as exc:  # empty, truncated, corrupt or foreign files (torch, pickle, zip errors)
        text = short(exc)
        raise InputError(f"model: {text}" if path in text else
                         f"model: cannot load {path} as a Task2Box model ({text})") from None


def _read_x(args, model=None) -> np.ndarray:
    X = read_matrix(args.x, "X")
    if model is not None and model.in_dim_ is not None and X.shape[1] != model.in_dim_:
        raise InputError(f"X: {args.x} has {X.shape[1]} columns, but the model was trained on "
                         f"{model.in_dim_}-column base representations")
    return X


def _relations(args, n: int) -> np.ndarray:
    from tasklens.task2box import relations_from_parents

    names = read_names(args.names, "--names", n) if args.names else None
    if args.edges:
        child, parent = read_edges(args.relations, "relations", n, names)
        loops = np.nonzero(child == parent)[0]
        if loops.size:
            raise InputError(f"relations: edge {loops[0] + 1} of {args.relations} links node {child[loops[0]]} "
                             "to itself; an edge list links a child to its parent")
        R = relations_from_parents(child, parent, n)
        i, j = np.nonzero((R > 0) & (R.T > 0))
        if i.size:
            raise InputError(f"relations: the edge list {args.relations} has a cycle (node {i[0]} is below node "
                             f"{j[0]} and node {j[0]} below node {i[0]}); containment edges must form a hierarchy")
        return R
    if names is not None:
        raise UsageError("--names is only used with --edges (names in an edge list)")
    R = read_matrix(args.relations, "relations")
    if R.shape != (n, n):
        hint = "; for a child,parent edge list pass --edges" if R.shape[1] == 2 else ""
        raise InputError(f"relations: expected an ({n}, {n}) matrix (one row and column per row of X), "
                         f"got shape {R.shape} from {args.relations}{hint}")
    R = R.astype(np.float64)
    if not np.isfinite(R).all() or R.min() < 0 or R.max() > 1:
        raise InputError(f"relations: values must lie in [0, 1] (R[i, j] = 1: dataset i is contained in j), "
                         f"{args.relations} holds values in [{np.nanmin(R):g}, {np.nanmax(R):g}]")
    return R


def _split(n: int, extra: dict):
    from tasklens.task2box import split_pairs

    return split_pairs(n, fractions=tuple(extra["fractions"]), seed=int(extra["split_seed"]))


def _check_resume(path: str, X: np.ndarray, args) -> None:
    """Say plainly why a checkpoint cannot continue this run (another model, input width or box size)."""
    from tasklens.task2box.checkpoint import load_checkpoint

    if not os.path.exists(path):
        raise FileNotFoundError(f"--resume: file not found: {path}")
    try:
        data = load_checkpoint(path)
    except Exception as exc:
        raise InputError(f"--resume: cannot read {path} as a checkpoint ({short(exc)})") from None
    if data.get("kind") != "Task2Box":
        raise InputError(f"--resume: {path} holds a {data.get('kind')!r} checkpoint, not a Task2Box one")
    cfg = data.get("config", {})
    if data.get("in_dim") is not None and int(data["in_dim"]) != X.shape[1]:
        raise InputError(f"--resume: {path} was trained on {data['in_dim']}-column inputs, X has {X.shape[1]}")
    for opt, key in (("--box-dim", "box_dim"), ("--seed", "seed")):
        if key in cfg and cfg[key] != getattr(args, key):
            raise UsageError(f"--resume: {path} was written with {opt} {cfg[key]}; pass {opt} {cfg[key]} to "
                             "continue it")


# ------------------------------------------------------------------------------------------- commands
def cmd_fit(args) -> int:
    from tasklens.task2box import Task2Box, evaluate_hierarchy

    if args.val_frac + args.test_frac >= 1:
        raise UsageError(f"--val-frac + --test-frac must be below 1, got {args.val_frac} + {args.test_frac}")
    X = _read_x(args)
    R = _relations(args, X.shape[0])
    if X.shape[0] < 2:
        raise InputError(f"X: needs at least 2 rows (datasets) to have pairs, got shape {X.shape}")
    checkpoint = args.checkpoint
    if args.resume is not None:
        _check_resume(args.resume, X, args)
        checkpoint = checkpoint or args.resume
    fractions = (1 - args.val_frac - args.test_frac, args.val_frac, args.test_frac)
    extra = {"fractions": list(fractions), "split_seed": args.seed}
    tr, va, te = _split(X.shape[0], extra)
    model = Task2Box(box_dim=args.box_dim, seed=args.seed, epochs=args.epochs, lr=args.lr,
                     progress=show_progress(args))
    make_parent(args.out)
    model.fit(X, R, tr, va if va.any() else None, checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
              resume=args.resume)
    model.save(args.out, **extra)
    if te.any():
        m = evaluate_hierarchy(R, model.containment(X), va if va.any() else tr, te)
        print(f"test F1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}")
    print(f"saved {args.out}")
    return 0


def cmd_eval(args) -> int:
    from tasklens.task2box import evaluate_hierarchy

    if args.out:
        check_out(args.out, "--out", (".json", ".csv"))
    model = load_model(args.model)
    X = _read_x(args, model)
    R = _relations(args, X.shape[0])
    extra = model.extra_ or {"fractions": [0.8, 0.1, 0.1], "split_seed": model.config["seed"]}
    tr, va, te = _split(X.shape[0], extra)
    m = evaluate_hierarchy(R, model.containment(X), va if va.any() else tr, te)
    m = {k: (float(v) if np.ndim(v) == 0 and isinstance(v, (float, int, np.number)) else v) for k, v in m.items()}
    if args.json:
        print(json.dumps(m))
    else:
        for k in ("f1", "precision", "recall", "threshold"):
            print(f"{k:<10} {m[k]:.4f}")
    if args.out:
        write_values(args.out, m)
    return 0


def cmd_embed(args) -> int:
    check_out(args.out, "--out", BOXES_EXTS)
    model = load_model(args.model)
    X = _read_x(args, model)
    lo, hi = model.embed(X)
    write_boxes(args.out, lo, hi)
    print(f"wrote {lo.shape[0]} boxes of dimension {lo.shape[1]} to {args.out}")
    return 0


def write_boxes(path: str, lo: np.ndarray, hi: np.ndarray) -> None:
    """Boxes as .npz (arrays lo, hi), .npy (N, 2, k), or .csv / .parquet (columns lo_0.., hi_0..)."""
    ext = check_out(path, "--out", BOXES_EXTS)
    make_parent(path)
    k = lo.shape[1]
    columns = [f"lo_{a}" for a in range(k)] + [f"hi_{a}" for a in range(k)]
    if ext == ".npz":
        np.savez(path, lo=lo, hi=hi)
    elif ext == ".npy":
        np.save(path, np.stack([lo, hi], 1))
    elif ext == ".csv":
        np.savetxt(path, np.hstack([lo, hi]), delimiter=",", header=",".join(columns), comments="")
    else:
        import pandas as pd

        pd.DataFrame(np.hstack([lo, hi]), columns=columns).to_parquet(path)


def read_boxes(spec: str):
    """``(lo, hi)`` from any file :func:`write_boxes` writes (and (N, 2k) matrices of lo then hi columns)."""
    path, key = split_spec(spec, "boxes")
    ext = os.path.splitext(path)[1].lower()
    if ext not in BOXES_EXTS:
        raise InputError(f"boxes: unsupported file type {ext or '(none)'!r} ({path}); use a model file "
                         f"({', '.join(MODEL_EXTS)}) with --x, or a boxes file ({', '.join(BOXES_EXTS)})")
    if ext == ".npz" and key is None and {"lo", "hi"} <= set(arrays := npz_arrays(path, "boxes")):
        lo, hi = arrays["lo"], arrays["hi"]
    elif ext in (".npy", ".npz"):
        a = load_npy(path, "boxes") if ext == ".npy" else load_npz(path, "boxes", key)[0]
        if ext == ".npy" and key is not None:
            raise InputError(f"boxes: {spec}: a boxes .npy file takes no :KEY")
        if a.ndim == 3 and a.shape[1] == 2:
            lo, hi = a[:, 0], a[:, 1]
        elif a.ndim == 2:
            lo, hi = _halves(a, spec)
        else:
            raise InputError(f"boxes: expected an (N, 2, k) array or an (N, 2k) matrix in {spec}, got shape "
                             f"{a.shape}")
    else:
        frame = read_frame(path, "boxes")
        cols = [str(c) for c in frame.columns]
        k = sum(c.startswith("lo_") for c in cols)
        if key is None and k and all(f"lo_{a}" in cols and f"hi_{a}" in cols for a in range(k)):
            by = {str(c): c for c in frame.columns}
            lo = frame[[by[f"lo_{a}"] for a in range(k)]].to_numpy()
            hi = frame[[by[f"hi_{a}"] for a in range(k)]].to_numpy()
        else:
            lo, hi = _halves(read_matrix(spec, "boxes"), spec)
    lo, hi = np.asarray(lo), np.asarray(hi)
    if lo.dtype.kind not in "biuf" or hi.dtype.kind not in "biuf":
        raise InputError(f"boxes: {spec} holds {lo.dtype} data, expected numbers")
    if lo.ndim != 2 or lo.shape != hi.shape or lo.shape[0] == 0 or lo.shape[1] == 0:
        raise InputError(f"boxes: expected lo and hi of the same shape (N, k), N, k >= 1, got {lo.shape} and "
                         f"{hi.shape} from {spec}")
    return lo.astype(np.float64), hi.astype(np.float64)


def _halves(M: np.ndarray, spec: str):
    if M.shape[1] == 0 or M.shape[1] % 2:
        raise InputError(f"boxes: expected 2k numeric columns (lo_0..lo_k-1, hi_0..hi_k-1) in {spec}, got shape "
                         f"{M.shape}")
    k = M.shape[1] // 2
    return M[:, :k], M[:, k:]


def cmd_plot(args) -> int:
    from tasklens.task2box import plot_boxes

    check_out(args.out, "--out", IMAGE_EXTS)
    source_path = split_spec(args.source, "source")[0]
    if source_path.lower().endswith(MODEL_EXTS):
        if args.x is None:
            raise UsageError("plot: a model file needs --x (the base representations to embed)")
        model = load_model(source_path)
        lo, hi = model.embed(_read_x(args, model))
    else:
        if args.x is not None:
            raise UsageError("plot: --x is only used with a model file")
        lo, hi = read_boxes(args.source)
    n = lo.shape[0]
    labels = read_names(args.labels, "--labels", n) if args.labels else None
    groups = names = None
    if args.groups is not None:
        names, groups = np.unique(read_names(args.groups, "--groups", n), return_inverse=True)
        names = list(names)
    highlight = args.highlight
    if highlight is not None and labels is None:
        try:
            highlight = int(highlight)
        except ValueError:
            raise InputError(f"--highlight: without --labels give a 0-based box index, got {highlight!r}") from None
        if not 0 <= highlight < n:
            raise InputError(f"--highlight: box index {highlight} is out of range for {n} boxes (0-based)")
    make_parent(args.out)
    plot_boxes(lo, hi, args.out, labels=labels, groups=groups, group_names=names, highlight=highlight,
               max_labels=args.max_labels, title=args.title)
    print(f"wrote {args.out}")
    return 0


# ------------------------------------------------------------------------------------------- parser
def register(sub) -> None:
    doc = __doc__.split("\n", 1)
    p = sub.add_parser("boxes", help="Task2Box box embeddings on your files (fit, eval, embed, plot)",
                       description=doc[1].strip("\n"))
    s = p.add_subparsers(dest="boxes_command", metavar="ACTION", required=True)

    def inputs(q, model: bool):
        if model:
            q.add_argument("model", help="model file written by 'tasklens boxes fit' (.pt)")
        q.add_argument("x", metavar="X", help="(N, d) base representations, one row per dataset: FILE[:KEY]")

    def relations(q):
        q.add_argument("relations", metavar="RELATIONS",
                       help="(N, N) relation matrix in [0, 1], R[i, j] = 1 when dataset i is contained in "
                            "dataset j: FILE[:KEY]; " + EDGES_HELP)
        q.add_argument("--edges", action="store_true", help="RELATIONS is a child,parent edge list")
        q.add_argument("--names", default=None, metavar="FILE",
                       help="one name per row of X (text, or FILE:COLUMN of a table), for an edge list of "
                            "names (default: entries are row numbers)")

    f = s.add_parser("fit", help="train a Task2Box model and save it",
                     description="Train Task2Box on X and RELATIONS and save the model. The off-diagonal pairs "
                                 "are split (seeded) into train / validation / test pairs; validation F1 drives "
                                 "early stopping and the test F1 is printed.")
    inputs(f, False)
    relations(f)
    f.add_argument("--out", required=True, help="model file to write (.pt)")
    f.add_argument("--box-dim", type=int_type(min=1), default=2, help="box dimension k")
    f.add_argument("--epochs", type=int_type(min=1), default=1000, help="training epochs (at most)")
    f.add_argument("--lr", type=float_type(min=0, min_inclusive=False), default=1e-3, help="Adam learning rate")
    f.add_argument("--seed", type=int_type(min=0), default=0, help="seed of the pair split and the training")
    f.add_argument("--val-frac", type=float_type(min=0, max=1, max_inclusive=False), default=0.1,
                   help="fraction of pairs for validation (early stopping)")
    f.add_argument("--test-frac", type=float_type(min=0, max=1, max_inclusive=False), default=0.1,
                   help="fraction of pairs held out for the test F1")
    f.add_argument("--checkpoint", default=None,
                   help="training checkpoint written every --checkpoint-every epochs and at the end (default: "
                        "none; with --resume, the resumed file)")
    f.add_argument("--checkpoint-every", type=int_type(min=1), default=50, help="epochs between checkpoints")
    f.add_argument("--resume", default=None,
                   help="continue training from a checkpoint written by --checkpoint (same X, RELATIONS, "
                        "--box-dim and --seed; default: start afresh)")
    add_progress(f)
    f.set_defaults(func=cmd_fit)

    e = s.add_parser("eval", help="hierarchy F1 / precision / recall on the model's test pairs",
                     description="Evaluate a model on the test pairs of the split it was trained with.")
    inputs(e, True)
    relations(e)
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--out", default=None, help="also write the metrics to this file (.json or .csv; default: "
                                               "print only)")
    e.set_defaults(func=cmd_eval)

    m = s.add_parser("embed", help="write the boxes (lo, hi) of any rows",
                     description="Embed the rows of X with a model and write their boxes.")
    inputs(m, True)
    m.add_argument("--out", required=True,
                   help=".npz (arrays lo, hi), .npy (N, 2, k), .csv or .parquet (columns lo_0.., hi_0..)")
    m.set_defaults(func=cmd_embed)

    pl = s.add_parser("plot", help="draw a box map (PNG/SVG/PDF)",
                      description="Draw a box map of a boxes file (as written by 'tasklens boxes embed') or of "
                                  "a model file and --x. Boxes with k > 2 are drawn as 2-D projections.")
    pl.add_argument("source", help="boxes file (.npz with lo and hi, .npy (N, 2, k), .csv/.parquet with lo_*, "
                                   "hi_* columns) or model file (.pt, with --x)")
    pl.add_argument("--x", default=None, metavar="X",
                    help="base representations to embed, FILE[:KEY] (with a model file; default: none)")
    pl.add_argument("--out", required=True, help="image file (.png, .svg, .pdf)")
    pl.add_argument("--labels", default=None, metavar="FILE",
                    help="one label per box (UTF-8 text, or FILE:COLUMN of a table; default: no labels)")
    pl.add_argument("--groups", default=None, metavar="FILE",
                    help="one group name per box, for colours (same formats as --labels; default: one colour)")
    pl.add_argument("--highlight", default=None,
                    help="label (with --labels) or 0-based index of a box to highlight (default: none)")
    pl.add_argument("--max-labels", type=int_type(min=0), default=60, help="most labels drawn per panel")
    pl.add_argument("--title", default=None, help="figure title (default: none)")
    pl.set_defaults(func=cmd_plot)


if __name__ == "__main__":  # pragma: no cover
    from tasklens.cli import main

    sys.exit(main(["boxes", *sys.argv[1:]]))
