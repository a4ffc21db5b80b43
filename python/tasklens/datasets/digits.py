"""A synthetic -> handwritten digits pair that builds offline.

- ``synthetic``: digits rendered from the DejaVu fonts that ship with matplotlib (12 faces: Sans, Sans
  Mono and Serif, each regular / bold / oblique or italic / bold oblique or bold italic), at random
  stroke width, height, position and rotation, on a random dark background with a random bright
  foreground and light pixel noise: the analogue of Syn Numbers (Ganin et al. 2016, Syn Numbers -> SVHN).
- ``handwritten``: scikit-learn's bundled UCI handwritten digits (1797 images, 8×8, values 0..16),
  upsampled bilinearly to ``size`` × ``size`` and scaled to 0..255.

Both are white-on-black, one channel, uint8.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from .domains import DomainPair, ImageDomain
from .images import resize

DIGIT_CLASSES = tuple(str(d) for d in range(10))

DEJAVU_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
)

_BANK = 64            # glyph bank canvas, pixels per side
_SUPER = 2            # supersampling of the bank's rasteriser and of the renderer
_GLYPH_HEIGHT = 0.6   # glyph bounding-box height as a fraction of the bank canvas
_STROKES = (-2, 0, 3, 6)  # erosion (<0) / dilation (>0) radii on the supersampled bank canvas


def _disk(r: int) -> np.ndarray:
    a = np.arange(-r, r + 1)
    return (a[:, None] ** 2 + a[None, :] ** 2) <= r * r


@functools.lru_cache(maxsize=1)
def glyph_bank() -> np.ndarray:
    """Coverage maps of every digit in every font and stroke variant, float32 ``(12, 4, 10, 64, 64)``.

    Each glyph outline (matplotlib ``TextPath``, curves flattened) is centred and scaled so that its
    bounding-box height is 0.6 of the canvas, filled by the even-odd rule at 2× supersampling, eroded or
    dilated by a disk (stroke variants ``_STROKES``), then averaged down to 64×64 coverage in [0, 1].
    Built once per process (about a second).
    """
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    from scipy import ndimage

    fonts_dir = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    n = _BANK * _SUPER
    centres = (np.arange(n) + 0.5) / _SUPER
    grid = np.stack(np.meshgrid(centres, centres, indexing="xy"), axis=-1).reshape(-1, 2)
    bank = np.zeros((len(DEJAVU_FONTS), len(_STROKES), 10, _BANK, _BANK), dtype=np.float32)
    for f, font in enumerate(DEJAVU_FONTS):
        prop = FontProperties(fname=os.path.join(fonts_dir, font))
        for d in range(10):
            # contours with the Bezier curves flattened; the box is that of the outline, not of control points
            polys = TextPath((0.0, 0.0), str(d), size=1.0, prop=prop).to_polygons(closed_only=True)
            allv = np.concatenate(polys)
            lo, hi = allv.min(axis=0), allv.max(axis=0)
            scale = _GLYPH_HEIGHT * _BANK / (hi[1] - lo[1])
            centre = (lo + hi) / 2
            # bank coordinates: x right, y down (image rows); glyph y points up, so flip it.
            flip = np.array([scale, -scale])
            mask = _fill_even_odd([(v - centre) * flip + _BANK / 2 for v in polys], grid).reshape(n, n)
            for s, r in enumerate(_STROKES):
                m = mask
                if r > 0:
                    m = ndimage.binary_dilation(mask, structure=_disk(r))
                elif r < 0:
                    m = ndimage.binary_erosion(mask, structure=_disk(-r))
                bank[f, s, d] = m.reshape(_BANK, _SUPER, _BANK, _SUPER).mean(axis=(1, 3))
    edge = np.concatenate([bank[..., 0, :], bank[..., -1, :], bank[..., :, 0], bank[..., :, -1]], axis=-1)
    if edge.any():  # the renderer relies on empty borders (see render_digits)
        raise RuntimeError("glyph bank: a glyph touches the canvas border")
    bank.setflags(write=False)
    return bank


def _fill_even_odd(polygons, points: np.ndarray) -> np.ndarray:
    """Points inside closed ``polygons`` under the even-odd rule (XOR over the contours): holes stay open."""
    from matplotlib.path import Path

    inside = np.zeros(len(points), dtype=bool)
    for poly in polygons:
        inside ^= Path(poly).contains_points(points)
    return inside


def render_digits(labels, *, seed, size: int = 28, height=(0.55, 0.9), max_rotation: float = 15.0,
                  noise: float = 0.04, chunk: int = 2048) -> np.ndarray:
    """Render digits ``labels`` (ints 0..9) from the DejaVu fonts as uint8 ``(N, 1, size, size)``.

    Per image, drawn from ``numpy.random.default_rng(seed)``: font face (12) and stroke variant (4)
    uniformly; height of the outline's bounding box (before the stroke variant thins or thickens it)
    uniform in ``height`` (fractions of ``size``); rotation uniform in
    ±``max_rotation`` degrees; centre shifted uniformly while the box stays inside the frame;
    background level uniform in [0, 0.2], foreground in [0.7, 1]; Gaussian pixel noise of standard
    deviation uniform in [0, ``noise``]. Rendering samples the glyph bank bilinearly at 2× and averages.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"labels: expected a 1-D array of digits 0..9, got shape {labels.shape}, dtype {labels.dtype}")
    size = int(size)
    if size < 4:
        raise ValueError(f"size: expected an image side of at least 4 pixels, got {size}")
    lo_h, hi_h = float(height[0]), float(height[1])
    if not 0 < lo_h <= hi_h <= 1:
        raise ValueError(f"height: expected 0 < low <= high <= 1 (fractions of the image side), got {height!r}")
    bank = glyph_bank()
    flat_all = bank.reshape(-1)
    n = labels.shape[0]
    rng = np.random.default_rng(seed)
    font = rng.integers(0, bank.shape[0], size=n)
    stroke = rng.integers(0, bank.shape[1], size=n)
    frac = rng.uniform(lo_h, hi_h, size=n)
    theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation, size=n))
    slack = (1.0 - frac) / 2.0 * size  # how far the centre may move and keep the box's height inside
    shift = rng.uniform(-1.0, 1.0, size=(n, 2)) * slack[:, None] * 0.8
    bg = rng.uniform(0.0, 0.2, size=n)
    fg = rng.uniform(0.7, 1.0, size=n)
    sigma = rng.uniform(0.0, noise, size=n)
    index = (font * bank.shape[1] + stroke) * 10 + labels.astype(np.int64)

    s2 = size * _SUPER
    q = (np.arange(s2, dtype=np.float32) + 0.5) / _SUPER - size / 2.0  # output pixel centres, origin at middle
    out = np.empty((n, 1, size, size), dtype=np.uint8)
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        m = sl.stop - sl.start
        # inverse map: bank = R(-theta) (q - shift) / scale + centre, scale = output px per bank px
        scale = (frac[sl] * size / (_GLYPH_HEIGHT * _BANK)).astype(np.float32)
        c, sn = np.cos(theta[sl]).astype(np.float32), np.sin(theta[sl]).astype(np.float32)
        dx = q[None, None, :] - shift[sl, 0, None, None].astype(np.float32)
        dy = q[None, :, None] - shift[sl, 1, None, None].astype(np.float32)
        bx = (c[:, None, None] * dx + sn[:, None, None] * dy) / scale[:, None, None] + _BANK / 2 - 0.5
        by = (-sn[:, None, None] * dx + c[:, None, None] * dy) / scale[:, None, None] + _BANK / 2 - 0.5
        # The bank's border rows and columns are empty (glyphs fill the middle 0.6), so clamping the
        # coordinates into the canvas reads zeros for every point outside the glyph's box.
        np.clip(bx, 0.0, _BANK - 1.001, out=bx)
        np.clip(by, 0.0, _BANK - 1.001, out=by)
        x0, y0 = bx.astype(np.int32), by.astype(np.int32)
        fx, fy = bx - x0, by - y0
        i00 = (index[sl].astype(np.int32) * (_BANK * _BANK))[:, None, None] + y0 * _BANK + x0
        v00, v01 = flat_all[i00], flat_all[i00 + 1]
        v10, v11 = flat_all[i00 + _BANK], flat_all[i00 + _BANK + 1]
        top = v00 + (v01 - v00) * fx
        cov = top + (v10 + (v11 - v10) * fx - top) * fy
        cov = cov.reshape(m, size, _SUPER, size, _SUPER).mean(axis=(2, 4))
        img = bg[sl, None, None] + (fg[sl] - bg[sl])[:, None, None] * cov
        img = img + rng.standard_normal(img.shape).astype(np.float32) * sigma[sl, None, None]
        out[sl, 0] = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return out


