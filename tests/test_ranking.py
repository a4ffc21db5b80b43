"""Ranking comparison and task clustering against SciPy / scikit-learn oracles."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.cluster import hierarchy  # noqa: E402
from scipy.spatial.distance import pdist  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.metrics import ndcg_score as sk_ndcg  # noqa: E402

from tasklens.metrics.clustering import cluster_tasks, plot_dendrogram  # noqa: E402
from tasklens.metrics.ranking import (dcg_score, kendall_tau, ndcg_score, rankdata, spearman,  # noqa: E402
                                      top_k_agreement)

vectors = st.integers(2, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 6), min_size=n, max_size=n), st.lists(st.integers(-3, 3), min_size=n, max_size=n)))


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
@settings(max_examples=150, deadline=None)
@given(vectors)
def test_rank_correlations_match_scipy_with_ties(ab):
    a, b = (np.array(v, dtype=float) for v in ab)
    np.testing.assert_allclose(rankdata(a), stats.rankdata(a))
    for ours, theirs in ((spearman(a, b), stats.spearmanr(a, b)[0]),
                         (kendall_tau(a, b), stats.kendalltau(a, b, variant="b")[0])):
        if np.isnan(theirs):
            assert np.isnan(ours)
        else:
            np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_kendall_large_continuous(rng):
    a = rng.normal(size=20000)
    b = a + rng.normal(size=20000)
    np.testing.assert_allclose(kendall_tau(a, b), stats.kendalltau(a, b)[0], atol=1e-12)
    assert kendall_tau(a, a) == 1.0 and kendall_tau(a, -a) == -1.0


@settings(max_examples=100, deadline=None)
@given(vectors, st.one_of(st.none(), st.integers(1, 10)))
def test_ndcg_matches_sklearn_with_ties(ab, k):
    rel = np.array(ab[0], dtype=float)
    sc = np.array(ab[1], dtype=float)
    if rel.sum() == 0:
        assert np.isnan(ndcg_score(rel, sc, k=k))
        return
    np.testing.assert_allclose(ndcg_score(rel, sc, k=k), sk_ndcg(rel[None], sc[None], k=k), atol=1e-12)


def test_dcg_by_hand():
    # order by score: items 0 (rel 3), 2 (rel 0), 1 (rel 2) -> 3/1 + 0/log2(3) + 2/2
    np.testing.assert_allclose(dcg_score([3, 2, 0], [0.9, 0.1, 0.5]), 4.0)
    np.testing.assert_allclose(dcg_score([3, 2, 0], [0.9, 0.1, 0.5], k=1), 3.0)
    np.testing.assert_allclose(dcg_score([1, 2, 0], [0.9, 0.1, 0.5], gains="exponential"), 1.0 + 3.0 / 2.0)
    # tied scores share the group's mean gain
    np.testing.assert_allclose(dcg_score([2, 0], [1.0, 1.0]), 1.0 * (1 + 1 / np.log2(3)))


def test_top_k_agreement():
    a = np.array([5.0, 4, 3, 2, 1])
    assert top_k_agreement(a, a, 3) == 1.0
    assert top_k_agreement(a, -a, 2) == 0.0
    assert top_k_agreement(a, [5.0, 1, 4, 3, 2], 2) == 0.5
    assert top_k_agreement(a, [1.0, 1, 1, 1, 1], 2) == 1.0  # ties broken by index
    assert top_k_agreement(a, a, 99) == 1.0


@pytest.mark.parametrize("call, err, word", [
    (lambda: spearman([1, 2, 3], [1, 2]), ValueError, "b"),
    (lambda: kendall_tau([1.0], [1.0]), ValueError, "at least 2"),
    (lambda: ndcg_score([1, 2], [1, np.nan]), ValueError, "NaN"),
    (lambda: ndcg_score([1, 2], [1, 2], gains="log"), ValueError, "gains"),
    (lambda: top_k_agreement([1, 2], [1, 2], 0), ValueError, "k"),
    (lambda: spearman([[1, 2]], [[1, 2]]), ValueError, "1-D"),
])
def test_ranking_bad_input(call, err, word):
    with pytest.raises(err, match=word):
        call()


@pytest.mark.parametrize("method", ["single", "complete", "average", "weighted"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "correlation"])
def test_linkage_matches_scipy(rng, method, metric):
    h = rng.normal(size=(25, 6)) + np.repeat(rng.normal(scale=3, size=(5, 6)), 5, axis=0)
    ours = cluster_tasks(h, method=method, metric=metric, n_clusters=5)
    ref = hierarchy.linkage(pdist(h, metric=metric), method=method)
    np.testing.assert_allclose(ours.linkage[:, 2], ref[:, 2], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ours.linkage[:, 3], ref[:, 3])
    ref_labels = hierarchy.fcluster(ref, 5, criterion="maxclust")
    assert adjusted_rand_score(ours.labels, ref_labels) == 1.0
    np.testing.assert_array_equal(sorted(ours.order), np.arange(25))


def test_threshold_cut_and_dendrogram(rng):
    h = np.vstack([rng.normal(0, 0.1, (4, 5)), rng.normal(5, 0.1, (3, 5))])
    r = cluster_tasks(h, metric="euclidean", threshold=2.0, names=[f"task{i}" for i in range(7)])
    assert r.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(r.order, hierarchy.leaves_list(r.linkage))
    ax = plot_dendrogram(r)
    texts = [t.get_text() for t in ax.get_yticklabels()]
    assert texts == [f"task{i}" for i in r.order]
    assert cluster_tasks(h).labels is None


def test_clustering_bad_input():
    with pytest.raises(ValueError, match="constant"):
        cluster_tasks(np.array([[1.0, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="n_clusters"):
        cluster_tasks(np.eye(3), n_clusters=4)
    with pytest.raises(ValueError, match="method"):
        cluster_tasks(np.eye(3), method="ward")
    with pytest.raises(ValueError, match="names"):
        cluster_tasks(np.eye(3), names=["a"])
    with pytest.raises(ValueError, match="2 row"):
        cluster_tasks(np.ones((1, 3)))


def test_one_spearman_and_kendall_documented_ties_and_output_rule():
    """Tie handling documented as scipy's (tau-b, average ranks); numpy -> float, torch -> 0-d float64 tensor."""
    torch = pytest.importorskip("torch")
    assert "tau-b" in kendall_tau.__doc__ and "scipy.stats.kendalltau" in kendall_tau.__doc__
    assert "average rank" in spearman.__doc__ and "scipy.stats.spearmanr" in spearman.__doc__
    a, b = [3, 1, 1, 2, 5, 5], [1, 2, 2, 2, 3, 0]
    assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-14)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-14)
    assert type(kendall_tau(a, b)) is float and type(spearman(a, b)) is float
    ta, tb = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    for fn in (kendall_tau, spearman):
        r = fn(ta, tb)
        assert isinstance(r, torch.Tensor) and r.ndim == 0 and r.dtype == torch.float64
        assert float(r) == pytest.approx(fn(a, b), abs=1e-14)
    with pytest.raises(TypeError, match="k"):
        top_k_agreement(a, b, 2.5)
