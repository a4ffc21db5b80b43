"""Transferability (Def. 3), source selection (Def. 4), higher-order transfer, pixel-wise H-score, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasklens.cli import main as cli_main
from tasklens.metrics import (hscore, pixelwise_hscore, quantize_palette, rank_source_pairs, rank_sources,
                              select_source, transferability)


def dtm_optimal_hscore(x, y):
    """||B~||_F^2 of Def. 1 from the empirical joint distribution (independent of tasklens.hgr)."""
    joint = np.zeros((y.max() + 1, x.max() + 1))
    np.add.at(joint, (y, x), 1.0)
    joint /= joint.sum()
    py, px = joint.sum(1), joint.sum(0)
    keep_y, keep_x = py > 0, px > 0
    b = joint[np.ix_(keep_y, keep_x)] / np.sqrt(np.outer(py[keep_y], px[keep_x]))
    b -= np.outer(np.sqrt(py[keep_y]), np.sqrt(px[keep_x]))
    return float(np.sum(b * b))


@pytest.fixture
def discrete_problem(rng):
    n, nx, ny = 4000, 12, 4
    x = rng.integers(0, nx, n)
    y = (x % ny + (rng.random(n) < 0.3) * rng.integers(0, ny, n)) % ny
    onehot = np.eye(nx)[x]
    return x, y, onehot


def test_transferability_with_values_and_target_features(rng, discrete_problem):
    x, y, onehot = discrete_problem
    feats = onehot[:, :6] + 0.01 * rng.normal(size=(len(x), 6))
    h = hscore(feats, y)
    assert transferability(feats, y, optimal=2.0) == pytest.approx(h / 2.0, rel=1e-12)
    ys = np.stack([y, (y + x) % 3], 1)
    hs = hscore(feats, ys)
    np.testing.assert_allclose(transferability(feats, ys, optimal=np.array([1.0, 4.0])), hs / [1.0, 4.0],
                               rtol=1e-12)
    # One-hot encoding of a discrete X is the optimal feature: H(one-hot) = ||B~||_F^2 (Corollary 1).
    assert hscore(onehot, y) == pytest.approx(dtm_optimal_hscore(x, y), rel=1e-8)
    t = transferability(feats, y, optimal=onehot)
    assert t == pytest.approx(h / dtm_optimal_hscore(x, y), rel=1e-8)
    assert 0 < t <= 1 + 1e-9
    with pytest.raises(ValueError, match="optimal: expected a float or 2 values"):
        transferability(feats, ys, optimal=np.ones(3))
    with pytest.raises(ValueError, match="inputs: optimal='dtm' needs"):
        transferability(feats, y)
    with pytest.raises(ValueError, match="optimal: H_T"):
        transferability(feats, y, optimal=0.0)
    with pytest.raises(ValueError, match="optimal: expected one of"):
        transferability(feats, y, optimal="svd", inputs=x)


def test_transferability_dtm_and_ace(discrete_problem, rng):
    pytest.importorskip("tasklens.hgr")
    x, y, onehot = discrete_problem
    feats = onehot[:, :6] + 0.01 * rng.normal(size=(len(x), 6))
    expected = hscore(feats, y) / dtm_optimal_hscore(x, y)
    assert transferability(feats, y, optimal="dtm", inputs=x) == pytest.approx(expected, rel=1e-8)
    assert transferability(feats, y, optimal="ace", inputs=x, k=3) == pytest.approx(expected, rel=1e-5)


def test_source_selection_and_pairs(rng):
    n = 3000
    y = rng.integers(0, 4, n)
    srcs = {"bit0": (y % 2)[:, None] + 0.3 * rng.normal(size=(n, 2)),
            "bit1": (y // 2)[:, None] + 0.3 * rng.normal(size=(n, 2)),
            "weak": 0.2 * y[:, None] + rng.normal(size=(n, 3)),
            "noise": rng.normal(size=(n, 4))}
    ranked = rank_sources(srcs, y)
    assert [name for name, _ in ranked][-1] == "noise"
    for name, score in ranked:
        assert score == pytest.approx(hscore(srcs[name], y), rel=1e-9)
    assert select_source(srcs, y) == ranked[0][0]
    pairs = rank_source_pairs(srcs, y, include_singles=True)
    assert pairs[0][0] == ("bit0", "bit1")
    direct = {k: hscore(np.concatenate([srcs[m] for m in k], axis=1), y) for k, _ in pairs}
    for key, score in pairs:
        assert score == pytest.approx(direct[key], rel=1e-9)
    lw = rank_source_pairs(srcs, y, shrinkage="ledoit-wolf")
    assert lw[0][0] == ("bit0", "bit1")
    multi = rank_sources(list(srcs.values()), np.stack([y, y % 2], 1))
    assert multi[0][1].shape == (2,)
    with pytest.raises(ValueError, match="same number of rows"):
        rank_sources({"a": np.ones((5, 2)), "b": np.ones((6, 2))}, np.zeros(5, int))


def test_pixelwise_hscore(rng):
    n, h, w = 600, 5, 4
    f = rng.normal(size=(n, 3))
    dense = np.empty((n, h, w))
    dense[:, :2] = f[:, :1, None] + 0.05 * rng.normal(size=(n, 2, w))  # top rows follow a feature
    dense[:, 2:] = rng.normal(size=(n, h - 2, w))  # bottom rows are noise
    res = pixelwise_hscore(f, dense, num_colors=4)
    assert res.map.shape == (h, w) and res.palette.shape == (4, 1)
    assert res.map[:2].min() > 5 * res.map[2:].max()
    assert res.score == pytest.approx(res.map.mean())
    codes, _ = quantize_palette(dense, 4)
    for i, j in [(0, 0), (3, 2)]:
        assert res.map[i, j] == pytest.approx(hscore(f, codes[:, i, j]), rel=1e-10)
    ints = pixelwise_hscore(f, codes)
    np.testing.assert_allclose(ints.map, res.map, rtol=1e-12)
    rgb = np.repeat(dense[..., None], 3, axis=-1)
    assert pixelwise_hscore(f, rgb, num_colors=4).palette.shape == (4, 3)
    with pytest.raises(ValueError, match="dense_labels"):
        pixelwise_hscore(f, dense[0])


def test_cli_hscore_and_transferability(rng, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    n = 500
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + y[:, None]
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "d.npz", feats=x, labels=y)
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}).to_parquet(tmp_path / "t.parquet")
    assert cli_main(["hscore", str(tmp_path / "x.npy"), f"{tmp_path / 'd.npz'}:labels", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hscore"] == pytest.approx(hscore(x, y), rel=1e-12)
    assert cli_main(["hscore", f"{tmp_path / 't.parquet'}:a,b", f"{tmp_path / 't.parquet'}:y"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(hscore(x[:, :2], y), rel=1e-8)
    assert cli_main(["transferability", str(tmp_path / "x.npy"), f"{tmp_path / 'd.npz'}:labels",
                     "--optimal", "2.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["transferability"] == pytest.approx(hscore(x, y) / 2, rel=1e-12)
    assert cli_main(["transferability", f"{tmp_path / 't.parquet'}:a", f"{tmp_path / 't.parquet'}:y",
                     "--optimal", str(tmp_path / "x.npy")]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(hscore(x[:, :1], y) / hscore(x, y), rel=1e-8)
    assert cli_main(["hscore", str(tmp_path / "missing.npy"), str(tmp_path / "x.npy")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_transferability_one_class_target_raises_under_dtm_and_ace(rng):
    """H_T(f_opt) of a one-class target (or of constant inputs) is 0: the ratio is undefined and must raise
    (dtm's rounding gave 3e-32 and transferability returned 0.0 before)."""
    x = rng.integers(0, 6, 500)
    feats = rng.normal(size=(500, 3))
    for method in ("dtm", "ace"):
        with pytest.raises(ValueError, match="one class"):
            transferability(feats, np.full(500, 2), optimal=method, inputs=x)
        with pytest.raises(ValueError, match="one class"):
            transferability(feats, x % 3, optimal=method, inputs=np.zeros(500, int))


def test_transferability_sparse_codes_and_output_rule(discrete_problem, rng):
    torch = pytest.importorskip("torch")
    x, y, onehot = discrete_problem
    feats = onehot + 0.1 * rng.normal(size=onehot.shape)
    t = transferability(feats, y, optimal="dtm", inputs=x)
    assert type(t) is float
    # sparse input codes and the default ACE k (min of the distinct counts - 1, not of the largest codes)
    assert transferability(feats, y, optimal="dtm", inputs=x * 2**40) == pytest.approx(t, rel=1e-12)
    assert transferability(feats, y * 1000, optimal="ace", inputs=x * 10**6) == pytest.approx(t, rel=1e-5)
    tt = transferability(torch.from_numpy(feats), torch.from_numpy(y), optimal="dtm", inputs=x)
    assert isinstance(tt, torch.Tensor) and tt.ndim == 0 and float(tt) == pytest.approx(t, rel=1e-12)
    ranked = rank_sources({"a": torch.from_numpy(feats), "b": torch.from_numpy(rng.normal(size=feats.shape))}, y)
    assert ranked[0][0] == "a" and isinstance(ranked[0][1], torch.Tensor)
    with pytest.raises(TypeError, match="k"):
        transferability(feats, y, optimal="ace", inputs=x, k=2.5)
    sources = {"a": feats, "b": rng.normal(size=feats.shape)}
    for (name, h), (name_s, h_s) in zip(rank_sources(sources, y), rank_sources(sources, y * 2**40)):
        assert name == name_s and h == pytest.approx(h_s, rel=1e-12)  # sparse codes renumbered (MemoryError before)
