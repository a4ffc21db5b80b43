"""Make the compact taxonomy shipped in the package for ``tasklens demo``.

Reads ../shared/data/taxonomy (species.csv + 384-d text embeddings), keeps the species that belong to
at least one taxon with >= 5 species, reduces the embeddings by PCA (fitted on those species) to
``--dims`` components stored as float16, and encodes the class/order/family/genus columns as integer
codes into small vocabularies. Output: python/tasklens/task2box/data/taxonomy_compact.npz (< 3 MB).

    python benchmarks/make_compact_taxonomy.py [--dims 64] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from tasklens.task2box.data import COMPACT_PATH, TAXONOMY_LEVELS, load_taxonomy, relations_from_taxonomy  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "taxonomy"))
    ap.add_argument("--dims", type=int, default=64)
    ap.add_argument("--out", default=COMPACT_PATH)
    args = ap.parse_args(argv)
    table, emb = load_taxonomy(args.data)
    taxa = relations_from_taxonomy(table)
    keep = np.unique(np.concatenate(taxa.members))
    x = emb[keep].astype(np.float64)
    mu = x.mean(0)
    _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    z = (x - mu) @ vt[: args.dims].T
    explained = (s[: args.dims] ** 2).sum() / (s ** 2).sum()
    out = {"embeddings": z.astype(np.float16), "species": table["species"].to_numpy()[keep].astype("U")}
    for lv in TAXONOMY_LEVELS:
        col = table[lv].to_numpy()[keep]
        ok = np.array([isinstance(v, str) for v in col])
        vocab, codes = np.unique(col[ok].astype(str), return_inverse=True)
        full = np.full(col.shape, -1, dtype=np.int32)
        full[ok] = codes
        out[f"{lv}_vocab"] = vocab.astype("U")
        out[f"{lv}_codes"] = full
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"{len(keep)} species, {args.dims} PCA dims ({explained:.1%} variance), "
          f"{len(taxa)} taxa -> {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
