"""``score_pairs``: every ordered pair of a dataset store, tile by tile, resumable, to Parquet files."""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
from typing import Sequence

from .._validation import check_choice
from ..domain.distance import METRICS
from . import manifest as mf
from .store import Catalog, load_block, scan
from .tiles import SCORES, choose_tile, members, parse_bytes, plan, tile_bytes, tile_pairs

log = logging.getLogger("tasklens.pairs")

BACKENDS = ("local", "ray")


def _check_scores(scores) -> list[str]:
    if isinstance(scores, str):
        scores = (scores,)
    scores = list(scores)
    if not scores:
        raise ValueError(f"scores: expected at least one of {SCORES}, got an empty list")
    for s in scores:
        check_choice(s, "scores", SCORES)
    if len(set(scores)) != len(scores):
        raise ValueError(f"scores: repeated score names in {scores}")
    return scores


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


class _Run:
    """Bookkeeping shared by the backends: manifest updates, progress bar, one log line per tile."""

    def __init__(self, out_dir: str, man: dict, b: int, m: int, todo, progress):
        self.out_dir, self.man, self.b, self.m = out_dir, man, b, m
        self.total = len(plan(m, b))
        self.count = self.total - len(todo)
        done_pairs = sum(tile_pairs(*map(int, k.split("-")), b, m) for k in man["tiles"])
        show = sys.stderr.isatty() if progress is None else bool(progress)
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=m * m, initial=done_pairs, unit="pair", unit_scale=True, dynamic_ncols=True,
                            desc="pairs", file=sys.stderr, smoothing=0.1)
        self.start = time.perf_counter()
        self.pairs_run = 0
        self.log = mf.TileLog(out_dir)

    def done(self, i: int, j: int, rows: int, size: int, seconds: float) -> None:
        entry = {"file": mf.tile_name(i, j), "rows": rows, "bytes": size, "seconds": round(seconds, 4)}
        self.man["tiles"][f"{i}-{j}"] = entry
        self.log.append(f"{i}-{j}", entry)
        self.count += 1
        self.pairs_run += rows
        if self.bar is not None:
            self.bar.update(rows)
        log.info("tile (%d, %d) %d/%d: %d pairs in %.3f s (%.0f pairs/s)", i, j, self.count, self.total, rows,
                 seconds, rows / max(seconds, 1e-9))

    def close(self) -> None:
        self.log.close()
        if self.bar is not None:
            self.bar.close()


def _boxes(model, catalog: Catalog):
    """(lo, hi, geometry kwargs): the Task2Box boxes of every dataset's base representation, (M, k) each."""
    import numpy as np

    d = catalog.dim
    if model.in_dim_ == d:
        base = catalog.base[:, :d]
    elif model.in_dim_ == 2 * d:
        base = catalog.base
    else:
        raise ValueError(f"task2box: the model takes {model.in_dim_} inputs, but the datasets have d = {d} features "
                         f"(base representation: d for the mean, 2d for [mean, variance])")
    lo, hi = model.embed(np.ascontiguousarray(base, dtype=np.float32))
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi), dict(model.geometry.kwargs())


def _boxes_hash(boxes) -> str:
    import hashlib

    lo, hi, kw = boxes
    h = hashlib.blake2b(digest_size=16)
    h.update(lo.tobytes())
    h.update(hi.tobytes())
    h.update(repr(sorted(kw.items())).encode())
    return h.hexdigest()


def _run_local(catalog: Catalog, todo, b: int, params: dict, out_dir: str, run: _Run, cache_bytes: int,
               workers: int, boxes=None) -> None:
    """Tiles in order; with ``workers > 1``, that many tiles at once in threads, each on one kernel thread."""
    import threading
    from collections import OrderedDict

    from ..domain._kernels import kernel_threads
    from .worker import tile_job

    m = len(catalog.sources)
    sample, seed = params["sample"], params["seed"]
    total = sum(catalog.rows) * catalog.dim * (4 if catalog.dtype == "float32" else 8)
    keep = len(plan(m, b)) if total <= cache_bytes else 2 * workers + 1  # blocks kept (LRU)
    cache: OrderedDict = OrderedDict()
    lock = threading.Lock()

    def block(k: int):
        with lock:
            if k in cache:
                cache.move_to_end(k)
                return cache[k]
            value = cache[k] = load_block(catalog, members(k, b, m), sample, seed)
            while len(cache) > keep:
                cache.popitem(last=False)
            return value

    def job(i: int, j: int):
        t0 = time.perf_counter()
        bi = block(i)
        bj = None if i == j else block(j)
        # concurrent tiles: each on one kernel thread (this thread only; the process-wide count is untouched)
        with kernel_threads(1 if workers > 1 else None):
            rows, size = tile_job(i, j, bi, bj, b, m, params["scores"], params["metric"], out_dir, boxes)
        return i, j, rows, size, time.perf_counter() - t0

    if workers == 1:
        for i, j in todo:
            run.done(*job(i, j))
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        queue, pending = list(todo), set()
        while queue or pending:
            while queue and len(pending) < workers:
                pending.add(pool.submit(job, *queue.pop(0)))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                run.done(*f.result())


