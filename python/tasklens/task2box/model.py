"""Task2Box: a learned map from dataset representations to boxes (paper §3.2).

``f_theta: e -> z``: three fully connected layers (Linear, BatchNorm, ReLU) and two linear heads, one
for the lower-left corner and one for the positive side lengths (softplus). Trained with Eq. 4:
``L_E`` (MSE between ``d(D_i, D_j)`` and ``d_box`` of Eq. 5) + ``lambda * L_D`` (centre distance of
related pairs) + ``L_R`` (Eq. 6), using the native box kernels of :mod:`tasklens.boxes`.
"""

from __future__ import annotations

import numpy as np

from .._dispatch import backend_of, cast, to_host
from .._validation import check_array, check_choice, check_int, check_positive, check_scalar, describe, is_torch
from .._validation import check_devices
from .episodes import holdout_score_masks, holdout_split, member_items, mixture_targets, subset_datasets
from .closure import closure_targets
from .checkpoint import load_checkpoint, save_checkpoint, snapshot
from .losses import BoxGeometry, center_loss, regularization, relation_loss, relation_loss_pairs, size_order_loss
from .train import run_training, torch_threads

__all__ = ["Task2Box", "neighbour_boxes", "neighbour_check", "is_graded", "prepare_fit", "class_weights",
           "check_training_options", "seen_datasets"]


AUTO_MIXTURES = 0.5  # mixture datasets per epoch (share of N) of mixtures="auto"; chosen in benchmarks/RESULTS.md


def _torch():
    import torch

    return torch


def _build_boxnet(in_dim: int, box_dim: int, hidden, min_size: float, dropout: float = 0.0,
                  geometric: bool = False, n_anchors: int = 0):
    torch = _torch()
    nn = torch.nn

    class BoxNet(nn.Module):
        """Three fully connected layers + lower-left and size heads; input standardised by buffers."""

        def __init__(self):
            super().__init__()
            self.register_buffer("x_mean", torch.zeros(in_dim))
            self.register_buffer("x_scale", torch.ones(in_dim))
            layers, d = [], in_dim
            for h in hidden:
                layers += [nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU()]
                if dropout:
                    layers.append(nn.Dropout(dropout))
                d = h
            self.body = nn.Sequential(*layers)
            self.head_lo = nn.Linear(d, box_dim)
            self.head_size = nn.Linear(d, box_dim)
            self.min_size = min_size
            self.geometric = geometric
            if geometric:
                self.lin_centre = nn.Linear(in_dim, box_dim)
                self.radius_size = nn.Linear(1, box_dim)
            self.n_anchors = n_anchors
            if n_anchors:
                # the seen datasets' inputs: a row that is none of them (a novel dataset) gets the
                # similarity-weighted average of their boxes (``neighbours``)
                self.register_buffer("anchors", torch.zeros(n_anchors, in_dim))
                self.register_buffer("neighbour_tau", torch.ones(()))
                self.register_buffer("neighbour_scale", torch.ones(()))
                self.register_buffer("neighbour_blend", torch.ones(()))
            self._anchor_cache = None  # (key, (lo_a, hi_a, directions)): see _anchor_boxes

        def forward(self, x, noise=None, stat_rows=None):
            z = (x - self.x_mean) / self.x_scale
            if noise is not None:
                z = z + noise
            lo, hi = self._boxes(z, stat_rows)
            if not self.n_anchors:
                return lo, hi
            a = self.anchors
            novel = (torch.cdist(x, a, compute_mode="donot_use_mm_for_euclid_dist") > 0).all(1)
            if not bool(novel.any()):
                return lo, hi
            lo_a, hi_a, v = self._anchor_boxes()
            lo_n, hi_n = neighbour_boxes(x[novel], a, self.x_mean, lo_a, hi_a, lo[novel], hi[novel],
                                         self.neighbour_tau, self.neighbour_scale, self.neighbour_blend,
                                         self._kernel_scale(), directions=v)
            idx = torch.nonzero(novel).squeeze(1)
            return lo.index_copy(0, idx, lo_n), hi.index_copy(0, idx, hi_n)

        def _kernel_scale(self):
            # "input" kernel: cosine between the standardised rows (the network's input), not the raw ones
            return self.x_scale if getattr(self, "neighbour_input", False) else None

        def _anchor_state(self):
            lo_a, hi_a = self._boxes((self.anchors - self.x_mean) / self.x_scale)
            return lo_a, hi_a, unit_directions(self.anchors, self.x_mean, self._kernel_scale())

        def _anchor_boxes(self):
            """Boxes of the anchors and their unit directions (:func:`unit_directions`). Kept between calls only in
            eval mode without autograd, and reused only while every parameter and buffer is the same tensor
            (object, storage, dtype, device) at the same version: an in-place change (an optimiser step,
            ``load_state_dict``), a move or a replaced tensor recomputes them. Training mode never reads or writes
            the cache (``train()`` drops it)."""
            if self.training or torch.is_grad_enabled():
                return self._anchor_state()
            key = [(t, t._version, t.data_ptr(), t.dtype, t.device) for t in (*self.parameters(), *self.buffers())]
            cache = self._anchor_cache
            if cache is not None and len(cache[0]) == len(key) and all(
                    a[0] is b[0] and a[1:] == b[1:] for a, b in zip(cache[0], key)):
                return cache[1]
            state = self._anchor_state()
            self._anchor_cache = (key, state)
            return state

        def train(self, mode: bool = True):
            if mode:
                self._anchor_cache = None
            return super().train(mode)

        def _body(self, z, stat_rows=None):
            """The hidden layers. In training mode with ``stat_rows`` = n, BatchNorm takes its batch statistics
            (and updates its running ones) from the first n rows only, the given datasets, and normalises the
            rows after them (augmented datasets) with the same statistics: the augmented rows change neither the
            given rows' activations nor the statistics used at evaluation."""
            if stat_rows is None or not self.training:
                return self.body(z)
            h = z
            for layer in self.body:
                if isinstance(layer, nn.BatchNorm1d):
                    ref = h[:stat_rows]
                    layer(ref)  # the running statistics and batch count, exactly as without the extra rows
                    mean, var = ref.mean(0), ref.var(0, unbiased=False)
                    h = (h - mean) / torch.sqrt(var + layer.eps) * layer.weight + layer.bias
                else:
                    h = layer(h)
            return h

        def _boxes(self, z, stat_rows=None):
            h = self._body(z, stat_rows)
            if self.geometric:
                # centre: a linear map of e plus the network's correction; side: a function of the
                # distance ||e - e_o|| to the trivial embedding (here the mean) plus the correction
                r = z.norm(dim=1, keepdim=True) / z.shape[1] ** 0.5
                side = torch.nn.functional.softplus(self.head_size(h) + self.radius_size(r)) + self.min_size
                centre = self.head_lo(h) + self.lin_centre(z)
                return centre - 0.5 * side, centre + 0.5 * side
            lo = self.head_lo(h)
            hi = lo + torch.nn.functional.softplus(self.head_size(h)) + self.min_size
            return lo, hi

    return BoxNet()


