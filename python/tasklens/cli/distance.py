"""``tasklens distance``: the all-pairs domain-distance matrix of datasets stored as .npy/.npz/.parquet."""

from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser(
        "distance", help="domain distance matrix D(T|S) between datasets (Eq. 1 of Factors of Influence)",
        description="Compute D[t, s] = D(T_t|S_s) for every ordered pair of datasets (rows = targets). Inputs: "
                    "one .npy file per dataset, or one .npz (one array per dataset), or one .parquet file with a "
                    "dataset column (--dataset-column) and numeric feature columns.")
    p.add_argument("inputs", nargs="+", help=".npy files, or one .npz, or one .parquet")
    p.add_argument("--method", default="target_to_source",
                   choices=["target_to_source", "source_to_target", "symmetric", "emd"])
    p.add_argument("--metric", default="euclidean", choices=["euclidean", "sqeuclidean", "cosine"])
    p.add_argument("--sample", type=int, default=1000, help="rows sampled per dataset (seeded; 0 = all rows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset-column", default="dataset", help="parquet column naming each row's dataset")
    p.add_argument("-o", "--output", required=True, help="matrix output (.csv or .parquet)")
    p.add_argument("--heatmap", default=None, help="also write a heatmap (.png)")
    p.set_defaults(func=run)


def load_datasets(inputs, dataset_column="dataset"):
    """(names, list of (n_i, d) float arrays) from .npy files, one .npz, or one .parquet."""
    import numpy as np

    for path in inputs:
        if not os.path.exists(path):
            raise FileNotFoundError(f"input not found: {path}")
    if len(inputs) == 1 and inputs[0].endswith(".npz"):
        with np.load(inputs[0]) as z:
            return list(z.files), [z[k] for k in z.files]
    if len(inputs) == 1 and inputs[0].endswith(".parquet"):
        import pandas as pd

        df = pd.read_parquet(inputs[0])
        if dataset_column not in df.columns:
            raise KeyError(f"{inputs[0]}: no column {dataset_column!r} (columns: {list(df.columns)[:10]})")
        features = df.drop(columns=[dataset_column]).select_dtypes("number")
        names = list(dict.fromkeys(df[dataset_column].astype(str)))
        labels = df[dataset_column].astype(str).to_numpy()
        return names, [features.to_numpy()[labels == n] for n in names]
    bad = [p for p in inputs if not p.endswith(".npy")]
    if bad:
        raise ValueError(f"inputs: expected .npy files, one .npz or one .parquet, got {bad}")
    return [os.path.splitext(os.path.basename(p))[0] for p in inputs], [np.load(p) for p in inputs]


def run(args) -> int:
    import numpy as np
    import pandas as pd

    from tasklens.domain import domain_distance_matrix, plot_distance_heatmap, sample_datasets

    names, data = load_datasets(args.inputs, args.dataset_column)
    if args.sample > 0:
        data = sample_datasets(data, args.sample, seed=args.seed, names=names)
    matrix = np.asarray(domain_distance_matrix(data, method=args.method, metric=args.metric))
    frame = pd.DataFrame(matrix, index=pd.Index(names, name="target"), columns=names)
    if args.output.endswith(".parquet"):
        frame.to_parquet(args.output)
    elif args.output.endswith(".csv"):
        frame.to_csv(args.output)
    else:
        raise ValueError(f"--output: expected a .csv or .parquet path, got {args.output!r}")
    print(f"wrote {len(names)} x {len(names)} {args.method} {args.metric} distances to {args.output}")
    if args.heatmap:
        plot_distance_heatmap(matrix, names).savefig(args.heatmap, dpi=120)
        print(f"wrote heatmap to {args.heatmap}")
    return 0
