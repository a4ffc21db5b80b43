"""``tasklens hscore`` and ``tasklens transferability``: H-score (Def. 2) and transferability (Def. 3) of
arrays stored as .npy, .npz or .parquet files.

Paths take an optional ``:key`` suffix: the array name inside a .npz (default: its first array), or
comma-separated column names of a .parquet table (default: every column). .npy files are memory-mapped and
read block by block, so features larger than memory work.
"""

from __future__ import annotations

import json
import os

import numpy as np


def load_array(spec: str) -> np.ndarray:
    """Load ``path[:key]`` from .npy (memory-mapped), .npz or .parquet."""
    path, _, key = spec.partition(":") if not os.path.exists(spec) else (spec, "", "")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return np.load(path, mmap_mode="r")
    if ext == ".npz":
        with np.load(path) as z:
            names = list(z.keys())
            if not names:
                raise ValueError(f"{path}: the .npz holds no arrays")
            name = key or names[0]
            if name not in names:
                raise KeyError(f"{path}: no array {name!r} (has {', '.join(names)})")
            return z[name]
    if ext == ".parquet":
        import pandas as pd

        cols = [c for c in key.split(",") if c] or None
        table = pd.read_parquet(path, columns=cols)
        arr = table.to_numpy()
        return arr[:, 0] if arr.shape[1] == 1 else arr
    raise ValueError(f"{path}: unsupported file type {ext!r}; use .npy, .npz or .parquet")


def load_features(spec: str) -> np.ndarray:
    """Like :func:`load_array`, with a single column read as features of shape (N, 1)."""
    arr = load_array(spec)
    return arr[:, None] if arr.ndim == 1 else arr


def _print(result, as_json: bool, name: str) -> None:
    values = np.atleast_1d(np.asarray(result, dtype=np.float64))
    if as_json:
        print(json.dumps({name: values.tolist() if np.ndim(result) else float(values[0])}))
    else:
        for v in values:
            print(f"{v:.10g}")


def register(sub) -> None:
    p = sub.add_parser("hscore", help="H-score of features for class labels (Def. 2)",
                       description="H-score tr(cov(f)^+ cov(E[f|Y])) of FEATURES (N, F) for LABELS (N,) or "
                                   "(N, T) class codes; one line (score) per target.")
    p.add_argument("features", help="features file: .npy, .npz[:name] or .parquet[:col,col]")
    p.add_argument("labels", help="labels file: .npy, .npz[:name] or .parquet[:col] (N,) or (N, T) ints")
    p.add_argument("--shrinkage", choices=["ledoit-wolf"], default=None,
                   help="regularized H-score with Ledoit-Wolf shrinkage (Ibrahim et al., 2021)")
    p.add_argument("--rtol", type=float, default=None, help="pseudo-inverse tolerance (default F * eps)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_hscore)

    t = sub.add_parser("transferability", help="transferability H_T(f_S) / H_T(f_opt) (Def. 3)",
                       description="Transferability of SOURCE features (N, F) to TARGET labels: H-score over "
                                   "H_T(f_opt), where H_T(f_opt) is a number, the H-score of target features "
                                   "(a file), or computed from discrete inputs with the DTM or ACE.")
    t.add_argument("source", help="source features file (N, F)")
    t.add_argument("labels", help="target labels file (N,) or (N, T)")
    t.add_argument("--optimal", default="dtm",
                   help="'dtm', 'ace', a number, or a file of target features (N, K) (default: dtm)")
    t.add_argument("--inputs", default=None, help="discrete inputs X (N,) int codes, for --optimal dtm/ace")
    t.add_argument("--k", type=int, default=None, help="ACE modes (default min(|X|, |Y|) - 1)")
    t.add_argument("--shrinkage", choices=["ledoit-wolf"], default=None)
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(func=run_transferability)


def run_hscore(args) -> int:
    from tasklens.metrics import hscore

    h = hscore(load_features(args.features), load_array(args.labels), shrinkage=args.shrinkage, rtol=args.rtol)
    _print(h, args.json, "hscore")
    return 0


def run_transferability(args) -> int:
    from tasklens.metrics import transferability

    optimal = args.optimal
    if optimal not in ("dtm", "ace"):
        try:
            optimal = float(optimal)
        except ValueError:
            optimal = np.asarray(load_features(optimal))
    inputs = None if args.inputs is None else np.asarray(load_array(args.inputs))
    r = transferability(load_features(args.source), np.asarray(load_array(args.labels)), optimal=optimal,
                        inputs=inputs, k=args.k, shrinkage=args.shrinkage)
    _print(r, args.json, "transferability")
    return 0
