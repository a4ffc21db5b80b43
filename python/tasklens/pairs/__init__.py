"""Scoring millions of dataset pairs: a tiled, resumable all-pairs engine with Parquet output.

``score_pairs(store, out_dir, ...)`` computes the domain distances ``D(T|S)`` of Factors of Influence
(Sect. 3.2, Eq. 1) and their Table 8 variants for every ordered pair of datasets of a store, tile by tile
(only tiles I <= J run; one pass of dot products serves both directions), writing one Parquet file per
tile and a manifest, on one machine or on Ray (``backend="ray"``). ``read_pairs(out_dir, ...)`` returns the
table, the dense matrix, or per-target / per-source top-k lists streamed from the tiles.

Modules: :mod:`~tasklens.pairs.store` (inputs, sampling, hashing), :mod:`~tasklens.pairs.tiles` (tiles, the
memory formula, the work of one tile), :mod:`~tasklens.pairs.manifest` (manifest and atomic files),
:mod:`~tasklens.pairs.engine` (``score_pairs``), :mod:`~tasklens.pairs.ray_backend`,
:mod:`~tasklens.pairs.reader` (``read_pairs``).
"""

from .engine import score_pairs
from .reader import read_pairs
from .tiles import SCORES, choose_tile, tile_bytes

__all__ = ["score_pairs", "read_pairs", "SCORES", "choose_tile", "tile_bytes"]
