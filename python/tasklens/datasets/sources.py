"""Named labelled datasets from paths: image-folder trees, roots of such trees, ``.npz`` / ``.npy`` arrays and
feature tables (``.parquet`` / ``.csv``), for ``tasklens map``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_array, check_labels, describe
from .domains import ImageDomain
from .folder import IMAGE_EXTENSIONS, load_image_folder


@dataclass(frozen=True)
class FeatureSet:
    """Precomputed per-item features ``x`` (N, d) float, optional int labels ``y`` and ``classes``."""

    name: str
    x: np.ndarray
    y: np.ndarray | None = None
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self):
        x = np.asarray(check_array(self.x, f"{self.name}.x", ndim=2, min_rows=1), dtype=np.float64)
        object.__setattr__(self, "x", x)
        if self.y is not None:
            y = check_labels(self.y, f"{self.name}.y", n=x.shape[0],
                             num_classes=len(self.classes) if self.classes else None)
            object.__setattr__(self, "y", np.asarray(y))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _has_images(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_dataset_folder(folder) -> bool:
    """True when ``folder`` is ``<dataset>/<class>/<image>``: some sub-folder holds images directly."""
    folder = Path(os.fspath(folder))
    return folder.is_dir() and any(_has_images(d) for d in _subdirs(folder))


def _from_npz(path: Path, key: str | None):
    with np.load(path, allow_pickle=False) as z:
        files = set(z.files)
        name = path.stem if key is None else f"{path.stem}:{key}"
        y = z["y"] if "y" in files else None
        classes = tuple(str(c) for c in z["classes"]) if "classes" in files else ()
        if key is not None:
            if key not in files:
                raise KeyError(f"inputs: {path} has no array {key!r} (arrays: {sorted(files)})")
            data = z[key]
        elif "x" in files:
            data = z["x"]
        elif "features" in files:
            data = z["features"]
        else:
            raise ValueError(f"inputs: {path} needs an array 'x' (uint8 images or float features) or 'features' "
                             f"(arrays: {sorted(files)}); 'y' (labels) and 'classes' are optional")
    if y is not None and not classes:
        classes = tuple(str(c) for c in range(int(np.max(y)) + 1)) if np.size(y) else ()
    if data.dtype == np.uint8 and data.ndim in (3, 4):
        x = data[:, None] if data.ndim == 3 else data
        if y is None:
            raise ValueError(f"inputs: {path} holds images but no labels 'y'")
        return ImageDomain(name, x, np.asarray(y, np.int64), classes)
    return FeatureSet(name, data, y, classes)


def _from_table(path: Path, dataset_column: str, label_column: str):
    import pandas as pd

    frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    cols = [c for c in frame.columns if str(c) not in (dataset_column, label_column)]
    feats = frame[cols].select_dtypes("number")
    if feats.shape[1] == 0:
        raise ValueError(f"inputs: {path} has no numeric feature columns")
    names = frame[dataset_column].astype(str).to_numpy() if dataset_column in frame.columns else \
        np.full(len(frame), path.stem)
    labels = frame[label_column].astype(str).to_numpy() if label_column in frame.columns else None
    out = []
    for n in dict.fromkeys(names):
        rows = names == n
        if labels is None:
            out.append(FeatureSet(str(n), feats.to_numpy(np.float64)[rows]))
        else:
            classes, codes = np.unique(labels[rows], return_inverse=True)
            out.append(FeatureSet(str(n), feats.to_numpy(np.float64)[rows], codes.astype(np.int64), tuple(classes)))
    return out


def load_sources(paths, *, size=None, dataset_column: str = "dataset", label_column: str = "label") -> list:
    """Datasets (:class:`ImageDomain` or :class:`FeatureSet`) from paths, in order.

    Each path is ``FILE[:KEY]`` or a folder:

    - ``<dataset>/<class>/*.png|jpg|...``: one image dataset named after the folder (:func:`load_image_folder`;
      ``size`` resizes, else mixed sizes are an error naming two files);
    - a root holding such folders: one dataset per sub-folder;
    - ``.npz``: ``x`` (uint8 ``(N, H, W)`` / ``(N, C, H, W)`` images, or float ``(N, d)`` features; ``KEY`` picks
      another array), optional ``y`` (int labels) and ``classes``;
    - ``.npy``: ``(N, d)`` float features, no labels;
    - ``.parquet`` / ``.csv``: numeric feature columns, optional ``dataset_column`` (one dataset per value) and
      ``label_column`` (class names).
    """
    out = []
    for spec in paths:
        spec = os.fspath(spec)
        path, key = spec, None
        if not os.path.exists(spec) and ":" in spec:
            path, key = spec.rsplit(":", 1)
        p = Path(path)
        if p.is_dir():
            if is_dataset_folder(p):
                out.append(load_image_folder(p, size=size))
                continue
            subs = [d for d in _subdirs(p) if is_dataset_folder(d)]
            if not subs:
                raise ValueError(f"inputs: {p} is neither a dataset folder (<dataset>/<class>/<image>) nor a root "
                                 "holding dataset folders")
            out += [load_image_folder(d, size=size) for d in subs]
        elif not p.exists():
            raise FileNotFoundError(f"inputs: {p} does not exist")
        elif p.suffix.lower() == ".npz":
            out.append(_from_npz(p, key))
        elif p.suffix.lower() == ".npy":
            a = np.load(p, allow_pickle=False)
            if a.ndim != 2:
                raise ValueError(f"inputs: {p} must hold (N, d) features, got {describe(a)}")
            out.append(FeatureSet(p.stem, a))
        elif p.suffix.lower() in (".parquet", ".csv"):
            out += _from_table(p, dataset_column, label_column)
        else:
            raise ValueError(f"inputs: {p}: expected a folder, .npz, .npy, .parquet or .csv")
    names = [d.name for d in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"inputs: dataset names must be unique, got {', '.join(dup)} more than once")
    return out
