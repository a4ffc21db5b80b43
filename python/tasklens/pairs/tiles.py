"""Tiles of the ordered-pair grid and the work of one tile.

The M x M grid of ordered pairs (target t, source s) is cut into blocks of ``tile`` consecutive datasets.
Tile (I, J) with I <= J covers the pairs T in I, S in J *and* T in J, S in I: one pass of float32 dot
products between the two blocks' sampled rows (BLAS sgemm inside
:func:`tasklens.domain._kernels.segmented_nearest`) is folded into the per-(row, dataset) minima of both
directions, so the M(M+1)/2-block upper triangle covers all M^2 ordered pairs with half of the dot
products. Every minimum is re-scored exactly in float64 (see :func:`tasklens.domain.nearest`), so a tile
equals the matching cells of :func:`tasklens.domain.domain_distance_matrix`.

Scores (Factors of Influence, Sect. 3.2, Eq. 1 and Table 8), per ordered pair (t, s):

- ``target_to_source``: ``D(T|S) = 1/|T| sum_{x in T} min_{y in S} d(x, y)`` (Eq. 1),
- ``source_to_target``: ``D(S|T)``,
- ``symmetric``: ``(D(T|S) + D(S|T)) / 2``,
- ``emd``: the mean cost of the minimum-cost one-to-one assignment (Table 8; Hungarian algorithm,
  O(n^3) per unordered pair, computed once per unordered pair),
- ``box_containment``: ``vol(z_T ∩ z_S) / vol(z_T)`` (Task2Box, Daroya et al. CVPR 2024, Eq. 5) of the
  boxes a fitted Task2Box gives each dataset's base representation (Eq. 1-2); higher = T more contained
  in S. Both directions of a tile come from the same boxes; O(k) per pair.

Memory of one tile (bytes), for blocks of ``b`` datasets of at most ``n`` sampled rows of ``d`` features
stored with ``w`` bytes per value (4 for float32, 8 for float64)::

    mem(b) = 2 b n d (w + 4)          # both blocks' rows + their centred float32 copies
           + 2 * 112 * b^2 n          # per-(row, dataset) minima state, both directions (41 B state,
                                      #   16 B result, ~55 B float64 guard temporaries)
           + 4 g^2                    # one g x g float32 dot-product tile (g = gemm_tile, 2048)
           + 2 b^2 (16 + 8 k)         # the output table: k float64 scores + two int64 ids per pair
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

SCORES = ("target_to_source", "source_to_target", "symmetric", "emd", "box_containment")
DISTANCES = ("target_to_source", "source_to_target", "symmetric", "emd")  # lower = closer
GEMM_TILE = 2048
MAX_SIDE_ROWS = 8192  # automatic tiles stay below this many sampled rows per side (tiles of seconds)
STATE_BYTES = 112


def tile_bytes(b: int, n: int, d: int, itemsize: int, n_scores: int, gemm_tile: int = GEMM_TILE) -> int:
    """Peak working memory of one tile (the formula in the module docstring)."""
    return int(2 * b * n * d * (itemsize + 4) + 2 * STATE_BYTES * b * b * n + 4 * gemm_tile ** 2
               + 2 * b * b * (16 + 8 * n_scores))


def choose_tile(m: int, n: int, d: int, itemsize: int, n_scores: int, budget: int) -> int:
    """Largest b <= M with tile_bytes(b) <= budget and b n <= MAX_SIDE_ROWS (at least 1)."""
    cap = max(1, min(m, MAX_SIDE_ROWS // max(n, 1)))
    b = 1
    for cand in range(cap, 0, -1):
        if tile_bytes(cand, n, d, itemsize, n_scores) <= budget:
            b = cand
            break
    if tile_bytes(b, n, d, itemsize, n_scores) > budget:
        raise ValueError(f"memory_budget: {budget} bytes is below the {tile_bytes(1, n, d, itemsize, n_scores)} "
                         f"bytes one dataset pair needs (n = {n} rows, d = {d}); raise it or sample fewer rows")
    return b


def parse_bytes(value) -> int:
    """'4GB', '512MiB', '1e9' or an int -> bytes."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"memory_budget: expected a positive size, got {value!r}")
        return int(value)
    units = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12,
             "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}
    text = str(value).strip().lower().replace(" ", "")
    num = text.rstrip("kmgtib")
    unit = text[len(num):]
    try:
        size = float(num) * units[unit]
    except (ValueError, KeyError):
        raise ValueError(f"memory_budget: expected a size like '4GB' or '512MiB', got {value!r}") from None
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"memory_budget: expected a positive size, got {value!r}")
    return int(size)


