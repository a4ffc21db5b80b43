"""Real transfer benchmark (issue 13): a model zoo on real images, fine-tuned ground truth, and how well every
transferability estimator ranks the models (weighted Kendall tau), with timings and a figure.

Subcommands (each resumable; results are cached under ``benchmarks/.cache/zoo`` or ``$TASKLENS_ZOO_CACHE``):

    python benchmarks/transfer_zoo.py finetune   # pre-train the zoo, then fine-tune every model on every target
    python benchmarks/transfer_zoo.py estimate   # every estimator on every (target, model)
    python benchmarks/transfer_zoo.py report     # tables (markdown on stdout) and benchmarks/figures/zoo_*.png

Protocol (one for every model, see ``zoo_common.py``): tasks and pools in ``TASKS`` / ``POOLS``; pre-training
Adam (``PRETRAIN``) on the source pool; fine-tuning = new linear head, whole network trained with SGD
(momentum 0.9) for the same number of steps and batch size (``FINETUNE``) at each learning rate of the sweep;
the learning rate with the best accuracy on the target's val pool is kept and its test-pool accuracy is the
ground truth. Training from scratch (the ``cnn`` architecture, random init) follows the same protocol.
Estimators read the penultimate features (and the source head's softmax for LEEP / NCE) of the target's
train pool, i.e. exactly the images fine-tuning sees.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_common as z  # noqa: E402

FT_PATH = os.path.join(z.CACHE, "finetune.jsonl")
EST_PATH = os.path.join(z.CACHE, "estimates.jsonl")
ESTIMATORS = ("hscore", "hscore_reg", "logme", "leep", "nce", "nleep", "transrate", "gbc", "sfda")
FIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def candidates(target: str) -> list[str]:
    """Models ranked on ``target``: every zoo model whose source task is not the target."""
    return [m for m in sorted(z.ZOO) if z.ZOO[m][1] != target]


def loss_path(target: str, model: str, lr: float) -> str:
    """Per-image test losses of one fine-tuning run (for the Taskonomy win rates of task_affinity.py)."""
    d = os.path.join(z.CACHE, "losses", target)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"{model.replace('@', '_at_')}_lr{lr:g}.npy")


def cmd_finetune(args) -> None:
    for name in sorted(z.ZOO):
        z.source_model(name)
    done = {(r["target"], r["model"], r["lr"]) for r in z.read_jsonl(FT_PATH)}
    targets = args.targets or list(z.TASKS)
    for target in targets:
        t_target = time.perf_counter()
        for model in ["scratch"] + candidates(target):
            for lr in z.FINETUNE["lrs"]:
                if (target, model, lr) in done:
                    continue
                t0 = time.perf_counter()
                if model == "scratch":
                    va, te, losses = z.finetune(None, "cnn", target, lr)
                else:
                    va, te, losses = z.finetune(z.source_model(model), z.ZOO[model][0], target, lr)
                np.save(loss_path(target, model, lr), losses)
                z.append_jsonl(FT_PATH, dict(target=target, model=model, lr=lr, val=va, test=te,
                                             seconds=time.perf_counter() - t0))
        z.log(f"fine-tuned on {target}: {time.perf_counter() - t_target:.0f} s")


def ground_truth() -> dict:
    """{target: {model: (test acc at the best-val lr, best lr)}} from the fine-tuning log."""
    best: dict = {}
    for r in z.read_jsonl(FT_PATH):
        key = (r["target"], r["model"])
        # best val accuracy; ties -> smaller lr (rows are in sweep order)
        if key not in best or r["val"] > best[key]["val"]:
            best[key] = r
    out: dict = {}
    for (t, m), r in best.items():
        out.setdefault(t, {})[m] = (r["test"], r["lr"])
    return out


def run_estimators(feats: np.ndarray, probs: np.ndarray, y: np.ndarray) -> dict:
    """{name: (score, seconds)} for every estimator on one (model, target)."""
    from tasklens.metrics import gbc, hscore, leep, logme, nce, nleep, sfda, transrate

    calls = {
        "hscore": lambda: hscore(feats, y),
        "hscore_reg": lambda: hscore(feats, y, shrinkage="ledoit-wolf"),
        "logme": lambda: logme(feats, y),
        "leep": lambda: leep(probs, y),
        "nce": lambda: nce(probs.argmax(1), y),
        "nleep": lambda: nleep(feats, y, seed=0),
        "transrate": lambda: transrate(feats, y),
        "gbc": lambda: gbc(feats, y),
        "sfda": lambda: sfda(feats, y),
    }
    out = {}
    for name, f in calls.items():
        t0 = time.perf_counter()
        v = float(f())
        out[name] = (v, time.perf_counter() - t0)
    return out


def cmd_estimate(args) -> None:
    done = {(r["target"], r["model"]) for r in z.read_jsonl(EST_PATH)}
    # warm-up: the first call of an estimator pays imports (scikit-learn's mixture for N-LEEP: seconds); not timed
    g = np.random.default_rng(0)
    yw = np.arange(60) % 3
    pw = g.dirichlet(np.ones(4), 60)
    run_estimators(g.normal(size=(60, 8)) + yw[:, None], pw / pw.sum(1, keepdims=True), yw)
    for target in args.targets or list(z.TASKS):
        x, y = z.task_split(target, "train")
        yn = y.numpy()
        for model in candidates(target):
            if (target, model) in done:
                continue
            feats, probs = z.forward_parts(z.source_model(model), x)
            # softmax rows of float64 sum to 1 within 1e-15; renormalise so LEEP's check never trips on rounding
            probs = probs / probs.sum(1, keepdims=True)
            res = run_estimators(feats, probs, yn)
            z.append_jsonl(EST_PATH, dict(target=target, model=model, n=int(len(yn)), dim=int(feats.shape[1]),
                                          **{k: v for k, (v, _) in res.items()},
                                          **{f"{k}_s": s for k, (_, s) in res.items()}))
        z.log(f"estimators on {target} done")


# -------------------------------------------------------------------------------------------- report
def _tables():
    from tasklens.metrics import kendall_tau, weighted_kendall_tau

    gt = ground_truth()
    est: dict = {}
    for r in z.read_jsonl(EST_PATH):
        est.setdefault(r["target"], {})[r["model"]] = r
    targets = [t for t in z.TASKS if t in gt and t in est and all(m in gt[t] and m in est[t] for m in candidates(t))]
    wt = {e: {} for e in ESTIMATORS}
    kt = {e: {} for e in ESTIMATORS}
    for t in targets:
        models = candidates(t)
        acc = np.array([gt[t][m][0] for m in models])
        for e in ESTIMATORS:
            s = np.array([est[t][m][e] for m in models])
            wt[e][t] = float(weighted_kendall_tau(s, acc))
            kt[e][t] = float(kendall_tau(s, acc))
    return gt, est, targets, wt, kt


def _fmt(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:+.3f}"


def cmd_report(args) -> None:
    gt, est, targets, wt, kt = _tables()
    if not targets:
        print("no complete target yet")
        return
    print(f"Targets complete: {len(targets)} / {len(z.TASKS)}; models per target: "
          + ", ".join(f"{t} {len(candidates(t))}" for t in targets) + "\n")
    for title, tab in (("Weighted Kendall tau (hyperbolic; tasklens.metrics.weighted_kendall_tau)", wt),
                       ("Kendall tau-b (tasklens.metrics.kendall_tau)", kt)):
        print(f"**{title}** of estimator score vs fine-tuned test accuracy\n")
        print("| estimator | " + " | ".join(targets) + " | mean |")
        print("|---" * (len(targets) + 2) + "|")
        for e in ESTIMATORS:
            vals = [tab[e][t] for t in targets]
            print(f"| {e} | " + " | ".join(_fmt(v) for v in vals) + f" | **{_fmt(float(np.nanmean(vals)))}** |")
        print()
    # model selection: relative top-1 accuracy (tasklens.metrics.relative_top_k_accuracy)
    from tasklens.metrics import relative_top_k_accuracy

    print("**Relative top-1 accuracy** (fine-tuned accuracy of the model each estimator ranks first / best "
          "fine-tuned accuracy)\n")
    print("| estimator | " + " | ".join(targets) + " | mean |")
    print("|---" * (len(targets) + 2) + "|")
    for e in ESTIMATORS:
        vals = []
        for t in targets:
            models = candidates(t)
            vals.append(float(relative_top_k_accuracy([est[t][m][e] for m in models],
                                                      [gt[t][m][0] for m in models], k=1)))
        print(f"| {e} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | **{np.mean(vals):.3f}** |")
    print()
    # timings
    print("**Estimator time** (ms per (model, target), median over all pairs; N = target train pool, D = feature "
          "width 32-128)\n")
    rows = [r for t in targets for r in est[t].values()]
    print("| estimator | median ms | max ms | total s |\n|---|---|---|---|")
    for e in ESTIMATORS:
        s = np.array([r[f"{e}_s"] for r in rows])
        print(f"| {e} | {1e3 * np.median(s):.2f} | {1e3 * s.max():.1f} | {s.sum():.2f} |")
    print()
    # ground truth
    models = sorted(z.ZOO)
    print("**Fine-tuned test accuracy** (best-val lr; '-' = model's own source task); last row: from scratch\n")
    print("| model | " + " | ".join(targets) + " |")
    print("|---" * (len(targets) + 1) + "|")
    for m in models + ["scratch"]:
        cells = [f"{gt[t][m][0]:.3f}" if m in gt[t] else "-" for t in targets]
        print(f"| {m} | " + " | ".join(cells) + " |")
    print()
    _figure(gt, est, targets, wt)


def _figure(gt, est, targets, wt) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = "DejaVu Sans"
    shown = ("logme", "hscore_reg", "leep", "nce", "nleep", "transrate", "gbc", "sfda", "hscore")
    fig, axes = plt.subplots(len(shown), len(targets), figsize=(2.1 * len(targets), 1.9 * len(shown)),
                             squeeze=False)
    archs = sorted({a for a, _ in z.ZOO.values()})
    colors = {a: plt.cm.tab10(i) for i, a in enumerate(archs)}
    for j, t in enumerate(targets):
        models = candidates(t)
        acc = np.array([gt[t][m][0] for m in models])
        for i, e in enumerate(shown):
            ax = axes[i, j]
            s = np.array([est[t][m][e] for m in models])
            ax.scatter(s, acc, s=12, c=[colors[z.ZOO[m][0]] for m in models])
            ax.set_title(f"{t}: {e}  τw={wt[e][t]:+.2f}", fontsize=7)
            ax.tick_params(labelsize=5)
            if j == 0:
                ax.set_ylabel("fine-tuned acc", fontsize=6)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colors[a], label=a) for a in archs]
    fig.legend(handles=handles, loc="upper center", ncol=len(archs), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    os.makedirs(FIG_DIR, exist_ok=True)
    path = os.path.join(FIG_DIR, "zoo_estimators.png")
    fig.savefig(path, dpi=80)
    print(f"figure: {os.path.relpath(path, os.path.dirname(FIG_DIR))}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("finetune", "estimate", "report"))
    p.add_argument("--targets", nargs="*", help="subset of target tasks (default: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    {"finetune": cmd_finetune, "estimate": cmd_estimate, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
