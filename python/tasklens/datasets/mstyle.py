"""MNIST-M-style colour blending of grayscale images, and Fashion-M.

Ganin et al., "Domain-Adversarial Training of Neural Networks" (JMLR 2016), MNIST-M: each digit is
blended over a patch cut at random from a colour photograph, ``out_ijk = |I1_ijk - I2_ijk|`` where
``I1`` is the grayscale image (repeated over the three channels) and ``I2`` the RGB patch. The CDLM
paper (§4.1, "Fashion") builds Fashion-M from Fashion-MNIST "following the protocol in [7]". Both
used BSDS500 photographs; here the photographs must ship offline: scikit-learn's two sample images
(``china``, ``flower``) and, when scikit-image is importable, its bundled colour photographs
``astronaut``, ``chelsea``, ``coffee`` and ``rocket``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._validation import _as_supported, describe, is_torch
from .idx import load_fashion_mnist
from .images import check_images

SKLEARN_PHOTOS = ("china", "flower")
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")

_photo_cache: dict[str, np.ndarray] = {}


def _skimage_available() -> bool:
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True


def default_photo_names() -> tuple[str, ...]:
    """Names used when ``photos=None``: scikit-learn's two, plus scikit-image's four if it is importable.

    Outputs of :func:`to_mstyle` depend on this set; pass ``photos=SKLEARN_PHOTOS`` (or any fixed list)
    for results that do not depend on whether scikit-image is installed.
    """
    return SKLEARN_PHOTOS + (SKIMAGE_PHOTOS if _skimage_available() else ())


def load_photo(name: str) -> np.ndarray:
    """One bundled photograph by name as uint8 ``(H, W, 3)`` (read once, then cached in memory)."""
    if name in _photo_cache:
        return _photo_cache[name]
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    elif name in SKIMAGE_PHOTOS:
        if not _skimage_available():
            raise ImportError(f"photos: {name!r} is one of scikit-image's bundled images; install scikit-image "
                              f"or use {SKLEARN_PHOTOS}")
        import skimage.data

        img = getattr(skimage.data, name)()
    else:
        known = ", ".join(map(repr, SKLEARN_PHOTOS + SKIMAGE_PHOTOS))
        raise ValueError(f"photos: unknown photograph {name!r}; known names: {known}")
    img = np.ascontiguousarray(img, dtype=np.uint8)
    img.setflags(write=False)
    _photo_cache[name] = img
    return img


def _as_photo(p: Any, i: int) -> np.ndarray:
    if isinstance(p, str):
        return load_photo(p)
    p = _as_supported(p, f"photos[{i}]")
    if is_torch(p):
        p = p.detach().cpu().numpy()
    if p.ndim == 2:
        p = np.repeat(p[:, :, None], 3, axis=2)
    if p.ndim != 3 or p.shape[2] != 3:
        raise ValueError(f"photos[{i}]: expected an RGB photograph (H, W, 3) or a gray one (H, W), got {describe(p)}")
    if p.dtype == np.uint8:
        return np.ascontiguousarray(p)
    if p.dtype.kind != "f":
        raise TypeError(f"photos[{i}]: expected uint8 or floating pixels in [0, 1], got {describe(p)}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError(f"photos[{i}]: floating pixels must be finite and in [0, 1] ({describe(p)})")
    return np.rint(p * 255.0).astype(np.uint8)


def _photos(photos, h: int, w: int) -> list[np.ndarray]:
    if photos is None:
        photos = default_photo_names()
    if isinstance(photos, str) or (hasattr(photos, "ndim") and photos.ndim in (2, 3)):
        photos = [photos]
    out = [_as_photo(p, i) for i, p in enumerate(photos)]
    if not out:
        raise ValueError("photos: expected at least one photograph, got an empty list")
    for i, p in enumerate(out):
        if p.shape[0] < h or p.shape[1] < w:
            raise ValueError(f"photos[{i}]: photograph {p.shape[:2]} is smaller than the images ({h}, {w})")
    return out


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise TypeError("seed: pass an int (or a numpy SeedSequence / Generator); results must be reproducible")
    return np.random.default_rng(seed)


def _crop_plan(rng: np.random.Generator, n: int, photos: Sequence[np.ndarray], h: int, w: int):
    """Photograph index and top-left corner of each patch, drawn from ``rng`` in a fixed order."""
    hp = np.array([p.shape[0] for p in photos], dtype=np.int64)
    wp = np.array([p.shape[1] for p in photos], dtype=np.int64)
    k = rng.integers(0, len(photos), size=n)
    top = rng.integers(0, hp[k] - h + 1) if n else np.zeros(0, np.int64)
    left = rng.integers(0, wp[k] - w + 1) if n else np.zeros(0, np.int64)
    return k, top, left


def _gather(photos, k, top, left, h: int, w: int, chunk: int = 4096):
    """Yield (start, patches (n, H, W, 3) uint8) for chunks of the plan."""
    flat = np.concatenate([p.reshape(-1, 3) for p in photos])
    sizes = np.array([p.shape[0] * p.shape[1] for p in photos], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    wp = np.array([p.shape[1] for p in photos], dtype=np.int64)
    rows, cols = np.arange(h, dtype=np.int64), np.arange(w, dtype=np.int64)
    for s in range(0, len(k), chunk):
        kk = k[s:s + chunk]
        width = wp[kk][:, None, None]
        index = (base[kk][:, None, None] + (top[s:s + chunk, None] + rows)[:, :, None] * width
                 + (left[s:s + chunk, None] + cols)[:, None, :])
        yield s, flat[index]


def random_patches(n: int, size, *, seed, photos=None) -> np.ndarray:
    """The ``n`` RGB patches :func:`to_mstyle` blends with for the same ``seed`` and ``photos``.

    Returns uint8 ``(n, 3, H, W)``; ``size`` is ``(H, W)`` or an int. Photograph ``k`` is drawn
    uniformly, then the top-left corner uniformly among the positions where the patch fits. All ``n``
    photograph indices are drawn first, so patch ``i`` depends on ``n`` as well as on the seed.
    """
    h, w = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    ph = _photos(photos, h, w)
    k, top, left = _crop_plan(_rng(seed), int(n), ph, h, w)
    out = np.empty((int(n), 3, h, w), dtype=np.uint8)
    for s, patch in _gather(ph, k, top, left, h, w):
        out[s:s + len(patch)] = patch.transpose(0, 3, 1, 2)
    return out


def to_mstyle(images: Any, *, seed, photos=None):
    """Blend grayscale images with random crops of colour photographs (MNIST-M protocol, Ganin et al. 2016).

    For image ``x`` (values ``x_ij`` in 0..255) and a patch ``p`` cut at random from one photograph,
    ``out_cij = |x_ij - p_cij|`` for each RGB channel ``c``: dark background pixels take the photograph's
    colours, bright strokes take their inverse.

    Parameters
    ----------
    images : array (N, H, W) or (N, 1, H, W), uint8 or floating in [0, 1]; numpy or torch
        Floating images are scaled by 255; the blend is rounded to the nearest integer.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Chooses the photograph and crop position of each image (see :func:`random_patches`); equal
        seeds and photographs give identical outputs.
    photos : sequence of names or arrays, optional
        Names from :data:`SKLEARN_PHOTOS` / :data:`SKIMAGE_PHOTOS`, or RGB ``(H, W, 3)`` / gray ``(H, W)``
        arrays (uint8 or floats in [0, 1]) at least as large as the images. Default:
        :func:`default_photo_names`.

    Returns
    -------
    uint8 array (N, 3, H, W), numpy or torch (same device) like ``images``.
    """
    x = check_images(images, "images", min_images=0, channels=1)
    torch_device = x.device if is_torch(x) else None
    if torch_device is not None:
        x = x.detach().cpu().numpy()
    x = x[:, 0]
    n, h, w = x.shape
    ph = _photos(photos, h, w)
    k, top, left = _crop_plan(_rng(seed), n, ph, h, w)
    out = np.empty((n, 3, h, w), dtype=np.uint8)
    for s, patch in _gather(ph, k, top, left, h, w):
        xs = x[s:s + len(patch), None]
        p = patch.transpose(0, 3, 1, 2)
        if xs.dtype == np.uint8:
            out[s:s + len(patch)] = np.abs(xs.astype(np.int16) - p.astype(np.int16)).astype(np.uint8)
        else:
            out[s:s + len(patch)] = np.rint(np.abs(xs.astype(np.float32) * np.float32(255.0)
                                                   - p.astype(np.float32))).astype(np.uint8)
    if torch_device is not None:
        import torch

        return torch.from_numpy(out).to(torch_device)
    return out


def load_fashion_m(split: str = "train", *, seed: int = 0, path=None, photos=None):
    """Fashion-M: Fashion-MNIST (:func:`~tasklens.datasets.load_fashion_mnist`) through :func:`to_mstyle`.

    The train and test splits draw from independent streams, ``SeedSequence(seed, spawn_key=(0,))``
    and ``(1,)``, so the same ``seed`` never reuses a crop sequence across splits. Nothing is cached.

    Returns
    -------
    images : numpy.ndarray, uint8, shape (N, 3, 28, 28)
    labels : numpy.ndarray, int64, shape (N,)
    """
    images, labels = load_fashion_mnist(split, path)
    return to_mstyle(images, seed=_split_stream(seed, split), photos=photos), labels


def _split_stream(seed, split: str) -> np.random.SeedSequence:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    return np.random.SeedSequence(int(seed), spawn_key=(0 if split == "train" else 1,))


def load_fashion_pair(split: str = "train", *, seed: int = 0, path=None, photos=None):
    """Fashion-MNIST (``"fashion"``, source) and Fashion-M (``"fashion-m"``, target) for one split.

    Both domains hold the same Fashion-MNIST images in the same order (as MNIST-M is built from MNIST's
    own images, Ganin et al. 2016): ``fashion`` gray uint8 ``(N, 1, 28, 28)``, ``fashion-m`` the
    :func:`load_fashion_m` blend, uint8 ``(N, 3, 28, 28)``. Use :meth:`DomainPair.swapped` for
    Fashion-M -> Fashion.
    """
    from .domains import DomainPair, ImageDomain
    from .idx import FASHION_MNIST_CLASSES

    images, labels = load_fashion_mnist(split, path)
    blended = to_mstyle(images, seed=_split_stream(seed, split), photos=photos)
    return DomainPair(ImageDomain("fashion", images[:, None], labels, FASHION_MNIST_CLASSES),
                      ImageDomain("fashion-m", blended, labels.copy(), FASHION_MNIST_CLASSES))
