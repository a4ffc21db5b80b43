"""IDX files (the MNIST family's format) and the Fashion-MNIST loader.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (``TT`` the element type, ``DD`` the number of
dimensions), ``DD`` big-endian uint32 sizes, then the elements in row-major order, big-endian
(LeCun et al., "The MNIST database of handwritten digits"; Xiao et al. 2017, "Fashion-MNIST").
Files may be gzip-compressed (name ending in ``.gz``).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .._validation import check_choice

# IDX element type code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: Where Debian's ``dataset-fashion-mnist`` package installs the four files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "TASKLENS_FASHION_MNIST"

# Base names of the four files per split (the Debian package keeps the original names, gzipped);
# the dotted variants are another common spelling of the same files.
_STEMS = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


class IDXError(ValueError):
    """A file that is not a well-formed IDX file (the message names the file)."""


def _read_bytes(path: Path) -> bytes:
    gz = path.name.endswith(".gz")
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise IDXError(f"{path}: not a readable gzip file ({exc}); the file is truncated or not gzip-compressed "
                       "(rename it without '.gz' if it is plain IDX)") from None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip ``.gz``) into a numpy array in native byte order.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Names ending in ``.gz`` are decompressed.

    Returns
    -------
    numpy.ndarray
        Shape given by the file's dimension sizes; dtype uint8, int8, int16, int32, float32 or float64
        for type codes 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    IDXError (a ValueError)
        Bad magic number, unknown type code, truncated header or data, or bytes left over after the data.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"read_idx: no such file: {path}")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"{path}: truncated IDX file: {len(raw)} byte(s), the magic number alone takes 4")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(f"{path}: not an IDX file: magic number {raw[:4].hex()} does not start with 0000 "
                       "(is it gzip-compressed without a '.gz' name, or another format?)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{path}: not an IDX file: unknown element type code 0x{code:02X} (known: {known})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated IDX header: {ndim} dimension(s) need {header} bytes, file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have < expected:
        raise IDXError(f"{path}: truncated IDX data: shape {shape} of {dtype.newbyteorder('=')} needs "
                       f"{expected} bytes after the header, file has {have}")
    if have > expected:
        raise IDXError(f"{path}: size mismatch: shape {shape} of {dtype.newbyteorder('=')} needs {expected} bytes "
                       f"after the header, file has {have} ({have - expected} extra); wrong dimensions in the header?")
    data = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def _find(directory: Path, split: str, kind: str) -> Path:
    tried = []
    for stem in _STEMS[(split, kind)]:
        for name in (stem + ".gz", stem):
            p = directory / name
            tried.append(name)
            if p.is_file():
                return p
    raise FileNotFoundError(f"{directory}: no {split} {kind} file; looked for {', '.join(tried)}")


def load_mnist_family(path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load one split of an MNIST-format data set (MNIST, Fashion-MNIST, KMNIST, ...) from a directory.

    Parameters
    ----------
    path : str or os.PathLike
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each plain or ``.gz``; the dotted
        spelling ``train-images.idx3-ubyte`` is accepted too).
    split : {"train", "test"}

    Returns
    -------
    images : numpy.ndarray, uint8, shape (N, H, W)
    labels : numpy.ndarray, int64, shape (N,)
    """
    check_choice(split, "split", ("train", "test"))
    directory = Path(os.fspath(path))
    if not directory.is_dir():
        raise FileNotFoundError(f"path: {directory} is not a directory")
    img_path, lab_path = _find(directory, split, "images"), _find(directory, split, "labels")
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(f"{img_path}: expected uint8 images of shape (N, H, W), got shape {images.shape}, "
                       f"dtype {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXError(f"{lab_path}: expected uint8 labels of shape (N,), got shape {labels.shape}, "
                       f"dtype {labels.dtype}")
    if labels.shape[0] != images.shape[0]:
        raise IDXError(f"{lab_path}: {labels.shape[0]} labels for {images.shape[0]} images in {img_path}")
    return images, labels.astype(np.int64)


def fashion_mnist_dir(path=None) -> Path:
    """The Fashion-MNIST directory: ``path``, else ``$TASKLENS_FASHION_MNIST``, else the Debian location."""
    if path is not None:
        return Path(os.fspath(path))
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else Path(FASHION_MNIST_DIR)


def load_fashion_mnist(split: str = "train", path=None) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST (Xiao et al. 2017): 60000 train / 10000 test 28×28 grayscale images, 10 classes.

    Parameters
    ----------
    split : {"train", "test"}
    path : str or os.PathLike, optional
        Directory holding the four IDX files (see :func:`load_mnist_family`). Default: the environment
        variable ``TASKLENS_FASHION_MNIST`` if set, else ``/usr/share/datasets/fashion-mnist``, where
        Debian's package ``dataset-fashion-mnist`` installs them.

    Returns
    -------
    images : numpy.ndarray, uint8, shape (N, 28, 28)
        0 is background, 255 full ink.
    labels : numpy.ndarray, int64, shape (N,)
        Codes 0..9; names in :data:`FASHION_MNIST_CLASSES`.
    """
    check_choice(split, "split", ("train", "test"))
    directory = fashion_mnist_dir(path)
    hint = ("install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass path= (or set "
            f"${FASHION_MNIST_ENV}) to a directory holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    if not directory.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST not found: {directory} is not a directory; {hint}")
    try:
        images, labels = load_mnist_family(directory, split)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Fashion-MNIST not found: {exc}; {hint}") from None
    if images.shape[1:] != (28, 28):
        raise IDXError(f"{directory}: Fashion-MNIST images are 28x28, got {images.shape[1:]}")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise IDXError(f"{directory}: Fashion-MNIST label {labels.max()} out of range 0..9")
    return images, labels
