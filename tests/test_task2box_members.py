"""Task2Box issue 14: the ``members=`` input (member-subset augmentation), the running average of the weights
(``ema``), and the rule that datasets outside ``train_mask | val_mask`` influence nothing. References are set
arithmetic on explicit member sets and float64 means, never the implementation."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tasklens.task2box import Task2Box, split_pairs  # noqa: E402
from tasklens.task2box.episodes import member_items, subset_datasets  # noqa: E402

from _task2box_toy import reps, toy_split, tree  # noqa: E402
from test_task2box_episodes import fit_small, params  # noqa: E402


def member_arrays(members, items):
    return [items[sorted(m)] for m in members]


def test_member_items_recovers_the_member_sets():
    members, _ = tree()
    X, items = reps(members)
    got, sets, variance = member_items(member_arrays(members, items), len(members), X.shape[1])
    assert not variance and got.shape == items.shape
    for m, s in zip(members, sets):
        assert {tuple(r) for r in got[s]} == {tuple(items[i]) for i in m}
    assert member_items(member_arrays(members, items), len(members), 2 * X.shape[1])[2] is True
    t = [torch.as_tensor(a) for a in member_arrays(members, items)]
    assert all((a == b).all() for a, b in zip(member_items(t, len(members), X.shape[1])[1], sets))


@pytest.mark.parametrize("variance", [False, True])
def test_subset_datasets_are_unions_of_the_inner_set_and_part_of_the_outer(variance):
    members, R = tree()
    n_items = max(max(m) for m in members) + 1
    items = np.eye(n_items)  # one-hot items: the mean of a member set reads off the set itself
    table, sets, var = member_items(member_arrays(members, items), len(members), n_items * (2 if variance else 1))
    i, j = np.nonzero(R)
    out = subset_datasets(np.random.default_rng(0), table, sets, var, i, j)
    assert out.shape == (i.size, n_items * (2 if variance else 1))
    sizes = []
    for p, (a, b) in enumerate(zip(i, j)):
        mu = out[p, :n_items]
        m = set(np.flatnonzero(mu > 0).tolist())
        assert members[a] < m < members[b] or (m == members[b] and len(members[b] - members[a]) == 1)
        assert np.allclose(mu[sorted(m)], 1.0 / len(m))
        if variance:  # population variance of a one-hot coordinate: q (1 - q), q = 1 / |m|
            q = np.where(mu > 0, 1.0 / len(m), 0.0)
            assert np.allclose(out[p, n_items:], q * (1 - q))
        sizes.append(len(m) - len(members[a]))
    assert len(set(sizes)) > 3  # the drawn part varies in size


def fit_mem(X, R, tr, va, members, **kw):
    kw = {"box_dim": 2, "seed": 0, "epochs": 2, "hidden": (8, 8, 8), "progress": False, **kw}
    return Task2Box(**kw).fit(X, R, tr, va, members=members)


def test_members_errors_name_the_argument():
    members, R = tree()
    X, items = reps(members)
    tr, va, _ = split_pairs(len(members), seed=0)
    good = member_arrays(members, items)
    with pytest.raises(ValueError, match=r"members: expected 20 arrays"):
        fit_mem(X, R, tr, va, good[:-1])
    with pytest.raises(ValueError, match=r"members\[3\]"):
        fit_mem(X, R, tr, va, good[:3] + [good[3][0]] + good[4:])  # 1-D
    with pytest.raises(ValueError, match=r"members\[5\]"):
        fit_mem(X, R, tr, va, good[:5] + [good[5][:, :4]] + good[6:])  # 4 columns, others 6
    with pytest.raises(ValueError, match=r"members\[2\]"):
        fit_mem(X, R, tr, va, good[:2] + [np.zeros((0, 6))] + good[3:])  # empty
    with pytest.raises(ValueError, match=r"members: embeddings have 6 columns.*X has 5"):
        fit_mem(X[:, :5], R, tr, va, good)
    with pytest.raises(TypeError, match="members"):
        fit_mem(X, R, tr, va, 5)
    with pytest.raises(ValueError, match="members.*batch_size"):
        fit_mem(X, R, tr, va, good, batch_size=16)
    with pytest.raises(ValueError, match="members: the relations .* are graded"):
        fit_mem(X, np.where(R > 0, 0.9, 0.2) * (1 - np.eye(len(members))), tr, va, good)
    with pytest.raises(ValueError, match="member_subsets"):
        Task2Box(member_subsets=-0.5)
    with pytest.raises(ValueError, match="ema"):
        Task2Box(ema=1.0)


def fit_members(X, R, tr, va, members, items, **kw):
    kw = {"box_dim": 2, "seed": 0, "epochs": 8, "hidden": (8, 8, 8), "eval_every": 2, "progress": False, **kw}
    return Task2Box(**kw).fit(X, R, tr, va, members=member_arrays(members, items))


def test_members_fit_is_deterministic_and_trains_the_subsets():
    members, R = tree()
    X, items = reps(members)
    tr, va, _ = split_pairs(len(members), seed=0)
    a, b = fit_members(X, R, tr, va, members, items), fit_members(X, R, tr, va, members, items)
    assert torch.equal(params(a), params(b)) and a.history_["loss"] == b.history_["loss"]
    assert len(a.history_["mixture"]) == a.history_["epochs_run"] and a.history_["mixture"][0] > 0
    c = fit_members(X, R, tr, va, members, items, seed=1)
    assert not torch.equal(params(a), params(c))
    plain = fit_small(X, R, tr, va, mixtures=0)
    assert "mixture" not in plain.history_ and not torch.equal(params(a), params(plain))
    lo, hi = a.embed(X)
    assert lo.shape == hi.shape == (20, 2) and a.containment(X).shape == (20, 20)
    Xv = np.concatenate([X, X ** 2], axis=1)  # [mu, sigma^2]-shaped input: width 2d
    assert fit_members(Xv, R, tr, va, members, items).containment(Xv).shape == (20, 20)


@pytest.mark.parametrize("options", [dict(), dict(ema=0.9), dict(holdout=0.2, mixtures=0.5)])
def test_novel_datasets_influence_nothing(options):
    """Rows outside train_mask | val_mask: their representations, members and labels can be anything."""
    members, R, X, items, existing, novel, tr, va, te, nm = toy_split()
    a = fit_members(X, R, tr, va, members, items, **options)
    X2, R2 = X.copy(), R.copy()
    X2[novel] = np.random.default_rng(5).normal(size=(novel.size, X.shape[1])) * 10
    R2[te | nm] = 1 - R2[te | nm]
    mem2 = member_arrays(members, items)
    for v in novel:
        mem2[v] = mem2[v] + 3.0
    b = Task2Box(box_dim=2, seed=0, epochs=8, hidden=(8, 8, 8), eval_every=2, progress=False,
                 **options).fit(X2, R2, tr, va, members=mem2)
    assert torch.equal(params(a), params(b)) and a.history_["val"] == b.history_["val"]
    assert (a.seen_ == existing).all()
    c, d = fit_small(X, R, tr, va, **options), fit_small(X2, R2, tr, va, **options)
    assert torch.equal(params(c), params(d))


def test_ema_keeps_the_average_and_its_batchnorm_statistics(tmp_path):
    members, R = tree()
    X, _ = reps(members)
    tr, va, _ = split_pairs(len(members), seed=0)
    a = fit_small(X, R, tr, va, ema=0.8, patience=100)
    b = fit_small(X, R, tr, va, ema=0.8, patience=100)
    assert torch.equal(params(a), params(b))
    plain = fit_small(X, R, tr, va, patience=100)
    assert not torch.equal(params(a), params(plain))
    net = a.net_
    with torch.no_grad():  # BatchNorm statistics = the batch statistics of the training rows (float64 reference)
        z = ((torch.as_tensor(X) - net.x_mean.double()) / net.x_scale.double())
        lin, bn = net.body[0], net.body[1]
        h = z @ lin.weight.double().T + lin.bias.double()
    assert torch.allclose(bn.running_mean.double(), h.mean(0), atol=1e-4)
    assert torch.allclose(bn.running_var.double(), h.var(0, unbiased=True), rtol=1e-3, atol=1e-5)
    a.save(str(tmp_path / "m.pt"))
    assert np.allclose(Task2Box.load(str(tmp_path / "m.pt")).containment(X), a.containment(X))
    c = Task2Box(box_dim=2, seed=0, epochs=12, hidden=(8, 8, 8), eval_every=2, progress=False, ema=0.8,
                 patience=100).fit(X, R, tr, va, checkpoint=str(tmp_path / "ck.pt"))
    assert np.allclose(Task2Box.load(str(tmp_path / "ck.pt")).containment(X), c.containment(X))


def test_default_api_with_the_new_options():
    m = Task2Box()
    assert (m.holdout, m.mixtures, m.member_subsets, m.ema) == (0.0, "auto", 0.5, 0.95)
    fit = inspect.signature(Task2Box.fit)
    assert list(fit.parameters)[1:5] == ["X", "relations", "train_mask", "val_mask"]
    assert fit.parameters["members"].default is None
    assert fit.parameters["members"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", ["AsymCosine", "AsymEuclidean", "KL", "MLP", "Linear"])
def test_baselines_ignore_rows_outside_the_masks(name):
    from tasklens.task2box import BASELINES

    _, R, X, _, existing, novel, tr, va, _, _ = toy_split()
    X = np.concatenate([X, X ** 2 + 0.1], axis=1)  # [mu, sigma^2]-shaped, variances positive
    X[existing[0], X.shape[1] // 2:] = 0.0  # a zero variance: KL's floor (a statistic of the rows) matters
    X2 = X.copy()
    X2[novel] = X2[novel] * 7.0 + 3.0
    make = (lambda: BASELINES[name](seed=0, epochs=2, progress=False)) if name in ("MLP", "Linear") else BASELINES[name]
    a, b = make().fit(X, R, tr, va), make().fit(X2, R, tr, va)
    e = np.ix_(existing, existing)
    assert np.array_equal(a.score(X)[e], b.score(X2)[e])


def test_augmented_rows_leave_the_batchnorm_statistics_to_the_given_rows():
    """In training mode, rows after ``stat_rows`` (augmented datasets) are normalised with the given rows' batch
    statistics: the given rows' boxes and the running statistics are those of a forward pass without them, and a
    copy of a given row gets exactly that row's box."""
    import copy

    members, _ = tree()
    X, _ = reps(members)
    net = Task2Box(box_dim=3, seed=0, hidden=(8, 8, 8))._new_net(X.shape[1])
    alone = copy.deepcopy(net)
    net.train(), alone.train()
    x = torch.as_tensor(X, dtype=torch.float32)
    extra = torch.cat([x[[3, 0, 7]], torch.randn(5, X.shape[1]) * 4 + 2])  # copies of rows 3, 0, 7; outliers
    lo, hi = net(torch.cat([x, extra]), stat_rows=len(x))
    lo_ref, hi_ref = alone(x)
    assert torch.allclose(lo[:len(x)], lo_ref, atol=1e-6) and torch.allclose(hi[:len(x)], hi_ref, atol=1e-6)
    assert torch.allclose(lo[len(x):len(x) + 3], lo_ref[[3, 0, 7]], atol=1e-6)
    norms = [(a, b) for a, b in zip(net.modules(), alone.modules()) if isinstance(a, torch.nn.BatchNorm1d)]
    assert len(norms) == 3
    for a, b in norms:
        assert torch.allclose(a.running_mean, b.running_mean, atol=1e-7)
        assert torch.allclose(a.running_var, b.running_var, atol=1e-6)
        assert a.num_batches_tracked == b.num_batches_tracked == 1
    joint = copy.deepcopy(alone)  # one batch over every row: the extra rows shift the given rows' boxes
    assert not torch.allclose(joint(torch.cat([x, extra]))[0][:len(x)], lo_ref, atol=1e-3)
    net.eval()
    assert torch.equal(net(x, stat_rows=len(x))[0], net(x)[0])  # evaluation uses the running statistics
