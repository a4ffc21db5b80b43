"""Dataset stores for the pair engine: one array per dataset, read lazily and sampled with a fixed seed.

A store is either

- a directory holding one file per dataset (``.npy``, ``.npz`` with one array or an array named
  ``features``, or ``.parquet`` whose numeric columns are the features; other files are ignored); the
  dataset's name is the file name without its extension and datasets are ordered by file name, or
- a list whose items are arrays ``(n_i, d)`` or paths of such files (names: the file stem, or the position).

Each dataset contributes the rows ``sample_indices(n_rows, sample, seed=seed, key=name_or_position)`` of
:mod:`tasklens.domain.sampling` (Factors of Influence, Sect. 3.2: the same sampled rows whether the
dataset acts as target or source), so the result equals :func:`tasklens.domain.domain_distance_matrix` of
:func:`tasklens.domain.sample_datasets` of the same data.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .._validation import describe

EXTENSIONS = (".npy", ".npz", ".parquet")


@dataclass(frozen=True)
class Source:
    """Where one dataset lives: an in-memory array or a file."""

    name: str
    key: int | str  # the sampling key (file datasets: the name; in-memory arrays: the position)
    path: str | None = None
    array: Any = None

    def where(self) -> str:
        return f"dataset {self.name!r}" + (f" ({self.path})" if self.path else "")


def _load_parquet(path: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    numeric = [c for c, t in zip(table.column_names, table.schema.types)
               if pa.types.is_floating(t) or pa.types.is_integer(t)]
    lists = [c for c, t in zip(table.column_names, table.schema.types)
             if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t)]
    if numeric:
        return np.column_stack([table.column(c).to_numpy() for c in numeric]) if table.num_rows else \
            np.zeros((0, len(numeric)))
    if len(lists) == 1:
        values = table.column(lists[0]).to_pylist()
        return np.asarray(values, dtype=np.float64) if values else np.zeros((0, 0))
    raise ValueError(f"{path}: no numeric feature columns (columns: {table.column_names[:10]})")


def load_raw(src: Source):
    """The full (lazily mapped where possible) array of one dataset, before sampling and validation."""
    if src.path is None:
        return src.array
    if not os.path.exists(src.path):
        raise FileNotFoundError(f"store: {src.where()}: file not found")
    try:
        if src.path.endswith(".npy"):
            return np.load(src.path, mmap_mode="r")
        if src.path.endswith(".npz"):
            with np.load(src.path) as z:
                if len(z.files) == 1:
                    return z[z.files[0]]
                if "features" in z.files:
                    return z["features"]
                raise ValueError(f"expected one array or one named 'features', found {z.files[:10]}")
        if src.path.endswith(".parquet"):
            return _load_parquet(src.path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"store: {src.where()}: could not read it ({exc})") from None
    raise ValueError(f"store: {src.where()}: unsupported file type; expected one of {EXTENSIONS}")


def list_sources(store) -> list[Source]:
    """The datasets of a store, in matrix order."""
    if isinstance(store, (str, os.PathLike)):
        root = os.fspath(store)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"store: {root!r} is not a directory (expected one file per dataset, "
                                    f"{', '.join(EXTENSIONS)})")
        files = sorted(f for f in os.listdir(root) if f.endswith(EXTENSIONS) and not f.startswith("."))
        if not files:
            raise ValueError(f"store: {root!r} holds no dataset files ({', '.join(EXTENSIONS)})")
        sources = [Source(os.path.splitext(f)[0], os.path.splitext(f)[0], os.path.join(root, f)) for f in files]
    elif isinstance(store, Sequence) and not isinstance(store, (bytes, np.ndarray)):
        if len(store) == 0:
            raise ValueError("store: expected at least one dataset, got an empty list")
        sources = []
        for k, item in enumerate(store):
            if isinstance(item, (str, os.PathLike)):
                path = os.fspath(item)
                name = os.path.splitext(os.path.basename(path))[0]
                sources.append(Source(name, name, path))
            else:
                sources.append(Source(str(k), k, None, item))
    else:
        raise TypeError(f"store: expected a directory path or a list of arrays / file paths, got {describe(store)}")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"store: dataset names must be unique, repeated: {dup[:5]}")
    return sources


def sampled_rows(src: Source, sample: int, seed: int, d: int | None = None) -> np.ndarray:
    """The validated sampled rows of one dataset (float32 kept, other types as float64)."""
    from ..domain.sampling import sample_indices

    raw = load_raw(src)
    if hasattr(raw, "detach"):  # torch tensor
        raw = raw.detach().cpu().numpy()
    try:
        raw = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
    except Exception as exc:
        raise TypeError(f"store: {src.where()}: could not convert {describe(raw)} to an array ({exc})") from None
    if raw.ndim != 2 or raw.shape[0] < 1 or raw.shape[1] < 1:
        raise ValueError(f"store: {src.where()}: expected a 2-D array (rows, features) with at least one row "
                         f"and one column, got {describe(raw)}")
    if raw.dtype.kind not in "fiub" or (raw.dtype.kind == "f" and raw.dtype.itemsize > 8):
        raise TypeError(f"store: {src.where()}: expected real numbers, got {describe(raw)}")
    if d is not None and raw.shape[1] != d:
        raise ValueError(f"store: {src.where()}: expected {d} feature columns like the first dataset, got "
                         f"{describe(raw)}")
    idx = sample_indices(raw.shape[0], sample, seed=seed, key=src.key) if sample else None
    rows = raw if idx is None else raw[idx]
    dtype = np.float32 if rows.dtype == np.float32 else np.float64
    rows = np.ascontiguousarray(rows, dtype=dtype)
    if not np.isfinite(rows).all():
        bad = int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
        raise ValueError(f"store: {src.where()}: sampled row {bad} contains NaN or infinite values "
                         f"({describe(raw)}); remove or impute them first")
    return rows


def fingerprint(src: Source, rows: np.ndarray) -> str:
    """Hash of what a dataset contributes: its name, sampling key and sampled rows (dtype, shape, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{src.name}\0{src.key!r}\0{rows.dtype.str}\0{rows.shape}\0".encode())
    h.update(memoryview(np.ascontiguousarray(rows)).cast("B"))
    return h.hexdigest()


@dataclass
class Catalog:
    """Everything the engine needs to know about a store after one validating pass."""

    sources: list[Source]
    rows: list[int]      # sampled rows per dataset
    dim: int
    dtype: str           # "float32" when every dataset is float32, else "float64"
    hashes: list[str]
    base: np.ndarray | None = None  # (M, d) or (M, 2d) Task2Box base representations, when asked for

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]


