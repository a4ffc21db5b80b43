"""``tasklens boxes fit | eval | embed | plot``: Task2Box on user files (.npy / .npz / .csv / .parquet).

- ``fit X RELATIONS --out MODEL``: split the off-diagonal pairs (seeded, 80/10/10), train, save.
- ``eval MODEL X RELATIONS``: hierarchy F1 / precision / recall on the model's test pairs (same split).
- ``embed MODEL X --out BOXES``: boxes ``lo, hi`` as .npz (arrays ``lo``, ``hi``), .npy (N, 2, k) or .csv.
- ``plot (MODEL --x X | BOXES) --out MAP.png``: box map, optional labels, groups and highlight.

X is an (N, d) matrix of base representations; RELATIONS an (N, N) matrix in [0, 1] or a two-column
child,parent edge list (``--edges``; containment is then transitive).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def read_matrix(path: str, name: str, key: str | None = None) -> np.ndarray:
    """Read a numeric 2-D matrix from .npy / .npz / .csv / .parquet."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name}: file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        a = np.load(path, allow_pickle=False)
    elif ext == ".npz":
        z = np.load(path, allow_pickle=False)
        if key is None:
            if len(z.files) != 1:
                raise ValueError(f"{name}: {path} holds arrays {z.files}; choose one with --key")
            key = z.files[0]
        if key not in z.files:
            raise KeyError(f"{name}: {path} has no array {key!r} (has {z.files})")
        a = z[key]
    elif ext in (".csv", ".txt"):
        try:
            a = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError:
            import pandas as pd

            a = pd.read_csv(path).select_dtypes("number").to_numpy()
    elif ext == ".parquet":
        import pandas as pd

        a = pd.read_parquet(path).select_dtypes("number").to_numpy()
    else:
        raise ValueError(f"{name}: unsupported file type {ext!r} ({path}); use .npy, .npz, .csv or .parquet")
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix in {path}, got shape {a.shape}")
    return a


def read_labels(path: str | None, n: int):
    if path is None:
        return None
    if path.lower().endswith(".parquet"):
        import pandas as pd

        vals = pd.read_parquet(path).iloc[:, 0].astype(str).tolist()
    else:
        with open(path) as f:
            vals = [line.rstrip("\n") for line in f if line.strip()]
    if len(vals) != n:
        raise ValueError(f"labels: {path} has {len(vals)} lines, expected {n} (one per row of X)")
    return vals


def _relations(args, n: int) -> np.ndarray:
    from tasklens.task2box import relations_from_parents

    M = read_matrix(args.relations, "relations")
    if args.edges:
        if M.shape[1] != 2:
            raise ValueError(f"relations: an edge list needs two columns (child, parent), got shape {M.shape}")
        return relations_from_parents(M[:, 0].astype(np.int64), M[:, 1].astype(np.int64), n)
    if M.shape != (n, n):
        raise ValueError(f"relations: expected an ({n}, {n}) matrix matching X, got shape {M.shape}; "
                         "pass --edges for a child,parent edge list")
    return M


def _split(n: int, extra: dict):
    from tasklens.task2box import split_pairs

    return split_pairs(n, fractions=tuple(extra["fractions"]), seed=int(extra["split_seed"]))


def cmd_fit(args) -> int:
    from tasklens.task2box import Task2Box, evaluate_hierarchy

    X = read_matrix(args.x, "X", args.key)
    R = _relations(args, X.shape[0])
    fractions = (1 - args.val_frac - args.test_frac, args.val_frac, args.test_frac)
    extra = {"fractions": list(fractions), "split_seed": args.seed}
    tr, va, te = _split(X.shape[0], extra)
    model = Task2Box(box_dim=args.box_dim, seed=args.seed, epochs=args.epochs, lr=args.lr,
                     progress=not args.no_progress)
    model.fit(X, R, tr, va if va.any() else None, checkpoint=args.checkpoint, resume=args.resume)
    model.save(args.out, **extra)
    if te.any():
        m = evaluate_hierarchy(R, model.containment(X), va if va.any() else tr, te)
        print(f"test F1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}")
    print(f"saved {args.out}")
    return 0


def cmd_eval(args) -> int:
    from tasklens.task2box import Task2Box, evaluate_hierarchy

    model = Task2Box.load(args.model)
    X = read_matrix(args.x, "X", args.key)
    R = _relations(args, X.shape[0])
    extra = model.extra_ or {"fractions": [0.8, 0.1, 0.1], "split_seed": model.config["seed"]}
    tr, va, te = _split(X.shape[0], extra)
    m = evaluate_hierarchy(R, model.containment(X), va if va.any() else tr, te)
    if args.json:
        print(json.dumps(m))
    else:
        for k in ("f1", "precision", "recall", "threshold"):
            print(f"{k:<10} {m[k]:.4f}")
    return 0


def cmd_embed(args) -> int:
    from tasklens.task2box import Task2Box

    model = Task2Box.load(args.model)
    X = read_matrix(args.x, "X", args.key)
    lo, hi = model.embed(X)
    write_boxes(args.out, lo, hi)
    print(f"wrote {lo.shape[0]} boxes of dimension {lo.shape[1]} to {args.out}")
    return 0


