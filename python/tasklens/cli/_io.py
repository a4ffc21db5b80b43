"""Reading and writing the files that the tasklens commands take.

Every input is named ``FILE[:KEY]`` (see :data:`INPUT_HELP`). Every read error becomes a ``ValueError`` whose
message names the argument and the file, so the command prints one line instead of a traceback.
"""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager

import numpy as np

INPUT_HELP = """\
inputs:
  Every data argument is FILE[:KEY]. FILE is .npy, .npz, .csv (or .txt, comma-separated) or .parquet;
  KEY picks part of it:
    x.npz:feats        the array named 'feats' (required when the .npz holds several arrays)
    t.parquet:a,b      the columns 'a' and 'b' of a table (.parquet or .csv with a header row)
    y.npy:0            column 0 of a 2-D .npy array (comma-separated indices pick several)
  Without KEY a table gives all its numeric columns; text columns are skipped. When features and labels come
  from the same table, the label columns are left out of the features. A .csv whose first row is numeric has
  no header; its columns are then named 0, 1, ...
  Text files of names (--labels, --groups, --names) hold one name per line (UTF-8), or are FILE:COLUMN of a
  .csv or .parquet table.

exit status:
  0 success, 1 an error in the input or while running (one line on stderr), 2 a usage error.
  Set TASKLENS_DEBUG=1 to see the Python traceback of an unexpected error."""

MATRIX_EXTS = (".npy", ".npz", ".csv", ".txt", ".parquet")
TABLE_EXTS = (".csv", ".txt", ".parquet")


class InputError(ValueError):
    """A bad input file or argument, with a message ready for the user."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message (or its type when it has none), newlines folded.

    >>> one_line(KeyError("no array 'x'"))
    "no array 'x'"
    >>> one_line(ValueError("first\\n  second"))
    'first second'
    """
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(str(text).split())
    return text or type(exc).__name__


def short(exc: BaseException, limit: int = 160) -> str:
    """:func:`one_line`, cut after its first sentence when longer than ``limit`` characters."""
    text = one_line(exc)
    if len(text) > limit and ". " in text[:limit]:
        text = text[:text.index(". ", 0, limit) + 1]
    return text


@contextmanager
def reading(name: str, path: str):
    """Turn any failure while reading ``path`` into an :class:`InputError` naming ``name`` and the file."""
    try:
        yield
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{name}: {path} is too large to load into memory") from None
    except Exception as exc:  # corrupt, truncated, empty or mislabelled files: numpy, zipfile, pandas, pyarrow
        raise InputError(f"{name}: cannot read {path} ({type(exc).__name__}: {short(exc)})") from None


def split_spec(spec: str, name: str) -> tuple[str, str | None]:
    """``"FILE[:KEY]"`` -> ``(FILE, KEY or None)``; a path that exists as given is never split."""
    if os.path.exists(spec):
        return spec, None
    head, sep, key = spec.rpartition(":")
    if sep and head and os.path.exists(head):
        return head, (key or None)
    missing = head if sep and head and os.path.splitext(head)[1].lower() in MATRIX_EXTS else spec
    raise FileNotFoundError(f"{name}: file not found: {missing} (no such file or directory)")


