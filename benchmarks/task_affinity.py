"""Graded task-affinity matrix from the model-zoo runs (issue 13) and Task2Box on it (paper Table 3 analogue).

    python benchmarks/transfer_zoo.py finetune      # first: the fine-tuning runs this reads
    python benchmarks/task_affinity.py              # matrix, representations, Task2Box vs baselines, 3 seeds

Tasks: the 12 tasks of ``zoo_common.TASKS``; each is a source (the ``cnn`` model pre-trained on it) and a target
(every other task's ``cnn`` fine-tuned on it, and a ``cnn`` trained from scratch, same protocol and budget).

Affinities (relations in [0, 1], R[s, t] = how much source s helps target t; diagonal unused):

- ``taskonomy`` (main; :func:`tasklens.metrics.affinity.ahp_affinity` then ``normalized_gain``): Taskonomy's
  ordinal normalisation (Zamir et al., CVPR 2018, Sec. 3.3, AHP) with
  training from scratch as one more competitor. For target t and competitors i, j in {sources != t} + {scratch},
  ``W[i, j]`` = share of the target's test images on which i's per-image test loss is lower than j's (ties
  count one half), clipped to [0.001, 0.999]; ``W' = W / W^T`` (element-wise); ``v`` = principal
  (Perron) eigenvector of ``W'``, summing to 1. The gain over scratch is then mapped to [0, 1] per target:
  ``R[s, t] = clip((v_s - v_scratch) / (max_s' v_s' - v_scratch), 0, 1)`` (1 = the best source; 0 = no better
  than training from scratch).
- ``gain``: the same map on test accuracies: ``R[s, t] = clip((acc_s - acc_scratch) / (max_s' acc_s' -
  acc_scratch), 0, 1)``.

Dataset representations (one fixed probe: :func:`tasklens.represent.default_probe`, trained once on Fashion-MNIST):
``task2vec`` (:func:`tasklens.represent.task2vec`, per-filter Fisher, label aware, 56-d) and ``meanvar``
(``[mu, sigma^2]`` of the probe's features, :func:`tasklens.represent.mean_var`, 64-d; images only) of each
task's target train pool.

Protocols (3 seeds each): ``existing`` = held-out pairs (``split_pairs`` 0.6 / 0.2 / 0.2 train / val / test);
``novel`` = ``split_novel`` (20% of the tasks) held out entirely, trained on 80% / validated on 20% of the pairs
among the others, tested on every pair between a novel and an existing task. Score: Spearman rho of predicted
vs measured affinity on the test pairs. Every method's hyper-parameters are chosen by Spearman on the val pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_common as z  # noqa: E402
from transfer_zoo import ground_truth, loss_path  # noqa: E402

from tasklens.metrics.affinity import ahp_affinity, normalized_gain  # noqa: E402

TASKS = list(z.TASKS)
OUT = os.path.join(z.CACHE, "affinity")


# ------------------------------------------------------------------------------------------ affinities
def affinity_matrices():
    """(taskonomy R, gain R, raw accuracy table acc[s, t], scratch acc[t]) over TASKS; NaN on the diagonal."""
    gt = ground_truth()
    n = len(TASKS)
    acc = np.full((n, n), np.nan)
    scratch = np.zeros(n)
    r_tk, r_gain = np.full((n, n), np.nan), np.full((n, n), np.nan)
    for j, t in enumerate(TASKS):
        srcs = [i for i in range(n) if i != j]
        names = [f"cnn@{TASKS[i]}" for i in srcs] + ["scratch"]
        best = {m: gt[t][m] for m in names}
        for i, m in zip(srcs, names):
            acc[i, j] = best[m][0]
        scratch[j] = best["scratch"][0]
        losses = np.stack([np.load(loss_path(t, m, best[m][1])) for m in names]).astype(np.float64)
        v = ahp_affinity(losses)
        r_tk[srcs, j] = normalized_gain(v[:-1], v[-1])
        r_gain[srcs, j] = normalized_gain(acc[srcs, j], scratch[j])
    return r_tk, r_gain, acc, scratch


# ---------------------------------------------------------------------------------------- representations
def representations() -> dict:
    path = os.path.join(OUT, "representations.npz")
    if os.path.exists(path):
        zz = np.load(path)
        return {k: zz[k] for k in zz.files}
    from tasklens.represent import default_probe, mean_var, probe_features, task2vec

    probe = default_probe(cache_dir=os.path.join(z.CACHE, "probe"), progress=False)
    t2v, mv = [], []
    for t in TASKS:
        x, y = z.task_split(t, "train")
        t2v.append(task2vec(x.numpy(), y.numpy(), probe=probe, num_classes=z.num_classes(t), seed=0))
        mv.append(mean_var(probe_features(x.numpy(), probe).astype(np.float64)))
    reps = {"task2vec": np.stack(t2v), "meanvar": np.stack(mv)}
    os.makedirs(OUT, exist_ok=True)
    np.savez(path, **reps)
    return reps


# ------------------------------------------------------------------------------------------------ methods
def spearman_on(R, S, mask) -> float:
    from tasklens.task2box import spearman

    return float(spearman(np.nan_to_num(R), S, mask))  # the diagonal (NaN) is in no mask


def _std(X):
    mu, sd = X.mean(0), X.std(0)
    return (X - mu) / np.where(sd > 0, sd, 1.0)


class MLPRegressor:
    """The well-trained MLP of §4.2 for graded relations: 4 layers (256, 256, 256, 1) on ``[e_i, e_j]``
    (standardised), sigmoid output, mean squared error to the graded affinity, full-batch Adam; early stopping on
    the val pairs' Spearman (checked every 10 epochs, best state kept), weight decay chosen on the val pairs."""

    def __init__(self, seed: int, hidden=(256, 256, 256), epochs: int = 800, lr: float = 1e-3,
                 weight_decays=(0.0, 1e-2, 1e-1), dropout: float = 0.0):
        self.seed, self.hidden, self.epochs, self.lr, self.wds, self.dropout = seed, hidden, epochs, lr, weight_decays, dropout

    def _net(self, d):
        layers, c = [], 2 * d
        for h in self.hidden:
            layers += [torch.nn.Linear(c, h), torch.nn.ReLU()]
            if self.dropout:
                layers.append(torch.nn.Dropout(self.dropout))
            c = h
        layers.append(torch.nn.Linear(c, 1))
        return torch.nn.Sequential(*layers)

    def _dense(self, net, X):
        n = len(X)
        a = np.repeat(X, n, 0)
        b = np.tile(X, (n, 1))
        with torch.no_grad():
            net.eval()
            s = torch.sigmoid(net(torch.as_tensor(np.hstack([a, b]), dtype=torch.float32)))[:, 0]
        return s.numpy().astype(np.float64).reshape(n, n)

    def fit(self, X, R, tr, va):
        X = _std(np.asarray(X, np.float64))
        self.X_ = X
        ii, jj = np.nonzero(tr)
        inp = torch.as_tensor(np.hstack([X[ii], X[jj]]), dtype=torch.float32)
        tgt = torch.as_tensor(R[ii, jj], dtype=torch.float32)
        best = (-np.inf, None)
        for wd in self.wds:
            torch.manual_seed(self.seed)
            net = self._net(X.shape[1])
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=wd)
            for ep in range(1, self.epochs + 1):
                net.train()
                opt.zero_grad()
                loss = ((torch.sigmoid(net(inp))[:, 0] - tgt) ** 2).mean()
                loss.backward()
                opt.step()
                if ep % 10 == 0:
                    rho = spearman_on(R, self._dense(net, X), va)
                    if np.isfinite(rho) and rho > best[0]:
                        best = (rho, {k: v.clone() for k, v in net.state_dict().items()}, wd, ep)
        net = self._net(X.shape[1])
        net.load_state_dict(best[1])
        self.net_, self.choice_ = net, dict(weight_decay=best[2], epochs=best[3])
        return self

    def predict(self):
        return self._dense(self.net_, self.X_)