def unit_directions(rows, x_mean, feature_scale=None):
    """Unit vectors of ``rows - e_o`` (each feature divided by ``feature_scale`` first, when given): the
    directions whose dot products are the cosines of :func:`neighbour_boxes`."""
    torch = _torch()
    d = rows - x_mean
    if feature_scale is not None:
        d = d / feature_scale.clamp_min(1e-12)
    return torch.nn.functional.normalize(d, dim=1)


def neighbour_boxes(x, anchors, x_mean, lo_a, hi_a, lo_x, hi_x, tau: float, scale: float, blend: float,
                    feature_scale=None, directions=None):
    """Boxes of novel rows ``x`` (torch tensors) placed among the boxes ``(lo_a, hi_a)`` of the seen datasets
    ``anchors``: ``blend * B + (1 - blend) * (lo_x, hi_x)`` (corner by corner), ``(lo_x, hi_x)`` the encoder's own
    boxes of ``x`` and ``B`` the box with centre ``sum_a w_a c_a`` and side lengths ``scale * sum_a w_a s_a``,
    ``w = softmax(cos(x - e_o, a - e_o) / tau)`` over the seen datasets, e_o = ``x_mean`` (the trivial
    embedding of Eq. 7, the mean of the seen rows). A novel dataset lands among the datasets it resembles (the
    geometry of the asymmetric cosine distance, Eq. 7) inside every box that holds all of them (a convex
    combination of boxes inside a box stays inside); ``scale`` < 1 makes it more specific than they are.
    ``feature_scale`` (d,): when given, the cosine is taken between ``(x - e_o) / feature_scale`` and
    ``(a - e_o) / feature_scale`` (every feature standardised, e.g. by the seen rows' standard deviations).
    ``directions``: the anchors' :func:`unit_directions`, when already computed (a fitted model keeps them)."""
    torch = _torch()
    u = unit_directions(x, x_mean, feature_scale)
    v = unit_directions(anchors, x_mean, feature_scale) if directions is None else directions
    w = torch.softmax(u @ v.T / tau, dim=1)
    centre = w @ (0.5 * (lo_a + hi_a))
    half = 0.5 * scale * (w @ (hi_a - lo_a))
    return blend * (centre - half) + (1 - blend) * lo_x, blend * (centre + half) + (1 - blend) * hi_x


def seen_datasets(train_mask: np.ndarray, val_mask: np.ndarray | None) -> np.ndarray:
    """Sorted indices of the datasets with a pair in ``train_mask`` or ``val_mask`` (the ones a model may use)."""
    m = train_mask.any(0) | train_mask.any(1)
    if val_mask is not None:
        m |= val_mask.any(0) | val_mask.any(1)
    return np.flatnonzero(m)


def is_graded(R: np.ndarray, mask: np.ndarray, val_mask: np.ndarray | None = None) -> bool:
    """Whether the relations on ``mask`` (or ``val_mask``) hold a value strictly between 0 and 1: graded
    affinities (e.g. transfer gains, §4.2) rather than 0/1 containment labels (§4.1)."""
    mask = np.asarray(mask, dtype=bool)
    if val_mask is not None:
        mask = mask | np.asarray(val_mask, dtype=bool)
    v = np.asarray(R)[mask]
    return bool(((v > 0) & (v < 1)).any())


def held_out_score(S: np.ndarray, R: np.ndarray, threshold_mask: np.ndarray, score_mask: np.ndarray,
                   graded: bool, antisymmetric: bool = True) -> float:
    """Score of the placements ``S`` on ``score_mask``: F1 at the threshold chosen on ``threshold_mask`` (0/1
    relations, §4.1.1), or Spearman's rho on ``score_mask`` (graded relations, §4.1.2; -1 where undefined)."""
    from .evaluate import spearman, transfer_f1

    if graded:
        rho = spearman(R, S, score_mask)
        return float(rho) if np.isfinite(rho) else -1.0
    return transfer_f1(S, R, threshold_mask, score_mask, antisymmetric)


def neighbour_check(config: dict, X, R, tr, va, *, fraction: float, draw: int, blends=None, sizes=None,
                    members=None):
    """Novel-protocol F1 of the encoder's own boxes ``f(e)`` and of :func:`neighbour_boxes`, measured on datasets
    held out inside ``fit``: a Task2Box with settings ``config`` is fitted without ``round(fraction * n)`` of the
    datasets of ``tr`` (drawn with ``draw``; their pairs leave training and validation), and both placements are
    scored on their pairs with the kept datasets at the threshold of the kept validation pairs
    (:func:`tasklens.task2box.episodes.holdout_score_masks`), with the antisymmetry rule chosen there.

    Returns ``[F1 of f(e), F1 of the neighbour boxes at blend b for b in blends]`` (``blends`` None: the
    configured ``neighbour_blend`` only), or None when the draw leaves no pair to score or to threshold. With
    graded relations (:func:`is_graded`) every F1 is Spearman's rho on the scored pairs instead.
    """
    torch = _torch()
    from .evaluate import validation_f1

    held = holdout_split(tr, fraction, draw)
    fit_mask, thr_mask, score_mask = holdout_score_masks(held, tr, va)
    if not score_mask.any() or not thr_mask.any():
        return None
    sub = Task2Box(**{**config, "neighbours": True, "progress": False})
    # anchors: the kept datasets only; same sizes / members inputs as the final fit
    sub._fit(X, R, fit_mask, None if va is None else thr_mask, sizes=sizes, members=members)
    net = sub.net_
    xt = torch.as_tensor(X, dtype=torch.float32, device=next(net.parameters()).device)
    net.eval()
    with torch.no_grad():
        own = net._boxes((xt - net.x_mean) / net.x_scale)
        S_own = sub._scores(*own, *own).cpu().numpy().astype(np.float64)
        graded = is_graded(R, tr, va)
        anti = graded or validation_f1(S_own, R, thr_mask, True) >= validation_f1(S_own, R, thr_mask, False)
        f = [held_out_score(S_own, R, thr_mask, score_mask, graded, anti)]
        for b in [config["neighbour_blend"]] if blends is None else blends:
            net.neighbour_blend.fill_(float(b))
            lo, hi = net(xt)
            f.append(held_out_score(sub._scores(lo, hi, lo, hi).cpu().numpy().astype(np.float64), R, thr_mask,
                                    score_mask, graded, anti))
    return f


class _Scored:
    """Which network validation scores (the trained one, or its running average when ``ema`` > 0)."""

    def __init__(self, net):
        self.net = net


