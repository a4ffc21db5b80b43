"""Image data layer: IDX reader, Fashion-MNIST, MNIST-M-style blending, digits pair, image helpers."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from tasklens.datasets import idx as idxmod
from tasklens.datasets import (FASHION_MNIST_CLASSES, IDXError, load_fashion_mnist, load_mnist_family, read_idx)

# ---------------------------------------------------------------------------------------------- IDX files

_CODES = {np.uint8: (0x08, "B"), np.int8: (0x09, "b"), np.int16: (0x0B, "h"), np.int32: (0x0C, "i"),
          np.float32: (0x0D, "f"), np.float64: (0x0E, "d")}


def idx_bytes(values: np.ndarray, dtype) -> bytes:
    """An IDX file written element by element with struct (independent of the reader's numpy path)."""
    code, fmt = _CODES[dtype]
    out = bytes([0, 0, code, values.ndim]) + b"".join(struct.pack(">I", s) for s in values.shape)
    return out + b"".join(struct.pack(">" + fmt, v) for v in values.ravel().tolist())


def write(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("dtype", list(_CODES))
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (0, 2)])
def test_read_idx_every_dtype(tmp_path, dtype, suffix, shape):
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "f":
        values = rng.normal(scale=1e3, size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    p = write(tmp_path / f"a.idx{suffix}", idx_bytes(values, dtype))
    got = read_idx(p)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert got.shape == shape
    np.testing.assert_array_equal(got, values)


def test_read_idx_known_bytes(tmp_path):
    # 2x2 int16 big-endian: 1, -2, 258, 32767 written out by hand.
    raw = bytes.fromhex("00000B02" "00000002" "00000002" "0001" "FFFE" "0102" "7FFF")
    got = read_idx(write(tmp_path / "h.idx", raw))
    np.testing.assert_array_equal(got, np.array([[1, -2], [258, 32767]], dtype=np.int16))


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_bad_files(tmp_path, suffix):
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.uint8)
    cases = {
        "short": (good[:3], "magic number alone"),
        "header": (good[:9], "truncated IDX header"),
        "data": (good[:-1], "truncated IDX data"),
        "extra": (good + b"\x00\x00", "size mismatch"),
        "magic": (b"\x01\x02" + good[2:], "not an IDX file"),
        "code": (b"\x00\x00\x07" + good[3:], "unknown element type code 0x07"),
        "dims": (bytes([0, 0, 8, 2]) + good[4:], "size mismatch"),  # header says 2-D, data is 3-D
    }
    for name, (raw, message) in cases.items():
        p = write(tmp_path / f"{name}.idx{suffix}", raw)
        with pytest.raises(IDXError, match=message) as info:
            read_idx(p)
        assert str(p) in str(info.value)
    p = write(tmp_path / "png.idx", b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(IDXError, match="not an IDX file"):
        read_idx(p)


def test_read_idx_corrupt_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32), np.int32))
    p = tmp_path / "cut.idx.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(IDXError, match="gzip") as info:
        read_idx(p)
    assert str(p) in str(info.value)
    plain = tmp_path / "plain.idx.gz"  # plain bytes under a .gz name
    plain.write_bytes(idx_bytes(np.arange(3, dtype=np.uint8), np.uint8))
    with pytest.raises(IDXError, match="gzip"):
        read_idx(plain)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_idx(tmp_path / "missing.idx")


def fake_mnist(directory: Path, n_train=5, n_test=3, hw=(28, 28), gz=True, dotted=False, classes=10):
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, *hw)).astype(np.uint8)
        y = rng.integers(0, classes, size=n).astype(np.uint8)
        for kind, arr in (("images", x), ("labels", y)):
            stem = idxmod._STEMS[(split, kind)][1 if dotted else 0]
            write(directory / (stem + (".gz" if gz else "")), idx_bytes(arr, np.uint8))
        out[split] = (x, y)
    return out


@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (False, True)])
def test_load_mnist_family_from_any_directory(tmp_path, gz, dotted):
    truth = fake_mnist(tmp_path / "d", hw=(5, 6), gz=gz, dotted=dotted)
    for split in ("train", "test"):
        x, y = load_mnist_family(tmp_path / "d", split)
        assert x.dtype == np.uint8 and y.dtype == np.int64
        np.testing.assert_array_equal(x, truth[split][0])
        np.testing.assert_array_equal(y, truth[split][1])


