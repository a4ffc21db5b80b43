"""Box maps, the ``tasklens boxes`` subcommands (round trip on temporary files) and ``tasklens demo``."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from tasklens.cli import main  # noqa: E402
from tasklens.task2box import plot_boxes, plot_history, relations_from_parents  # noqa: E402


def _image_is_nontrivial(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    # many distinct colours and a substantial non-white area
    flat = img[..., :3].reshape(-1, 3)
    assert len(np.unique((flat * 255).astype(np.uint8), axis=0)) > 30
    assert (flat.min(1) < 0.95).mean() > 0.02


def random_boxes(n, k, seed=0):
    rng = np.random.default_rng(seed)
    lo = rng.normal(size=(n, k))
    return lo, lo + rng.uniform(0.05, 1.0, size=(n, k))


def test_plot_boxes_png_and_labels(tmp_path):
    lo, hi = random_boxes(300, 2)
    labels = [f"taxon-{i}" for i in range(300)]
    p = str(tmp_path / "map.png")
    fig = plot_boxes(lo, hi, None, labels=labels, groups=np.arange(300) % 7, group_names=list("abcdefg"),
                     max_labels=40)
    ax = fig.axes[0]
    assert len(ax.patches) == 600  # a face and an edge per box
    n_text = len(ax.texts)
    assert 5 <= n_text <= 40  # capped, overlapping labels skipped
    fig.savefig(p)
    _image_is_nontrivial(p)


def test_plot_boxes_highlight_grid_and_svg(tmp_path):
    lo, hi = random_boxes(40, 5, seed=1)
    w = hi[0] - lo[0]
    lo[1], hi[1] = lo[0] + 0.5 * w, lo[0] + 0.7 * w  # box 1 inside box 0, labels apart
    R = np.zeros((40, 40)); R[1, 0] = 1
    p = str(tmp_path / "grid.svg")
    fig = plot_boxes(lo, hi, None, labels=[str(i) for i in range(40)], highlight="0", relations=R)
    assert len([a for a in fig.axes if a.has_data()]) == 6  # grid of 2-D projections for k = 5
    labelled = {t.get_text() for t in fig.axes[0].texts}
    assert labelled == {"0", "1"}  # only the highlighted box and its relatives are labelled
    plot_boxes(lo, hi, p)
    assert os.path.getsize(p) > 5000 and "<svg" in open(p).read(500)
    with pytest.raises(ValueError, match="labels"):
        plot_boxes(lo, hi, labels=["a"])
    with pytest.raises(ValueError, match="highlight"):
        plot_boxes(lo, hi, labels=[str(i) for i in range(40)], highlight="nope")


def test_plot_history(tmp_path):
    p = str(tmp_path / "h.png")
    plot_history({"loss": [1.0, 0.5, 0.2], "relation": [0.8, 0.4, 0.1], "val": [(1, 0.1), (3, 0.5)]}, p)
    assert os.path.getsize(p) > 5000


def toy_files(tmp_path):
    rng = np.random.default_rng(0)
    roots = rng.normal(size=(3, 5)) * 3
    X = np.vstack([roots] + [r + 0.3 * rng.normal(size=(5, 5)) for r in roots])
    child = np.arange(3, 18)
    parent = np.repeat(np.arange(3), 5)
    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "edges.csv", np.stack([child, parent], 1), fmt="%d", delimiter=",")
    R = relations_from_parents(child, parent, 18)
    import pandas as pd

    pd.DataFrame(R).to_parquet(tmp_path / "rel.parquet")
    with open(tmp_path / "labels.txt", "w") as f:
        f.write("\n".join(f"node{i}" for i in range(18)))
    return X, R


def test_cli_boxes_round_trip(tmp_path, capsys):
    X, R = toy_files(tmp_path)
    d = str(tmp_path)
    assert main(["boxes", "fit", f"{d}/x.npy", f"{d}/edges.csv", "--edges", "--out", f"{d}/m.pt",
                 "--epochs", "40", "--no-progress"]) == 0
    assert main(["boxes", "eval", f"{d}/m.pt", f"{d}/x.npy", f"{d}/rel.parquet", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"f1"' in out
    for ext in ("npz", "csv", "npy"):
        assert main(["boxes", "embed", f"{d}/m.pt", f"{d}/x.npy", "--out", f"{d}/b.{ext}"]) == 0
    z = np.load(f"{d}/b.npz")
    from tasklens.task2box import Task2Box

    lo, hi = Task2Box.load(f"{d}/m.pt").embed(X)
    assert np.allclose(z["lo"], lo) and np.allclose(z["hi"], hi)
    assert np.allclose(np.loadtxt(f"{d}/b.csv", delimiter=",", skiprows=1)[:, :2], lo, atol=1e-6)
    assert main(["boxes", "plot", f"{d}/b.npz", "--out", f"{d}/map.png", "--labels", f"{d}/labels.txt",
                 "--highlight", "node0"]) == 0
    _image_is_nontrivial(f"{d}/map.png")
    assert main(["boxes", "plot", f"{d}/m.pt", "--x", f"{d}/x.npy", "--out", f"{d}/map2.png"]) == 0
    assert os.path.exists(f"{d}/map2.png")
    # bad input: a relation matrix of the wrong size gives a clear error and exit code 1
    np.save(tmp_path / "bad.npy", np.zeros((3, 3)))
    assert main(["boxes", "fit", f"{d}/x.npy", f"{d}/bad.npy", "--out", f"{d}/m2.pt"]) == 1
    assert "relations" in capsys.readouterr().err


def test_cli_demo_quick(tmp_path, capsys):
    out = str(tmp_path / "demo")
    assert main(["demo", "--quick", "--no-progress", "--out", out, "--epochs", "20", "--mlp-epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "Task2Box (2-D)" in text and "MLP (1 pass)" in text and "Asym. cosine" in text
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["Task2Box (2-D)", "MLP (1 pass)", "Asym. cosine"]
    assert all(0 <= float(r["novel_f1"]) <= 1 for r in rows)
    for name in ("box_map.png", "box_map_highlight.png", "history.png", "model.pt"):
        assert os.path.getsize(os.path.join(out, name)) > 1000
    _image_is_nontrivial(os.path.join(out, "box_map.png"))