def _clear_outputs(out_dir: str, tiles: bool) -> None:
    for path in glob.glob(os.path.join(out_dir, ".*.tmp")):
        os.remove(path)
    if tiles:
        for path in glob.glob(os.path.join(out_dir, "tile-*.parquet")):
            os.remove(path)
        for name in (mf.MANIFEST, mf.LOG):
            if os.path.exists(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))


def score_pairs(store, out_dir, *, scores: Sequence[str] = ("target_to_source",), metric: str = "euclidean",
                sample: int | None = 1000, seed: int = 0, tile: int | None = None, memory_budget="4GB",
                backend: str = "local", ray_address: str | None = None, resume: bool = True,
                progress: bool | None = None, max_in_flight: int | None = None, workers: int | None = None,
                task2box=None) -> dict:
    """Score every ordered pair of datasets of a store and write the scores as Parquet tiles.

    Parameters
    ----------
    store : str or list
        A directory with one ``.npy`` / ``.npz`` / ``.parquet`` file per dataset (ordered by file name; the
        name is the file stem), or a list of ``(n_i, d)`` arrays or file paths (see :mod:`tasklens.pairs.store`).
    out_dir : str
        Output directory: ``tile-IIIII-JJJJJ.parquet`` files (columns ``target``, ``source`` — dataset
        positions in store order — and one float64 column per score) and ``manifest.json``.
    scores : sequence of {"target_to_source", "source_to_target", "symmetric", "emd", "box_containment"}
        ``target_to_source`` is ``D(T|S)`` of Eq. (1) of Factors of Influence (Sect. 3.2); the next three
        are its Table 8 variants (see :func:`tasklens.domain.domain_distance`); lower means closer.
        ``box_containment`` is ``vol(z_T ∩ z_S) / vol(z_T)`` (Task2Box Eq. 5) of the boxes ``task2box``
        gives each dataset; higher means T is more contained in S.
    metric : {"euclidean", "sqeuclidean", "cosine"}
    sample : int or None
        Rows sampled per dataset with :func:`tasklens.domain.sample_indices` (key: the dataset's name for
        files, its position for in-memory arrays), the same rows whether it acts as target or source;
        ``None`` or 0 keeps every row. Default 1000 (the paper's protocol).
    seed : int
    tile : int, optional
        Datasets per tile side. Default: the largest tile whose working memory (formula in
        :mod:`tasklens.pairs.tiles`) fits ``memory_budget`` and has at most 8192 sampled rows per side;
        a resumed run keeps the tile of its manifest.
    memory_budget : str or int
        Working memory per worker for one tile, e.g. ``"4GB"``; the local backend also keeps every sampled
        block in memory when all of them take at most a quarter of it.
    backend : {"local", "ray"}
        ``ray`` runs each tile as a Ray task (see :mod:`tasklens.pairs.ray_backend`); the output directory
        must then be visible to every worker (a shared file system on a cluster).
    ray_address : str, optional
        Address of a Ray cluster, used when Ray is not initialised yet (default: a new local runtime); a
        runtime started by the caller with ``ray.init(...)`` is used as it is.
    resume : bool
        Skip tiles the manifest records as done (their file present with the recorded size). A manifest
        made from other inputs or parameters is refused with an error saying what differs. ``False``
        deletes earlier tiles and starts over.
    progress : bool, optional
        Progress bar (pairs/s, ETA) on stderr; default: only when stderr is a terminal. Each finished tile
        is also logged at INFO on the ``tasklens.pairs`` logger.
    max_in_flight : int, optional
        Ray backend: tiles submitted at a time (default twice the cluster's CPUs).
    workers : int, optional
        Local backend: tiles computed at once, each on one kernel thread; 1 runs one tile at a time on
        :func:`tasklens.get_num_threads` threads. Default :func:`tasklens.get_num_threads` (tile-level
        parallelism keeps every core busy when the machine is shared; results are identical). The memory
        budget is shared: each concurrent tile gets ``memory_budget / workers``. Each concurrent tile's
        distance kernels run on its own worker thread (``segmented_nearest(threads=1)`` through
        :func:`tasklens.domain._kernels.kernel_threads`; tasklens' process-wide count is untouched); the
        BLAS limit is 1 while the tiles run and restored afterwards.

    task2box : Task2Box or str, optional
        A fitted :class:`tasklens.task2box.Task2Box` (or the path of one saved with ``save``), needed for
        ``box_containment``: each dataset's box is ``task2box.embed`` of the base representation of its
        sampled rows, the mean (Task2Box Eq. 1) or ``[mean, variance]`` (Eq. 2) to match the model's input
        size; boxes are computed once, and their hash is part of the manifest's parameters.

    Returns
    -------
    dict with ``out_dir``, ``datasets`` (M), ``pairs`` (M^2), ``tile``, ``tiles``, ``tiles_run``,
    ``tiles_skipped``, ``seconds``, ``pairs_per_second`` (of the tiles run now).

    Notes
    -----
    Only tiles (I, J) with I <= J run; each fills both directions from one pass of dot products (see
    :mod:`tasklens.pairs.tiles`). Values are exact minima re-scored in float64, equal to
    :func:`tasklens.domain.domain_distance_matrix` of the sampled datasets. Bad inputs (a missing file, a
    dataset with other feature dimensions, NaN) are found by a first validating pass over the store,
    before anything is written, and the error names the dataset.

    Examples
    --------
    >>> import numpy as np, tempfile, tasklens.pairs as tp
    >>> data = [np.zeros((2, 3)), np.vstack([np.zeros((1, 3)), np.full((1, 3), 2.0)])]
    >>> out = tempfile.mkdtemp()
    >>> tp.score_pairs(data, out, sample=None)["pairs"]
    4
    >>> tp.read_pairs(out, dense=True).round(3).tolist()
    [[0.0, 0.0], [1.732, 0.0]]
    """
    scores = _check_scores(scores)
    check_choice(metric, "metric", METRICS)
    sample = 0 if sample is None else _check_int(sample, "sample", 0)
    seed = _check_int(seed, "seed", 0)
    if tile is not None:
        _check_int(tile, "tile", 1)
    check_choice(backend, "backend", BACKENDS)
    budget = parse_bytes(memory_budget)
    if max_in_flight is not None:
        _check_int(max_in_flight, "max_in_flight", 1)
    if workers is None:
        from .._threads import get_num_threads

        workers = get_num_threads()
    _check_int(workers, "workers", 1)
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out_dir: {out_dir!r} exists and is not a directory")

    if "box_containment" in scores:
        if task2box is None:
            raise ValueError("scores: 'box_containment' needs task2box=<a fitted tasklens.task2box.Task2Box or the "
                             "path of a saved one>")
        if isinstance(task2box, (str, os.PathLike)):
            from ..task2box import Task2Box

            task2box = Task2Box.load(os.fspath(task2box))
        if getattr(task2box, "net_", None) is None:
            raise ValueError(f"task2box: expected a fitted Task2Box, got {type(task2box).__name__} (not fitted)")
    catalog = scan(store, sample, seed, base="box_containment" in scores)  # validates before anything is written
    m = len(catalog.sources)
    boxes = _boxes(task2box, catalog) if "box_containment" in scores else None
    old = mf.read_manifest(out_dir) if resume and os.path.isdir(out_dir) else None
    if tile is None and resume and old is not None and isinstance(old.get("params", {}).get("tile"), int):
        b = old["params"]["tile"]
    elif tile is None:
        itemsize = 4 if catalog.dtype == "float32" else 8
        b = choose_tile(m, max(catalog.rows), catalog.dim, itemsize, len(scores),
                        budget // (workers if backend == "local" else 1))
    else:
        b = tile
    params = {"scores": scores, "metric": metric, "sample": sample, "seed": seed, "tile": b}
    if boxes is not None:
        params["task2box"] = _boxes_hash(boxes)
    fresh = mf.new_manifest(catalog, params)
    os.makedirs(out_dir, exist_ok=True)
    if old is not None:
        mf.check_compatible(old, fresh, out_dir)
        _clear_outputs(out_dir, tiles=False)
        fresh["tiles"] = {k: v for k, v in old["tiles"].items()
                          if os.path.exists(p := os.path.join(out_dir, v["file"])) and os.path.getsize(p) == v["bytes"]}
    else:
        _clear_outputs(out_dir, tiles=True)
    mf.start_log(out_dir, fresh)
    todo = [(i, j) for i, j in plan(m, b) if f"{i}-{j}" not in fresh["tiles"]]
    est = tile_bytes(b, max(catalog.rows), catalog.dim, 4 if catalog.dtype == "float32" else 8, len(scores))
    log.info("%d datasets, %d pairs, tile %d (%d tiles, %d to run, ~%.1f MiB per tile), backend %s", m, m * m, b,
             len(plan(m, b)), len(todo), est / 2 ** 20, backend)
    run = _Run(out_dir, fresh, b, m, todo, progress)
    t0 = time.perf_counter()
    try:
        if backend == "local":
            _run_local(catalog, todo, b, params, out_dir, run, budget // 4, max(1, min(workers, len(todo))),
                       boxes)
        else:
            from .ray_backend import run_ray

            run_ray(catalog, todo, b, params, out_dir, run, ray_address, max_in_flight, boxes)
    finally:
        run.close()
    _clear_outputs(out_dir, tiles=False)  # half files of tasks that died (all tasks have finished now)
    seconds = time.perf_counter() - t0
    return {"out_dir": out_dir, "datasets": m, "pairs": m * m, "tile": b, "tiles": run.total,
            "tiles_run": len(todo), "tiles_skipped": run.total - len(todo), "seconds": seconds,
            "pairs_per_second": run.pairs_run / seconds if seconds > 0 else float("nan")}