def test_load_mnist_family_errors(tmp_path):
    fake_mnist(tmp_path / "d")
    with pytest.raises(ValueError, match="split"):
        load_mnist_family(tmp_path / "d", "validation")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_mnist_family(tmp_path / "nothing", "train")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist_family(tmp_path / "d", "test")
    # labels of the wrong length
    write(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(7, np.uint8), np.uint8))
    with pytest.raises(IDXError, match="7 labels for 3 images"):
        load_mnist_family(tmp_path / "d", "test")
    # images that are not (N, H, W) uint8
    write(tmp_path / "d" / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((5, 4), np.int16), np.int16))
    with pytest.raises(IDXError, match="expected uint8 images"):
        load_mnist_family(tmp_path / "d", "train")


def test_load_fashion_mnist_path_env_and_missing(tmp_path, monkeypatch):
    truth = fake_mnist(tmp_path / "fm")
    x, y = load_fashion_mnist("test", path=tmp_path / "fm")
    np.testing.assert_array_equal(x, truth["test"][0])
    monkeypatch.setenv("TASKLENS_FASHION_MNIST", str(tmp_path / "fm"))
    x, y = load_fashion_mnist("train")
    np.testing.assert_array_equal(y, truth["train"][1])
    monkeypatch.setenv("TASKLENS_FASHION_MNIST", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*path="):
        load_fashion_mnist("train", path=tmp_path / "empty")
    fake_mnist(tmp_path / "small", hw=(8, 8))
    with pytest.raises(IDXError, match="28x28"):
        load_fashion_mnist("train", path=tmp_path / "small")
    fake_mnist(tmp_path / "many", classes=12, n_train=200)
    with pytest.raises(IDXError, match="out of range"):
        load_fashion_mnist("train", path=tmp_path / "many")


needs_fashion = pytest.mark.skipif(
    not Path(idxmod.FASHION_MNIST_DIR).is_dir(),
    reason=f"{idxmod.FASHION_MNIST_DIR} absent: run `apt-get install dataset-fashion-mnist` (CI installs it)")


@needs_fashion
def test_load_fashion_mnist_real_files(monkeypatch):
    monkeypatch.delenv("TASKLENS_FASHION_MNIST", raising=False)
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = load_fashion_mnist(split)
        assert x.shape == (n, 28, 28) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int64
        # Fashion-MNIST is balanced: 6000 / 1000 images per class.
        np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))
        assert x.max() == 255 and x.min() == 0
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"


@needs_fashion
def test_load_fashion_m_real_files(monkeypatch):
    from tasklens.datasets import load_fashion_m

    monkeypatch.delenv("TASKLENS_FASHION_MNIST", raising=False)
    x, y = load_fashion_m("test", seed=3, photos=("china", "flower"))
    gray, labels = load_fashion_mnist("test")
    assert x.shape == (10000, 3, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, labels)
    patches = random_patches(10000, 28, seed=np.random.SeedSequence(3, spawn_key=(1,)), photos=("china", "flower"))
    np.testing.assert_array_equal(x, np.abs(gray[:, None].astype(np.int16) - patches.astype(np.int16)))


