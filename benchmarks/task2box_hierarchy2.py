"""A second real hierarchy for the Task2Box Table 1 analogue (issue 14): class groupings of Fashion-MNIST and
handwritten digits.

Items: 20 classes (the 10 Fashion-MNIST classes, Debian's ``/usr/share/datasets/fashion-mnist`` train split, and
the 10 digits of scikit-learn's handwritten digits upsampled to 28 × 28, :func:`tasklens.datasets.load_digits_pair`'s
target domain), each split into ``--styles`` "styles" by k-means inside the class; an item's embedding is the mean
feature of its images, features = raw-pixel PCA (``--pca`` components, fit on a class-balanced sample of both
sources). A fixed WordNet-style tree groups the classes::

    entity ─┬─ clothing ─┬─ garment ─┬─ top (T-shirt/top, Pullover, Coat, Shirt)
            │            │           ├─ Trouser
            │            │           └─ Dress
            │            ├─ footwear (Sandal, Sneaker, Ankle boot)
            │            └─ Bag
            └─ digit ─┬─ even (0, 2, 4, 6, 8) ─┬─ round even (0, 6, 8)
                      │                        └─ 2, 4
                      └─ odd (1, 3, 5, 7, 9) ──┬─ 3, 5, 9
                                               └─ 1, 7

Datasets: every node of the tree (its items = the styles of its classes) and ``--random`` random item subsets,
each drawn inside a node chosen at random (2 to all-but-one of its items), duplicates of an existing item set
dropped. Ground truth: ``R[i, j] = 1`` when the item set of ``i`` is a proper subset of that of ``j``. Base
representation: mean [µ] or mean and variance [µ, σ²] of the member items' embeddings (Eq. 1-2). Levels for the
stratified novel split: item-count buckets (1-2, 3-6, 7-20, 21+).

Then the Table 1 protocol of ``task2box_taxonomy.py`` (10 % novel datasets stratified by level, pairs of the
existing ones 80/10/10, thresholds and antisymmetry chosen on validation pairs, same budgets):

    python benchmarks/task2box_hierarchy2.py --seeds 0 1 2 3 4 [--methods Task2Box MLP ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

from task2box_taxonomy import BASELINE_ORDER, print_table, run_table  # noqa: E402
from tasklens.task2box import base_representations  # noqa: E402

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(d) for d in range(10)]
CLASSES = FASHION + DIGITS
#: internal nodes of the tree: name -> the classes below it (class indices into CLASSES)
TREE = {
    "entity": list(range(20)),
    "clothing": list(range(10)),
    "garment": [0, 1, 2, 3, 4, 6],
    "top": [0, 2, 4, 6],
    "footwear": [5, 7, 9],
    "digit": list(range(10, 20)),
    "even": [10, 12, 14, 16, 18],
    "round even": [10, 16, 18],
    "2, 4": [12, 14],
    "odd": [11, 13, 15, 17, 19],
    "3, 5, 9": [13, 15, 19],
    "1, 7": [11, 17],
}


def item_embeddings(styles: int = 6, pca: int = 64, per_class: int = 1500, seed: int = 0):
    """(embeddings (20 * styles, pca), class of each item): k-means styles of raw-pixel PCA features per class."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from tasklens.datasets import load_digits_pair, load_fashion_mnist

    rng = np.random.default_rng(seed)
    fx, fy = load_fashion_mnist("train")
    hw = load_digits_pair(n_synthetic=10, seed=seed).target
    images, labels = [], []
    for c in range(10):
        rows = rng.choice(np.flatnonzero(fy == c), size=per_class, replace=False)
        images.append(fx[rows].reshape(per_class, -1))
        labels.append(np.full(per_class, c))
    hx = hw.x.reshape(hw.x.shape[0], -1)
    images.append(hx)
    labels.append(10 + hw.y)
    x = np.concatenate(images).astype(np.float64) / 255.0
    y = np.concatenate(labels)
    # PCA on a class-balanced sample (about 170 images per class: the handwritten digits have ~180 each)
    fit_rows = np.concatenate([rng.choice(np.flatnonzero(y == c), size=min(170, int((y == c).sum())), replace=False)
                               for c in range(20)])
    feats = PCA(n_components=pca, random_state=seed).fit(x[fit_rows]).transform(x)
    emb, item_class = [], []
    for c in range(20):
        fc = feats[y == c]
        km = KMeans(n_clusters=styles, n_init=3, random_state=seed).fit(fc)
        for s in range(styles):
            emb.append(fc[km.labels_ == s].mean(0))
            item_class.append(c)
    return np.asarray(emb), np.asarray(item_class)


