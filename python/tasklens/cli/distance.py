"""tasklens distance: the all-pairs domain-distance matrix of datasets stored in files."""

from __future__ import annotations

import os

import numpy as np

from ._args import int_type
from ._io import (InputError, _as_matrix, _numeric, check_out, make_parent, npz_arrays, read_frame, read_matrix,
                  split_spec, table_columns)

DESCRIPTION = """\
Compute D[t, s] = D(T_t|S_s) for every ordered pair of datasets (rows = targets, columns = sources).

Each input is FILE[:KEY] and gives one dataset of feature rows, except:
  a .npz without KEY           one dataset per array (named by the array)
  a table with --dataset-column one dataset per value of that column (the other numeric columns, or the
                               columns named in KEY, are the features)
Other datasets are named after their file. Examples:
  tasklens distance a.npy b.npy c.npy --out D.csv
  tasklens distance all.npz --out D.parquet --heatmap D.png
  tasklens distance rows.parquet --dataset-column dataset --out D.csv"""


def register(sub) -> None:
    p = sub.add_parser("distance",
                       help="domain distance matrix D(T|S) between datasets (Eq. 1 of Factors of Influence)",
                       description=DESCRIPTION)
    p.add_argument("inputs", nargs="+", help="datasets: FILE[:KEY] (.npy, .npz, .csv, .parquet)")
    p.add_argument("--method", default="target_to_source",
                   choices=["target_to_source", "source_to_target", "symmetric", "emd"],
                   help="which minimum distances are averaged (Table 8)")
    p.add_argument("--metric", default="euclidean", choices=["euclidean", "sqeuclidean", "cosine"],
                   help="distance between two feature rows")
    p.add_argument("--sample", type=int_type(min=0), default=1000,
                   help="rows sampled per dataset, seeded; 0 keeps all rows")
    p.add_argument("--seed", type=int_type(min=0), default=0, help="seed of the row sample")
    p.add_argument("--dataset-column", default="dataset",
                   help="column of a table input naming each row's dataset (used when the table has it)")
    p.add_argument("-o", "--out", required=True, help="matrix output (.csv or .parquet)")
    p.add_argument("--heatmap", default=None, help="also write a heatmap image (.png, .svg, .pdf; default: none)")
    p.set_defaults(func=run)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def load_datasets(inputs, dataset_column: str = "dataset"):
    """``(names, list of (n_i, d) arrays)`` from the inputs (see the command's description)."""
    names, data = [], []
    for spec in inputs:
        path, key = split_spec(spec, "inputs")
        ext = os.path.splitext(path)[1].lower()
        if ext == ".npz" and key is None:
            for k, a in npz_arrays(path, "inputs").items():
                names.append(k)
                data.append(_as_matrix(np.asarray(a), "inputs", f"{path}:{k}"))
            continue
        f = read_frame(path, "inputs") if ext in (".csv", ".txt", ".parquet") else None
        if f is not None and dataset_column in map(str, f.columns):
            col = next(c for c in f.columns if str(c) == dataset_column)
            labels = f[col].astype(str).to_numpy()
            feats = table_columns(f.drop(columns=[col]), key, "inputs", path)
            X = _as_matrix(_numeric(feats, "inputs", path, explicit=key is not None), "inputs", path)
            for n in dict.fromkeys(labels):
                names.append(n)
                data.append(X[labels == n])
        else:
            names.append(_stem(path) + (f":{key}" if key else ""))
            data.append(read_matrix(spec, "inputs"))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"inputs: dataset names must be unique, got {', '.join(dup)} more than once")
    widths = {a.shape[1] for a in data}
    if len(widths) > 1:
        shown = ", ".join(f"{n}: {a.shape[1]}" for n, a in zip(names, data))
        raise InputError(f"inputs: every dataset needs the same number of feature columns, got {shown}")
    return names, data


def run(args) -> int:
    import pandas as pd

    from tasklens.domain import domain_distance_matrix, plot_distance_heatmap, sample_datasets

    ext = check_out(args.out, "--out", (".csv", ".parquet"))
    if args.heatmap:
        check_out(args.heatmap, "--heatmap", (".png", ".svg", ".pdf"))
    names, data = load_datasets(args.inputs, args.dataset_column)
    data = [np.asarray(a, dtype=np.float64) if a.dtype.kind != "f" else np.asarray(a) for a in data]
    if args.sample > 0:
        data = sample_datasets(data, args.sample, seed=args.seed, names=names)
    matrix = np.asarray(domain_distance_matrix(data, method=args.method, metric=args.metric))
    frame = pd.DataFrame(matrix, index=pd.Index(names, name="target"), columns=names)
    make_parent(args.out)
    if ext == ".parquet":
        frame.to_parquet(args.out)
    else:
        frame.to_csv(args.out)
    print(f"wrote {len(names)} x {len(names)} {args.method} {args.metric} distances to {args.out}")
    if args.heatmap:
        make_parent(args.heatmap)
        plot_distance_heatmap(matrix, names).savefig(args.heatmap, dpi=120)
        print(f"wrote heatmap to {args.heatmap}")
    return 0