def _ext(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _check_ext(path: str, name: str, allowed=MATRIX_EXTS) -> str:
    ext = _ext(path)
    if ext not in allowed:
        raise InputError(f"{name}: unsupported file type {ext or '(none)'!r} ({path}); use "
                         + ", ".join(allowed))
    return ext


def _keys(key: str | None) -> list[str]:
    return [k.strip() for k in key.split(",") if k.strip()] if key else []


# ---------------------------------------------------------------------------------------------- arrays
def load_npy(path: str, name: str, *, mmap: bool = False) -> np.ndarray:
    """A .npy array (memory-mapped when ``mmap``); object arrays and corrupt files are errors naming the file."""
    with reading(name, path):
        a = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if not isinstance(a, np.ndarray):
        raise InputError(f"{name}: {path} is not a .npy array file")
    return a


def load_npz(path: str, name: str, key: str | None) -> tuple[np.ndarray, str]:
    """One array of a .npz: the one named ``key``, or the only one; ``(array, its name)``."""
    with reading(name, path):
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if not names:
                raise InputError(f"{name}: {path} holds no arrays")
            if key is None:
                if len(names) > 1:
                    raise InputError(f"{name}: {path} holds several arrays ({', '.join(names)}); "
                                     f"choose one as {path}:NAME")
                key = names[0]
            if key not in names:
                raise InputError(f"{name}: {path} has no array {key!r} (it holds {', '.join(names)})")
            return np.asarray(z[key]), key


def npz_arrays(path: str, name: str) -> dict[str, np.ndarray]:
    """Every array of a .npz, by name."""
    with reading(name, path):
        with np.load(path, allow_pickle=False) as z:
            out = {k: np.asarray(z[k]) for k in z.files}
    if not out:
        raise InputError(f"{name}: {path} holds no arrays")
    return out


def read_frame(path: str, name: str):
    """A .csv/.txt (header row optional) or .parquet file as a pandas DataFrame."""
    import pandas as pd

    ext = _ext(path)
    with reading(name, path):
        if ext == ".parquet":
            return pd.read_parquet(path)
        if os.path.getsize(path) == 0:
            raise InputError(f"{name}: {path} is empty")
        try:  # a purely numeric file has no header row: columns 0, 1, ...
            return pd.DataFrame(np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64))
        except ValueError:
            return pd.read_csv(path)


def _columns(frame, keys: list[str], name: str, path: str) -> list:
    """Column labels of ``frame`` named by ``keys`` (names, or 0-based positions when no column has the name)."""
    cols = list(frame.columns)
    by_text = {str(c): c for c in cols}
    out = []
    for k in keys:
        if k in by_text:
            out.append(by_text[k])
        elif k.lstrip("-").isdigit() and 0 <= int(k) < len(cols):
            out.append(cols[int(k)])
        else:
            shown = ", ".join(map(str, cols[:20])) + (", ..." if len(cols) > 20 else "")
            raise InputError(f"{name}: {path} has no column {k!r} (columns: {shown})")
    return out


def _column_indices(key: str | None, ncols: int, name: str, path: str) -> list[int] | None:
    keys = _keys(key)
    if not keys:
        return None
    out = []
    for k in keys:
        if not k.lstrip("-").isdigit():
            raise InputError(f"{name}: {path}:{key}: a .npy array has no column names; give 0-based column "
                             "indices (e.g. FILE.npy:0 or FILE.npy:0,2)")
        i = int(k)
        if not 0 <= i < ncols:
            raise InputError(f"{name}: column {i} is out of range for {path}, which has {ncols} column(s) "
                             "(0-based)")
        out.append(i)
    return out


def _numeric(frame, name: str, path: str, explicit: bool) -> np.ndarray:
    """The numeric columns of ``frame`` as an array; with ``explicit`` columns, a text column is an error."""
    import pandas as pd

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if explicit:
        bad = [str(c) for c in frame.columns if c not in numeric]
        if bad:
            raise InputError(f"{name}: column(s) {', '.join(bad)} of {path} are not numeric")
    return frame[numeric].to_numpy()


def _read(spec: str, name: str, *, exclude=(), mmap: bool = False):
    """``(array or DataFrame, path, KEY entries)``: the array of a .npy/.npz, or the chosen columns of a table."""
    path, key = split_spec(spec, name)
    ext = _check_ext(path, name)
    if ext == ".npy":
        a = load_npy(path, name, mmap=mmap and key is None and not exclude)
        return _select_npy(a, key, name, path, exclude), path, _keys(key)
    if ext == ".npz":
        return load_npz(path, name, key)[0], path, _keys(key)
    return table_columns(read_frame(path, name), key, name, path, exclude), path, _keys(key)


def table_columns(frame, key: str | None, name: str, path: str, exclude=()):
    """The columns of ``frame`` named in KEY, else all but ``exclude``."""
    keys = _keys(key)
    if keys:
        return frame[_columns(frame, keys, name, path)]
    drop = {str(e) for e in exclude}
    return frame.drop(columns=[c for c in frame.columns if str(c) in drop]) if drop else frame