def test_load_fashion_pair_on_fake_files(tmp_path):
    from tasklens.datasets import load_fashion_m, load_fashion_pair

    truth = fake_mnist(tmp_path / "fm", n_train=12, n_test=7)
    pair = load_fashion_pair("train", seed=2, path=tmp_path / "fm", photos=SKLEARN_PHOTOS)
    assert (pair.source.name, pair.target.name) == ("fashion", "fashion-m")
    np.testing.assert_array_equal(pair.source.x[:, 0], truth["train"][0])
    assert pair.target.x.shape == (12, 3, 28, 28)
    np.testing.assert_array_equal(pair.target.y, truth["train"][1])
    x, _ = load_fashion_m("train", seed=2, path=tmp_path / "fm", photos=SKLEARN_PHOTOS)
    np.testing.assert_array_equal(pair.target.x, x)
    # train and test use different crop streams for the same seed
    test_x, _ = load_fashion_m("test", seed=2, path=tmp_path / "fm", photos=SKLEARN_PHOTOS)
    zeros = np.zeros((7, 28, 28), np.uint8)
    train_patches = random_patches(7, 28, seed=np.random.SeedSequence(2, spawn_key=(0,)), photos=SKLEARN_PHOTOS)
    test_patches = random_patches(7, 28, seed=np.random.SeedSequence(2, spawn_key=(1,)), photos=SKLEARN_PHOTOS)
    assert not np.array_equal(train_patches, test_patches)
    np.testing.assert_array_equal(test_x, np.abs(truth["test"][0][:, None].astype(int) - test_patches))
    assert to_mstyle(zeros, seed=np.random.SeedSequence(2, spawn_key=(1,)), photos=SKLEARN_PHOTOS).shape == (7, 3, 28, 28)
    assert pair.swapped().source.name == "fashion-m"
    with pytest.raises(TypeError, match="seed"):
        load_fashion_m("train", seed=1.5, path=tmp_path / "fm")


# ------------------------------------------------------------------------------------- MNIST-M blending

from tasklens.datasets import (check_images, match_channels, random_patches, resize, to_float_images,  # noqa: E402,F401
                               to_mstyle, to_uint8_images)
from tasklens.datasets.mstyle import SKLEARN_PHOTOS, load_photo  # noqa: E402


def gray_batch(n=64, hw=(28, 28), seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *hw)).astype(np.uint8)


def find_crop(patch_hwc: np.ndarray, photos) -> list[tuple[int, int, int]]:
    """Every (photo, top, left) where patch_hwc sits in one of the photos (brute force on the first pixel)."""
    h, w, _ = patch_hwc.shape
    hits = []
    for k, p in enumerate(photos):
        ys, xs = np.nonzero(np.all(p[: p.shape[0] - h + 1, : p.shape[1] - w + 1] == patch_hwc[0, 0], axis=2))
        for y0, x0 in zip(ys, xs):
            if np.array_equal(p[y0:y0 + h, x0:x0 + w], patch_hwc):
                hits.append((k, int(y0), int(x0)))
    return hits


def test_to_mstyle_zero_images_give_photo_crops():
    photos = [load_photo(n) for n in SKLEARN_PHOTOS]
    out = to_mstyle(np.zeros((40, 28, 28), np.uint8), seed=5, photos=SKLEARN_PHOTOS)
    assert out.shape == (40, 3, 28, 28) and out.dtype == np.uint8
    for i in range(0, 40, 8):  # each blended zero image is an exact crop of a photograph
        assert find_crop(out[i].transpose(1, 2, 0), photos), f"image {i} is not a crop of the photographs"
    # both photographs are used
    used = {find_crop(out[i].transpose(1, 2, 0), photos)[0][0] for i in range(40)}
    assert used == {0, 1}


def test_to_mstyle_blend_formula_by_hand():
    x = gray_batch(16)
    out = to_mstyle(x, seed=11, photos=SKLEARN_PHOTOS)
    patches = to_mstyle(np.zeros_like(x), seed=11, photos=SKLEARN_PHOTOS)  # same seed: same crops
    np.testing.assert_array_equal(patches, random_patches(16, (28, 28), seed=11, photos=SKLEARN_PHOTOS))
    i, h, w = 3, 10, 17
    for c in range(3):
        assert int(out[i, c, h, w]) == abs(int(x[i, h, w]) - int(patches[i, c, h, w]))
    np.testing.assert_array_equal(out, np.abs(x[:, None].astype(np.int64) - patches.astype(np.int64)))
    # a white image gives the photograph's negative
    white = to_mstyle(np.full((16, 28, 28), 255, np.uint8), seed=11, photos=SKLEARN_PHOTOS)
    np.testing.assert_array_equal(white, 255 - patches)


