"""tasklens map: from dataset folders (or feature files) to a Task2Box map."""

from __future__ import annotations

import os

from ._args import UsageError, add_progress, float_type, int_type, show_progress

DESCRIPTION = """\
Map datasets with Task2Box: load -> represent -> all-pairs D(T|S) -> relations -> fit Task2Box -> embed -> write
map.html (interactive, offline), map.png, pairs.parquet (every ordered pair: D(T|S), box containment both ways,
the relation used), datasets.parquet (boxes, representations) and metrics.csv (Task2Box F1 on held-out pairs and
novel datasets next to baselines; only when relations are known).

Each DATASET is FILE[:KEY] or a folder:
  <dataset>/<class>/*.png|jpg   one image dataset (named after the folder)
  a root of such folders        one dataset per sub-folder
  .npz                          x (uint8 images or float features; KEY picks another array), y, classes
  .npy                          (N, d) features
  .parquet / .csv               numeric features; 'dataset' and 'label' columns when present
Representations: task2vec (default; a small built-in probe CNN, trained once on Fashion-MNIST or scikit-learn's
digits and cached, works offline), features ([mu, sigma^2] of the probe's features, or of given features), clip
(open_clip; needs --clip-weights FILE offline).
Relations: auto (A is inside B when A's class names are a subset of B's; the same classes: the smaller dataset is
inside the larger), distance (D(T|S) at or below its --quantile), or a .csv/.parquet with columns subset,superset.
Examples:
  tasklens map photos/ --out map/
  tasklens map a/ b/ c/ d/ e/ --out map/ --represent features --relations known.csv"""


def register(sub) -> None:
    p = sub.add_parser("map", help="Task2Box map of datasets: folders of images or feature files -> HTML, PNG, "
                                   "Parquet", description=DESCRIPTION)
    p.add_argument("inputs", nargs="+", metavar="DATASET", help="dataset folders, roots of them, or FILE[:KEY]")
    p.add_argument("-o", "--out", required=True, help="output folder (created)")
    p.add_argument("--represent", default="task2vec", choices=["task2vec", "features", "clip"],
                   help="dataset representation")
    p.add_argument("--relations", default="auto", metavar="auto|distance|FILE",
                   help="known relations: label-set inclusion, thresholded D(T|S), or a subset,superset table")
    p.add_argument("--quantile", type=float_type(min=0.0, max=1.0), default=0.1,
                   help="with --relations distance: the off-diagonal quantile of D(T|S) used as threshold")
    p.add_argument("--box-dim", type=int_type(min=1), default=2, help="box dimension k")
    p.add_argument("--epochs", type=int_type(min=1), default=300, help="Task2Box training epochs")
    p.add_argument("--seed", type=int_type(min=0), default=0, help="seed (splits, training, samples)")
    p.add_argument("--sample", type=int_type(min=0), default=1000,
                   help="items per dataset for D(T|S), seeded; 0 keeps all")
    p.add_argument("--metric", default="euclidean", choices=["euclidean", "sqeuclidean", "cosine"],
                   help="metric of D(T|S)")
    p.add_argument("--probe", default=None, metavar="FILE",
                   help="probe checkpoint (tasklens.represent.save_probe) for task2vec/features (default: the "
                        "built-in probe, trained on first use and cached)")
    p.add_argument("--clip-model", default="ViT-B-32", help="open_clip architecture for --represent clip")
    p.add_argument("--clip-weights", default=None, metavar="FILE|TAG",
                   help="open_clip checkpoint file (offline) or hub tag (downloads); required for clip (default: none)")
    p.add_argument("--image-size", type=int_type(min=1), default=None,
                   help="resize every image to this square size (default: images of one folder must match)")
    p.add_argument("--cache-dir", default=None,
                   help="representation cache (default: $TASKLENS_CACHE or ~/.cache/tasklens)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--no-metrics", action="store_true", help="skip the held-out evaluation and metrics.csv")
    p.add_argument("--device", default="cpu", help="torch device for representations (e.g. cuda)")
    add_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import tasklens.map as tmap

    probe = clip = None
    if args.represent == "clip":
        if args.clip_weights is None:
            raise UsageError("--represent clip needs --clip-weights FILE (an open_clip checkpoint) or a hub tag")
        from tasklens.represent.clip import load_clip

        from ._io import InputError

        try:
            clip = load_clip(args.clip_model, args.clip_weights, device=args.device)
        except (ImportError, RuntimeError) as exc:  # open_clip missing, or a hub tag while offline
            raise InputError(str(exc)) from None
    elif args.probe is not None:
        from tasklens.represent.fisher import load_probe

        probe = load_probe(args.probe)
    relations = args.relations
    if relations not in ("auto", "distance") and not os.path.isfile(relations):
        raise UsageError(f"--relations: expected auto, distance or an existing file, got {relations!r}")
    size = None if args.image_size is None else (args.image_size, args.image_size)
    res = tmap.map(args.inputs, args.out, represent=args.represent, relations=relations, box_dim=args.box_dim,
                   seed=args.seed, epochs=args.epochs, probe=probe, clip=clip, sample=args.sample,
                   quantile=args.quantile, metric=args.metric, metrics=not args.no_metrics, size=size,
                   cache_dir=False if args.no_cache else args.cache_dir, progress=show_progress(args),
                   device=args.device)
    print(f"{len(res.names)} datasets, representation {args.represent} ({res.X.shape[1]} values), relations: "
          f"{res.relation_source} ({int(res.relations.sum())} pairs), cache hits {res.info['cache_hits']}")
    if res.metrics is not None:
        print(res.metrics[["method", "f1_existing", "f1_novel"]].to_string(index=False, float_format="%.3f"))
    for name, path in res.files.items():
        print(f"wrote {path}")
    print("times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in res.timings.items()))
    return 0