def read_matrix(spec: str, name: str, *, exclude=(), mmap: bool = False) -> np.ndarray:
    """A numeric (N, d) matrix with N >= 1 and d >= 1 from ``FILE[:KEY]``.

    A 1-D array is one column. ``exclude`` lists columns to leave out when no KEY is given (names for a table,
    indices for a .npy). ``mmap`` memory-maps a whole .npy file.
    """
    a, path, keys = _read(spec, name, exclude=exclude, mmap=mmap)
    if not isinstance(a, np.ndarray):
        frame, a = a, _numeric(a, name, path, explicit=bool(keys))
        if a.shape[1] == 0:
            shown = ", ".join(map(str, list(frame.columns)[:20])) or "none"
            raise InputError(f"{name}: {path} has no numeric columns (columns: {shown}); expected numbers")
    return _as_matrix(a, name, path)


def _select_npy(a: np.ndarray, key: str | None, name: str, path: str, exclude=()) -> np.ndarray:
    if key is None and not exclude:
        return a
    if a.ndim != 2:
        raise InputError(f"{name}: {path}{':' + key if key else ''}: column selection needs a 2-D array, "
                         f"got shape {a.shape}")
    cols = _column_indices(key, a.shape[1], name, path)
    if cols is None:
        drop = {int(e) for e in map(str, exclude) if e.strip().isdigit()}
        cols = [i for i in range(a.shape[1]) if i not in drop]
        if not cols:
            raise InputError(f"{name}: {path} has no columns left after leaving out the label column(s)")
    return np.asarray(a[:, cols[0]] if key is not None and len(cols) == 1 else a[:, cols])


def _as_matrix(a: np.ndarray, name: str, path: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name}: {path} holds {a.dtype} data, expected numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise InputError(f"{name}: expected a 2-D matrix in {path}, got shape {a.shape}")
    if a.shape[0] == 0:
        raise InputError(f"{name}: {path} has no rows (shape {a.shape})")
    if a.shape[1] == 0:
        raise InputError(f"{name}: {path} has no columns (shape {a.shape}); features must have at least one")
    return a


def read_labels(spec: str, name: str) -> np.ndarray:
    """Class labels, (N,) or (N, T), from ``FILE[:KEY]``; text labels are coded 0, 1, ... in sorted order.

    A table with several columns needs KEY (the label column, or several for T targets).
    """
    a, path, keys = _read(spec, name)
    if not isinstance(a, np.ndarray):
        if not keys and a.shape[1] > 1:
            shown = ", ".join(map(str, list(a.columns)[:20]))
            raise InputError(f"{name}: {path} has {a.shape[1]} columns ({shown}); choose the label column(s) as "
                             f"{path}:COLUMN[,COLUMN...]")
        a = np.column_stack([_codes(a.iloc[:, i].to_numpy()) for i in range(a.shape[1])]) if a.shape[1] else \
            np.zeros((len(a), 0))
    a = np.asarray(a)
    if a.dtype.kind in "OUS":
        a = _codes(a.ravel()).reshape(a.shape) if a.ndim else a
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim not in (1, 2) or a.shape[0] == 0 or (a.ndim == 2 and a.shape[1] == 0):
        raise InputError(f"{name}: expected (N,) or (N, T) labels in {spec}, got shape {a.shape}")
    return a


def _codes(values: np.ndarray) -> np.ndarray:
    """Numeric values as they are; text values as codes 0, 1, ... of the sorted distinct texts."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        return values
    return np.unique(values.astype(str), return_inverse=True)[1].reshape(values.shape)


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- outputs
def check_out(path: str, name: str, allowed: tuple[str, ...]) -> str:
    """Check an output path's extension before any work is done; returns the extension."""
    ext = _ext(path)
    if ext not in allowed:
        raise InputError(f"{name}: unsupported output type {ext or '(none)'!r} ({path}); use "
                         + ", ".join(allowed))
    return ext


def make_parent(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)


def write_values(path: str, values: dict) -> None:
    """Write named results as .json (one object) or .csv (a header row and one row per value index)."""
    import json

    ext = check_out(path, "--out", (".json", ".csv", ".txt"))
    make_parent(path)
    if ext == ".json":
        with open(path, "w") as f:
            json.dump(values, f, indent=2)
            f.write("\n")
        return
    cols = {k: np.atleast_1d(np.asarray(v, dtype=object)) for k, v in values.items()}
    length = max(len(v) for v in cols.values())
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(cols))
        for i in range(length):
            w.writerow([v[i] if i < len(v) else "" for v in cols.values()])
