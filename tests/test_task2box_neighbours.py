"""Task2Box issue 14, third pass: neighbour boxes for novel datasets (``neighbours=``). References are float64
numpy formulas written from the docstring, never the implementation; leak tests corrupt every test label and
every novel row."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tasklens.task2box import Task2Box, novel_mask  # noqa: E402
from tasklens.task2box.model import neighbour_boxes  # noqa: E402

from _task2box_toy import toy_split  # noqa: E402
from test_task2box_episodes import params  # noqa: E402


def reference_boxes(x, anchors, e_o, lo_a, hi_a, lo_x, hi_x, tau, scale, blend):
    """float64: w = softmax(cos(x - e_o, a - e_o) / tau); centre and sides averaged with w, sides * scale;
    then blend * that box + (1 - blend) * the own box, corner by corner."""
    u = x - e_o
    v = anchors - e_o
    cos = (u @ v.T) / np.outer(np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1))
    w = np.exp(cos / tau - (cos / tau).max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    centre = w @ ((lo_a + hi_a) / 2)
    side = scale * (w @ (hi_a - lo_a))
    return blend * (centre - side / 2) + (1 - blend) * lo_x, blend * (centre + side / 2) + (1 - blend) * hi_x


@pytest.mark.parametrize("tau, scale, blend", [(0.05, 0.7, 0.7), (1.0, 1.0, 1.0), (0.3, 1.4, 0.0)])
def test_neighbour_boxes_match_the_float64_formula(tau, scale, blend):
    rng = np.random.default_rng(0)
    x, anchors = rng.normal(size=(4, 6)), rng.normal(size=(9, 6))
    e_o = anchors.mean(0)
    lo_a = rng.normal(size=(9, 3))
    hi_a = lo_a + rng.random((9, 3)) + 0.1
    lo_x = rng.normal(size=(4, 3))
    hi_x = lo_x + 0.5
    t = [torch.as_tensor(a) for a in (x, anchors, e_o, lo_a, hi_a, lo_x, hi_x)]
    lo, hi = neighbour_boxes(*t, tau, scale, blend)
    rlo, rhi = reference_boxes(x, anchors, e_o, lo_a, hi_a, lo_x, hi_x, tau, scale, blend)
    assert np.allclose(lo.numpy(), rlo, atol=1e-12) and np.allclose(hi.numpy(), rhi, atol=1e-12)


def test_convex_average_of_boxes_inside_a_box_stays_inside():
    rng = np.random.default_rng(1)
    lo_a = rng.random((20, 2)) * 0.5          # every anchor box inside [0, 1]^2
    hi_a = lo_a + rng.random((20, 2)) * 0.5
    x, anchors = rng.normal(size=(7, 5)), rng.normal(size=(20, 5))
    t = [torch.as_tensor(a) for a in (x, anchors, anchors.mean(0), lo_a, hi_a)]
    lo, hi = neighbour_boxes(*t, torch.zeros(7, 2), torch.zeros(7, 2), 0.1, 1.0, 1.0)
    assert (lo.numpy() >= -1e-12).all() and (hi.numpy() <= 1 + 1e-12).all() and (hi > lo).all()


def setup(seed=0):
    t = toy_split(seed)
    return t.X, t.R, t.tr, t.va, t.te, t.existing, t.novel


def fit(X, R, tr, va, **kw):
    kw = {"box_dim": 2, "seed": 0, "epochs": 8, "hidden": (8, 8, 8), "eval_every": 2, "progress": False, **kw}
    return Task2Box(**kw).fit(X, R, tr, va)


def test_seen_rows_keep_their_own_boxes_and_novel_rows_get_neighbour_boxes():
    X, R, tr, va, _, existing, novel = setup()
    plain = fit(X, R, tr, va, neighbours=False)
    m = fit(X, R, tr, va, neighbours=True, neighbour_kernel="raw")
    assert torch.equal(params(plain), torch.cat([p.detach().flatten() for k, p in m.net_.state_dict().items()
                                                 if p.is_floating_point() and not k.startswith(("anchors",
                                                                                               "neighbour_"))]))
    lo0, hi0 = plain.embed(X)
    lo, hi = m.embed(X)
    assert np.array_equal(lo[existing], lo0[existing]) and np.array_equal(hi[existing], hi0[existing])
    # reference for the novel rows from the encoder's own boxes (float32 of the fitted model, in float64)
    xs = X.astype(np.float32).astype(np.float64)
    e_o = m.net_.x_mean.double().numpy()
    rlo, rhi = reference_boxes(xs[novel], xs[existing], e_o, lo0[existing], hi0[existing], lo0[novel], hi0[novel],
                               0.05, 0.7, 0.7)
    assert np.allclose(lo[novel], rlo, atol=1e-5) and np.allclose(hi[novel], rhi, atol=1e-5)
    assert not np.allclose(lo[novel], lo0[novel])
    S = m.containment(X)  # the boxes that score are the ones embed returns
    S_ref = m._scores(torch.as_tensor(lo), torch.as_tensor(hi), torch.as_tensor(lo), torch.as_tensor(hi)).numpy()
    assert np.allclose(S, S_ref, atol=1e-6)


def test_a_near_copy_of_a_seen_dataset_lands_on_its_box():
    X, R, tr, va, _, existing, _ = setup()
    m = fit(X, R, tr, va, neighbours=True, neighbour_tau=1e-3, neighbour_scale=1.0, neighbour_blend=1.0)
    i = existing[3]
    copy = X[i:i + 1] * (1 + 1e-4)  # not bit-equal: treated as novel, its nearest neighbour is dataset i
    lo, hi = m.embed(copy)
    lo_i, hi_i = m.embed(X[i:i + 1])
    assert np.allclose(lo, lo_i, atol=1e-4) and np.allclose(hi, hi_i, atol=1e-4)


@pytest.mark.parametrize("neighbours", [True, "auto"])
def test_determinism_per_seed(neighbours):
    X, R, tr, va, *_ = setup()
    a, b = fit(X, R, tr, va, neighbours=neighbours), fit(X, R, tr, va, neighbours=neighbours)
    assert np.array_equal(a.containment(X), b.containment(X))
    assert a.neighbours_ == b.neighbours_
    c = fit(X, R, tr, va, neighbours=neighbours, seed=1)
    assert not np.array_equal(a.containment(X), c.containment(X))


@pytest.mark.parametrize("neighbours", [True, "auto"])
def test_test_pairs_and_novel_datasets_never_reach_training_or_selection(neighbours):
    """Corrupt every test label and every novel row: parameters, anchors, the internal choice and the boxes of
    the seen datasets are unchanged; the internal held-out datasets are drawn among the training datasets."""
    X, R, tr, va, te, existing, novel = setup()
    nm = novel_mask(len(X), existing, novel)
    a = fit(X, R, tr, va, neighbours=neighbours)
    X2, R2 = X.copy(), R.copy()
    X2[novel] = np.random.default_rng(5).normal(size=(novel.size, X.shape[1])) * 10
    R2[te | nm] = 1 - R2[te | nm]
    b = fit(X2, R2, tr, va, neighbours=neighbours)
    assert torch.equal(params(a), params(b))
    assert np.array_equal(a.net_.anchors.numpy(), X[existing].astype(np.float32))
    assert a.neighbours_ == b.neighbours_ and getattr(a, "neighbour_f1_", None) == getattr(b, "neighbour_f1_", None)
    assert np.array_equal(a.containment(X[existing]), b.containment(X2[existing]))


def test_auto_holds_out_training_datasets_only(monkeypatch):
    import tasklens.task2box.model as model_module

    X, R, tr, va, te, existing, novel = setup()
    seen_tr = np.flatnonzero(tr.any(0) | tr.any(1))
    calls = []
    real = model_module.holdout_split

    def spy(train_mask, fraction, seed):
        held = real(train_mask, fraction, seed)
        calls.append((train_mask.copy(), held))
        return held

    monkeypatch.setattr(model_module, "holdout_split", spy)
    m = fit(X, R, tr, va, neighbours="auto", neighbour_holdout=0.2)
    (mask, held), = calls
    # the mask handed over is train_mask restricted to the seen datasets: held rows index into seen_
    assert mask.shape == (m.seen_.size,) * 2 and np.array_equal(mask, tr[np.ix_(m.seen_, m.seen_)])
    assert np.isin(m.seen_[held], seen_tr).all() and held.sum() == round(0.2 * m.seen_.size)
    assert not np.isin(m.seen_[held], novel).any()
    assert isinstance(m.neighbours_, bool) and len(m.neighbour_f1_) == 2


def test_save_load_keeps_the_neighbour_boxes(tmp_path):
    X, R, tr, va, *_ = setup()
    m = fit(X, R, tr, va, neighbours=True)
    m.save(str(tmp_path / "m.pt"))
    m2 = Task2Box.load(str(tmp_path / "m.pt"))
    assert np.array_equal(m2.containment(X), m.containment(X))
    off = fit(X, R, tr, va, neighbours=False)
    off.save(str(tmp_path / "off.pt"))
    assert np.array_equal(Task2Box.load(str(tmp_path / "off.pt")).containment(X), off.containment(X))


def test_torch_in_torch_out_with_neighbours():
    X, R, tr, va, *_ = setup()
    m = fit(X, R, tr, va, neighbours=True)
    lo, hi = m.embed(torch.as_tensor(X))
    assert isinstance(lo, torch.Tensor) and lo.dtype == torch.float64
    assert np.allclose(lo.numpy(), m.embed(X)[0])


def test_neighbour_option_errors_name_the_argument():
    with pytest.raises(ValueError, match="neighbours"):
        Task2Box(neighbours="yes")
    with pytest.raises(ValueError, match="neighbour_tau"):
        Task2Box(neighbour_tau=0.0)
    with pytest.raises(ValueError, match="neighbour_scale"):
        Task2Box(neighbour_scale=-1.0)
    with pytest.raises(ValueError, match="neighbour_blend"):
        Task2Box(neighbour_blend=1.5)
    with pytest.raises(ValueError, match="neighbour_holdout"):
        Task2Box(neighbour_holdout=0.0)


def test_default_is_auto_and_keeps_the_fit_api():
    import inspect

    sig = inspect.signature(Task2Box.__init__)
    assert sig.parameters["neighbours"].default == "auto"
    assert (sig.parameters["neighbour_tau"].default, sig.parameters["neighbour_scale"].default,
            sig.parameters["neighbour_blend"].default) == (0.05, 0.7, 0.7)
    assert sig.parameters["closure"].default == "auto" and sig.parameters["neighbour_kernel"].default == "input"
    fit_sig = inspect.signature(Task2Box.fit)
    assert list(fit_sig.parameters)[1:5] == ["X", "relations", "train_mask", "val_mask"]


def test_auto_internal_fit_gets_the_same_members_restricted_to_the_seen_datasets(monkeypatch):
    members, R, X, items, existing, _, tr, va, _, _ = toy_split()
    n = len(members)
    mem = [items[sorted(m)] for m in members]
    seen_calls = []
    real = Task2Box._fit

    def spy(self, X_, R_, tr_, va_=None, **kw):
        seen_calls.append((X_.shape[0], kw.get("members")))
        return real(self, X_, R_, tr_, va_, **kw)

    monkeypatch.setattr(Task2Box, "_fit", spy)
    Task2Box(box_dim=2, epochs=2, hidden=(8, 8, 8), progress=False).fit(X, R, tr, va, members=mem)
    (n_outer, m_outer), (n_inner, m_inner) = seen_calls
    assert n_outer == n and len(m_outer) == n
    assert n_inner == existing.size and len(m_inner) == existing.size
    assert all(np.array_equal(a, mem[i]) for a, i in zip(m_inner, existing))


def test_final_checkpoint_loads_as_the_model_that_scores(tmp_path):
    X, R, tr, va, *_ = setup()
    path = str(tmp_path / "ck.pt")
    m = fit(X, R, tr, va, neighbours=True, ema=0.9)
    m2 = Task2Box(box_dim=2, seed=0, epochs=8, hidden=(8, 8, 8), eval_every=2, progress=False, neighbours=True,
                  ema=0.9).fit(X, R, tr, va, checkpoint=path)
    assert np.array_equal(m.containment(X), m2.containment(X))
    assert np.array_equal(Task2Box.load(path).containment(X), m.containment(X))
    resumed = Task2Box(box_dim=2, seed=0, epochs=8, hidden=(8, 8, 8), eval_every=2, progress=False,
                       neighbours=True, ema=0.9).fit(X, R, tr, va, resume=path)
    assert np.array_equal(resumed.containment(X), m.containment(X))


def test_input_kernel_uses_the_standardised_rows():
    """``neighbour_kernel="input"``: the cosine of ``(x - e_o) / x_scale`` (float64 reference); with one global
    scale (``standardize="global"``) it is the raw kernel again (a cosine ignores a common factor)."""
    X, R, tr, va, _, existing, novel = setup()
    X = X * np.linspace(0.1, 10.0, X.shape[1])  # features on very different scales
    plain = fit(X, R, tr, va, neighbours=False)
    m = fit(X, R, tr, va, neighbours=True, neighbour_kernel="input")
    lo0, hi0 = plain.embed(X)
    lo, hi = m.embed(X)
    xs = X.astype(np.float32).astype(np.float64)
    e_o = m.net_.x_mean.double().numpy()
    sd = m.net_.x_scale.double().numpy()
    rlo, rhi = reference_boxes(xs[novel] / sd, xs[existing] / sd, e_o / sd, lo0[existing], hi0[existing],
                               lo0[novel], hi0[novel], 0.05, 0.7, 0.7)
    assert np.allclose(lo[novel], rlo, atol=1e-5) and np.allclose(hi[novel], rhi, atol=1e-5)
    raw = fit(X, R, tr, va, neighbours=True, neighbour_kernel="raw")
    assert not np.allclose(raw.embed(X)[0][novel], lo[novel], atol=1e-3)
    assert np.array_equal(lo[existing], lo0[existing])
    g_raw = fit(X, R, tr, va, neighbours=True, standardize="global", neighbour_kernel="raw")
    g_in = fit(X, R, tr, va, neighbours=True, standardize="global", neighbour_kernel="input")
    assert np.allclose(g_raw.embed(X)[0], g_in.embed(X)[0], atol=1e-5)


def test_input_kernel_survives_save_and_load(tmp_path):
    X, R, tr, va, *_ = setup()
    X = X * np.linspace(0.1, 10.0, X.shape[1])
    m = fit(X, R, tr, va, neighbours=True, neighbour_kernel="input")
    m.save(str(tmp_path / "m.pt"))
    assert np.array_equal(Task2Box.load(str(tmp_path / "m.pt")).containment(X), m.containment(X))
    with pytest.raises(ValueError, match="neighbour_kernel"):
        Task2Box(neighbour_kernel="cosine")


# --------------------------------------------------------------------------- anchor boxes computed once
def uncached_boxes(m, x):
    """Boxes of novel rows ``x`` as the forward pass computed them before the anchor boxes were kept: the
    anchors' boxes recomputed from the current weights, then :func:`neighbour_boxes` (float32, the model's
    threads)."""
    from tasklens.task2box.train import torch_threads

    net = m.net_
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad(), torch_threads(m.config.get("torch_threads", 1)):
        lo, hi = net._boxes((xt - net.x_mean) / net.x_scale)
        lo_a, hi_a = net._boxes((net.anchors - net.x_mean) / net.x_scale)
        sd = net.x_scale if net.neighbour_input else None
        return neighbour_boxes(xt, net.anchors, net.x_mean, lo_a, hi_a, lo, hi, net.neighbour_tau,
                               net.neighbour_scale, net.neighbour_blend, sd)


def count_anchor_passes(net, monkeypatch):
    """Patch ``net._boxes`` to count the passes over all the anchors; returns the list of their sizes."""
    calls = []
    real = net._boxes

    def spy(z, *rest):
        if z.shape[0] == net.anchors.shape[0]:
            calls.append(z.shape[0])
        return real(z, *rest)

    monkeypatch.setattr(net, "_boxes", spy)
    return calls


def test_anchor_boxes_are_computed_once_and_give_the_same_bits(tmp_path, monkeypatch):
    X, R, tr, va, _, existing, novel = setup()
    m = fit(X, R, tr, va, neighbours=True)
    xn = X[novel]
    ref = [b.double().numpy() for b in uncached_boxes(m, xn)]
    passes = count_anchor_passes(m.net_, monkeypatch)
    for _ in range(3):
        lo, hi = m.embed(xn)
        assert np.array_equal(lo, ref[0]) and np.array_equal(hi, ref[1])
    t = [torch.as_tensor(b, dtype=torch.float32) for b in ref]
    S_ref = m._scores(*t, *t).double().numpy()
    assert np.array_equal(m.containment(xn), S_ref) and np.array_equal(m.containment(xn), S_ref)
    assert passes == [existing.size]  # one pass over the anchors for all five calls
    m.save(str(tmp_path / "m.pt"))
    m2 = Task2Box.load(str(tmp_path / "m.pt"))
    for _ in range(2):
        lo, hi = m2.embed(xn)
        assert np.array_equal(lo, ref[0]) and np.array_equal(hi, ref[1])
        assert np.array_equal(m2.containment(xn), S_ref)


def _inplace(net):
    with torch.no_grad():
        net.head_lo.bias.add_(0.5)


def _train_then_inplace(net):
    net.train()
    assert net._anchor_cache is None
    net(torch.as_tensor(np.random.default_rng(0).normal(size=(3, net.anchors.shape[1])), dtype=torch.float32))
    assert net._anchor_cache is None  # a training-mode pass neither reads nor writes the cache
    _inplace(net)
    net.eval()


def _replaced(net):
    net.head_lo.bias = torch.nn.Parameter(net.head_lo.bias.detach() + 0.5)


def _data_assigned(net):
    net.head_lo.bias.data = net.head_lo.bias.data + 0.5


def _state_loaded(net):
    state = net.state_dict()
    state["head_lo.bias"] = state["head_lo.bias"] + 0.5
    net.load_state_dict(state)


def _running_stats(net):
    with torch.no_grad():
        net.body[1].running_mean.add_(0.5)


@pytest.mark.parametrize("change", [_inplace, _train_then_inplace, _replaced, _data_assigned, _state_loaded,
                                    _running_stats])
def test_changed_weights_never_reuse_the_anchor_boxes(change):
    X, R, tr, va, _, existing, novel = setup()
    m = fit(X, R, tr, va, neighbours=True)
    xn = X[novel]
    before = m.embed(xn)
    assert m.net_._anchor_cache is not None
    change(m.net_)
    after = m.embed(xn)
    ref = [b.double().numpy() for b in uncached_boxes(m, xn)]
    assert np.array_equal(after[0], ref[0]) and np.array_equal(after[1], ref[1])
    assert not np.allclose(after[0], before[0])


def test_anchor_boxes_are_not_kept_with_autograd_on():
    X, R, tr, va, _, existing, novel = setup()
    m = fit(X, R, tr, va, neighbours=True)
    net = m.net_
    net.eval()
    lo, hi = net(torch.as_tensor(X[novel], dtype=torch.float32))  # autograd on: gradients reach the anchors' boxes
    assert net._anchor_cache is None and lo.requires_grad
    (lo.sum() + hi.sum()).backward()
    assert net.head_lo.weight.grad is not None and net.head_lo.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("scaled", [False, True])
def test_given_anchor_directions_give_the_same_bits(scaled):
    from tasklens.task2box.model import unit_directions

    rng = np.random.default_rng(3)
    x, anchors = (torch.as_tensor(rng.normal(size=s)) for s in ((5, 4), (7, 4)))
    e_o, fs = anchors.mean(0), (torch.as_tensor(rng.random(4) + 0.5) if scaled else None)
    lo_a = torch.as_tensor(rng.normal(size=(7, 2)))
    hi_a, lo_x = lo_a + 1.0, torch.as_tensor(rng.normal(size=(5, 2)))
    args = (x, anchors, e_o, lo_a, hi_a, lo_x, lo_x + 0.5, 0.1, 0.7, 0.7, fs)
    v = unit_directions(anchors, e_o, fs)
    assert torch.allclose(v.norm(dim=1), torch.ones(7, dtype=v.dtype))
    a, b = neighbour_boxes(*args), neighbour_boxes(*args, directions=v)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = neighbour_boxes(*args, directions=unit_directions(anchors.flip(0), e_o, fs))  # directions are used
    assert not torch.equal(a[0], c[0])