def _with_average(net, decay: float, step, inputs):
    """A module holding ``net`` and an exponential moving average of its parameters (Polyak averaging):
    after every epoch ``p_avg = decay * p_avg + (1 - decay) * p``; the input scaling is copied and the
    BatchNorm statistics of the averaged network are recomputed on ``inputs`` (the training rows; averaged
    weights do not match the trained network's statistics). Snapshots, early stopping and checkpoints see
    both networks, so a resumed run continues the average."""
    import copy

    torch = _torch()
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    class Averaged(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.average = copy.deepcopy(net)
            for p in self.average.parameters():
                p.requires_grad_(False)

        def step(self, epoch):
            out = step(epoch)
            avg = self.average
            with torch.no_grad():
                for pa, p in zip(avg.parameters(), self.net.parameters()):
                    pa.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
                avg.x_mean.copy_(self.net.x_mean)
                avg.x_scale.copy_(self.net.x_scale)
                if norms:
                    was = avg.training
                    bns = [m for m in avg.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
                    for m in bns:
                        m.reset_running_stats()
                        m.momentum = None  # cumulative average: one pass = the statistics of ``inputs``
                    avg.train()
                    avg(inputs)
                    for m, ref in zip(bns, norms):
                        m.momentum = ref.momentum
                    avg.train(was)
            return out

    return Averaged()


def check_training_options(hidden, pos_weight, progress):
    """Validated ``(hidden, pos_weight, progress)`` of the trained models: layer sizes as a tuple of ints,
    ``"balanced"``/``"sqrt"`` or a positive number, and None/True/False."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"hidden: expected a sequence of layer sizes, got {hidden!r}")
    hidden = tuple(check_int(h, f"hidden[{i}]", min=1) for i, h in enumerate(hidden))
    if isinstance(pos_weight, str):
        check_choice(pos_weight, "pos_weight", ("balanced", "sqrt"))
    else:
        pos_weight = check_scalar(pos_weight, "pos_weight", min=0.0, min_inclusive=False)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress: expected None, True or False, got {progress!r}")
    return hidden, pos_weight, None if progress is None else bool(progress)


def class_weights(labels: np.ndarray, pos_weight, graded: bool = False) -> tuple[float, float]:
    """(negative weight, positive weight). ``"balanced"``: each class carries half the total weight;
    ``"sqrt"``: positives weighted by sqrt(n_neg / n_pos); a number: that positive weight. With ``graded``
    relations the two balancings are off (there are no classes to balance): every pair weighs 1."""
    if graded and isinstance(pos_weight, str):
        return 1.0, 1.0
    n_pos = float(labels.sum())
    n_neg = float(labels.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return 1.0, 1.0
    if pos_weight == "balanced":
        return 1.0, n_neg / n_pos
    if pos_weight == "sqrt":
        return 1.0, float(np.sqrt(n_neg / n_pos))
    return 1.0, float(pos_weight)


def prepare_fit(X, relations, train_mask, val_mask):
    """Validate the ``fit`` arguments; returns float64 numpy arrays ``X, R`` and boolean masks."""
    from .evaluate import _mask

    check_devices(X=X, relations=relations)
    X = np.asarray(to_host(check_array(X, "X", ndim=2, min_rows=2)), dtype=np.float64)
    n = X.shape[0]
    if X.shape[1] == 0:
        raise ValueError(f"X: has no feature columns ({describe(X)}); each row must hold the base representation "
                         "of one dataset (e.g. a CSV whose columns are all text yields none)")
    R = np.asarray(to_host(check_array(relations, "relations", shape=(n, n))), dtype=np.float64)
    if R.min() < 0 or R.max() > 1:
        raise ValueError(f"relations: values must lie in [0, 1], got range [{R.min()}, {R.max()}] (shape {R.shape})")
    if train_mask is None:
        raise TypeError(f"train_mask: expected a boolean ({n}, {n}) mask of the training pairs, got None; "
                        "e.g. train, val, test = split_pairs(n) and fit(X, relations, train, val)")
    masks = [_mask(train_mask, n, "train_mask"), None if val_mask is None else _mask(val_mask, n, "val_mask")]
    if not masks[0].any():
        raise ValueError("train_mask: no training pair selected")
    if masks[1] is not None and (masks[0] & masks[1]).any():
        raise ValueError("train_mask and val_mask overlap: a pair may not be used for training and validation")
    return X, R, masks[0], masks[1]


class Task2Box:
    """Box embeddings of datasets (Task2Box, CVPR 2024).

    Parameters
    ----------
    box_dim : k, the box dimension. seed : integer seed (weights, mini-batches).
    hidden : sizes of the three hidden layers.
    epochs, lr, weight_decay : Adam budget (``weight_decay`` default 3e-3, 1e-2 before issue 14's second pass:
        chosen on the selection split with ``ema=0.95``, taxonomy, 5-D, [mu], 5 seeds: existing F1 0.490 ->
        0.500, novel 0.234 -> 0.261; ``weight_decay`` is Adam's L2 term on every parameter; on the
        layers in front of BatchNorm, whose output ignores their scale, it shrinks the weights and so raises
        their effective step size until a step overshoots: the small loss bumps that remain, at most x1.5
        from one epoch to the next in ``tasklens demo``; exempting those layers removed them but lowered the
        demo's test F1 (0.36 to 0.26 at seed 0, 0.34 to 0.21 at seed 1), so it is kept). batch_size : None = full batch (all training pairs through
        one dense fused containment kernel per epoch); an int = mini-batches of pairs
        (:func:`tasklens.boxes.containment_pairs`).
    lam : weight of L_D (centre distance). alpha, beta : weights of L_R (Eq. 6).
    pos_weight : weight of positive pairs in L_E: ``"balanced"``, ``"sqrt"`` or a number (1 = paper). The two
        class balancings count pairs with ``relations > 0.5`` as positive; with graded relations (see ``closure``)
        they are off and every pair weighs 1.
    size_weight : weight of the dataset-size ordering term (used when ``fit`` gets ``sizes``).
    volume_temperature, intersection_temperature, mode : box geometry for the kernels.
    eval_every, patience : validation period (epochs) and early-stopping patience (validations).
    lr_decay : final learning rate as a fraction of ``lr`` (cosine schedule); 1 = constant.
    min_size : smallest side length.
    dropout : dropout after each hidden layer. input_noise : standard deviation of Gaussian noise added
        to the standardised inputs while training (smooths f_theta for novel datasets).
    standardize : ``"feature"`` centres and scales every input column; ``"global"`` centres every
        column and divides by one overall standard deviation (keeps the relative scale of blocks such as
        the mean and variance halves of ``[mu, sigma^2]``).
    progress : tqdm progress bar on stderr: ``None`` (default) shows it only when stderr is a terminal,
        ``True`` always (throttled to one update every 10 s when stderr is not a terminal), ``False`` never.
    holdout : share of the datasets seen in training held out inside ``fit`` (episodic selection, issue 14):
        their pairs leave training, and early stopping keeps the epoch with the best F1 on the pairs between
        a held-out and a kept dataset at the threshold chosen on the kept validation pairs (the novel protocol
        of §4 replayed on training data; :mod:`tasklens.task2box.episodes`). Drawn with ``seed`` among the
        datasets of ``train_mask`` only. 0 = off (default); the held-out indices are in ``holdout_``.
    mixtures : mixture datasets per epoch, as a share of N (representation-space augmentation): for a
        training pair ``i ⊂ j``, ``w e_i + (1 - w) e_j`` with ``w ~ U(0, 1)`` is a dataset between the two, with
        the relations implied by the training pairs (:func:`tasklens.task2box.episodes.mixture_targets`);
        full batch only; they take no part in BatchNorm's statistics. ``"auto"`` (default): 0.5 for 0/1
        relations trained with the full batch, off for graded relations (which imply nothing for a mixture; a
        number > 0 then raises) and for mini-batches; the share a fit used is in ``mixtures_``. Chosen on the
        selection splits of both hierarchies (5 seeds): existing F1 +1.2 to +4.1 points in each of the four
        hierarchy / representation settings, novel F1 -1.1 to +1.2, at 1.75x the training time
        (``benchmarks/RESULTS.md``, "Seventh pass"). mixture_weight : weight of its L_E term.
    geometric : inductive bias from the asymmetric geometry (Eq. 7): box centre = a linear map of ``e`` plus
        the network's output, side lengths = softplus(network output + a linear function of
        ``||e - e_o|| / sqrt(d)``, the distance of the standardised representation to the mean, e_o).
        Default True: chosen on the selection split of ``benchmarks/task2box_selection.py`` (taxonomy, 3
        seeds: existing F1 0.494 -> 0.539, novel 0.277 -> 0.286, measured while the input statistics still
        included rows outside the masks); ``False`` is the earlier network.
        ``holdout`` stays off by default: it did not beat it there (``benchmarks/RESULTS.md``).
    ema : decay of an exponential moving average of the weights, updated after every epoch (Polyak
        averaging); the averaged network (its BatchNorm statistics recomputed on the training rows) is the one
        validated, kept and used by ``embed`` / ``containment``. Default 0.95: chosen on the selection split
        (taxonomy, 5-D, [mu], 5 seeds: existing F1 0.475 -> 0.490, novel 0.211 -> 0.234; 0.97 and 0.99
        lost); 0 = off (the last trained weights, as before).
    member_subsets : member-subset datasets per epoch as a share of N, used only when ``fit`` gets
        ``members=`` (see :meth:`fit`).
    neighbours : how a novel dataset (a row of ``embed`` / ``containment`` equal to none of the seen rows,
        ``seen_``) gets its box. False: the encoder's own box ``f(e)``. True: :func:`neighbour_boxes`, the
        similarity-weighted average of the seen datasets' boxes (weights ``softmax(cos(e - e_o, e_a - e_o) /
        neighbour_tau)``, sides times ``neighbour_scale``) blended with ``f(e)`` (weight ``neighbour_blend`` on the
        average); seen datasets keep ``f(e)``, training is unchanged, and the boxes returned are the ones that
        score. ``"auto"`` (default): decide between the two on datasets held out inside ``fit``
        (``neighbour_holdout`` of the training datasets, a second fit without them: about twice the training
        time; see :meth:`_choose_neighbours`; the choice is in ``neighbours_``). Chosen on the selection split of
        ``benchmarks/task2box_selection.py`` (taxonomy, 5-D, [mu], 5 seeds; ``benchmarks/RESULTS.md``): novel
        F1 0.261 -> 0.400 (True and "auto" alike; existing pairs unchanged, 0.500), with
        ``neighbour_tau=0.05, neighbour_scale=0.7, neighbour_blend=0.7`` chosen there too. On the second
        hierarchy (``benchmarks/task2box_hierarchy2.py``) the neighbour boxes lose, and "auto" keeps ``f(e)``
        on most but not all runs; over 20 selection runs of both hierarchies its novel F1 averaged 0.7 points
        below always taking the better of the two (:func:`neighbour_check`, ``benchmarks/task2box_auto_study.py``).
        Embedding a novel row costs O(N_seen d) (its similarities to the seen datasets) instead of O(d h). The
        final checkpoint of ``fit(checkpoint=...)`` holds the anchors, so :meth:`load` returns the model that
        scores.
    closure : also train on the pairs the training labels imply by transitivity (default ``"auto"``: on for 0/1
        relations, off for graded ones, see below; True forces it and refuses graded relations; issue 14's fifth
        pass): ``i ⊂ k, k ⊂ j => i ⊂ j`` and ``i ⊂ k, i ⊄ j, j' ⊂ j => k ⊄ j'``
        (:func:`tasklens.task2box.closure.closure_targets`), among the seen datasets, validation pairs excluded
        (so early stopping and the threshold are measured on pairs never trained); only the labels of
        ``train_mask`` are read. Box containment (Eq. 5) is transitive, so these are targets a box model can
        meet; L_E (Eq. 4) gets them with the class weights of all its pairs, L_D keeps the given positive pairs
        (with the implied ones too, the taxonomy's selection F1 fell: 0.500 -> 0.458). Chosen on the selection
        splits of ``benchmarks/task2box_selection.py`` (5-D, 5 seeds, ``benchmarks/RESULTS.md``): existing F1
        0.801 -> 0.819 / 0.800 -> 0.822 on the second hierarchy ([mu] / [mu, sigma^2], up on all 10 runs),
        0.500 -> 0.508 on the taxonomy ([mu]); novel F1 0.698 -> 0.697 / 0.700 -> 0.697 and 0.400 -> 0.401
        (equal within the spread). The MLP baseline gains as much from the same pairs (``MLP+closure`` in
        ``benchmarks/RESULTS.md``, "Fairness check"); any pair classifier can use them. No extra fit: the
        implied pairs cost one boolean closure of the N x N training matrix.

        **Graded relations** (a value strictly between 0 and 1 on the training or validation pairs, e.g. the
        transfer affinities of §4.2; :func:`is_graded`, recorded in ``graded_``): transitivity implies no graded
        value, so ``closure="auto"`` adds no pair; early stopping and the ``neighbours="auto"`` check score by
        Spearman's rho on their pairs (§4.1.2) instead of F1 at a threshold.
    neighbour_kernel : similarity of :func:`neighbour_boxes`: ``"input"`` (default, fifth pass) the cosine between
        rows standardised as the network's input (``standardize``; with ``"global"`` this is the raw cosine
        again), ``"raw"`` the cosine of the raw rows ``e - e_o`` (third and fourth passes). On the selection
        splits the "auto" choice and novel F1 were unchanged on the second hierarchy and 0.401 -> 0.403 on the
        taxonomy; with the neighbour boxes forced, second hierarchy [mu] novel F1 0.616 -> 0.691 (taxonomy
        0.399 -> 0.400), so a wrong "auto" call costs less.
    device : torch device for training.
    torch_threads : torch intra-op threads while fitting and embedding (default 1: the network is
        small and one thread avoids oversubscription; None keeps torch's setting).

    Examples
    --------
    >>> import numpy as np
    >>> from tasklens.task2box import Task2Box, split_pairs
    >>> X = np.random.default_rng(0).normal(size=(6, 4)); R = np.zeros((6, 6)); R[1:, 0] = 1
    >>> tr, va, te = split_pairs(6, seed=0)
    >>> model = Task2Box(box_dim=2, epochs=5, progress=False).fit(X, R, tr | te, va)
    >>> model.containment(X).shape
    (6, 6)

    Complexity: per full-batch epoch O(N d h + N h^2) for f_theta and O(N^2 k) for the fused
    containment kernel; memory O(N^2) (scores, weights) with no (N, N, k) intermediate.
    Deterministic for a given seed, thread count-independent kernels and CPU torch.
    """

    def __init__(self, box_dim: int = 2, seed: int = 0, *, hidden=(128, 128, 128), epochs: int = 1000,
                 lr: float = 1e-3, weight_decay: float = 3e-3, batch_size: int | None = None,
                 lam: float = 0.1, alpha: float = 0.1, beta: float = 0.01, pos_weight="sqrt",
                 size_weight: float = 0.0, volume_temperature: float = 0.1,
                 intersection_temperature: float = 1e-4, mode: str = "gumbel", eval_every: int = 10,
                 patience: int = 20, lr_decay: float = 1.0, min_size: float = 1e-3,
                 dropout: float = 0.0, input_noise: float = 0.0, standardize: str = "feature",
                 progress: bool | None = None, device: str = "cpu",
                 torch_threads: int | None = 1, holdout: float = 0.0, mixtures="auto",
                 mixture_weight: float = 1.0, geometric: bool = True, ema: float = 0.95,
                 member_subsets: float = 0.5, neighbours="auto",
                 neighbour_tau: float = 0.05, neighbour_scale: float = 0.7, neighbour_blend: float = 0.7,
                 neighbour_holdout: float = 0.1, closure="auto", neighbour_kernel: str = "input"):
        box_dim = check_int(box_dim, "box_dim", min=1)
        seed = check_int(seed, "seed", min=0)
        epochs = check_int(epochs, "epochs", min=1)
        eval_every = check_int(eval_every, "eval_every", min=1)
        patience = check_int(patience, "patience", min=1)
        batch_size = check_int(batch_size, "batch_size", min=1, allow_none=True)
        torch_threads = check_int(torch_threads, "torch_threads", min=1, allow_none=True)
        hidden, pos_weight, progress = check_training_options(hidden, pos_weight, progress)
        check_positive(lr, "lr")
        holdout = check_scalar(holdout, "holdout", min=0.0, max=0.5)
        ema = check_scalar(ema, "ema", min=0.0, max=1.0, max_inclusive=False)
        for name in ("weight_decay", "lam", "alpha", "beta", "size_weight", "min_size", "dropout", "input_noise",
                     "mixture_weight", "member_subsets"):
            check_positive(locals()[name], name, allow_zero=True)
        if isinstance(mixtures, str):
            if mixtures != "auto":
                raise ValueError(f"mixtures: expected 'auto' or a number >= 0, got {mixtures!r}")
        else:
            check_positive(mixtures, "mixtures", allow_zero=True)
            mixtures = float(mixtures)
        check_positive(volume_temperature, "volume_temperature")
        check_positive(intersection_temperature, "intersection_temperature")
        check_positive(lr_decay, "lr_decay")
        check_choice(mode, "mode", ("gumbel", "soft", "hard"))
        check_choice(standardize, "standardize", ("feature", "global"))
        check_choice(neighbour_kernel, "neighbour_kernel", ("raw", "input"))
        if not (isinstance(closure, (bool, np.bool_)) or closure == "auto"):
            raise TypeError(f"closure: expected True, False or 'auto', got {closure!r}")
        if neighbours not in (True, False, "auto"):
            raise ValueError(f"neighbours: expected True, False or 'auto', got {neighbours!r}")
        neighbour_tau = check_scalar(neighbour_tau, "neighbour_tau", min=0.0, min_inclusive=False)
        neighbour_scale = check_scalar(neighbour_scale, "neighbour_scale", min=0.0, min_inclusive=False)
        neighbour_blend = check_scalar(neighbour_blend, "neighbour_blend", min=0.0, max=1.0)
        neighbour_holdout = check_scalar(neighbour_holdout, "neighbour_holdout", min=0.0, max=0.5,
                                         min_inclusive=False)
        self.config = dict(box_dim=box_dim, seed=seed, hidden=hidden,
                           epochs=epochs, lr=float(lr), weight_decay=float(weight_decay),
                           batch_size=batch_size, lam=float(lam), alpha=float(alpha), beta=float(beta),
                           pos_weight=pos_weight, size_weight=float(size_weight),
                           volume_temperature=float(volume_temperature),
                           intersection_temperature=float(intersection_temperature), mode=mode,
                           eval_every=eval_every, patience=patience, lr_decay=float(lr_decay),
                           min_size=float(min_size), progress=progress,
                           device=device,
                           torch_threads=torch_threads, dropout=float(dropout), input_noise=float(input_noise),
                           standardize=standardize, holdout=float(holdout), mixtures=mixtures,
                           mixture_weight=float(mixture_weight), geometric=bool(geometric), ema=float(ema),
                           member_subsets=float(member_subsets),
                           neighbours=neighbours, neighbour_tau=float(neighbour_tau),
                           neighbour_scale=float(neighbour_scale), neighbour_blend=float(neighbour_blend),
                           neighbour_holdout=float(neighbour_holdout), closure=closure if closure == "auto" else bool(closure),
                           neighbour_kernel=neighbour_kernel)
        self.net_ = None
        self.in_dim_ = None
        self.history_ = None

    def __getattr__(self, name):
        config = self.__dict__.get("config", {})
        if name in config:
            return config[name]
        raise AttributeError(f"'Task2Box' object has no attribute {name!r}")

    @property
    def geometry(self) -> BoxGeometry:
        c = self.config
        return BoxGeometry(c["mode"], c["volume_temperature"], c["intersection_temperature"])

    # ------------------------------------------------------------------ training
    def _new_net(self, in_dim: int, n_anchors: int = 0):
        torch = _torch()
        torch.manual_seed(self.config["seed"])
        c = self.config
        net = _build_boxnet(in_dim, c["box_dim"], c["hidden"], c["min_size"], c.get("dropout", 0.0),
                            c.get("geometric", False), n_anchors).to(c["device"])
        net.neighbour_input = c.get("neighbour_kernel", "raw") == "input"
        return net

    def fit(self, X, relations, train_mask, val_mask=None, *, sizes=None, members=None,
            checkpoint: str | None = None, checkpoint_every: int = 50, resume: str | None = None, callback=None):
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", min=1)
        with torch_threads(self.config.get("torch_threads", 1)):
            return self._fit(X, relations, train_mask, val_mask, sizes=sizes, members=members,
                             checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                             callback=callback)

    def _fit(self, X, relations, train_mask, val_mask=None, *, sizes=None, members=None, checkpoint=None,
             checkpoint_every=50, resume=None, callback=None):
        """Train ``f_theta`` on the training pairs (Eq. 4).

        Parameters
        ----------
        X : (N, d) base representations (numpy or torch). relations : (N, N) in [0, 1].
        train_mask : (N, N) bool, the pairs used in the loss. val_mask : (N, N) bool or None; when
            given, the validation F1 (threshold tuned on those pairs, §4.1.1) drives early stopping and
            the best parameters are kept.
        sizes : optional (N,) dataset sizes for the size-ordering term (weight ``size_weight``).
        members : optional sequence of N arrays, ``members[i]`` (n_i, d): the embeddings of dataset i's items
            (equal rows = the same item), X having d columns (mean, Eq. 1) or 2d (mean and variance, Eq. 2).
            Turns on member-subset augmentation: every epoch ``round(member_subsets * N)`` datasets
            ``D_i ∪ S`` (S a random part of ``D_j`` for a training pair ``D_i ⊂ D_j``; drawn from a pool of
            4 N made once at the start of ``fit``) with their
            representations computed from their members the same way, and the relations the training pairs
            imply (:func:`tasklens.task2box.episodes.subset_datasets`, ``mixture_targets``); weight
            ``mixture_weight``. Full batch only. Not needed by the default path. Measured on the selection
            splits (``benchmarks/RESULTS.md``, "Seventh pass", without mixtures): existing F1 +0.8 to +4.0
            points over the same fit without ``members``, novel F1 -3.3 to 0.0.

        Only the datasets with a pair in ``train_mask`` or ``val_mask`` are used (input standardisation and
        BatchNorm statistics included); their indices are in ``seen_``.
        checkpoint : path written every ``checkpoint_every`` epochs and at the end (both resumable).
        resume : any checkpoint written by ``fit(checkpoint=...)`` to continue from (same data and
            settings); the run then ends with the same parameters as an uninterrupted one. Resuming a
            finished run returns its result again; a file written by :meth:`save` holds no training state
            and is refused with a ValueError saying so. callback : ``callback(epoch, history)`` after each epoch.

        Returns
        -------
        self
        """
        torch = _torch()
        from .evaluate import validation_f1

        X, R, tr, va = prepare_fit(X, relations, train_mask, val_mask)
        c = self.config
        dev = c["device"]
        n_all = X.shape[0]
        if sizes is not None:
            sizes = np.asarray(to_host(sizes), dtype=np.float64).ravel()
            if sizes.shape != (n_all,):
                raise ValueError(f"sizes: expected shape ({n_all},), got {sizes.shape}")
        subsets = None
        if members is not None:
            items, sets, variance = member_items(members, n_all, X.shape[1])
        # only the datasets of train_mask / val_mask take part: a row in neither (e.g. a novel dataset of the
        # protocol) influences nothing, not even the input standardisation or the BatchNorm statistics
        seen = seen_datasets(tr, va)
        self.seen_ = seen
        X, R, tr = X[seen], R[np.ix_(seen, seen)], tr[np.ix_(seen, seen)]
        va = None if va is None else va[np.ix_(seen, seen)]
        sizes = None if sizes is None else sizes[seen]
        if members is not None:
            subsets = (items, [sets[i] for i in seen], variance)
        n = X.shape[0]
        episode = None
        if c.get("holdout"):
            held = holdout_split(tr, c["holdout"], c["seed"])
            tr, thr_mask, score_mask = holdout_score_masks(held, tr, va)
            episode = (held, thr_mask, score_mask)
        self.holdout_ = None if episode is None else seen[np.flatnonzero(episode[0])]
        self.graded_ = graded = is_graded(R, tr, va)
        mixtures = c.get("mixtures", 0.0)
        # options whose targets follow from 0/1 containment only: refused when given graded relations
        for on, option, why, instead in (
                (c.get("closure") is True, "closure=True", "transitivity implies no graded value",
                 "use closure='auto' (on for 0/1 relations only) or closure=False"),
                (mixtures != "auto" and mixtures > 0, f"mixtures={mixtures}",
                 "a mixture's relations are implied only by 0/1 containment",
                 "use mixtures='auto' (on for 0/1 relations only) or mixtures=0"),
                (subsets is not None, "members", "a member subset's relations are implied only by 0/1 containment",
                 "fit without members=")):
            if on and graded:
                raise ValueError(f"{option}: the relations on the training and validation pairs are graded (values "
                                 f"strictly between 0 and 1), and {why}; {instead}")
        if mixtures == "auto":  # 0/1 relations trained with the full batch: AUTO_MIXTURES, else off
            mixtures = 0.0 if graded or c["batch_size"] is not None else AUTO_MIXTURES
        self.mixtures_ = mixtures
        for name, on in (("mixtures", mixtures), ("members", subsets is not None)):
            if on and c["batch_size"] is not None:
                raise ValueError(f"{name}: augmented datasets are trained with the full batch only; "
                                 f"use batch_size=None (got batch_size={c['batch_size']})")
        self.in_dim_ = X.shape[1]
        net = self._new_net(X.shape[1])
        with torch.no_grad():
            net.x_mean.copy_(torch.as_tensor(X.mean(0)))
            scale = X.std(0) if c.get("standardize", "feature") == "feature" else np.full(X.shape[1], X.std())
            net.x_scale.copy_(torch.as_tensor(scale + 1e-8 * max(X.std(), 1e-30)))
        Xt = torch.as_tensor(X, dtype=torch.float32, device=dev)
        tr_given, R_fit = tr, R
        if c.get("closure") is True or (c.get("closure") == "auto" and not graded):
            # the pairs the training labels imply (transitivity) become training targets too; validation
            # pairs stay out, so early stopping and thresholds are measured on pairs never trained
            tr, R_fit = closure_targets(R, tr, keep_out=va)
        Rt = torch.as_tensor(R_fit, dtype=torch.float32, device=dev)
        w_neg, w_pos = class_weights(R_fit[tr] > 0.5, c["pos_weight"], graded)
        W = torch.as_tensor(np.where(tr, np.where(R_fit > 0.5, w_pos, w_neg), 0.0), dtype=torch.float32, device=dev)
        # L_D (centre distance) and the augmentations use the given positive pairs only: pulling the centres of
        # every implied (distant) ancestor together lowered the taxonomy's selection F1 (benchmarks/RESULTS.md)
        pos_i, pos_j = (torch.as_tensor(a, device=dev) for a in np.nonzero(tr_given & (R > 0)))
        tr_i, tr_j = (torch.as_tensor(a, device=dev) for a in np.nonzero(tr))
        size_t = None
        if sizes is not None and c["size_weight"] > 0:
            size_t = torch.as_tensor(sizes, device=dev)
        geom = self.geometry
        opt = torch.optim.Adam(net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        gen = torch.Generator(device="cpu").manual_seed(c["seed"])
        epochs = c["epochs"]

        def set_lr(epoch):
            if c["lr_decay"] != 1.0:
                f = c["lr_decay"] + (1 - c["lr_decay"]) * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
                for g in opt.param_groups:
                    g["lr"] = c["lr"] * f

        def objective(lo, hi, le):
            parts = {"relation": le}
            loss = le
            if c["lam"]:
                ld = center_loss(lo, hi, pos_i, pos_j)
                parts["center"] = ld
                loss = loss + c["lam"] * ld
            if c["alpha"] or c["beta"]:
                lr_ = regularization(lo, hi, c["alpha"], c["beta"], geom)
                parts["regularization"] = lr_
                loss = loss + lr_
            if size_t is not None:
                ls = size_order_loss(lo, hi, size_t, geom)
                parts["size"] = ls
                loss = loss + c["size_weight"] * ls
            parts["loss"] = loss
            return loss, parts

        def noisy():
            if not c.get("input_noise"):
                return None
            return (torch.randn(Xt.shape, generator=gen) * c["input_noise"]).to(dev)

        n_mix = int(round(mixtures * n)) if pos_i.numel() else 0

        n_sub = int(round(c.get("member_subsets", 0.0) * n)) if subsets is not None and pos_i.numel() else 0
        pool = None
        if n_sub:
            # a pool of 4 N member-subset datasets drawn once (their representations cost O(members) each);
            # every epoch takes n_sub of them
            pick = torch.randint(pos_i.numel(), (4 * n,), generator=gen)
            rng = np.random.default_rng(int(torch.randint(2 ** 62, (1,), generator=gen)))
            i, j = pos_i.cpu()[pick].numpy(), pos_j.cpu()[pick].numpy()
            pool = (subset_datasets(rng, *subsets, i, j), i, j)

        def mixture_batch():
            """Representations, targets and weights of this epoch's augmented datasets (episodes.py): mixtures
            ``w e_i + (1 - w) e_j`` and member subsets ``D_i ∪ S``, ``S ⊂ D_j``, for training pairs ``i ⊂ j``."""
            xs, targets = [], []
            if n_mix:
                pick = torch.randint(pos_i.numel(), (n_mix,), generator=gen)
                w = torch.rand(n_mix, 1, generator=gen, dtype=torch.float64).numpy()
                i, j = pos_i.cpu()[pick].numpy(), pos_j.cpu()[pick].numpy()
                xs.append(w * X[i] + (1 - w) * X[j])
                targets.append(mixture_targets(R_fit, tr, i, j))
            if n_sub:
                pick = torch.randint(pool[0].shape[0], (n_sub,), generator=gen).numpy()
                xs.append(pool[0][pick])
                targets.append(mixture_targets(R_fit, tr, pool[1][pick], pool[2][pick]))
            xm = torch.as_tensor(np.concatenate(xs), dtype=torch.float32, device=dev)
            t_out, k_out, t_in, k_in = (np.concatenate(parts) for parts in zip(*targets))
            wt = [torch.as_tensor(np.where(k, np.where(t > 0.5, w_pos, w_neg), 0.0), dtype=torch.float32,
                                  device=dev) for t, k in ((t_out, k_out), (t_in, k_in))]
            tt = [torch.as_tensor(t, dtype=torch.float32, device=dev) for t in (t_out, t_in)]
            return xm, tt, wt

        def mixture_loss(lo, hi, lo_m, hi_m, tt, wt):
            import tasklens.boxes as tb

            s_out = tb.containment(lo_m, hi_m, lo, hi, **geom.kwargs())
            s_in = tb.containment(lo, hi, lo_m, hi_m, **geom.kwargs()).T
            num = (wt[0] * (s_out - tt[0]) ** 2).sum() + (wt[1] * (s_in - tt[1]) ** 2).sum()
            return num / (wt[0].sum() + wt[1].sum()).clamp_min(1e-12)

        def step(epoch):
            set_lr(epoch)
            if c["batch_size"] is None:
                opt.zero_grad()
                if n_mix or n_sub:
                    xm, tt, wt = mixture_batch()
                    noise = noisy()
                    lo_all, hi_all = net(torch.cat([Xt if noise is None else Xt + noise * net.x_scale, xm]),
                                         stat_rows=n)
                    lo, hi, lo_m, hi_m = lo_all[:n], hi_all[:n], lo_all[n:], hi_all[n:]
                    loss, parts = objective(lo, hi, relation_loss(lo, hi, Rt, W, geom))
                    lm = mixture_loss(lo, hi, lo_m, hi_m, tt, wt)
                    parts["mixture"] = lm
                    loss = loss + c["mixture_weight"] * lm
                    parts["loss"] = loss
                else:
                    lo, hi = net(Xt, noisy())
                    loss, parts = objective(lo, hi, relation_loss(lo, hi, Rt, W, geom))
                loss.backward()
                opt.step()
                return {k: float(v.detach()) for k, v in parts.items()}
            perm = torch.randperm(tr_i.numel(), generator=gen).to(dev)
            total = {}
            nb = 0
            for b in range(0, perm.numel(), c["batch_size"]):
                sel = perm[b:b + c["batch_size"]]
                i, j = tr_i[sel], tr_j[sel]
                opt.zero_grad()
                lo, hi = net(Xt, noisy())
                le = relation_loss_pairs(lo, hi, i, j, Rt[i, j], W[i, j], geom)
                loss, parts = objective(lo, hi, le)
                loss.backward()
                opt.step()
                for k, v in parts.items():
                    total[k] = total.get(k, 0.0) + float(v.detach())
                nb += 1
            return {k: v / nb for k, v in total.items()}

        scored = _Scored(net)
        validate = None
        if episode is not None and episode[2].any():
            def validate():
                lo, hi = scored.net(Xt)
                S = self._scores(lo, hi, lo, hi).detach().cpu().numpy().astype(np.float64)
                return held_out_score(S, R, episode[1], episode[2], graded)
        elif va is not None and va.any():
            def validate():
                lo, hi = scored.net(Xt)
                S = self._scores(lo, hi, lo, hi).detach().cpu().numpy().astype(np.float64)
                return held_out_score(S, R, va, va, True) if graded else validation_f1(S, R, va)

        module = net
        if c.get("ema"):
            module = _with_average(net, c["ema"], step, Xt)
            step = module.step
            scored.net = module.average
        self.net_ = net
        self.history_ = run_training(
            module, opt, step, epochs=epochs, generator=gen, validate=validate, eval_every=c["eval_every"],
            patience=c["patience"], progress=c["progress"], checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, resume=resume, payload=self._payload, callback=callback,
            desc=f"Task2Box {c['box_dim']}-D")
        if module is not net:
            self.net_ = module.average
        use = bool(c["neighbours"])
        if c["neighbours"] == "auto":
            use = self._choose_neighbours(X, R, tr_given, va, sizes=sizes,
                                          members=None if members is None else [members[i] for i in seen])
        self.neighbours_ = use
        if use:
            self._attach_neighbours(X)
            if checkpoint is not None:  # the final checkpoint loads as the model that scores (with its anchors)
                data = load_checkpoint(checkpoint)
                data["neighbour_anchors"] = torch.as_tensor(X, dtype=torch.float32)
                save_checkpoint(checkpoint, data)
        return self

    def _attach_neighbours(self, X):
        """Rebuild the fitted network with the seen rows ``X`` as anchors (novel rows get
        :func:`neighbour_boxes`)."""
        torch = _torch()
        old = self.net_
        net = self._new_net(X.shape[1], X.shape[0])
        net.load_state_dict(old.state_dict(), strict=False)
        with torch.no_grad():
            net.anchors.copy_(torch.as_tensor(X, dtype=torch.float32))
            net.neighbour_tau.fill_(self.config["neighbour_tau"])
            net.neighbour_scale.fill_(self.config["neighbour_scale"])
            net.neighbour_blend.fill_(self.config["neighbour_blend"])
        net.eval()
        self.net_ = net

    def _choose_neighbours(self, X, R, tr, va, sizes=None, members=None) -> bool:
        """Whether novel datasets get :func:`neighbour_boxes` (True) or the encoder's own boxes (False), chosen
        by :func:`neighbour_check` (the novel protocol replayed on datasets held out inside ``fit``, drawn with
        ``seed``); ties keep the encoder. The scores are in ``neighbour_f1_`` (encoder, neighbours)."""
        c = self.config
        f = neighbour_check(c, X, R, tr, va, fraction=c["neighbour_holdout"], draw=c["seed"], sizes=sizes,
                            members=members)
        self.neighbour_f1_ = None if f is None else (f[0], f[1])
        return f is not None and f[1] > f[0] + 1e-12

    # ------------------------------------------------------------------ inference
    def _check_fitted(self):
        if self.net_ is None:
            raise ValueError("this Task2Box model is not fitted yet: call fit(X, relations, train_mask) first")

    def _scores(self, lo_a, hi_a, lo_b, hi_b):
        import tasklens.boxes as tb

        return tb.containment(lo_a, hi_a, lo_b, hi_b, **self.geometry.kwargs())

    def _rows(self, X, name: str):
        """Validated rows of base representations (the fitted width), any kind and device."""
        self._check_fitted()
        check_devices(**{name: X})
        return check_array(X, name, shape=(None, self.in_dim_))

    def _boxes_of(self, X):
        """Boxes of validated rows: float32 tensors on the network's device."""
        torch = _torch()
        dev = next(self.net_.parameters()).device
        xt = X if is_torch(X) else torch.from_numpy(np.asarray(X))
        self.net_.eval()
        with torch.no_grad(), torch_threads(self.config.get("torch_threads", 1)):
            return self.net_(xt.to(device=dev, dtype=torch.float32))

    def embed(self, X):
        """Boxes ``(lo, hi)``, each (n, k), for any rows (existing or novel datasets) in O(n) time.

        numpy in -> numpy out (input dtype); torch in -> torch out on the input's device.
        """
        X = self._rows(X, "X")
        be = backend_of(X=X)
        lo, hi = self._boxes_of(X)
        return be.out((cast(lo, be), cast(hi, be)))

    def containment(self, X_a, X_b=None):
        """``S[i, j] = d_box(f(x_a_i), f(x_b_j)) = vol(z_i ∩ z_j) / vol(z_i)`` (Eq. 5), shape (N_a, N_b).

        ``X_b`` defaults to ``X_a``. One fused all-pairs kernel; memory O(N_a N_b). numpy in -> numpy out,
        torch in -> torch out on the input's device, in the inputs' floating dtype.
        """
        torch = _torch()
        A = self._rows(X_a, "X_a")
        B = None if X_b is None else self._rows(X_b, "X_b")
        be = backend_of(X_a=A, X_b=B)
        lo_a, hi_a = self._boxes_of(A)
        lo_b, hi_b = (lo_a, hi_a) if B is None else self._boxes_of(B)
        with torch.no_grad():
            S = self._scores(lo_a, hi_a, lo_b, hi_b)
        return be.out(cast(S, be))

    # ------------------------------------------------------------------ persistence
    def _payload(self) -> dict:
        return {"kind": "Task2Box", "config": dict(self.config), "in_dim": self.in_dim_,
                "n_anchors": int(getattr(self.net_, "n_anchors", 0) or 0)}

    def save(self, path: str, **extra) -> str:
        """Save the fitted model (config, parameters, history, and any ``extra`` metadata) to ``path``."""
        self._check_fitted()
        data = self._payload()
        data.update(model=snapshot(self.net_), history=self.history_, extra=extra)
        return save_checkpoint(path, data)

    @classmethod
    def load(cls, path: str) -> "Task2Box":
        """Load a model written by :meth:`save` or by ``fit(checkpoint=...)``."""
        data = load_checkpoint(path)
        if data["kind"] != "Task2Box":
            raise ValueError(f"{path}: holds a {data['kind']!r}, not a Task2Box model")
        cfg = dict(data["config"])
        model = cls(**cfg)
        model.in_dim_ = int(data["in_dim"])
        model.net_ = model._new_net(model.in_dim_, int(data.get("n_anchors", 0)))
        state = data["model"]
        if any(k.startswith("average.") for k in state):  # final checkpoint of an ema run: the averaged net
            state = {k[len("average."):]: v for k, v in state.items() if k.startswith("average.")}
        model.net_.load_state_dict(state)
        model.net_.eval()
        if data.get("neighbour_anchors") is not None:  # final checkpoint of a fit that uses neighbour boxes
            model._attach_neighbours(data["neighbour_anchors"].numpy())
        model.history_ = data.get("history")
        model.extra_ = data.get("extra", {})
        return model

    def __repr__(self) -> str:
        c = self.config
        return f"Task2Box(box_dim={c['box_dim']}, seed={c['seed']}, hidden={c['hidden']}, epochs={c['epochs']})"