def test_to_mstyle_seeds_floats_channels_torch():
    x = gray_batch(32)
    a = to_mstyle(x, seed=1, photos=SKLEARN_PHOTOS)
    np.testing.assert_array_equal(a, to_mstyle(x, seed=1, photos=SKLEARN_PHOTOS))
    b = to_mstyle(x, seed=2, photos=SKLEARN_PHOTOS)
    assert (a != b).mean() > 0.5
    # floats in [0, 1] and (N, 1, H, W) give the same result as uint8 (N, H, W)
    np.testing.assert_array_equal(to_mstyle(x[:, None] / 255.0, seed=1, photos=SKLEARN_PHOTOS), a)
    torch = pytest.importorskip("torch")
    t = to_mstyle(torch.from_numpy(x), seed=1, photos=SKLEARN_PHOTOS)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8
    np.testing.assert_array_equal(t.numpy(), a)
    # default photo set is reproducible too, and other image sizes work
    small = gray_batch(5, hw=(9, 13))
    d = to_mstyle(small, seed=0)
    assert d.shape == (5, 3, 9, 13)
    np.testing.assert_array_equal(d, to_mstyle(small, seed=0))


def test_to_mstyle_custom_photos_and_bad_input():
    photo = np.arange(40 * 50 * 3, dtype=np.int64).reshape(40, 50, 3) % 251
    photo = photo.astype(np.uint8)
    out = to_mstyle(np.zeros((6, 8, 8), np.uint8), seed=0, photos=[photo])
    for i in range(6):
        assert find_crop(out[i].transpose(1, 2, 0), [photo])
    gray_photo = to_mstyle(np.zeros((2, 8, 8), np.uint8), seed=0, photos=[np.full((20, 20), 0.5)])
    assert (gray_photo == 128).all()
    with pytest.raises(ValueError, match="images.*channel"):
        to_mstyle(np.zeros((2, 3, 8, 8), np.uint8), seed=0)
    with pytest.raises(ValueError, match=r"images.*\[0, 1\]"):
        to_mstyle(np.full((2, 8, 8), 2.0), seed=0)
    with pytest.raises(ValueError, match="images.*NaN"):
        to_mstyle(np.full((2, 8, 8), np.nan), seed=0)
    with pytest.raises(TypeError, match="images.*uint8"):
        to_mstyle(np.zeros((2, 8, 8), np.int32), seed=0)
    with pytest.raises(ValueError, match="images.*(N, C, H, W)"):
        to_mstyle(np.zeros((8, 8), np.uint8), seed=0)
    with pytest.raises(ValueError, match=r"photos\[0\].*smaller"):
        to_mstyle(np.zeros((2, 30, 30), np.uint8), seed=0, photos=[np.zeros((20, 40, 3), np.uint8)])
    with pytest.raises(ValueError, match="unknown photograph 'lena'"):
        to_mstyle(np.zeros((2, 8, 8), np.uint8), seed=0, photos=["lena"])
    with pytest.raises(ValueError, match="photos: expected at least one"):
        to_mstyle(np.zeros((2, 8, 8), np.uint8), seed=0, photos=[])
    with pytest.raises(TypeError, match="seed"):
        to_mstyle(np.zeros((2, 8, 8), np.uint8), seed=None)


# ----------------------------------------------------------------------------------------- digits pair

from tasklens.datasets.digits import glyph_bank, load_digits_pair, render_digits  # noqa: E402


def test_glyph_bank_fonts_and_holes():
    bank = glyph_bank()
    assert bank.shape == (12, 4, 10, 64, 64) and bank.dtype == np.float32
    assert 0.0 <= bank.min() and bank.max() == 1.0
    mid = 31  # the glyph box is centred on the canvas
    # DejaVu Sans regular: the counter of "0" stays open (even-odd fill), the waist of "8" is ink
    assert bank[0, 1, 0, mid:mid + 2, mid:mid + 2].max() == 0.0
    assert bank[0, 1, 8, mid:mid + 2, mid:mid + 2].min() > 0.5
    # stroke variants are ordered thin -> bold
    ink = bank.sum(axis=(3, 4))
    assert (np.diff(ink, axis=1) > 0).all()


