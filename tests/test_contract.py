"""The output contract of every public function (in the style of POT's backend tests).

Each public function is called with numpy arrays, torch CPU tensors and torch CUDA tensors (when a GPU is visible),
in float32 and float64, and what comes back is checked against the one output rule of ``tasklens._dispatch``:
numpy in -> numpy out; torch in -> torch out on the input's device; a scalar result is a Python float for numpy
input and a 0-d tensor for torch input; arrays have the dtype the function documents ("input": the input's float
dtype; "float64"; "int64").
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tasklens  # noqa: E402
import tasklens.boxes as tb  # noqa: E402
from tasklens import domain, hgr, metrics  # noqa: E402

KINDS = ["numpy", "torch-cpu", pytest.param("torch-cuda", marks=pytest.mark.cuda)]


def convert(a, kind: str):
    if kind == "numpy":
        return a
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.cuda() if kind == "torch-cuda" else t


def assert_output_rule(result, kind: str, dtype: str, *, scalar: bool = False):
    """Assert that ``result`` obeys the output rule for inputs of ``kind`` (``dtype``: the expected array dtype)."""
    if scalar:
        if kind == "numpy":
            assert type(result) is float, f"numpy input must give a Python float, got {type(result)}"
        else:
            assert isinstance(result, torch.Tensor) and result.ndim == 0, f"torch input must give a 0-d tensor, got {result!r}"
            assert result.device.type == ("cuda" if kind == "torch-cuda" else "cpu")
            assert str(result.dtype).replace("torch.", "") == dtype
        return
    if kind == "numpy":
        assert isinstance(result, np.ndarray), f"numpy input must give a numpy array, got {type(result)}"
        assert str(result.dtype) == dtype, f"expected dtype {dtype}, got {result.dtype}"
    else:
        assert isinstance(result, torch.Tensor), f"torch input must give a tensor, got {type(result)}"
        assert result.device.type == ("cuda" if kind == "torch-cuda" else "cpu"), result.device
        assert str(result.dtype).replace("torch.", "") == dtype, f"expected dtype {dtype}, got {result.dtype}"


def _boxes(rng, n, k, dtype):
    lo = rng.normal(size=(n, k)).astype(dtype)
    return lo, (lo + rng.uniform(0.5, 2.0, size=(n, k))).astype(dtype)


def _features(rng, n=120, f=6, c=3, dtype="float64"):
    y = rng.integers(0, c, n)
    x = (rng.normal(size=(n, f)) + y[:, None]).astype(dtype)
    return x, y


# ------------------------------------------------------------------------------------------------------ boxes

@pytest.mark.parametrize("kind", KINDS)
def test_boxes(kind, dtype, rng):
    lo, hi = _boxes(rng, 7, 3, dtype)
    lo2, hi2 = _boxes(rng, 7, 3, dtype)
    L, H, L2, H2 = (convert(a, kind) for a in (lo, hi, lo2, hi2))
    assert_output_rule(tb.log_volume(L, H), kind, dtype)
    for part in tb.intersection(L, H, L2, H2):
        assert_output_rule(part, kind, dtype)
    assert_output_rule(tb.containment(L, H), kind, dtype)
    assert_output_rule(tb.containment(L, H, L2, H2, mode="hard"), kind, dtype)
    ia, ib = convert(np.array([0, 1, 6]), kind), convert(np.array([2, 2, 0]), kind)
    assert_output_rule(tb.containment_pairs(L, H, L2, H2, ia, ib), kind, dtype)


# ---------------------------------------------------------------------------------------------------- metrics

@pytest.mark.parametrize("kind", KINDS)
def test_hscore(kind, dtype, rng):
    x, y = _features(rng, dtype=dtype)
    X, Y = convert(x, kind), convert(y, kind)
    assert_output_rule(metrics.hscore(X, Y), kind, "float64", scalar=True)
    assert_output_rule(metrics.hscore(X, Y, shrinkage="ledoit-wolf"), kind, "float64", scalar=True)
    Y2 = convert(np.stack([y, (y + 1) % 3], axis=1), kind)
    assert_output_rule(metrics.hscore(X, Y2), kind, "float64")
    acc = metrics.HScoreAccumulator(x.shape[1], 3).update(X, Y)
    assert_output_rule(acc.score(), kind, "float64", scalar=True)
    assert_output_rule(tasklens.hscore(X, Y), kind, "float64", scalar=True)


@pytest.mark.parametrize("kind", KINDS)
def test_transferability(kind, dtype, rng):
    x, y = _features(rng, dtype=dtype)
    inputs = rng.integers(0, 5, x.shape[0])
    inputs[: 3] = [0, 1, 2]
    y = (inputs + rng.integers(0, 2, x.shape[0])) % 3
    X, Y, I = convert(x, kind), convert(y, kind), convert(inputs, kind)
    assert_output_rule(metrics.transferability(X, Y, optimal="dtm", inputs=I), kind, "float64", scalar=True)


@pytest.mark.parametrize("kind", KINDS)
def test_ranking(kind, rng):
    a, b = rng.normal(size=12), rng.normal(size=12)
    A, B = convert(a, kind), convert(b, kind)
    assert_output_rule(metrics.spearman(A, B), kind, "float64", scalar=True)
    assert_output_rule(metrics.kendall_tau(A, B), kind, "float64", scalar=True)


# -------------------------------------------------------------------------------------------------------- hgr

@pytest.mark.parametrize("kind", KINDS)
def test_hgr(kind, rng):
    x = rng.integers(0, 4, 300)
    y = (x + rng.integers(0, 2, 300)) % 3
    X, Y = convert(x, kind), convert(y, kind)
    r = hgr.dtm(X, Y)
    assert_output_rule(r.matrix, kind, "float64")
    assert_output_rule(r.optimal_hscore, kind, "float64", scalar=True)
    a = hgr.ace(X, Y, k=1)
    assert_output_rule(a.correlations, kind, "float64")


# ----------------------------------------------------------------------------------------------------- domain

@pytest.mark.parametrize("kind", KINDS)
def test_domain(kind, dtype, rng):
    t = rng.normal(size=(20, 4)).astype(dtype)
    s = rng.normal(size=(30, 4)).astype(dtype)
    T, S = convert(t, kind), convert(s, kind)
    assert_output_rule(domain.domain_distance(T, S), kind, "float64", scalar=True)
    assert_output_rule(domain.domain_distance(T, S, metric="cosine"), kind, "float64", scalar=True)
    dist, index = domain.nearest(T, S)
    assert_output_rule(dist, kind, "float64")
    assert_output_rule(index, kind, "int64")
    assert_output_rule(domain.domain_distance_matrix([T, S, T]), kind, "float64")


@pytest.mark.parametrize("kind", KINDS)
def test_transfer_tools(kind, dtype, rng):
    x, y = _features(rng, dtype=dtype)
    X, Y = convert(x, kind), convert(y, kind)
    ranked = metrics.rank_sources({"a": X, "b": X * 2 + 1}, Y)
    for _name, score in ranked:
        assert_output_rule(score, kind, "float64", scalar=True)
    assert metrics.select_source({"a": X, "b": X[:, :2]}, Y) in ("a", "b")
    dense = convert(rng.integers(0, 3, size=(x.shape[0], 4, 4)), kind)
    result = metrics.pixelwise_hscore(X, dense)
    assert_output_rule(result.score, kind, "float64", scalar=True)
    assert_output_rule(result.map, kind, "float64")


@pytest.mark.parametrize("kind", KINDS)
def test_domain_analysis(kind, rng):
    scores = rng.uniform(0.4, 0.6, size=(4, 3))
    base = rng.uniform(0.4, 0.6, size=4)
    gain = domain.relative_transfer_gain(convert(scores, kind), convert(base, kind))
    assert_output_rule(gain, kind, "float64")
    dist = rng.uniform(size=(4, 4))
    assert_output_rule(domain.kendall_tau(convert(dist, kind), convert(rng.normal(size=(4, 4)), kind)), kind, "float64",
          scalar=True)


@pytest.mark.parametrize("kind", KINDS)
def test_task2box(kind, dtype, rng):
    from tasklens.task2box import AsymmetricCosine, Task2Box, split_pairs

    n = 12
    X = rng.normal(size=(n, 5)).astype(dtype)
    R = np.zeros((n, n), dtype=np.float64)
    R[np.arange(1, n), 0] = 1.0
    tr, va, _te = split_pairs(n, seed=0)
    model = Task2Box(box_dim=2, epochs=2, seed=0, progress=False).fit(X, R, tr, va)
    Xk = convert(X, kind)
    boxes = model.embed(Xk)
    for part in (boxes if isinstance(boxes, tuple) else (boxes,)):
        assert_output_rule(part, kind, dtype)
    assert_output_rule(model.containment(Xk), kind, dtype)
    baseline = AsymmetricCosine().fit(X, R, tr, va)
    assert_output_rule(baseline.score(Xk), kind, dtype)  # baselines score in the input's dtype, like the boxes


@pytest.mark.parametrize("kind", KINDS)
def test_estimators(kind, dtype, rng):
    x, y = _features(rng, n=150, f=5, c=3, dtype=dtype)
    X, Y = convert(x, kind), convert(y, kind)
    for fn in (metrics.logme, metrics.transrate, metrics.gbc, metrics.sfda):
        assert_output_rule(fn(X, Y), kind, "float64", scalar=True)
    assert_output_rule(metrics.nleep(X, Y, n_components=2), kind, "float64", scalar=True)
    Y2 = convert(np.stack([y, (y + 1) % 3], axis=1), kind)
    assert_output_rule(metrics.logme(X, Y2), kind, "float64")
    probs = rng.dirichlet(np.ones(4), size=x.shape[0])
    assert_output_rule(metrics.leep(convert(probs, kind), Y), kind, "float64", scalar=True)
    assert_output_rule(metrics.nce(convert(rng.integers(0, 4, x.shape[0]), kind), Y), kind, "float64", scalar=True)
    for name, value in metrics.transferability_report(X, Y).items():
        assert_output_rule(value, kind, "float64", scalar=True)
    a, b = convert(rng.normal(size=9), kind), convert(rng.normal(size=9), kind)
    for fn in (metrics.weighted_kendall_tau, metrics.pearson, metrics.relative_top_k_accuracy):
        assert_output_rule(fn(a, b), kind, "float64", scalar=True)