class RidgePairs:
    """Linear model of §4.2 for graded relations: ridge regression of the affinity on ``[e_i, e_j]``
    (standardised); penalty chosen on the val pairs."""

    def __init__(self, alphas=(1e-2, 1e-1, 1, 10, 100, 1000)):
        self.alphas = alphas

    def fit(self, X, R, tr, va):
        X = _std(np.asarray(X, np.float64))
        n = len(X)
        feats = np.hstack([np.repeat(X, n, 0), np.tile(X, (n, 1))])
        feats = np.hstack([feats, np.ones((n * n, 1))])
        m = tr.ravel()
        best = (-np.inf, None)
        for a in self.alphas:
            A = feats[m]
            reg = a * np.eye(A.shape[1])
            reg[-1, -1] = 0
            w = np.linalg.solve(A.T @ A + reg, A.T @ R.ravel()[m])
            S = (feats @ w).reshape(n, n)
            rho = spearman_on(R, S, va)
            if np.isfinite(rho) and rho > best[0]:
                best = (rho, S, a)
        self.S_, self.choice_ = best[1], dict(alpha=best[2])
        return self

    def predict(self):
        return self.S_


class AsymDistance:
    """Eq. 7 of the paper, ``-(d(e_i, e_j) - alpha d(e_i, e_o))`` with the cosine or Euclidean distance of the
    standardised representations; alpha in [0, 2] (21 values) chosen by Spearman on the train pairs."""

    def __init__(self, kind: str):
        self.kind = kind

    def _d(self, A, B):
        if self.kind == "cosine":
            na = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-300)
            nb = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-300)
            return 1 - na @ nb.T
        return np.sqrt(np.maximum((A ** 2).sum(1)[:, None] + (B ** 2).sum(1)[None] - 2 * A @ B.T, 0))

    def fit(self, X, R, tr, va):
        X = _std(np.asarray(X, np.float64))
        D = self._d(X, X)
        d0 = self._d(X, X.mean(0, keepdims=True))[:, 0]
        best = (-np.inf, None)
        for a in np.linspace(0, 2, 21):
            S = -(D - a * d0[:, None])
            rho = spearman_on(R, S, tr)
            if np.isfinite(rho) and rho > best[0]:
                best = (rho, S, a)
        self.S_, self.choice_ = best[1], dict(alpha=float(best[2]))
        return self

    def predict(self):
        return self.S_


