"""tasklens.map and `tasklens map`: sources, relations, the pipeline end to end on tiny image trees, and the
interactive HTML in headless Chromium."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
from PIL import Image  # noqa: E402

import tasklens  # noqa: E402
from tasklens.datasets.sources import FeatureSet, load_sources  # noqa: E402
from tasklens.map import distance_relations, label_relations, relations_from_file  # noqa: E402
from tasklens.represent import build_probe, save_probe  # noqa: E402

CLASSES = {"all": ["cat", "dog", "fox"], "pets": ["cat", "dog"], "cats": ["cat"], "dogs": ["dog"],
           "wild": ["fox"]}


def _tree(root, datasets=CLASSES, n=3, size=12, seed=0):
    rng = np.random.default_rng(seed)
    shade = {"cat": 40, "dog": 140, "fox": 230}
    for name, classes in datasets.items():
        for c in classes:
            d = root / name / c
            d.mkdir(parents=True)
            for i in range(n):
                img = np.clip(rng.normal(shade.get(c, 100), 20, size=(size, size)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.png")
    return root


@pytest.fixture
def probe_file(tmp_path):
    torch.manual_seed(0)
    return save_probe(build_probe(1, 10, widths=(4, 6), size=12), tmp_path / "probe.pt")


# --------------------------------------------------------------------------- relations
def test_label_relations():
    R = label_relations([("a", "b"), ("a",), ("a",), ("c",), ()], sizes=[10, 5, 8, 3, 4])
    expected = np.zeros((5, 5))
    expected[1, 0] = expected[2, 0] = 1  # {a} ⊂ {a, b}
    expected[1, 2] = 1  # same classes, smaller
    np.testing.assert_array_equal(R, expected)
    assert label_relations([("a",), ("a",)], sizes=[4, 4]).sum() == 0  # ties: no relation


def test_distance_relations_threshold_and_quantile():
    D = np.array([[0, 1, 5], [2, 0, 6], [7, 8, 0.0]])
    np.testing.assert_array_equal(distance_relations(D, threshold=2), [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(distance_relations(D, quantile=0.0), [[0, 1, 0], [0, 0, 0], [0, 0, 0]])


def test_relations_file(tmp_path):
    p = tmp_path / "rel.csv"
    pd.DataFrame({"subset": ["a", "b"], "superset": ["c", "c"], "note": [1, 2]}).to_csv(p, index=False)
    np.testing.assert_array_equal(relations_from_file(p, ["a", "b", "c"]), [[0, 0, 1], [0, 0, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match="not loaded"):
        relations_from_file(p, ["a", "c"])
    pd.DataFrame({"x": [1]}).to_csv(p, index=False)
    with pytest.raises(ValueError, match="subset"):
        relations_from_file(p, ["a"])


# --------------------------------------------------------------------------- sources
def test_sources_folders_arrays_tables(tmp_path):
    root = _tree(tmp_path / "root")
    got = load_sources([root])
    assert [d.name for d in got] == sorted(CLASSES)
    pets = next(d for d in got if d.name == "pets")
    assert pets.classes == ("cat", "dog") and pets.x.shape == (6, 1, 12, 12)
    assert load_sources([root / "cats"])[0].classes == ("cat",)
    np.savez(tmp_path / "imgs.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 1]),
             classes=np.array(["u", "v"]))
    np.savez(tmp_path / "feats.npz", features=np.ones((3, 2)), other=np.zeros((2, 2)))
    np.save(tmp_path / "plain.npy", np.ones((5, 3)))
    pd.DataFrame({"dataset": ["p", "p", "q"], "label": ["s", "t", "s"], "f0": [1.0, 2, 3], "f1": [0.0, 1, 2]}) \
        .to_parquet(tmp_path / "t.parquet")
    a, b, c, d, *e = load_sources([tmp_path / "imgs.npz", tmp_path / "feats.npz", str(tmp_path / "feats.npz") +
                                   ":other", tmp_path / "plain.npy", tmp_path / "t.parquet"])
    assert a.x.shape == (4, 1, 8, 8) and a.classes == ("u", "v")
    assert isinstance(b, FeatureSet) and b.x.shape == (3, 2) and c.x.shape == (2, 2)
    assert d.y is None and [s.name for s in e] == ["p", "q"] and e[0].classes == ("s", "t")


def test_sources_bad_trees(tmp_path):
    root = _tree(tmp_path / "r", {"d": ["a", "b"]})
    (root / "d" / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_sources([root / "d"])
    shutil.rmtree(root / "d" / "empty")
    (root / "d" / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png: cannot read"):
        load_sources([root / "d"])
    os.remove(root / "d" / "a" / "bad.png")
    Image.fromarray(np.zeros((20, 16), np.uint8)).save(root / "d" / "b" / "big.png")
    with pytest.raises(ValueError, match="differ in size.*pass size="):
        load_sources([root / "d"])
    assert load_sources([root / "d"], size=(12, 12))[0].x.shape == (7, 1, 12, 12)
    with pytest.raises(ValueError, match="neither a dataset folder"):
        load_sources([tmp_path])  # a root of roots
    with pytest.raises(FileNotFoundError):
        load_sources([tmp_path / "nothing.npz"])


# --------------------------------------------------------------------------- pipeline
def test_map_end_to_end_python(tmp_path, probe_file):
    from tasklens.represent import load_probe

    root = _tree(tmp_path / "root")
    res = tasklens.map([root], tmp_path / "out", represent="features", probe=load_probe(probe_file), epochs=20,
                       cache_dir=tmp_path / "cache", progress=False)
    m = len(CLASSES)
    assert res.names == sorted(CLASSES) and res.relation_source == "labels"
    idx = {n: i for i, n in enumerate(res.names)}
    assert res.relations[idx["cats"], idx["pets"]] == 1 and res.relations[idx["pets"], idx["cats"]] == 0
    assert res.relations.sum() == 6  # cats, dogs ⊂ pets ⊂ all; cats, dogs, wild ⊂ all
    assert res.X.shape == (m, 2 * 6) and res.lo.shape == (m, 2)
    assert set(res.files) == {"map.html", "map.png", "pairs.parquet", "datasets.parquet", "metrics.csv"}
    pairs = pd.read_parquet(res.files["pairs.parquet"])
    assert len(pairs) == m * (m - 1)
    row = pairs[(pairs.target == "cats") & (pairs.source == "pets")].iloc[0]
    assert row.relation and row.distance == pytest.approx(res.D[idx["cats"], idx["pets"]])
    assert row.containment_target_in_source == pytest.approx(res.S[idx["cats"], idx["pets"]])
    assert row.containment_source_in_target == pytest.approx(res.S[idx["pets"], idx["cats"]])
    ds = pd.read_parquet(res.files["datasets.parquet"])
    np.testing.assert_allclose(ds[["lo_0", "lo_1"]].to_numpy(), res.lo)
    np.testing.assert_allclose(np.stack(ds["representation"].to_list()), res.X)
    metrics = pd.read_csv(res.files["metrics.csv"])
    assert list(metrics.method) == ["Task2Box", "MLP", "AsymCosine", "AsymEuclidean", "Random"]
    # D(T|S): every cat image has an identical-distribution neighbour in pets, not in wild
    assert res.D[idx["cats"], idx["pets"]] < res.D[idx["cats"], idx["wild"]]
    # a second run hits the cache for every dataset
    again = tasklens.map([root], None, represent="features", probe=load_probe(probe_file), epochs=20, cache_dir=tmp_path / "cache",
                         metrics=False, progress=False)
    assert again.info["cache_hits"] == m and again.files == {}


def test_map_features_distance_relations_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    sets = [FeatureSet(f"f{i}", rng.normal(i, 1, size=(10, 3))) for i in range(4)]
    res = tasklens.map(sets, None, represent="features", relations="distance", epochs=10, cache_dir=False,
                       box_dim=3)
    assert res.metrics is None and res.relation_source.startswith("distance") and res.lo.shape == (4, 3)
    np.testing.assert_array_equal(res.relations, distance_relations(res.D, 0.1))
    with pytest.raises(ValueError, match="class names"):
        tasklens.map(sets, None, represent="features", cache_dir=False)
    with pytest.raises(ValueError, match="at least 3"):
        tasklens.map(sets[:2], None, represent="features", relations="distance", cache_dir=False)


def test_callable_module_after_import():
    import tasklens.map as tm

    assert callable(tm) and callable(tasklens.map) and tm.map is tasklens.map.map


def test_cli_end_to_end(tmp_path, probe_file):
    from tasklens.cli import main

    root = _tree(tmp_path / "root")
    out = tmp_path / "out"
    code = main(["map", str(root), "--out", str(out), "--represent", "features", "--probe", str(probe_file),
                 "--epochs", "10", "--box-dim", "3", "--cache-dir", str(tmp_path / "c"), "--no-progress"])
    assert code == 0
    assert sorted(os.listdir(out)) == ["datasets.parquet", "map.html", "map.png", "metrics.csv", "pairs.parquet"]
    assert "dim 2" in (out / "map.html").read_text() or "K <= 2" in (out / "map.html").read_text()
    assert main(["map", str(tmp_path / "nope"), "--out", str(out)]) == 1
    assert main(["map", str(root), "--out", str(out), "--relations", "missing.csv"]) == 2
    assert main(["map", str(root), "--out", str(out), "--represent", "clip"]) == 2


def test_cli_clip_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import tasklens.represent.clip as c
    from tasklens.cli import main

    monkeypatch.setattr(c, "open_clip_available", lambda: (False, "ImportError: no torchvision"))
    root = _tree(tmp_path / "root")
    assert main(["map", str(root), "--out", str(tmp_path / "o"), "--represent", "clip", "--clip-weights",
                 "w.bin"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'tasklens[clip]'" in err and "unexpected" not in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- the HTML in Chromium
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package `chromium`)")
def test_html_in_headless_chromium(tmp_path):
    pytest.importorskip("websocket", reason="the websocket-client package drives Chromium over CDP")
    sys.path.insert(0, os.path.dirname(__file__))
    from _chromium import Browser

    rng = np.random.default_rng(1)
    sets = [FeatureSet(f"set{i}", rng.normal(i % 3, 1 + i, size=(12, 2)), rng.integers(0, 2 if i < 3 else 1, 12),
                       ("a", "b") if i < 3 else ("a",)) for i in range(6)]
    res = tasklens.map(sets, tmp_path / "o", represent="features", epochs=60, cache_dir=False, box_dim=3,
                       metrics=False)
    url = "file://" + str(res.files["map.html"])
    b = Browser(CHROMIUM)
    try:
        b.send("Network.enable")
        b.open(url)
        assert b.eval("document.querySelectorAll('rect.box').length") == len(sets)
        assert b.eval("document.getElementById('dx').options.length") == 3  # dimension selector, k = 3
        # hover: the tooltip shows the name of the box under the pointer
        x, y, i = b.eval("(() => {const r = document.getElementById('box-0').getBoundingClientRect();"
                         "const x = r.x + 2, y = r.y + 2; return [x, y, +document.elementFromPoint(x, y).dataset.i]})()")
        b.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        tip = b.eval("document.getElementById('tip').innerText")
        assert tip.splitlines()[0] == res.names[i] and "volume" in tip
        # click: the box is selected, its containers / contained are marked, the rest faded
        for kind in ("mousePressed", "mouseReleased"):
            b.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        classes = b.eval("[...Array(%d).keys()].map(k => document.getElementById('box-' + k).getAttribute('class'))"
                         % len(sets))
        assert "selected" in classes[i]
        up = {j for j in range(len(sets)) if j != i and res.S[i, j] >= 0.5}
        down = {j for j in range(len(sets)) if j != i and res.S[j, i] >= 0.5}
        for j in range(len(sets)):
            if j != i:
                want = "container" if j in up else "contained" if j in down else "faded"
                assert want in classes[j].split(), (j, classes[j])
        # search by name
        b.eval("const s = document.getElementById('search'); s.value = 'set4';"
               "s.dispatchEvent(new Event('input'))")
        assert "selected" in b.eval("document.getElementById('box-4').getAttribute('class')")
        b.screenshot(tmp_path / "shot.png")
        assert (tmp_path / "shot.png").stat().st_size > 1000
        urls = {e["params"]["request"]["url"] for e in b.events if e.get("method") == "Network.requestWillBeSent"}
        assert urls == {url}  # offline: nothing but the page itself
    finally:
        b.close()
