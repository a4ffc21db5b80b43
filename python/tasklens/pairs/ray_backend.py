"""Ray backend of :func:`tasklens.pairs.score_pairs`: one Ray task per tile.

- The running Ray runtime when ``ray.init`` was already called, else ``ray.init(address=ray_address)``
  (``None``: a new local runtime).
- Each block of ``tile`` datasets is loaded by the driver and put in the object store once (``ray.put``),
  when the first tile needing it is submitted, and released when no pending tile needs it; tasks receive
  object references, never arrays by value.
- At most ``max_in_flight`` tasks are submitted at a time (default twice the cluster's CPUs), so the object
  store holds O(max_in_flight) blocks.
- A task lost with its worker (process killed, node lost) is retried by Ray (``max_retries``). Writes are
  idempotent: a tile's file is written under a temporary name and renamed, so a retried tile replaces its
  file and can never duplicate or drop rows; the driver records the tile in the manifest once.
- Each task uses one CPU (``num_cpus=1``) and one kernel thread.
"""

from __future__ import annotations

import time
from collections import Counter

from .store import load_block
from .tiles import members

MAX_RETRIES = 4
_REMOTE = None


def _tile_task(i, j, block_i, block_j, b, m, scores, metric, out_dir, boxes):
    import tasklens
    from tasklens.pairs.worker import tile_job

    tasklens.set_num_threads(1)
    t0 = time.perf_counter()
    rows, size = tile_job(i, j, block_i, block_j, b, m, scores, metric, out_dir, boxes)
    return i, j, rows, size, time.perf_counter() - t0


def _remote():
    global _REMOTE
    if _REMOTE is None:
        import ray

        _REMOTE = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(_tile_task)
    return _REMOTE


def run_ray(catalog, todo, b: int, params: dict, out_dir: str, run, ray_address, max_in_flight, boxes=None) -> None:
    try:
        import ray
    except ImportError:
        raise ImportError("backend='ray' needs ray: pip install ray") from None
    if not ray.is_initialized():
        ray.init(address=ray_address)  # None: a new local runtime
    if max_in_flight is None:
        max_in_flight = max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))
    m = len(catalog.sources)
    uses = Counter()
    for i, j in todo:
        uses[i] += 1
        if j != i:
            uses[j] += 1
    refs: dict = {}

    def block(k: int):
        if k not in refs:
            refs[k] = ray.put(load_block(catalog, members(k, b, m), params["sample"], params["seed"]))
        return refs[k]

    task = _remote()
    pending: dict = {}
    boxes_ref = None if boxes is None else ray.put(boxes)  # (M, k) corners: once, shared by every task
    try:
        _drive(ray, task, todo, block, pending, uses, refs, b, m, params, out_dir, run, max_in_flight, boxes_ref)
    except BaseException:
        for ref in pending:  # a failed tile (after retries) or an interrupt: stop the other tiles
            ray.cancel(ref, force=True)
        raise


def _drive(ray, task, todo, block, pending, uses, refs, b, m, params, out_dir, run, max_in_flight, boxes_ref):
    queue = list(todo)
    pos = 0
    while pos < len(queue) or pending:
        while pos < len(queue) and len(pending) < max_in_flight:
            i, j = queue[pos]
            pos += 1
            ref = task.remote(i, j, block(i), None if i == j else block(j), b, m, params["scores"],
                              params["metric"], out_dir, boxes_ref)
            pending[ref] = (i, j)
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            i, j = pending.pop(ref)
            i2, j2, rows, size, seconds = ray.get(ref)
            run.done(i2, j2, rows, size, seconds)
            for k in {i, j}:
                uses[k] -= 1
                if uses[k] == 0:
                    del refs[k]  # no pending tile needs this block: let the object store free it
