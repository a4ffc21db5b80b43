"""Sect. 6 analysis tools (Eq. 2, Tables 6-8, Fig. 8) and the `tasklens distance` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasklens.cli import main as cli_main
from tasklens.domain import (best_source_table, classify_gain, domain_distance_matrix, kendall_tau,
                             plot_distance_heatmap, relative_transfer_gain, transfer_table)


def test_relative_gain_and_classes():
    r = relative_transfer_gain([[0.60, 0.51, 0.49, 0.40, np.nan]], [0.5])
    np.testing.assert_allclose(r[0, :4], [20.0, 2.0, -2.0, -20.0])
    assert np.isnan(r[0, 4])
    np.testing.assert_allclose(relative_transfer_gain([[0.4]], [0.5], lower_is_better=True), [[20.0]])
    assert classify_gain([10.5, 10.0, 2.5, 2.0, -1.9, -2.5, np.nan]).tolist() == ["VP", "P", "P", "I", "I", "N", ""]
    with pytest.raises(ValueError, match="baseline"):
        relative_transfer_gain([[1.0]], [0.0])
    with pytest.raises(ValueError, match="baseline"):
        relative_transfer_gain([[1.0, 2.0]], [1.0, 2.0])


def test_tables_6_and_7_counts():
    gains = np.array([[np.nan, 12.0, -5.0, 3.0],
                      [1.0, np.nan, -3.0, -4.0],
                      [15.0, 0.0, np.nan, 2.5],
                      [-10.0, 11.0, 4.0, np.nan]])
    dom = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], bool)
    t6 = transfer_table(gains, dom)
    # all 12 experiments: P = {12, 3, 15, 2.5, 11, 4} = 6, VP = {12, 15, 11} = 3, N = {-5, -3, -4, -10} = 4
    assert t6.loc[("all", "all")].tolist() == pytest.approx([50.0, 25.0, 100 / 3, 12])
    # within domain: 12, 1, 2.5, 4 -> P 3/4, VP 1/4, N 0
    assert t6.loc[("within", "within")].tolist() == pytest.approx([75.0, 25.0, 0.0, 4])
    assert t6.loc[("cross", "cross"), "#"] == 0
    t7 = best_source_table(gains, dom)
    # best per target: 12, 1, 15, 11 -> P 3/4, VP 3/4, N 0
    assert t7.loc[("all", "all")].tolist() == pytest.approx([75.0, 75.0, 0.0, 4])
    # cross-domain best per target: 3, -3, 15, 11
    assert t7.loc[("cross", "within")].tolist() == pytest.approx([75.0, 50.0, 25.0, 4])
    with pytest.raises(ValueError, match="same_domain"):
        transfer_table(gains, dom[:2])


def test_kendall_tau_against_definition(rng):
    from itertools import combinations

    d = rng.random((5, 5))
    g = -d * 10 + rng.normal(0, 1, (5, 5))
    g[0, 3] = np.nan
    keep = [(i, j) for i in range(5) for j in range(5) if i != j and not np.isnan(g[i, j])]
    x = [-d[p] for p in keep]
    y = [g[p] for p in keep]
    conc = sum(np.sign(x[a] - x[b]) * np.sign(y[a] - y[b]) for a, b in combinations(range(len(x)), 2))
    tau = conc / (len(x) * (len(x) - 1) / 2)  # no ties in continuous random data
    assert kendall_tau(d, g) == pytest.approx(tau)
    assert kendall_tau(d, g) > 0.3


def test_kendall_tau_is_the_one_metrics_kendall_tau(rng):
    """The domain analysis masks, then calls tasklens.metrics.kendall_tau (one implementation; ties as tau-b)."""
    from tasklens.metrics import kendall_tau as tau_b

    d = rng.integers(0, 3, (6, 6)).astype(float)  # many ties
    g = rng.integers(-2, 3, (6, 6)).astype(float)
    g[1, 4] = np.nan
    keep = ~np.isnan(g) & ~np.eye(6, dtype=bool)
    assert kendall_tau(d, g) == tau_b(-d[keep], g[keep])
    from scipy.stats import kendalltau

    assert kendall_tau(d, g) == pytest.approx(kendalltau(-d[keep], g[keep]).statistic, rel=1e-12)
    keep_diag = ~np.isnan(g)
    assert kendall_tau(d, g, exclude_diagonal=False) == tau_b(-d[keep_diag], g[keep_diag])


def test_heatmap(tmp_path, rng):
    m = rng.random((4, 4))
    fig = plot_distance_heatmap(m, ["a", "b", "c", "d"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["a", "b", "c", "d"]
    fig.savefig(tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="names"):
        plot_distance_heatmap(m, ["a"])


def test_heatmap_title_fits_and_numbers_readable_on_dark_cells(rng):
    """Issue 9 §4: the long default title ran off a small figure; numbers were black on dark cells."""
    import matplotlib.colors as mcolors

    m = rng.random((3, 3)) * 10
    fig = plot_distance_heatmap(m)  # 3 datasets: the smallest figure
    fig.canvas.draw()
    ax = fig.axes[0]
    box, width = ax.title.get_window_extent(), fig.get_window_extent().width
    assert box.x0 >= 0 and box.x1 <= width, (box, width)
    assert "rows: targets" in ax.title.get_text().replace("\n", " ")
    im = ax.images[0]
    texts = [t for t in ax.texts]
    assert len(texts) == 6
    seen = set()
    for t in texts:
        j, i = (int(round(v)) for v in t.get_position())
        r, g, b, _ = im.cmap(im.norm(m[i, j]))
        lum = sum(w * (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
                  for w, c in zip((0.2126, 0.7152, 0.0722), (r, g, b)))
        text_rgb = mcolors.to_rgb(t.get_color())
        contrast = (max(lum, 1.0 if text_rgb == (1, 1, 1) else 0.0) + 0.05) / \
            (min(lum, 1.0 if text_rgb == (1, 1, 1) else 0.0) + 0.05)
        assert contrast >= 3.0, (t.get_text(), t.get_color(), lum)
        seen.add(text_rgb)
    assert seen == {(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)}  # viridis_r spans dark and light cells


@pytest.mark.parametrize("fmt", ["npy", "npz", "parquet"])
def test_cli_distance(tmp_path, fmt, rng, capsys):
    data = {"alpha": rng.standard_normal((30, 4)), "beta": rng.standard_normal((20, 4)) + 3}
    if fmt == "npy":
        inputs = []
        for k, v in data.items():
            np.save(tmp_path / f"{k}.npy", v)
            inputs.append(str(tmp_path / f"{k}.npy"))
    elif fmt == "npz":
        np.savez(tmp_path / "d.npz", **data)
        inputs = [str(tmp_path / "d.npz")]
    else:
        frames = [pd.DataFrame(v, columns=list("wxyz")).assign(dataset=k) for k, v in data.items()]
        pd.concat(frames).to_parquet(tmp_path / "d.parquet")
        inputs = [str(tmp_path / "d.parquet")]
    out = tmp_path / "m.csv"
    assert cli_main(["distance", *inputs, "-o", str(out), "--heatmap", str(tmp_path / "h.png")]) == 0
    got = pd.read_csv(out, index_col=0)
    assert list(got.index) == ["alpha", "beta"] and list(got.columns) == ["alpha", "beta"]
    np.testing.assert_allclose(got.to_numpy(), domain_distance_matrix(list(data.values())), rtol=1e-12)
    assert (tmp_path / "h.png").exists()
    assert cli_main(["distance", str(tmp_path / "missing.npy"), "-o", str(out)]) == 1
    assert "not found" in capsys.readouterr().err


def test_output_rule_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    s, b = rng.random((3, 4)) + 0.5, rng.random(3) + 0.5
    r = relative_transfer_gain(torch.from_numpy(s), torch.from_numpy(b))
    assert isinstance(r, torch.Tensor) and r.dtype == torch.float64
    np.testing.assert_array_equal(r.numpy(), relative_transfer_gain(s, b))
    d, g = rng.random((4, 4)), rng.normal(size=(4, 4))
    t = kendall_tau(torch.from_numpy(d), torch.from_numpy(g))
    assert isinstance(t, torch.Tensor) and t.ndim == 0 and float(t) == kendall_tau(d, g)
    assert type(kendall_tau(d, g)) is float