def scan(store, sample: int, seed: int, base: bool = False) -> Catalog:
    """Read every dataset once (one at a time): validate, sample, hash. With ``base``, the Task2Box base
    representation ``[mu, sigma^2]`` of the sampled rows (Eq. 1-2) is kept, one (2d,) row per dataset."""
    sources = list_sources(store)
    rows, hashes, dtypes, d, reps = [], [], set(), None, []
    for src in sources:
        x = sampled_rows(src, sample, seed, d)
        d = x.shape[1]
        rows.append(x.shape[0])
        dtypes.add(x.dtype.name)
        hashes.append(fingerprint(src, x))
        if base:
            from ..task2box.data import base_representations

            reps.append(base_representations(x, [np.arange(x.shape[0])], variance=True)[0])
    return Catalog(sources, rows, int(d), "float32" if dtypes == {"float32"} else "float64", hashes,
                   np.stack(reps) if reps else None)


def load_block(catalog: Catalog, members: Sequence[int], sample: int, seed: int):
    """Stacked sampled rows of some datasets and their row offsets ``(len(members) + 1,)``."""
    parts = [sampled_rows(catalog.sources[k], sample, seed, catalog.dim) for k in members]
    off = np.concatenate([[0], np.cumsum([p.shape[0] for p in parts])]).astype(np.int64)
    for k, p in zip(members, parts):
        if p.shape[0] != catalog.rows[k]:
            raise ValueError(f"store: {catalog.sources[k].where()} changed while running "
                             f"({p.shape[0]} sampled rows, {catalog.rows[k]} before)")
    x = np.concatenate(parts, axis=0).astype(catalog.dtype, copy=False)
    return np.ascontiguousarray(x), off
