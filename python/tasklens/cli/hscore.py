"""tasklens hscore and tasklens transferability: H-score (Def. 2) and transferability (Def. 3) of features
stored in files.

Inputs are FILE[:KEY] (see 'tasklens --help'). A whole .npy features file is memory-mapped and read block by
block, so features larger than memory work. When the features and the labels come from the same table (or the
same 2-D .npy), the label columns are left out of the features.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from ._args import float_type, int_type
from ._io import InputError, check_out, read_labels, read_matrix, same_file, split_spec, write_values


def load_features(spec: str, name: str, labels_spec: str | None = None) -> np.ndarray:
    """(N, F) features from ``FILE[:KEY]``, without the label columns when ``labels_spec`` names the same file."""
    path, key = split_spec(spec, name)
    exclude = ()
    if labels_spec is not None:
        lpath, lkey = split_spec(labels_spec, "labels")
        if same_file(path, lpath) and not path.lower().endswith(".npz"):
            if lkey is None:
                raise InputError(f"{name} and labels are the same file {path}; name the label column as "
                                 f"{lpath}:COLUMN so that it is left out of the features")
            label_cols = {k.strip() for k in lkey.split(",")}
            if key is None:
                exclude = tuple(label_cols)
            elif label_cols & {k.strip() for k in key.split(",")}:
                both = ", ".join(sorted(label_cols & {k.strip() for k in key.split(",")}))
                raise InputError(f"{name}: column(s) {both} of {path} are both features and labels")
    return read_matrix(spec, name, exclude=exclude, mmap=True)


def _print(result, name: str, args) -> None:
    values = np.atleast_1d(np.asarray(result, dtype=np.float64))
    value = values.tolist() if np.ndim(result) else float(values[0])
    if args.json:
        print(json.dumps({name: value}))
    else:
        for v in values:
            print(f"{v:.10g}")
    if args.out:
        write_values(args.out, {name: value})


def _outputs(q) -> None:
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--out", default=None,
                   help="also write the result to this file (.json, or .csv with one row per target; default: "
                        "print only)")


def register(sub) -> None:
    p = sub.add_parser("hscore", help="H-score of features for class labels (Def. 2)",
                       description="H-score tr(cov(f)^+ cov(E[f|Y])) of FEATURES (N, F) for LABELS (N,) or "
                                   "(N, T) class codes; one line (score) per target. Text labels are coded in "
                                   "sorted order.\n\n" + __doc__.split("\n\n", 1)[1])
    p.add_argument("features", help="(N, F) features: FILE[:KEY]")
    p.add_argument("labels", help="(N,) or (N, T) class labels: FILE[:KEY], e.g. table.parquet:label")
    p.add_argument("--shrinkage", choices=["ledoit-wolf"], default=None,
                   help="regularized H-score with Ledoit-Wolf shrinkage, Ibrahim et al. 2021 (default: none)")
    p.add_argument("--rtol", type=float_type(min=0, min_inclusive=False), default=None,
                   help="pseudo-inverse tolerance (default: F times the float epsilon)")
    _outputs(p)
    p.set_defaults(func=run_hscore)

    t = sub.add_parser("transferability", help="transferability H_T(f_S) / H_T(f_opt) (Def. 3)",
                       description="Transferability of SOURCE features (N, F) to target LABELS: H-score over "
                                   "H_T(f_opt), where H_T(f_opt) is a number, the H-score of target features "
                                   "(a file), or computed from discrete inputs with the DTM or ACE.\n\n"
                                   + __doc__.split("\n\n", 1)[1])
    t.add_argument("source", help="(N, F) source features: FILE[:KEY]")
    t.add_argument("labels", help="(N,) or (N, T) target labels: FILE[:KEY]")
    t.add_argument("--optimal", default="dtm",
                   help="H_T(f_opt): 'dtm', 'ace', a number, or target features (N, K) as FILE[:KEY]")
    t.add_argument("--inputs", default=None,
                   help="discrete inputs X, (N,) int codes as FILE[:KEY], for --optimal dtm or ace (default: none)")
    t.add_argument("--k", type=int_type(min=1), default=None, help="ACE modes (default: min(|X|, |Y|) - 1)")
    t.add_argument("--shrinkage", choices=["ledoit-wolf"], default=None,
                   help="Ledoit-Wolf shrinkage (default: none)")
    _outputs(t)
    t.set_defaults(func=run_transferability)


def run_hscore(args) -> int:
    from tasklens.metrics import hscore

    if args.out:
        check_out(args.out, "--out", (".json", ".csv", ".txt"))
    X = load_features(args.features, "features", args.labels)
    h = hscore(X, read_labels(args.labels, "labels"), shrinkage=args.shrinkage, rtol=args.rtol)
    _print(h, "hscore", args)
    return 0


def run_transferability(args) -> int:
    from tasklens.metrics import transferability

    if args.out:
        check_out(args.out, "--out", (".json", ".csv", ".txt"))
    optimal = args.optimal
    if optimal not in ("dtm", "ace"):
        try:
            optimal = float(optimal)
        except ValueError:
            optimal = np.asarray(load_features(optimal, "--optimal", args.labels))
    inputs = None if args.inputs is None else read_labels(args.inputs, "--inputs")
    r = transferability(load_features(args.source, "source", args.labels), read_labels(args.labels, "labels"),
                        optimal=optimal, inputs=inputs, k=args.k, shrinkage=args.shrinkage)
    _print(r, "transferability", args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from tasklens.cli import main

    sys.exit(main(["hscore", *sys.argv[1:]]))
