"""The run manifest (``manifest.json`` in the output directory) and atomic tile files.

The manifest records the inputs (dataset names, sampled row counts, the hash of each dataset's sampled
rows), the parameters that change results (scores, metric, sample, seed, tile) and the tiles done (file
name, rows, bytes, seconds). ``manifest.json`` is written atomically (temporary file + ``os.replace``) when
a run starts; each finished tile appends one JSON line to ``tiles.jsonl`` (flushed and fsynced), so the
cost per tile stays O(1) for 10^5+ tiles; a torn last line (a crash while appending) is ignored, which
only means that tile runs again. A resumed run folds the log into a new ``manifest.json``. A tile
file is written under a temporary name in the same directory and renamed when complete, so a reader or a
resumed run never sees a partial tile; a re-run tile replaces its file (idempotent).
"""

from __future__ import annotations

import json
import os
import uuid

import numpy as np

MANIFEST = "manifest.json"
LOG = "tiles.jsonl"
FORMAT = 1


def tile_name(i: int, j: int) -> str:
    return f"tile-{i:05d}-{j:05d}.parquet"


def tmp_name(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{uuid.uuid4().hex}.tmp")


def write_json(path: str, obj) -> None:
    tmp = tmp_name(path)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_manifest(out_dir: str) -> dict | None:
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            man = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"out_dir: {path} is not a readable tasklens pairs manifest ({exc})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT or "inputs" not in man:
        raise ValueError(f"out_dir: {path} is not a tasklens pairs manifest (format {FORMAT})")
    log = os.path.join(out_dir, LOG)
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    man["tiles"][entry.pop("tile")] = entry
                except (json.JSONDecodeError, KeyError, AttributeError):
                    continue  # a torn line: that tile simply runs again
    return man


def start_log(out_dir: str, man: dict) -> None:
    """Write ``manifest.json`` (with the tiles already done) and an empty tile log, atomically."""
    write_json(os.path.join(out_dir, MANIFEST), man)
    log = os.path.join(out_dir, LOG)
    if os.path.exists(log):
        os.remove(log)


class TileLog:
    """Appends one line per finished tile to ``tiles.jsonl``."""

    def __init__(self, out_dir: str):
        self.file = open(os.path.join(out_dir, LOG), "a")

    def append(self, key: str, entry: dict) -> None:
        self.file.write(json.dumps({"tile": key, **entry}) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def new_manifest(catalog, params: dict) -> dict:
    return {"format": FORMAT, "engine": "tasklens.pairs",
            "inputs": {"names": catalog.names, "rows": catalog.rows, "dim": catalog.dim, "dtype": catalog.dtype,
                       "hashes": catalog.hashes},
            "params": params, "tiles": {}}


def check_compatible(man: dict, fresh: dict, out_dir: str) -> None:
    """Refuse to resume into a manifest made from other inputs or parameters, saying what differs."""
    diffs = []
    for key in ("params",):
        for k in sorted(set(man[key]) | set(fresh[key])):
            if man[key].get(k) != fresh[key].get(k):
                diffs.append(f"parameter {k}: manifest {man[key].get(k)!r}, now {fresh[key].get(k)!r}")
    a, b = man["inputs"], fresh["inputs"]
    if a["names"] != b["names"]:
        gone = [n for n in a["names"] if n not in b["names"]][:5]
        new = [n for n in b["names"] if n not in a["names"]][:5]
        diffs.append(f"datasets differ (manifest {len(a['names'])}, now {len(b['names'])}; missing now: {gone}, "
                     f"new: {new})")
    else:
        changed = [n for n, h1, h2 in zip(a["names"], a["hashes"], b["hashes"]) if h1 != h2]
        if changed:
            diffs.append(f"{len(changed)} dataset(s) changed content: {changed[:5]}")
        for k in ("dim", "dtype", "rows"):
            if a[k] != b[k] and not changed:
                diffs.append(f"inputs {k}: manifest {a[k]!r}, now {b[k]!r}")
    if diffs:
        raise ValueError(f"out_dir: {out_dir} holds a run with other inputs or parameters; refusing to resume "
                         f"({'; '.join(diffs)}). Use a new out_dir or resume=False to start over.")


def write_tile(path: str, cols: dict[str, np.ndarray]) -> int:
    """Write one tile's columns as Parquet under a temporary name, then rename; returns the file size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: pa.array(v) for k, v in cols.items()})
    tmp = tmp_name(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return os.path.getsize(path)
