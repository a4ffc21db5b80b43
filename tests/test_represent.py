"""tasklens.represent: [mu, sigma^2] (Task2Box Eq. 1-2), Task2Vec's Fisher (vs brute-force per-sample gradients),
the probe, the disk cache, and CLIP through open_clip (skipped with the reason when open_clip cannot import)."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

torch = pytest.importorskip("torch")

from tasklens.datasets import ImageDomain  # noqa: E402
from tasklens.datasets.sources import FeatureSet  # noqa: E402
from tasklens.represent import (FeatureCache, build_probe, content_hash, fisher_diagonal, load_probe,  # noqa: E402
                                mean_var, probe_features, represent, save_probe, task2vec, task2vec_distance)
from tasklens.represent.fisher import per_filter  # noqa: E402


# --------------------------------------------------------------------------- Eq. 1-2
def _mean_var_reference(x):
    n, d = x.shape
    mu = [sum(float(x[i, j]) for i in range(n)) / n for j in range(d)]
    var = [sum((float(x[i, j]) - mu[j]) ** 2 for i in range(n)) / n for j in range(d)]
    return np.array(mu + var)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=st.floats(-1e3, 1e3)))
def test_mean_var_matches_numpy_reference(x):
    np.testing.assert_allclose(mean_var(x), _mean_var_reference(x), rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(mean_var(x, variance=False), _mean_var_reference(x)[:x.shape[1]], rtol=1e-12,
                               atol=1e-9)


def test_mean_var_kinds_and_errors():
    x = np.arange(12.0).reshape(4, 3)
    out = mean_var(torch.tensor(x, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (6,)
    np.testing.assert_allclose(out.numpy(), _mean_var_reference(x), rtol=1e-6)
    assert mean_var(x.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="items"):
        mean_var(np.zeros(3))
    with pytest.raises(ValueError, match="ddof"):
        mean_var(np.zeros((1, 2)), ddof=1)


# --------------------------------------------------------------------------- Task2Vec
def _tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()


def _brute_force(net, x, labels_and_weights):
    """mean over (i, draw) of w * (d log p(y|x_i) / d theta)^2, one autograd call per sample."""
    acc = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    count = 0
    for i, draws in enumerate(labels_and_weights):
        for y, w in draws:
            net.zero_grad()
            torch.log_softmax(net(x[i:i + 1]), 1)[0, y].backward()
            for n, p in net.named_parameters():
                acc[n] += w * p.grad ** 2
        count += 1
    return {n: a / count for n, a in acc.items()}


def test_fisher_exact_equals_brute_force_float64():
    net = _tiny_net()
    x = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        p = torch.softmax(net(x), 1)
    ref = _brute_force(net, x, [[(c, float(p[i, c])) for c in range(3)] for i in range(len(x))])
    got = fisher_diagonal(net, x, exact=True, batch_size=3)
    for n in ref:
        torch.testing.assert_close(got[n], ref[n], rtol=1e-10, atol=1e-14)


def test_fisher_monte_carlo_equals_brute_force_with_the_same_draws():
    net = _tiny_net()
    x = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(5)
    draws = [[] for _ in range(len(x))]
    for s in range(0, len(x), 4):  # the documented draw order: per batch, per sample
        with torch.no_grad():
            p = torch.softmax(net(x[s:s + 4]), 1)
        for _ in range(2):
            y = torch.multinomial(p, 1, generator=gen)[:, 0]
            for i, yi in enumerate(y.tolist()):
                draws[s + i].append((yi, 0.5))
    ref = _brute_force(net, x, draws)
    got = fisher_diagonal(net, x, samples=2, seed=5, batch_size=4)
    for n in ref:
        torch.testing.assert_close(got[n], ref[n], rtol=1e-10, atol=1e-14)
    # and the MC estimate is unbiased: many draws approach the exact expectation
    exact = fisher_diagonal(net, x, exact=True)
    many = fisher_diagonal(net, x, samples=150, seed=0, batch_size=10)
    for n in exact:
        assert torch.allclose(many[n], exact[n], rtol=0.3, atol=0.02 * float(exact[n].max()))
        assert float(many[n].sum()) == pytest.approx(float(exact[n].sum()), rel=0.1)


def test_per_filter_averages_each_output_unit():
    f = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2), "c": torch.arange(8.0).reshape(2, 2, 2)}
    np.testing.assert_allclose(per_filter(f), [1.0, 4.0, 1.5, 5.5])


def _images(n, seed, size=12):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 1, size, size), dtype=np.uint8), rng.integers(0, 3, size=n)


def test_task2vec_shape_determinism_and_probe_roundtrip(tmp_path):
    probe = build_probe(1, 10, widths=(3, 4), size=12)
    x, y = _images(20, 0)
    v = task2vec(x, y, probe=probe, num_classes=3, seed=0, head_steps=20)
    assert v.shape == (7,) and (v >= 0).all() and v.sum() > 0
    np.testing.assert_array_equal(v, task2vec(x, y, probe=probe, num_classes=3, seed=0, head_steps=20))
    path = save_probe(probe, tmp_path / "p.pt")
    again = load_probe(path)
    np.testing.assert_allclose(probe_features(x, again), probe_features(x, probe), rtol=1e-6)
    assert probe_features(x, probe).shape == (20, 4)
    with pytest.raises(FileNotFoundError, match="probe"):
        load_probe(tmp_path / "missing.pt")


def test_task2vec_distance_follows_the_normalised_cosine():
    a, b = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5])
    u, v = a / (a + b), b / (a + b)
    ref = 1 - u @ v / np.linalg.norm(u) / np.linalg.norm(v)
    assert task2vec_distance(a, b) == pytest.approx(ref)
    assert task2vec_distance(a, 3 * a) == pytest.approx(0.0, abs=1e-12)  # scale invariant
    t0 = np.ones(3)
    assert task2vec_distance(a, b, trivial=t0, alpha=0.5) == pytest.approx(ref - 0.5 * task2vec_distance(a, t0))
    with pytest.raises(ValueError, match="non-negative"):
        task2vec_distance(-a, b)


# --------------------------------------------------------------------------- cache
def test_content_hash_and_cache_roundtrip(tmp_path):
    a = np.arange(4)
    assert content_hash(a, "m") == content_hash(a.copy(), "m")
    assert content_hash(a, "m") != content_hash(a.astype(np.int32), "m")
    assert content_hash(a, "m") != content_hash(a, "n")
    c = FeatureCache(tmp_path)
    calls = []
    out = c.fetch("k", "key", lambda: calls.append(1) or {"v": np.ones(3)})
    again = c.fetch("k", "key", lambda: calls.append(1) or {"v": np.zeros(3)})
    np.testing.assert_array_equal(out["v"], again["v"])
    assert calls == [1] and (c.hits, c.misses) == (1, 1)
    off = FeatureCache(False)
    off.fetch("k", "key", lambda: {"v": np.ones(1)})
    assert off.misses == 1 and off.hits == 0


def test_represent_cache_hits_and_invalidation(tmp_path):
    probe = build_probe(1, 10, widths=(3, 4), size=12)
    x, y = _images(16, 1)
    ds = [ImageDomain(f"d{i}", x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8] % 2, ("a", "b")) for i in range(2)]
    X1, items, info = represent(ds, "features", probe=probe, cache_dir=tmp_path)
    assert (info["cache_hits"], info["cache_misses"]) == (0, 2)
    X2, _, info = represent(ds, "features", probe=probe, cache_dir=tmp_path)
    assert (info["cache_hits"], info["cache_misses"]) == (2, 0)
    np.testing.assert_array_equal(X1, X2)
    changed = ds[0].x.copy()
    changed[0, 0, 0, 0] ^= 1  # one pixel
    _, _, info = represent([ImageDomain("d0", changed, ds[0].y, ds[0].classes), ds[1]], "features", probe=probe,
                           cache_dir=tmp_path)
    assert (info["cache_hits"], info["cache_misses"]) == (1, 1)
    relabelled = ImageDomain("d1", ds[1].x, ds[1].y, ("a", "c"))  # class names are part of the key
    _, _, info = represent([ds[0], relabelled], "features", probe=probe, cache_dir=tmp_path)
    assert (info["cache_hits"], info["cache_misses"]) == (1, 1)
    other = build_probe(1, 10, widths=(3, 4), size=12)  # new weights = new model id
    _, _, info = represent(ds, "features", probe=other, cache_dir=tmp_path)
    assert info["cache_misses"] == 2
    T, _, info = represent(ds[:1], "task2vec", probe=probe, cache_dir=tmp_path)  # another method
    assert info["cache_misses"] == 1 and T.shape == (1, 7)
    assert X1.shape == (2, 8) and items[0].shape == (8, 4)
    np.testing.assert_allclose(X1[0], _mean_var_reference(items[0].astype(np.float64)), rtol=1e-6)


def test_features_pass_through():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    X, items, info = represent([FeatureSet("a", a), FeatureSet("b", b)], "features", cache_dir=False)
    np.testing.assert_allclose(X[0], _mean_var_reference(a), rtol=1e-10)
    np.testing.assert_allclose(items[1], b.astype(np.float32))
    assert info["model_id"] == "features"
    with pytest.raises(ValueError, match="needs images"):
        represent([FeatureSet("a", a)], "task2vec", probe=build_probe(1, 2, (2,), 8), cache_dir=False)


# --------------------------------------------------------------------------- CLIP (open_clip)
def _open_clip_or_skip():
    from tasklens.represent.clip import open_clip_available

    ok, why = open_clip_available()
    if not ok:
        pytest.skip(f"open_clip cannot be imported here ({why}); the `clip` extra needs torch and torchvision "
                    "that match, e.g. torch==2.14.1 torchvision==0.29.1")
    import open_clip

    return open_clip


TINY = {"embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_clip(tmp_path):
    open_clip = _open_clip_or_skip()
    cfg = tmp_path / "tasklens-tiny-clip.json"
    cfg.write_text(json.dumps(TINY))
    open_clip.add_model_config(cfg)
    return "tasklens-tiny-clip"


def test_clip_item_embeddings_random_weights(tiny_clip, tmp_path):
    from tasklens.represent import clip_item_embeddings, clip_text_features, load_clip

    clip = load_clip(tiny_clip, None, seed=0)
    x, y = _images(6, 3, size=20)
    items = clip_item_embeddings(clip, x, y, ["cat", "dog", "bird"], batch_size=4)
    assert items.shape == (6, 32) and items.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(items[:, :16], axis=1), 1, rtol=1e-5)
    txt = clip_text_features(clip, ["cat", "dog", "bird"])
    np.testing.assert_allclose(items[:, 16:], txt[y], rtol=1e-6)
    np.testing.assert_allclose(mean_var(items.astype(np.float64)), _mean_var_reference(items.astype(np.float64)),
                               rtol=1e-9, atol=1e-12)
    # a checkpoint file gives the same model, and its id names the file
    path = tmp_path / "tiny.pt"
    torch.save(clip.model.state_dict(), path)
    again = load_clip(tiny_clip, str(path))
    np.testing.assert_allclose(clip_item_embeddings(again, x, y, ["cat", "dog", "bird"]), items, rtol=1e-5,
                               atol=1e-6)
    assert str(path) in again.model_id and "random" in clip.model_id


def test_clip_weights_errors(tiny_clip, monkeypatch):
    import open_clip

    from tasklens.represent import load_clip

    with pytest.raises(FileNotFoundError, match="weights"):
        load_clip(tiny_clip, "/nonexistent/ckpt.bin")
    tag = next(t for m, t in open_clip.list_pretrained() if m == "ViT-B-32")
    monkeypatch.setenv("TASKLENS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="offline.*local checkpoint file"):
        load_clip("ViT-B-32", tag)
    with pytest.raises(ValueError, match="unknown open_clip architecture"):
        load_clip("no-such-model")


def test_clip_missing_gives_install_hint(monkeypatch):
    import tasklens.represent.clip as c

    monkeypatch.setattr(c, "open_clip_available", lambda: (False, "ImportError: no torchvision"))
    with pytest.raises(ImportError, match="pip install 'tasklens\\[clip\\]'"):
        c.load_clip("ViT-B-32")