def write_boxes(path: str, lo: np.ndarray, hi: np.ndarray) -> None:
    ext = os.path.splitext(path)[1].lower()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".npz":
        np.savez(path, lo=lo, hi=hi)
    elif ext == ".npy":
        np.save(path, np.stack([lo, hi], 1))
    elif ext == ".csv":
        k = lo.shape[1]
        header = ",".join([f"lo_{a}" for a in range(k)] + [f"hi_{a}" for a in range(k)])
        np.savetxt(path, np.hstack([lo, hi]), delimiter=",", header=header, comments="")
    elif ext == ".parquet":
        import pandas as pd

        k = lo.shape[1]
        pd.DataFrame(np.hstack([lo, hi]), columns=[f"lo_{a}" for a in range(k)] + [f"hi_{a}" for a in range(k)]
                     ).to_parquet(path)
    else:
        raise ValueError(f"--out: unsupported file type {ext!r}; use .npz, .npy, .csv or .parquet")


def read_boxes(path: str):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        z = np.load(path)
        if "lo" not in z.files or "hi" not in z.files:
            raise KeyError(f"boxes: {path} must hold arrays 'lo' and 'hi' (has {z.files})")
        return z["lo"], z["hi"]
    M = read_matrix(path, "boxes")
    if ext == ".npy" and M.ndim == 2 and np.load(path).ndim == 3:
        a = np.load(path)
        return a[:, 0], a[:, 1]
    if M.shape[1] % 2:
        raise ValueError(f"boxes: expected 2k columns (lo_0..lo_k-1, hi_0..hi_k-1), got shape {M.shape}")
    k = M.shape[1] // 2
    return M[:, :k], M[:, k:]


def cmd_plot(args) -> int:
    from tasklens.task2box import plot_boxes

    if args.source.endswith((".pt", ".ckpt")):
        from tasklens.task2box import Task2Box

        if args.x is None:
            raise ValueError("plot: a model file needs --x (the base representations to embed)")
        lo, hi = Task2Box.load(args.source).embed(read_matrix(args.x, "X", args.key))
    else:
        lo, hi = read_boxes(args.source)
    labels = read_labels(args.labels, lo.shape[0])
    groups = None
    if args.groups is not None:
        g = read_labels(args.groups, lo.shape[0])
        names, groups = np.unique(g, return_inverse=True)
    highlight = args.highlight
    if highlight is not None and labels is None:
        highlight = int(highlight)
    plot_boxes(lo, hi, args.out, labels=labels, groups=groups,
               group_names=None if args.groups is None else list(names), highlight=highlight,
               max_labels=args.max_labels, title=args.title)
    print(f"wrote {args.out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("boxes", help="Task2Box box embeddings on your files (fit, eval, embed, plot)",
                       description=__doc__.split("\n\n")[0])
    s = p.add_subparsers(dest="boxes_command", metavar="ACTION", required=True)

    def common(q, model: bool):
        if model:
            q.add_argument("model", help="model file written by 'tasklens boxes fit'")
        q.add_argument("x", help="(N, d) base representations (.npy/.npz/.csv/.parquet)")
        q.add_argument("--key", default=None, help="array name inside a .npz file")

    f = s.add_parser("fit", help="train a Task2Box model and save it")
    common(f, False)
    f.add_argument("relations", help="(N, N) relation matrix in [0, 1], or a child,parent edge list with --edges")
    f.add_argument("--edges", action="store_true", help="RELATIONS is a two-column child,parent edge list")
    f.add_argument("--out", required=True, help="model file to write (.pt)")
    f.add_argument("--box-dim", type=int, default=2)
    f.add_argument("--epochs", type=int, default=1000)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--val-frac", type=float, default=0.1)
    f.add_argument("--test-frac", type=float, default=0.1)
    f.add_argument("--checkpoint", default=None, help="training checkpoint path (written periodically)")
    f.add_argument("--resume", default=None, help="resume training from this checkpoint")
    f.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    f.set_defaults(func=cmd_fit)

    e = s.add_parser("eval", help="hierarchy F1 / precision / recall on the model's test pairs")
    common(e, True)
    e.add_argument("relations")
    e.add_argument("--edges", action="store_true")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    m = s.add_parser("embed", help="write the boxes (lo, hi) of any rows")
    common(m, True)
    m.add_argument("--out", required=True, help=".npz (lo, hi), .npy (N, 2, k), .csv or .parquet")
    m.set_defaults(func=cmd_embed)

    pl = s.add_parser("plot", help="draw a box map (PNG/SVG)")
    pl.add_argument("source", help="model file (.pt, with --x) or boxes file (.npz/.npy/.csv/.parquet)")
    pl.add_argument("--x", default=None, help="base representations to embed (with a model file)")
    pl.add_argument("--key", default=None)
    pl.add_argument("--out", required=True, help="image file (.png, .svg, .pdf)")
    pl.add_argument("--labels", default=None, help="text file, one label per box")
    pl.add_argument("--groups", default=None, help="text file, one group name per box (colours)")
    pl.add_argument("--highlight", default=None, help="label (or index) of a box to highlight")
    pl.add_argument("--max-labels", type=int, default=60)
    pl.add_argument("--title", default=None)
    pl.set_defaults(func=cmd_plot)


if __name__ == "__main__":  # pragma: no cover
    from tasklens.cli import main

    sys.exit(main(["boxes", *sys.argv[1:]]))