def test_render_digits_geometry_and_levels():
    labels = np.arange(10).repeat(3)
    x = render_digits(labels, seed=4, height=(0.6, 0.6), max_rotation=0.0, noise=0.0)
    assert x.shape == (30, 1, 28, 28) and x.dtype == np.uint8
    # background in [0, 0.2] * 255 at the corners, foreground at most 255 and at least 0.7 * 255 somewhere
    corners = x[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() <= 52
    assert (x.reshape(30, -1).max(axis=1) >= 0.7 * 255 * 0.9).all()
    # outline height 0.6 of 28 px = 16.8 px; stroke variants thin it by up to 1 px or thicken it by up to
    # 3 px (radius 6 of 128 on a 38-pixel-high glyph, both sides), anti-aliasing adds up to a pixel
    def span(img):
        rows = np.nonzero(img.max(axis=1) > img.min() + 0.5 * (img.max() - img.min()))[0]
        return rows[-1] - rows[0] + 1

    spans = np.array([span(img) for img in x[:, 0]])
    assert spans.min() >= 15 and spans.max() <= 21
    small = render_digits(labels, seed=4, height=(0.3, 0.3), max_rotation=0.0, noise=0.0)
    assert np.array([span(img) for img in small[:, 0]]).max() <= 11
    np.testing.assert_array_equal(x, render_digits(labels, seed=4, height=(0.6, 0.6), max_rotation=0.0,
                                                   noise=0.0))
    with pytest.raises(ValueError, match="labels"):
        render_digits(np.array([3, 10]), seed=0)
    with pytest.raises(ValueError, match="height"):
        render_digits(np.array([3]), seed=0, height=(0.5, 1.5))


def test_digits_pair_shapes_labels_determinism():
    pair = load_digits_pair(n_synthetic=205, seed=1, size=28)
    syn, hand = pair.synthetic, pair.handwritten
    assert pair.source is syn and pair.target is hand and pair["handwritten"] is hand
    assert syn.x.shape == (205, 1, 28, 28) and syn.x.dtype == np.uint8 and syn.y.dtype == np.int64
    assert hand.x.shape == (1797, 1, 28, 28) and hand.x.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(syn.y), [21] * 5 + [20] * 5)
    assert syn.classes == tuple("0123456789") and hand.y.max() == 9
    again = load_digits_pair(n_synthetic=205, seed=1)
    np.testing.assert_array_equal(again.synthetic.x, syn.x)
    np.testing.assert_array_equal(again.synthetic.y, syn.y)
    other = load_digits_pair(n_synthetic=205, seed=2)
    assert not np.array_equal(other.synthetic.x, syn.x)
    assert pair.swapped().source is hand
    assert load_digits_pair(n_synthetic=3, size=32).handwritten.x.shape == (1797, 1, 32, 32)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="n_synthetic"):
            load_digits_pair(n_synthetic=bad)


def test_handwritten_digits_are_bilinear_upsampling_of_sklearn():
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    hand = load_digits_pair(n_synthetic=1).handwritten
    ref = torch.nn.functional.interpolate(torch.from_numpy(load_digits().images[:, None] / 16.0), size=(28, 28),
                                          mode="bilinear", align_corners=False)
    ref = np.rint(ref.numpy() * 255.0)
    assert np.abs(hand.x.astype(float) - ref).max() <= 1  # rounding of values at .5 may differ
    assert hand.x.max() == 255 and hand.x.min() == 0


def test_synthetic_digits_are_recognisable():
    # The labels must match the drawn glyphs: 1-nearest-neighbour (normalised pixels) trained on 2000
    # synthetic digits recognises 500 others far above chance (0.1; measured 0.854 for seed 0).
    from sklearn.neighbors import KNeighborsClassifier

    syn = load_digits_pair(n_synthetic=2500, seed=0).synthetic
    x = syn.x.reshape(len(syn), -1) / 255.0
    x = x - x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert KNeighborsClassifier(1).fit(x[:2000], syn.y[:2000]).score(x[2000:], syn.y[2000:]) > 0.75
    # "1" and "7" carry the least ink, "8" the most
    ink = np.array([syn.x[syn.y == d].mean() for d in range(10)])
    assert set(np.argsort(ink)[:2]) == {1, 7} and np.argmax(ink) == 8


# ------------------------------------------------------------------------------------- image helpers