class Task2BoxFixed:
    """:class:`tasklens.task2box.Task2Box` through its public API for graded relations: ``pos_weight=1`` (every
    training pair weighs the same in the squared error L_E; its class balancing assumes 0/1 relations),
    ``val_mask=None`` (its early stopping maximises F1 of 0/1 relations), and box dimension and epoch budget
    chosen by Spearman on the val pairs (one run per box dimension with ``max(epochs)`` epochs; the containment
    scores are read through ``fit(callback=...)`` at each budget of ``epochs``)."""

    def __init__(self, seed: int, box_dims=(2, 5), epochs=(100, 250, 500, 1000)):
        self.seed, self.box_dims, self.epochs = seed, box_dims, epochs

    def fit(self, X, R, tr, va):
        from tasklens.task2box import Task2Box

        best = (-np.inf, None)
        Rz = np.nan_to_num(R)
        Xf = np.asarray(X, np.float64)
        for k in self.box_dims:
            m = Task2Box(box_dim=k, seed=self.seed, epochs=max(self.epochs), pos_weight=1.0, progress=False)
            snaps = {}

            def snap(epoch, history, m=m, snaps=snaps):
                if epoch in self.epochs:
                    snaps[epoch] = m.containment(Xf)

            m.fit(Xf, Rz, tr, None, callback=snap)
            for ep, S in snaps.items():
                rho = spearman_on(R, S, va)
                if np.isfinite(rho) and rho > best[0]:
                    best = (rho, S, dict(box_dim=k, epochs=ep))
        self.S_, self.choice_ = best[1], best[2]
        return self

    def predict(self):
        return self.S_


class SourcePrior:
    """Reference without representations: R[s, t] predicted by the mean training affinity of source s plus that
    of target t (existing tasks only)."""

    def fit(self, X, R, tr, va):
        Rm = np.where(tr, np.nan_to_num(R), np.nan)
        with np.errstate(all="ignore"):
            rows, cols = np.nanmean(Rm, 1), np.nanmean(Rm, 0)
        self.S_ = np.nan_to_num(rows)[:, None] + np.nan_to_num(cols)[None, :]
        self.choice_ = {}
        return self

    def predict(self):
        return self.S_


class Random:
    def __init__(self, seed):
        self.seed = seed

    def fit(self, X, R, tr, va):
        self.S_ = np.random.default_rng(self.seed).random(R.shape)
        self.choice_ = {}
        return self

    def predict(self):
        return self.S_


def methods(seed: int, protocol: str) -> dict:
    out = {"Task2Box": Task2BoxFixed(seed), "MLP (graded, ours)": MLPRegressor(seed),
           "Linear (ridge)": RidgePairs(), "Asym. cosine": AsymDistance("cosine"),
           "Asym. Euclidean": AsymDistance("euclidean"), "Random": Random(seed)}
    if protocol == "existing":
        out["Source+target prior"] = SourcePrior()
    return out


def masks(protocol: str, seed: int, n: int):
    from tasklens.task2box import novel_mask, split_novel, split_pairs

    if protocol == "existing":
        return split_pairs(n, fractions=(0.6, 0.2, 0.2), seed=seed)
    existing, novel = split_novel(n, fraction=0.2, seed=seed)
    tr, va, _ = split_pairs(n, fractions=(0.8, 0.2, 0.0), seed=seed, datasets=existing)
    return tr, va, novel_mask(n, existing, novel)