def plan(m: int, b: int) -> list[tuple[int, int]]:
    """Tiles (I, J), I <= J, of blocks of b datasets, row-major (the order tiles run and are logged in)."""
    nb = -(-m // b)
    return [(i, j) for i in range(nb) for j in range(i, nb)]


def members(block: int, b: int, m: int) -> range:
    return range(block * b, min(m, (block + 1) * b))


def tile_pairs(i: int, j: int, b: int, m: int) -> int:
    ni, nj = len(members(i, b, m)), len(members(j, b, m))
    return ni * ni if i == j else 2 * ni * nj


def _means(dist: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Per-dataset means of per-row minima (float64, rows in order) — as domain_distance_matrix does."""
    return np.add.reduceat(dist, off[:-1], axis=0) / np.diff(off)[:, None]


def _emd_block(xi, off_i, xj, off_j, metric, same):
    from ..domain import domain_distance

    out = np.zeros((len(off_i) - 1, len(off_j) - 1))
    for a in range(len(off_i) - 1):
        for c in range(a + 1 if same else 0, len(off_j) - 1):
            v = domain_distance(xi[off_i[a]:off_i[a + 1]], xj[off_j[c]:off_j[c + 1]], method="emd", metric=metric)
            out[a, c] = v
            if same:
                out[c, a] = v
    return out


def compute_tile(xi: np.ndarray, off_i: np.ndarray, ids_i: Sequence[int], xj: np.ndarray | None,
                 off_j: np.ndarray | None, ids_j: Sequence[int] | None, scores: Sequence[str], metric: str,
                 gemm_tile: int = GEMM_TILE, boxes=None) -> dict[str, np.ndarray]:
    """Columns (target, source, scores...) of every ordered pair of one tile.

    ``xj is None`` means the diagonal tile (I, I): pairs T, S in I. Otherwise the pairs T in I, S in J come
    first (row-major), then T in J, S in I; both from the same dot products. ``boxes``: ``(lo, hi,
    geometry kwargs)`` of every dataset (M, k), needed for ``box_containment``.
    """
    from ..domain._kernels import segmented_nearest

    same = xj is None
    ids_i = np.asarray(ids_i, dtype=np.int64)
    need_min = any(s in ("target_to_source", "source_to_target", "symmetric") for s in scores)
    box = None
    if "box_containment" in scores:
        from ..boxes import containment

        lo, hi, kw = boxes
        a = np.asarray(ids_i)
        c = a if same else np.asarray(ids_j)
        box = [np.asarray(containment(lo[a], hi[a], lo[c], hi[c], **kw), dtype=np.float64)]
        if not same:
            box.append(np.asarray(containment(lo[c], hi[c], lo[a], hi[a], **kw), dtype=np.float64))
    if same:
        if need_min:
            dist, _ = segmented_nearest(xi, off_i, metric=metric, tile=gemm_tile)
            d_ii = _means(dist, off_i)  # (t in I, s in I)
        blocks = [(ids_i, ids_i, d_ii if need_min else None, d_ii.T if need_min else None)]
        emd = [_emd_block(xi, off_i, xi, off_i, metric, True)] if "emd" in scores else None
    else:
        ids_j = np.asarray(ids_j, dtype=np.int64)
        if need_min:
            d_ts, _, d_st, _ = segmented_nearest(xi, off_i, xj, off_j, metric=metric, both=True, tile=gemm_tile)
            d_ij = _means(d_ts, off_i)  # D(T|S), T in I, S in J
            d_ji = _means(d_st, off_j)  # D(T|S), T in J, S in I
        blocks = [(ids_i, ids_j, d_ij if need_min else None, d_ji.T if need_min else None),
                  (ids_j, ids_i, d_ji if need_min else None, d_ij.T if need_min else None)]
        if "emd" in scores:
            e = _emd_block(xi, off_i, xj, off_j, metric, False)
            emd = [e, e.T]
        else:
            emd = None
    cols: dict[str, list] = {"target": [], "source": [], **{s: [] for s in scores}}
    for k, (tid, sid, fwd, bwd) in enumerate(blocks):
        cols["target"].append(np.repeat(tid, len(sid)))
        cols["source"].append(np.tile(sid, len(tid)))
        for s in scores:
            if s == "target_to_source":
                v = fwd
            elif s == "source_to_target":
                v = bwd  # D(S|T) for target t, source s
            elif s == "symmetric":
                v = 0.5 * (fwd + bwd)
            elif s == "box_containment":
                v = box[k]
            else:
                v = emd[k]
            cols[s].append(np.ascontiguousarray(v, dtype=np.float64).ravel())
    return {k: np.concatenate(v) for k, v in cols.items()}