def test_to_float_images_and_bad_input():
    x = gray_batch(4, hw=(5, 6))
    f = to_float_images(x, "source_x")
    assert f.shape == (4, 1, 5, 6) and f.dtype == np.float32
    np.testing.assert_allclose(f[:, 0], x / 255.0, rtol=1e-6)
    g = to_float_images(np.full((2, 3, 4, 4), 0.25), "x")
    assert g.dtype == np.float32 and g.shape == (2, 3, 4, 4)
    torch = pytest.importorskip("torch")
    t = to_float_images(torch.from_numpy(x), "x")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), f)
    np.testing.assert_array_equal(to_uint8_images(f, "x"), x[:, None])
    cases = [
        (np.zeros((2, 1, 4, 4), np.int64), TypeError, "target_x: expected uint8 .* int64"),
        (np.zeros((4, 4), np.uint8), ValueError, r"target_x: expected images of shape .*shape \(4, 4\)"),
        (np.zeros((1, 1, 1, 4, 4), np.uint8), ValueError, "target_x: expected images of shape"),
        (np.full((2, 4, 4), np.nan, np.float32), ValueError, "target_x: contains NaN"),
        (np.full((2, 4, 4), -0.5), ValueError, r"target_x: floating images must lie in \[0, 1\]"),
        (np.zeros((0, 1, 4, 4), np.uint8), ValueError, "target_x: needs at least 1 image"),
        (torch.full((2, 4, 4), 3.0), ValueError, r"target_x: .*\[0, 1\].*torch.Tensor"),
    ]
    for value, exc, message in cases:
        with pytest.raises(exc, match=message):
            to_float_images(value, "target_x")
    with pytest.raises(ValueError, match="x: expected 3 channel"):
        to_float_images(np.zeros((2, 1, 4, 4), np.uint8), "x", channels=3)


def test_match_channels():
    x = gray_batch(3, hw=(4, 5))[:, None]
    rgb = match_channels(x, 3)
    assert rgb.shape == (3, 3, 4, 5)
    np.testing.assert_array_equal(rgb[:, 2], x[:, 0])
    assert match_channels(x, 1) is x
    col = np.random.default_rng(0).integers(0, 256, size=(2, 3, 4, 4)).astype(np.uint8)
    gray = match_channels(col, 1)
    r, g, b = (col[:, c].astype(float) for c in range(3))
    np.testing.assert_array_equal(gray[:, 0], np.rint(0.299 * r + 0.587 * g + 0.114 * b).astype(np.uint8))
    np.testing.assert_allclose(match_channels(col / 255.0, 1)[:, 0], (0.299 * r + 0.587 * g + 0.114 * b) / 255.0)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(match_channels(torch.from_numpy(col), 1).numpy(), gray)
    np.testing.assert_array_equal(match_channels(torch.from_numpy(x), 3).numpy(), rgb)
    with pytest.raises(ValueError, match="channels: expected 1 or 3"):
        match_channels(x, 2)
    with pytest.raises(ValueError, match="x: expected 1 or 3 channel"):
        match_channels(np.zeros((1, 4, 2, 2), np.uint8), 3)


