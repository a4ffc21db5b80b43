"""The work of one tile, shared by the local and Ray backends: compute its pairs, write its file atomically."""

from __future__ import annotations

import os

import numpy as np

from . import manifest as mf
from .tiles import compute_tile, members

# Fault injection for the tests of the Ray backend: when this environment variable is "kill-once", the
# first tile job that finds the file FAULT_MARKER in the output directory renames it (only one job can)
# and kills its own process with SIGKILL after writing half a temporary file, as a crashed worker would.
FAULT_ENV = "TASKLENS_PAIRS_FAULT"
FAULT_MARKER = ".fault-kill-once"


def _maybe_crash(out_dir: str, path: str) -> None:
    if os.environ.get(FAULT_ENV) != "kill-once":
        return
    marker = os.path.join(out_dir, FAULT_MARKER)
    try:
        os.rename(marker, marker + ".fired")
    except OSError:
        return
    with open(mf.tmp_name(path), "wb") as f:
        f.write(b"PAR1 half a tile")
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def tile_job(i: int, j: int, block_i, block_j, b: int, m: int, scores, metric: str, out_dir: str, boxes=None):
    """Compute tile (i, j) from its blocks ``(rows, offsets)`` and write it; returns (pairs, file bytes)."""
    xi, off_i = block_i
    ids_i = np.asarray(members(i, b, m))
    if block_j is None:
        cols = compute_tile(xi, off_i, ids_i, None, None, None, scores, metric, boxes=boxes)
    else:
        xj, off_j = block_j
        cols = compute_tile(xi, off_i, ids_i, xj, off_j, np.asarray(members(j, b, m)), scores, metric, boxes=boxes)
    path = os.path.join(out_dir, mf.tile_name(i, j))
    _maybe_crash(out_dir, path)
    size = mf.write_tile(path, cols)
    return len(cols["target"]), size
