"""Labelled images from a folder tree ``root/<class>/<image>`` (read with Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .domains import ImageDomain

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# Pillow modes holding 8-bit samples that convert losslessly to "L" or "RGB".
_GRAY_MODES = ("1", "L", "LA", "La")
_COLOR_MODES = ("P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def _class_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _image_files(folder: Path, extensions) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions)


def _parse_size(size):
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise TypeError(f"size: expected None, an int or a pair (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive sizes, got {size!r}")
    return h, w


def load_image_folder(root, *, size=None, channels: str | int = "auto", extensions=IMAGE_EXTENSIONS,
                      name: str | None = None) -> ImageDomain:
    """Read every image under ``root/<class>/`` into one labelled set.

    Parameters
    ----------
    root : str or os.PathLike
        A directory whose sub-directories are the classes (sorted by name: class code ``i`` is the
        ``i``-th name). Hidden entries and files with other extensions are skipped; files are read in
        name order.
    size : None, int or (height, width)
        ``None``: all images must already share one size (else an error names two files that differ).
        Otherwise every image is resized to ``size`` with Pillow's bilinear filter (which low-pass
        filters when shrinking).
    channels : "auto", 1 or 3
        ``"auto"``: 1 channel when every image is grayscale, else 3 (gray images repeated). Alpha is
        dropped; palette images are expanded. Only 8-bit images are read (16-bit and float modes are
        rejected).
    extensions : iterable of str
        Lower-case file name suffixes to read.
    name : str, optional
        The domain's name; default the folder's name.

    Returns
    -------
    ImageDomain
        ``x`` uint8 ``(N, C, H, W)``, ``y`` int64 class codes, ``classes`` the folder names.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(os.fspath(root))
    if not root.is_dir():
        raise FileNotFoundError(f"root: {root} is not a directory")
    if channels not in ("auto", 1, 3):
        raise ValueError(f"channels: expected 'auto', 1 or 3, got {channels!r}")
    hw = _parse_size(size)
    extensions = tuple(e.lower() for e in extensions)
    classes = _class_dirs(root)
    if not classes:
        raise ValueError(f"root: {root} has no class sub-directories (expected root/<class>/<image>)")
    files, labels = [], []
    for code, folder in enumerate(classes):
        found = _image_files(folder, extensions)
        if not found:
            raise ValueError(f"root: class folder {folder} holds no images with extensions {', '.join(extensions)}")
        files += found
        labels += [code] * len(found)

    images, gray = [], []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                mode = im.mode
                if mode in _GRAY_MODES:
                    im = im.convert("L")
                elif mode in _COLOR_MODES:
                    im = im.convert("RGB")
                else:
                    raise ValueError(f"{f}: Pillow mode {mode!r} is not an 8-bit gray or colour image")
                if hw is not None and im.size != (hw[1], hw[0]):
                    im = im.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"{f}: cannot read the image ({exc})") from None
        if images and arr.shape[:2] != images[0].shape[:2]:
            raise ValueError(f"images differ in size: {files[0]} is {images[0].shape[1]}x{images[0].shape[0]}, "
                             f"{f} is {arr.shape[1]}x{arr.shape[0]} (width x height); pass size= to resize them")
        images.append(arr)
        gray.append(arr.ndim == 2)

    c = (1 if all(gray) else 3) if channels == "auto" else channels
    x = np.empty((len(images), c, *images[0].shape[:2]), dtype=np.uint8)
    for i, arr in enumerate(images):
        if arr.ndim == 2:
            x[i] = arr[None]
        elif c == 3:
            x[i] = arr.transpose(2, 0, 1)
        else:  # BT.601 luma, as Pillow's RGB -> L conversion
            rgb = arr.astype(np.float64)
            x[i, 0] = np.clip(np.rint(rgb @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    return ImageDomain(name if name is not None else root.name, x, np.asarray(labels, dtype=np.int64),
                       tuple(p.name for p in classes))
