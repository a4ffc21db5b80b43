"""Real-data check of the inclusion effect (Factors of Influence, Sect. 6 A4 and Table 8) on a species taxonomy.

Datasets are taxa (class, order, family, genus with >= 5 species) of ../shared/data/taxonomy; a taxon's rows are
its species' text embeddings (384-d, all-MiniLM-L6-v2). A taxon is included in each of its ancestors, so by
Eq. (1) D(T|P) should be far smaller than D(P|T) for a parent P, and the target->source measure should rank a
target's ancestors first. Two settings: all species of every taxon, and a seeded sample of at most --sample
species per taxon (the paper's protocol: the same rows whether the taxon is target or source), where an
ancestor no longer holds every sampled row of the target.

Usage: python benchmarks/distance_taxonomy.py [--sample 30] [--threads 2] [--heatmap out.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "taxonomy")
LEVELS = ["class", "order", "family", "genus"]


def load_taxa(min_species=5):
    import pandas as pd

    csv = os.path.join(DATA, "species.csv")
    if not os.path.exists(csv):
        sys.exit(f"error: {csv} not found; this script needs ../shared/data/taxonomy next to the repository")
    species = pd.read_csv(csv)
    emb = np.load(os.path.join(DATA, "species_text_embeddings.npy"))
    taxa, rows, parents = [], [], {}
    for li, level in enumerate(LEVELS):
        for name, group in species.dropna(subset=[level]).groupby(level):
            if len(group) < min_species:
                continue
            key = f"{level}:{name}"
            taxa.append(key)
            rows.append(group["row"].to_numpy())
            # ancestors: the taxa of the higher levels this taxon's species belong to (unique value)
            anc = []
            for up in LEVELS[:li]:
                vals = group[up].dropna().unique()
                if len(vals) == 1:
                    anc.append(f"{up}:{vals[0]}")
            parents[key] = anc
    index = {k: i for i, k in enumerate(taxa)}
    ancestors = [[index[a] for a in parents[k] if a in index] for k in taxa]
    return taxa, rows, ancestors, emb


def analyse(matrix, ancestors, label):
    m = matrix.shape[0]
    ratios, wins, first, ranks = [], 0, 0, []
    for t in range(m):
        if not ancestors[t]:
            continue
        p = ancestors[t][-1]  # the direct (lowest) ancestor that is a dataset
        if matrix[p, t] == 0:  # the parent holds exactly the target's (sampled) rows: nothing to compare
            continue
        ratios.append(matrix[t, p] / matrix[p, t])
        wins += matrix[t, p] < matrix[p, t]
        order = np.argsort(np.where(np.arange(m) == t, np.inf, matrix[t]), kind="stable")
        pos = {s: r for r, s in enumerate(order)}
        anc_ranks = sorted(pos[a] for a in ancestors[t])
        ranks.append(np.mean(anc_ranks))
        first += anc_ranks == list(range(len(anc_ranks)))  # ancestors occupy the top ranks
    n = len(ratios)
    print(f"[{label}] {n} taxa with a parent taxon: D(T|P) < D(P|T) for {wins}/{n} ({100 * wins / n:.1f}%), "
          f"median D(T|P)/D(P|T) = {np.median(ratios):.3f}; ancestors ranked first (closest sources) for "
          f"{first}/{n} ({100 * first / n:.1f}%), mean ancestor rank {np.mean(ranks):.2f} of {m - 1}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--heatmap", default=None, help="write a Fig. 8-style heatmap of the class-level taxa")
    a = ap.parse_args()
    import tasklens
    from tasklens.domain import domain_distance_matrix, plot_distance_heatmap, sample_indices

    tasklens.set_num_threads(a.threads)
    taxa, rows, ancestors, emb = load_taxa()
    print(f"{len(taxa)} taxa ({', '.join(f'{sum(t.startswith(lv) for t in taxa)} {lv}' for lv in LEVELS)}), "
          f"{sum(map(len, rows))} rows of {emb.shape[1]} dims")
    for label, sel in [("all species", rows),
                       (f"sample of <= {a.sample}",
                        [r[sample_indices(len(r), a.sample, seed=0, key=k)] for r, k in zip(rows, taxa)])]:
        t0 = time.perf_counter()
        matrix = domain_distance_matrix([emb[r] for r in sel])
        print(f"[{label}] {len(taxa)} x {len(taxa)} matrix in {time.perf_counter() - t0:.2f} s")
        analyse(matrix, ancestors, label)
        if a.heatmap and label.startswith("sample"):
            cls = [i for i, t in enumerate(taxa) if t.startswith("class:")]
            fig = plot_distance_heatmap(matrix[np.ix_(cls, cls)], [taxa[i][6:] for i in cls], annotate=False)
            fig.savefig(a.heatmap, dpi=120)
            print(f"heatmap written to {a.heatmap}")


if __name__ == "__main__":
    main()
