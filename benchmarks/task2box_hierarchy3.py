"""A third real hierarchy for the Task2Box Table 1 analogue (issue 14): species groupings with label-text
representations, built after the defaults were fixed and used for evaluation only.

Items: the 1,031 species of four vertebrate classes in the taxonomy data (``species.csv``; iNaturalist 2018's
Actinopterygii, Amphibia, Mammalia and Reptilia: no birds, so none of CUB-200), each embedded by the text
embedding of its name (``species_text_embeddings.npy``). Nodes: Vertebrata (all four classes), Tetrapoda
(Amphibia, Mammalia, Reptilia), the classes, and every order and genus with at least two of these species.
Datasets: every node (duplicate item sets dropped) and ``--random`` random species subsets, each drawn inside a
node chosen at random (2 to all-but-one of its species), exactly as in ``task2box_hierarchy2.py``. Ground truth:
``R[i, j] = 1`` when the species of ``i`` are a proper subset of those of ``j``. Base representation: mean [µ]
or mean and variance [µ, σ²] of the member species' embeddings (Eq. 1-2). Levels for the stratified novel split:
species-count buckets (2, 3-6, 7-20, 21-100, 101+).

Unlike the taxonomy table (``task2box_taxonomy.py``: every taxon with at least five species, over all 8,338
species), most datasets here are small genera and random subsets, and the item universe is different. Then the
Table 1 protocol of ``task2box_taxonomy.py`` (10 % novel datasets stratified by level, pairs of the existing ones
80/10/10, thresholds and antisymmetry chosen on validation pairs, same budgets):

    python benchmarks/task2box_hierarchy3.py --data DIR --seeds 0 1 2 3 4 [--methods Task2Box MLP ...]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

from task2box_hierarchy2 import add_table_args, run_hierarchy, subset_datasets  # noqa: E402
from tasklens.task2box import load_taxonomy  # noqa: E402

CLASSES = ("Actinopterygii", "Amphibia", "Mammalia", "Reptilia")
TETRAPODA = ("Amphibia", "Mammalia", "Reptilia")


def load_species(data: str):
    """(embeddings (n, d), table rows) of the species of :data:`CLASSES` in the taxonomy folder ``data``."""
    table, emb = load_taxonomy(data)
    rows = np.flatnonzero(table["class"].isin(CLASSES).to_numpy())
    return np.asarray(emb[rows], dtype=np.float64), table.iloc[rows].reset_index(drop=True)


def species_nodes(table) -> dict:
    """name -> species indices: Vertebrata, Tetrapoda, the classes, and orders and genera of >= 2 species."""
    cls = table["class"].to_numpy()
    nodes = {"Vertebrata": np.arange(len(table)), "Tetrapoda": np.flatnonzero(np.isin(cls, TETRAPODA))}
    for rank in ("class", "order", "genus"):
        for name, rows in table.groupby(rank, sort=True).indices.items():
            if len(rows) >= 2:
                nodes[f"{rank}:{name}"] = np.sort(np.asarray(rows, dtype=np.int64))
    return nodes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="taxonomy folder (species.csv, species_text_embeddings.npy)")
    add_table_args(ap)
    ap.add_argument("--random", type=int, default=250, help="random species-subset datasets")
    args = ap.parse_args(argv)
    try:
        emb, table = load_species(args.data)
    except FileNotFoundError as exc:
        raise SystemExit(f"error: {exc}")
    names, members, levels, R = subset_datasets(species_nodes(table), len(table), args.random, bins=(3, 7, 21, 101))
    return run_hierarchy(args, emb, names, members, levels, R, "species of " + ", ".join(CLASSES))


if __name__ == "__main__":
    raise SystemExit(main())