def build_datasets(item_class: np.ndarray, n_random: int = 300, seed: int = 0):
    """(names, members, levels, R): tree nodes, classes and random item subsets inside nodes, subset relations."""
    nodes = {name: np.flatnonzero(np.isin(item_class, cls)) for name, cls in TREE.items()}
    nodes.update({CLASSES[c]: np.flatnonzero(item_class == c) for c in range(20)})
    return subset_datasets(nodes, item_class.size, n_random, seed)


def subset_datasets(nodes: dict, n_items: int, n_random: int, seed: int = 0, bins=(3, 7, 21)):
    """(names, members, levels, R) from ``nodes`` (name -> item indices): every node, then ``n_random`` random item
    subsets (2 to all-but-one items of a node drawn at random), duplicate item sets dropped. ``R[i, j] = 1`` when
    the items of ``i`` are a proper subset of those of ``j``; levels = item-count buckets split at ``bins``."""
    rng = np.random.default_rng(seed)
    names, members, seen = [], [], set()

    def add(name, m):
        key = tuple(sorted(int(i) for i in m))
        if key in seen:
            return False
        seen.add(key)
        names.append(name)
        members.append(np.asarray(key, dtype=np.int64))
        return True

    for name, m in nodes.items():
        add(name, m)
    node_names = [name for name in nodes if len(nodes[name]) >= 3]
    made = 0
    while made < n_random:
        parent = node_names[rng.integers(len(node_names))]
        pool = nodes[parent]
        size = int(rng.integers(2, pool.size))  # 2 .. |pool| - 1
        if add(f"{parent}/subset{made}", rng.choice(pool, size=size, replace=False)):
            made += 1
    M = np.zeros((len(members), n_items), dtype=bool)
    for i, m in enumerate(members):
        M[i, m] = True
    sizes = M.sum(1)
    inter = M.astype(np.int64) @ M.T.astype(np.int64)
    R = ((inter == sizes[:, None]) & (sizes[:, None] < sizes[None, :])).astype(np.float64)
    levels = np.digitize(sizes, list(bins))
    return names, members, levels, R


def add_table_args(ap) -> None:
    """The Table 1 options shared by the hierarchy scripts."""
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--dims", type=int, nargs="+", default=[5])
    ap.add_argument("--reps", nargs="+", default=["mu", "musigma"], choices=["mu", "musigma"])
    ap.add_argument("--methods", nargs="+", default=["Task2Box"] + BASELINE_ORDER,
                    help="Task2Box, Task2Box+members (fit with members=: the item embeddings of each dataset), "
                         "baselines, or a baseline with +closure (trained on the implied pairs too)")
    ap.add_argument("--epochs", type=int, default=300, help="Task2Box epochs (full batch)")
    ap.add_argument("--mlp-epochs", type=int, default=30, help="Linear / MLP epochs (mini-batches of pairs)")
    ap.add_argument("--task2box", default="{}", help="extra Task2Box keyword arguments as JSON (default: none)")
    ap.add_argument("--standardize", nargs=2, default=["feature", "global"], metavar=("MU", "MUSIGMA"))
    ap.add_argument("--json", default=None, help="write raw results here")


def run_hierarchy(args, emb, names, members, levels, R, what: str) -> int:
    """Run the Table 1 protocol on one hierarchy and print (and optionally save) the table."""
    reps = {"mu": base_representations(emb, members), "musigma": base_representations(emb, members, variance=True)}
    print(f"{len(names)} datasets over {emb.shape[0]} items ({what}), {int(R.sum())} containment pairs; "
          f"levels {np.bincount(levels).tolist()}; seeds {args.seeds}", flush=True)
    rows = run_table(R, reps, levels, args, members=[emb[m] for m in members])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print_table(rows, args.seeds)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_table_args(ap)
    ap.add_argument("--styles", type=int, default=6, help="k-means styles (items) per class")
    ap.add_argument("--pca", type=int, default=64, help="PCA components of the raw-pixel features")
    ap.add_argument("--random", type=int, default=300, help="random item-subset datasets")
    args = ap.parse_args(argv)
    emb, item_class = item_embeddings(args.styles, args.pca)
    names, members, levels, R = build_datasets(item_class, args.random)
    return run_hierarchy(args, emb, names, members, levels, R, f"{args.styles} styles x 20 classes, PCA-{args.pca}")


if __name__ == "__main__":
    raise SystemExit(main())