def plot_affinity(r_tk, r_gain, acc, scratch) -> str:
    """Heat maps of both affinity matrices -> benchmarks/figures/zoo_affinity.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = "DejaVu Sans"
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4))
    for ax, (name, R) in zip(axes, (("taskonomy (AHP, gain over scratch)", r_tk), ("gain (accuracy)", r_gain))):
        im = ax.imshow(np.ma.masked_invalid(R), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(TASKS)), TASKS, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(TASKS)), TASKS, fontsize=8)
        ax.set_xlabel("target")
        ax.set_ylabel("source (cnn pre-trained on it)")
        ax.set_title(f"affinity: {name}", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures", "zoo_affinity.png")
    fig.savefig(path, dpi=90)
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds")
    p.add_argument("--first-seed", type=int, default=0, help="seeds first_seed .. first_seed + seeds - 1")
    p.add_argument("--affinity", nargs="*", default=["taskonomy", "gain"])
    p.add_argument("--reps", nargs="*", default=["task2vec", "meanvar"])
    p.add_argument("--figure", action="store_true", help="only draw benchmarks/figures/zoo_affinity.png")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    r_tk, r_gain, acc, scratch = affinity_matrices()
    print(f"figure: {os.path.relpath(plot_affinity(r_tk, r_gain, acc, scratch))}\n")
    if args.figure:
        return
    n = len(TASKS)
    print("**Fine-tuned test accuracy of cnn@source (rows) on target (columns); last row scratch**\n")
    short = [t.replace("-", "") for t in TASKS]
    print("| source \\ target | " + " | ".join(short) + " |\n" + "|---" * (n + 1) + "|")
    for i, t in enumerate(TASKS):
        print(f"| {t} | " + " | ".join("-" if i == j else f"{acc[i, j]:.3f}" for j in range(n)) + " |")
    print("| scratch | " + " | ".join(f"{s:.3f}" for s in scratch) + " |\n")
    for name, R in (("taskonomy", r_tk), ("gain", r_gain)):
        print(f"**Affinity `{name}` R[source, target] in [0, 1]**\n")
        print("| source \\ target | " + " | ".join(short) + " |\n" + "|---" * (n + 1) + "|")
        for i, t in enumerate(TASKS):
            print(f"| {t} | " + " | ".join("-" if i == j else f"{R[i, j]:.2f}" for j in range(n)) + " |")
        print()
    off = ~np.eye(n, dtype=bool)
    from tasklens.metrics import spearman
    print(f"Spearman between the two affinities over all {off.sum()} pairs: "
          f"{spearman(r_tk[off], r_gain[off]):.3f}\n")
    os.makedirs(OUT, exist_ok=True)
    np.savez(os.path.join(OUT, "affinity.npz"), taskonomy=r_tk, gain=r_gain, acc=acc, scratch=scratch,
             tasks=np.array(TASKS))
    reps = representations()
    results = {}
    for aff in args.affinity:
        R = {"taskonomy": r_tk, "gain": r_gain}[aff]
        for rep in args.reps:
            X = reps[rep]
            for protocol in ("existing", "novel"):
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    tr, va, te = masks(protocol, seed, n)
                    for mname, m in methods(seed, protocol).items():
                        t0 = time.perf_counter()
                        m.fit(X, R, tr, va)
                        rho = spearman_on(R, m.predict(), te)
                        results.setdefault((aff, rep, protocol, mname), []).append(rho)
                        z.log(f"{aff} {rep} {protocol} seed {seed} {mname}: rho {rho:+.3f} "
                              f"({time.perf_counter() - t0:.1f} s) {m.choice_}")
    print("\n**Spearman rho of predicted vs measured affinity on the test pairs (mean ± std over "
          f"{args.seeds} seeds)**\n")
    mnames = list(methods(0, "existing"))
    for aff in args.affinity:
        cols = [(rep, pr) for rep in args.reps for pr in ("existing", "novel")]
        print(f"Affinity `{aff}`\n")
        print("| method | " + " | ".join(f"{rep} {pr}" for rep, pr in cols) + " |\n" + "|---" * (len(cols) + 1) + "|")
        for mn in mnames:
            cells = []
            for rep, pr in cols:
                v = results.get((aff, rep, pr, mn))
                cells.append("n/a" if v is None else f"{np.nanmean(v):+.3f} ± {np.nanstd(v):.3f}")
            print(f"| {mn} | " + " | ".join(cells) + " |")
        print()
    tag = f"{'_'.join(args.affinity)}_{'_'.join(args.reps)}_seeds{args.first_seed}-{args.first_seed + args.seeds - 1}"
    with open(os.path.join(OUT, f"results_{tag}.json"), "w") as fh:
        json.dump({"|".join(k): v for k, v in results.items()}, fh, indent=1)


if __name__ == "__main__":
    main()
