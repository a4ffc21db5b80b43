"""Text inputs of the tasklens commands: files of names (one per line) and child,parent edge lists."""

from __future__ import annotations

import csv
import io

import numpy as np

from ._io import (InputError, _check_ext, _columns, _ext, _keys, load_npy, load_npz, read_frame, reading,
                  split_spec, table_columns)


def read_text(path: str, name: str, expected: str) -> str:
    """The UTF-8 text of ``path``; binary or otherwise encoded files are errors saying what was ``expected``."""
    with reading(name, path):
        with open(path, "rb") as f:
            raw = f.read()
    if b"\x00" in raw:
        raise InputError(f"{name}: {path} is not a text file (expected UTF-8 text, {expected})")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: {path} is not UTF-8 text (byte {exc.start}); expected {expected}") from None


def read_names(spec: str, name: str, n: int | None = None) -> list[str]:
    """One name per line of a UTF-8 text file, or ``FILE:COLUMN`` (or the only column) of a .csv/.parquet."""
    path, key = split_spec(spec, name)
    ext = _ext(path)
    if ext == ".parquet" or (key is not None and ext in (".csv", ".txt")):
        frame = read_frame(path, name) if ext == ".parquet" else _read_csv_header(path, name)
        keys = _keys(key)
        if keys:
            cols = _columns(frame, keys, name, path)
        elif frame.shape[1] == 1:
            cols = list(frame.columns)
        else:
            raise InputError(f"{name}: {path} has {frame.shape[1]} columns; choose one as {path}:COLUMN")
        if len(cols) != 1:
            raise InputError(f"{name}: choose one column, got {len(cols)}")
        values = frame[cols[0]].astype(str).tolist()
    else:
        text = read_text(path, name, "one name per line")
        values = [line.strip() for line in text.splitlines() if line.strip()]
    if n is not None and len(values) != n:
        raise InputError(f"{name}: {path} has {len(values)} names, expected {n} (one per row of X)")
    return values


def _read_csv_header(path: str, name: str):
    import pandas as pd

    with reading(name, path):
        return pd.read_csv(path)


def read_edges(spec: str, name: str, n: int, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A child,parent edge list -> ``(child, parent)`` 0-based row indices into X.

    Entries are 0-based row numbers of X, or names when ``names`` (one per row of X) is given. A first line
    that is not an edge (a header such as ``child,parent``) is skipped. Text files: one edge per line, two
    fields separated by a comma, a tab or spaces; ``#`` starts a comment. .npy/.npz: an integer (E, 2) array.
    .parquet or .csv:COLUMNS: two columns.
    """
    path, key = split_spec(spec, name)
    ext = _check_ext(path, name)
    if ext in (".npy", ".npz"):
        a = load_npy(path, name) if ext == ".npy" else load_npz(path, name, key)[0]
        if a.ndim != 2 or a.shape[1] != 2:
            raise InputError(f"{name}: an edge list needs two columns (child, parent), got shape {a.shape} in "
                             f"{path}")
        rows = [[str(v) for v in r] for r in a.tolist()]
        lines = list(range(1, len(rows) + 1))
    elif ext == ".parquet" or key is not None:
        frame = table_columns(read_frame(path, name) if ext == ".parquet" else _read_csv_header(path, name), key,
                              name, path)
        if frame.shape[1] != 2:
            raise InputError(f"{name}: an edge list needs two columns (child, parent), {path} has "
                             f"{frame.shape[1]}; choose them as {path}:CHILD,PARENT")
        rows = frame.astype(str).values.tolist()
        lines = list(range(2, len(rows) + 2))
    else:
        rows, lines = _edge_lines(path, name)
    return _edge_indices(rows, lines, n, names, name, path)


def _edge_lines(path: str, name: str):
    text = read_text(path, name, "one 'child,parent' pair per line")
    rows, lines = [], []
    for no, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "," in line or "\t" in line:
            fields = next(csv.reader(io.StringIO(line), delimiter="," if "," in line else "\t"))
        else:
            fields = line.split()
        fields = [f.strip() for f in fields]
        if len(fields) != 2:
            raise InputError(f"{name}: {path} line {no} has {len(fields)} field(s); an edge list has one "
                             "'child,parent' pair per line")
        rows.append(fields)
        lines.append(no)
    if not rows:
        raise InputError(f"{name}: {path} holds no edges")
    return rows, lines


def _is_index(s: str) -> bool:
    try:
        v = float(s)
    except ValueError:
        return False
    return np.isfinite(v) and v == int(v)


def _edge_indices(rows, lines, n: int, names, name: str, path: str):
    fmt = ("edges are 'child,parent' pairs of 0-based row numbers of X (0 to {}), or of names when --names "
           "gives one name per row of X").format(n - 1)
    lookup = None
    if names is not None:
        lookup = {}
        for i, s in enumerate(names):
            if s in lookup:
                raise InputError(f"--names: the name {s!r} appears twice (rows {lookup[s]} and {i})")
            lookup[s] = i
    if rows and not all(_known(v, lookup) for v in rows[0]):  # a header line such as "child,parent"
        if len(rows) > 1 and not any(_is_index(v) for v in rows[0]):
            rows, lines = rows[1:], lines[1:]
    child, parent = [], []
    for (c, p), no in zip(rows, lines):
        ij = []
        for v in (c, p):
            if lookup is not None and v in lookup:
                ij.append(lookup[v])
            elif _is_index(v):
                i = int(float(v))
                if not 0 <= i < n:
                    raise InputError(f"{name}: {path} line {no}: node {i} is out of range; {fmt}")
                ij.append(i)
            elif lookup is not None:
                raise InputError(f"{name}: {path} line {no}: {v!r} is not a name in --names")
            else:
                raise InputError(f"{name}: {path} line {no}: {v!r} is not a row number; {fmt}")
        child.append(ij[0])
        parent.append(ij[1])
    return np.asarray(child, np.int64), np.asarray(parent, np.int64)


def _known(v: str, lookup) -> bool:
    return _is_index(v) or (lookup is not None and v in lookup)