@pytest.mark.parametrize("src,dst", [((8, 8), (28, 28)), ((28, 28), (12, 9)), ((5, 7), (5, 7)), ((3, 10), (7, 4))])
def test_resize_matches_torch_interpolate(src, dst):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((3, 2, *src))
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=dst, mode="bilinear",
                                          align_corners=False).numpy()
    np.testing.assert_allclose(resize(x, dst), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(resize(torch.from_numpy(x), dst).numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(resize(x[:, 0].astype(np.float32), dst), ref[:, 0], atol=1e-6)  # (N, H, W)
    u = np.rint(x * 255).astype(np.uint8)
    ru = resize(u, dst)
    assert ru.dtype == np.uint8
    ref_u = torch.nn.functional.interpolate(torch.from_numpy(u.astype(np.float64)), size=dst, mode="bilinear",
                                            align_corners=False).numpy()
    assert np.abs(ru.astype(float) - ref_u).max() <= 0.5 + 1e-4


def test_resize_bad_input():
    with pytest.raises(ValueError, match="size: expected positive"):
        resize(np.zeros((1, 4, 4)), 0)
    with pytest.raises(TypeError, match="size: expected an int or a pair"):
        resize(np.zeros((1, 4, 4)), "big")
    with pytest.raises(ValueError, match="images: expected images of shape"):
        resize(np.zeros((4, 4)), 8)


def test_photos_without_scikit_image(monkeypatch):
    from tasklens.datasets import mstyle

    monkeypatch.setattr(mstyle, "_skimage_available", lambda: False)
    monkeypatch.setattr(mstyle, "_photo_cache", {})
    assert mstyle.default_photo_names() == SKLEARN_PHOTOS
    with pytest.raises(ImportError, match="scikit-image"):
        to_mstyle(np.zeros((2, 8, 8), np.uint8), seed=0, photos=["astronaut"])
    a = to_mstyle(np.zeros((3, 8, 8), np.uint8), seed=0)
    np.testing.assert_array_equal(a, to_mstyle(np.zeros((3, 8, 8), np.uint8), seed=0, photos=SKLEARN_PHOTOS))


# ------------------------------------------------------------------------------------------ image folder

from tasklens.datasets import load_image_folder  # noqa: E402


def save(path: Path, arr: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)  # mode from the array: L, RGB, RGBA, I;16
    return path


def test_load_image_folder_gray_and_colour(tmp_path):
    rng = np.random.default_rng(0)
    gray = {c: [rng.integers(0, 256, (6, 5)).astype(np.uint8) for _ in range(k)] for c, k in (("cat", 2), ("ant", 3))}
    for c, imgs in gray.items():
        for i, a in enumerate(imgs):
            save(tmp_path / "g" / c / f"{i}.png", a)
    (tmp_path / "g" / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / "g" / ".hidden").mkdir()
    d = load_image_folder(tmp_path / "g")
    assert d.name == "g" and d.classes == ("ant", "cat")  # sorted by name
    assert d.x.shape == (5, 1, 6, 5) and d.x.dtype == np.uint8
    np.testing.assert_array_equal(d.y, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(d.x[:, 0], np.stack(gray["ant"] + gray["cat"]))  # PNG is lossless
    # a colour image among gray ones: "auto" gives 3 channels, gray ones repeated
    rgb = rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((6, 5, 1), 7, np.uint8)], axis=2)
    save(tmp_path / "g" / "cat" / "2.png", rgba)
    d = load_image_folder(tmp_path / "g", name="mixed")
    assert d.name == "mixed" and d.x.shape == (6, 3, 6, 5)
    np.testing.assert_array_equal(d.x[5], rgb.transpose(2, 0, 1))  # alpha dropped
    np.testing.assert_array_equal(d.x[0], np.repeat(gray["ant"][0][None], 3, axis=0))
    one = load_image_folder(tmp_path / "g", channels=1)
    r, g, b = (rgb[..., k].astype(float) for k in range(3))
    np.testing.assert_array_equal(one.x[5, 0], np.rint(0.299 * r + 0.587 * g + 0.114 * b).astype(np.uint8))
    # JPEG reads (lossy: shape and rough values only)
    save(tmp_path / "j" / "a" / "x.jpg", np.full((8, 8, 3), 200, np.uint8))
    j = load_image_folder(tmp_path / "j")
    assert j.x.shape == (1, 3, 8, 8) and abs(int(j.x.mean()) - 200) <= 2


def test_load_image_folder_sizes_and_errors(tmp_path):
    save(tmp_path / "s" / "a" / "1.png", np.zeros((6, 5), np.uint8))
    save(tmp_path / "s" / "b" / "1.png", np.full((4, 9), 255, np.uint8))
    with pytest.raises(ValueError, match=r"images differ in size: .*5x6.*9x4.*size="):
        load_image_folder(tmp_path / "s")
    d = load_image_folder(tmp_path / "s", size=(7, 3))
    assert d.x.shape == (2, 1, 7, 3)
    assert (d.x[0] == 0).all() and (d.x[1] == 255).all()
    assert load_image_folder(tmp_path / "s", size=4).x.shape == (2, 1, 4, 4)
    (tmp_path / "s" / "c").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*[/\\]c holds no images"):
        load_image_folder(tmp_path / "s", size=4)
    (tmp_path / "s" / "c" / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"bad\.png: cannot read the image"):
        load_image_folder(tmp_path / "s", size=4)
    with pytest.raises(FileNotFoundError, match="root: .* is not a directory"):
        load_image_folder(tmp_path / "absent")
    (tmp_path / "flat").mkdir()
    save(tmp_path / "flat" / "1.png", np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="no class sub-directories"):
        load_image_folder(tmp_path / "flat")
    with pytest.raises(ValueError, match="channels"):
        load_image_folder(tmp_path / "s", channels=2)
    with pytest.raises(ValueError, match="size: expected positive"):
        load_image_folder(tmp_path / "s", size=0)
    save(tmp_path / "deep" / "a" / "1.png", np.zeros((3, 3), np.uint16) + 1000)
    with pytest.raises(ValueError, match="not an 8-bit"):
        load_image_folder(tmp_path / "deep")


# ------------------------------------------------------------------------- containers, property tests

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tasklens.datasets import ImageDomain  # noqa: E402


def test_image_domain_subset_split_and_validation():
    y = np.repeat(np.arange(3), [10, 5, 1])
    x = np.arange(16, dtype=np.uint8)[:, None, None, None].repeat(2, axis=2).repeat(2, axis=3)
    d = ImageDomain("d", x, y, ("a", "b", "c"))
    assert len(d) == 16 and d.image_shape == (1, 2, 2)
    train, test = d.split(0.2, seed=3)
    assert len(train) + len(test) == 16
    np.testing.assert_array_equal(np.bincount(test.y, minlength=3), [2, 1, 0])  # stratified; singleton stays in train
    assert set(train.x[:, 0, 0, 0]).isdisjoint(test.x[:, 0, 0, 0])
    np.testing.assert_array_equal(train.x[:, 0, 0, 0], train.x[:, 0, 0, 0][np.argsort(train.x[:, 0, 0, 0])])  # order kept
    again = d.split(0.2, seed=3)[1]
    np.testing.assert_array_equal(again.x, test.x)
    np.testing.assert_array_equal(d.subset([3, 0]).y, [0, 0])
    assert d.subset(y == 1, name="b").name == "b"
    with pytest.raises(ValueError, match="test_fraction"):
        d.split(1.0)
    with pytest.raises(ValueError, match="index: positions"):
        d.subset([16])
    with pytest.raises(ValueError, match="boolean mask"):
        d.subset(np.ones(3, bool))
    with pytest.raises(ValueError, match=r"d.y: expected 16 labels"):
        ImageDomain("d", x, y[:5])
    with pytest.raises(ValueError, match=r"d.y: label 2 is out of range"):
        ImageDomain("d", x, y, ("a", "b"))
    with pytest.raises(TypeError, match=r"d.x: expected a uint8 numpy array"):
        ImageDomain("d", x / 255.0, y)


_DTYPES = list(_CODES)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(_DTYPES), st.lists(st.integers(0, 4), min_size=1, max_size=3), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_read_idx_round_trip_property(tmp_path_factory, dtype, shape, gz, seed):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8)
    values = raw.view(np.dtype(dtype).newbyteorder(">")).astype(dtype).reshape(shape)  # any bit pattern
    if values.dtype.kind == "f":  # NaN payloads need not survive the struct writer's float conversion
        values[np.isnan(values)] = 0.0
    p = write(tmp_path_factory.mktemp("idx") / ("v.idx" + (".gz" if gz else "")), idx_bytes(values, dtype))
    got = read_idx(p)
    assert got.shape == tuple(shape) and got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.view(np.uint8), values.view(np.uint8))  # bit for bit


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12), st.integers(1, 12), st.floats(0, 1))
def test_resize_keeps_constants_and_range_property(h, w, h2, w2, level):
    x = np.full((2, 1, h, w), level)
    out = resize(x, (h2, w2))
    np.testing.assert_allclose(out, level, atol=1e-12)
    r = np.random.default_rng(h * 13 + w).random((1, 3, h, w))
    out = resize(r, (h2, w2))
    assert out.min() >= r.min() - 1e-12 and out.max() <= r.max() + 1e-12  # convex blends of input pixels
