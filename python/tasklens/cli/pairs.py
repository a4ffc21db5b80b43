"""``tasklens pairs``: every ordered pair of a dataset store, tiled and resumable, to Parquet files."""

from __future__ import annotations

import argparse

from ._args import add_progress, int_type


def register(sub) -> None:
    p = sub.add_parser(
        "pairs", help="all ordered pairs of a dataset store, tiled and resumable (Parquet tiles; local or Ray)",
        description="Score every ordered pair (target, source) of the datasets in STORE (a directory with one "
                    ".npy / .npz / .parquet file per dataset, ordered by file name) with D(T|S) of Eq. 1 of "
                    "Factors of Influence and its variants. Writes one Parquet file per tile and manifest.json "
                    "to --out; an interrupted run resumes where it stopped. Read the result with "
                    "tasklens.pairs.read_pairs.")
    p.add_argument("store", help="directory with one .npy/.npz/.parquet file per dataset")
    p.add_argument("--out", required=True, help="output directory (Parquet tiles + manifest.json)")
    p.add_argument("--scores", nargs="+", default=["target_to_source"],
                   choices=["target_to_source", "source_to_target", "symmetric", "emd", "box_containment"],
                   help="score columns to write (default: target_to_source; box_containment needs --task2box)")
    p.add_argument("--task2box", default=None,
                   help="saved Task2Box model (Task2Box.save) giving each dataset a box, for box_containment "
                        "(default: none)")
    p.add_argument("--metric", default="euclidean", choices=["euclidean", "sqeuclidean", "cosine"],
                   help="row distance (default: euclidean)")
    p.add_argument("--sample", type=int_type(min=0), default=1000,
                   help="rows sampled per dataset, seeded by the dataset name (0 = all rows; default 1000)")
    p.add_argument("--seed", type=int_type(min=0), default=0, help="sampling seed (default 0)")
    p.add_argument("--tile", type=int_type(min=1), default=None,
                   help="datasets per tile side (default: chosen from --memory-budget)")
    p.add_argument("--memory-budget", default="4GB", help="working memory per worker, e.g. 4GB (default 4GB)")
    p.add_argument("--backend", default="local", choices=["local", "ray"], help="where tiles run (default local)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address for --backend ray (default: a new local Ray runtime)")
    p.add_argument("--workers", type=int_type(min=1), default=None,
                   help="local backend: tiles computed at once, one thread each (default: --threads or all cores)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip tiles already done in --out (default: --resume); --no-resume starts over")
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import logging

    from tasklens.pairs import score_pairs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    res = score_pairs(args.store, args.out, scores=tuple(args.scores), metric=args.metric,
                      sample=args.sample, seed=args.seed, tile=args.tile, memory_budget=args.memory_budget,
                      backend=args.backend, ray_address=args.address, resume=args.resume, progress=args.progress,
                      workers=args.workers, task2box=args.task2box)
    print(f"wrote {res['pairs']} pairs of {res['datasets']} datasets to {res['out_dir']} "
          f"({res['tiles_run']} tiles run, {res['tiles_skipped']} resumed, {res['seconds']:.1f} s)")
    return 0
