"""``read_pairs``: the scores of a finished run as a table, a dense matrix, or streamed top-k lists."""

from __future__ import annotations

import os

import numpy as np

from .._validation import check_choice
from . import manifest as mf
from .tiles import DISTANCES, plan


def _finished(out_dir: str) -> dict:
    out_dir = os.fspath(out_dir)
    man = mf.read_manifest(out_dir)
    if man is None:
        raise FileNotFoundError(f"out_dir: no {mf.MANIFEST} in {out_dir!r}; run tasklens.pairs.score_pairs first")
    m, b = len(man["inputs"]["names"]), man["params"]["tile"]
    missing = [f"{i}-{j}" for i, j in plan(m, b) if f"{i}-{j}" not in man["tiles"]]
    if missing:
        raise ValueError(f"out_dir: the run in {out_dir!r} is unfinished ({len(missing)} of {len(plan(m, b))} tiles "
                         f"missing, e.g. tile {missing[0]}); run score_pairs again with resume=True")
    return man


def _tiles(out_dir: str, man: dict, columns):
    import pyarrow.parquet as pq

    for key in sorted(man["tiles"]):
        path = os.path.join(out_dir, man["tiles"][key]["file"])
        if not os.path.exists(path):
            raise FileNotFoundError(f"out_dir: tile file {path} listed in the manifest is missing; "
                                    f"run score_pairs again with resume=True")
        yield pq.read_table(path, columns=columns)


def read_pairs(out_dir, *, dense: bool = False, top_k: int | None = None, score: str | None = None,
               by: str = "target", include_self: bool = False, largest: bool | None = None):
    """Read the output of :func:`tasklens.pairs.score_pairs`.

    Parameters
    ----------
    out_dir : str
    dense : bool
        Return the (M, M) float64 matrix of ``score`` (rows = targets, columns = sources, store order),
        like :func:`tasklens.domain.domain_distance_matrix`. Needs M^2 * 8 bytes.
    top_k : int, optional
        Stream the tiles and return, for every target (``by="target"``) its ``top_k`` closest sources, or
        for every source (``by="source"``) its ``top_k`` closest targets: by ascending ``score`` for the
        distances, descending for ``box_containment`` (ties: the smaller dataset position first). Memory
        O(M top_k + one tile); the dense matrix is never formed.
    score : str, optional
        Score column for ``dense`` / ``top_k``; default the run's first score.
    by : {"target", "source"}
    include_self : bool
        ``top_k`` only: also rank a dataset against itself (distance 0); default False.
    largest : bool, optional
        ``top_k`` only: rank the largest scores first; default False for distances, True for
        ``box_containment``.

    Returns
    -------
    - default: pandas DataFrame with columns ``target``, ``source`` (categoricals of dataset names, store
      order) and one float64 column per score, sorted by (target, source);
    - ``dense=True``: numpy array (M, M) float64;
    - ``top_k``: pandas DataFrame with columns ``target``, ``source``, ``score``, ``rank`` (0 = closest),
      sorted by the ``by`` column then rank.
    """
    import pandas as pd

    out_dir = os.fspath(out_dir)
    man = _finished(out_dir)
    names = man["inputs"]["names"]
    m = len(names)
    scores = man["params"]["scores"]
    score = scores[0] if score is None else check_choice(score, "score", scores)
    check_choice(by, "by", ("target", "source"))
    if dense and top_k is not None:
        raise ValueError("read_pairs: choose dense=True or top_k=..., not both")
    cats = pd.CategoricalDtype(names, ordered=True)

    def names_of(codes):
        return pd.Categorical.from_codes(codes, dtype=cats)

    if dense:
        out = np.full((m, m), np.nan)
        for t in _tiles(out_dir, man, ["target", "source", score]):
            out[t.column("target").to_numpy(), t.column("source").to_numpy()] = t.column(score).to_numpy()
        if np.isnan(out).any():
            raise ValueError(f"out_dir: {int(np.isnan(out).sum())} pairs missing from the tiles of {out_dir!r}")
        return out
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k: expected an int >= 1, got {top_k!r}")
        k = int(top_k)
        sign = -1.0 if (score not in DISTANCES if largest is None else largest) else 1.0
        best_v = np.full((m, k), np.inf)
        best_o = np.full((m, k), m, dtype=np.int64)  # m = no entry yet (sorts last)
        keys_all = np.repeat(np.arange(m, dtype=np.int64), k)
        other_col = "source" if by == "target" else "target"
        for t in _tiles(out_dir, man, ["target", "source", score]):
            key = t.column(by).to_numpy().astype(np.int64)
            other = t.column(other_col).to_numpy().astype(np.int64)
            v = sign * t.column(score).to_numpy()
            if not include_self:
                keep = key != other
                key, other, v = key[keep], other[keep], v[keep]
            kk = np.concatenate([keys_all, key])
            vv = np.concatenate([best_v.ravel(), v])
            oo = np.concatenate([best_o.ravel(), other])
            order = np.lexsort((oo, vv, kk))
            kk, vv, oo = kk[order], vv[order], oo[order]
            start = np.searchsorted(kk, kk, side="left")
            rank = np.arange(len(kk)) - start
            sel = rank < k
            best_v[kk[sel], rank[sel]] = vv[sel]
            best_o[kk[sel], rank[sel]] = oo[sel]
        valid = best_o < m
        key_codes = np.broadcast_to(np.arange(m)[:, None], (m, k))[valid]
        ranks = np.broadcast_to(np.arange(k)[None, :], (m, k))[valid]
        other_codes = best_o[valid]
        tgt, src = (key_codes, other_codes) if by == "target" else (other_codes, key_codes)
        return pd.DataFrame({"target": names_of(tgt), "source": names_of(src), "score": sign * best_v[valid],
                             "rank": ranks.astype(np.int64)})
    import pyarrow as pa

    table = pa.concat_tables(list(_tiles(out_dir, man, None)))
    tgt = table.column("target").to_numpy()
    src = table.column("source").to_numpy()
    order = np.lexsort((src, tgt))
    frame = {"target": names_of(tgt[order]), "source": names_of(src[order])}
    for s in scores:
        frame[s] = table.column(s).to_numpy()[order]
    return pd.DataFrame(frame)