def load_handwritten_digits(size: int = 28) -> ImageDomain:
    """scikit-learn's handwritten digits (8×8, 0..16) upsampled bilinearly to ``size`` × ``size``, uint8 0..255."""
    from sklearn.datasets import load_digits

    size = int(size)
    if size < 1:
        raise ValueError(f"size: expected a positive image side, got {size}")
    d = load_digits()
    x = resize(d.images.astype(np.float64) / 16.0, size)
    x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)[:, None]
    return ImageDomain("handwritten", x, d.target.astype(np.int64), DIGIT_CLASSES)


def load_digits_pair(*, n_synthetic: int = 10000, seed: int = 0, size: int = 28) -> DomainPair:
    """Synthetic font digits (source) and scikit-learn's handwritten digits (target), both ``size`` × ``size``.

    Parameters
    ----------
    n_synthetic : int
        Number of rendered digits; labels are balanced (``n_synthetic // 10`` or one more per class) and
        shuffled.
    seed : int
        Seeds the labels' order and every rendering choice (see :func:`render_digits`).
    size : int
        Image side in pixels.

    Returns
    -------
    DomainPair
        ``pair.source`` / ``pair.synthetic`` and ``pair.target`` / ``pair.handwritten``: each an
        :class:`ImageDomain` with ``x`` uint8 ``(N, 1, size, size)`` and ``y`` int64 codes 0..9
        (1797 handwritten images).
    """
    if isinstance(n_synthetic, bool) or not isinstance(n_synthetic, (int, np.integer)) or n_synthetic < 1:
        raise ValueError(f"n_synthetic: expected a positive integer, got {n_synthetic!r}")
    ss = np.random.SeedSequence(int(seed))
    label_seed, render_seed = ss.spawn(2)
    y = np.random.default_rng(label_seed).permutation(np.arange(int(n_synthetic)) % 10).astype(np.int64)
    x = render_digits(y, seed=render_seed, size=size)
    return DomainPair(ImageDomain("synthetic", x, y, DIGIT_CLASSES), load_handwritten_digits(size))
