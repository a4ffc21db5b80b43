"""``tasklens adapt``: unsupervised domain adaptation on image pairs (CDLM, DANN, source-only, target-only).

Pairs (both 28x28; the loaders are in :mod:`tasklens.datasets`):

- ``fashion-m``: Fashion-MNIST (gray) -> Fashion-M (MNIST-M-style blend). The training split is permuted
  (seed 0) and cut in two disjoint halves: source images from the first, unlabelled target images from the
  second, so no image appears in both domains. Evaluation: the 10,000 test images of each domain.
- ``digits``: synthetic font digits -> scikit-learn's handwritten digits. 12,000 rendered digits: 10,000
  for training, 2,000 for testing; the 1,797 handwritten digits are split (seed 0) into 1,000 for
  training and 797 for testing.

``--reverse`` swaps source and target. ``--subsample N`` keeps N training images per domain (seeded).
Writes ``metrics.csv`` and ``metrics.parquet`` (one row), ``model.pt`` and, for CDLM, ``translation.png``
(first row target test images, second row their source-style translations x~_ts, as the paper's Fig. 2).
"""

from __future__ import annotations

import os
import time

import numpy as np

METHODS = ("cdlm", "dann", "source", "target")
PAIRS = ("fashion-m", "digits")


def load_pair(pair: str, reverse: bool = False, subsample: int | None = None):
    """Return dict(source=(x, y), target=(x, y), source_test=(x, y), target_test=(x, y), names=(s, t))."""
    rng = np.random.default_rng(0)
    if pair == "fashion-m":
        from tasklens.datasets import load_fashion_pair

        tr, te = load_fashion_pair("train", seed=0), load_fashion_pair("test", seed=0)
        perm = rng.permutation(len(tr.source))
        half = len(perm) // 2
        a, b = perm[:half], perm[half:]
        doms = {"fashion": ((tr.source.x[a], tr.source.y[a]), (te.source.x, te.source.y)),
                "fashion-m": ((tr.target.x[b], tr.target.y[b]), (te.target.x, te.target.y))}
        names = ["fashion", "fashion-m"]
    elif pair == "digits":
        from tasklens.datasets import load_digits_pair

        dp = load_digits_pair(n_synthetic=12000, seed=0)
        hp = rng.permutation(len(dp.target))
        hx, hy = dp.target.x, dp.target.y
        doms = {"synthetic": ((dp.source.x[:10000], dp.source.y[:10000]),
                              (dp.source.x[10000:], dp.source.y[10000:])),
                "handwritten": ((hx[hp[:1000]], hy[hp[:1000]]), (hx[hp[1000:]], hy[hp[1000:]]))}
        names = ["synthetic", "handwritten"]
    else:
        raise ValueError(f"pair: expected one of {', '.join(PAIRS)}, got {pair!r}")
    if reverse:
        names.reverse()
    out = {"names": tuple(names)}
    for role, name in zip(("source", "target"), names):
        (x, y), test = doms[name]
        if subsample is not None and subsample < len(x):
            keep = np.sort(np.random.default_rng(1 if role == "source" else 2).choice(len(x), subsample,
                                                                                     replace=False))
            x, y = x[keep], y[keep]
        out[role], out[role + "_test"] = (x, y), test
    return out


def make_model(method: str, **kw):
    from tasklens.adapt import CDLM, DANN, SourceOnly, TargetOnly

    classes = {"cdlm": CDLM, "dann": DANN, "source": SourceOnly, "target": TargetOnly}
    if method not in classes:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    return classes[method](**kw)


def save_translation_grid(model, images, path: str, n: int = 10) -> None:
    """Two rows: target images and their source-style translations (CDLM, paper Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = images[:n]
    y = model.translate(x)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x
    fig, axes = plt.subplots(2, n, figsize=(n * 0.9, 2.0))
    for row, imgs in enumerate((x, y)):
        for j in range(n):
            img = np.transpose(imgs[j], (1, 2, 0))
            ax = axes[row, j]
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
    axes[0, 0].set_title("target", fontsize=7, loc="left")
    axes[1, 0].set_title("translated (x~_ts)", fontsize=7, loc="left")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_adapt(method: str, pair: str, *, out: str | None, reverse: bool = False, epochs: int = 10,
              seed: int = 0, subsample: int | None = None, data=None, progress=None, return_model: bool = False,
              **model_kw):
    """Train one method on one pair, evaluate on both test sets, write the outputs; return the metrics row
    (and the fitted model when ``return_model``)."""
    from tasklens.domain import a_distance

    data = data if data is not None else load_pair(pair, reverse, subsample)
    model = make_model(method, seed=seed, epochs=epochs, progress=progress, **model_kw)
    (xs, ys), (xt, yt) = data["source"], data["target"]
    if method == "target" and xt.shape[1] == 1 and xs.shape[1] == 3:
        xt = np.repeat(xt, 3, 1)  # channel broadcast, so that the model also scores the RGB source test set
    t0 = time.perf_counter()
    if method == "target":
        model.fit(xt, yt)
    else:
        model.fit(xs, ys, xt)
    seconds = time.perf_counter() - t0
    (xse, yse), (xte, yte) = data["source_test"], data["target_test"]
    row = {"method": method, "pair": pair, "source": data["names"][0], "target": data["names"][1],
           "seed": seed, "epochs": epochs, "n_source": len(xs), "n_target": len(xt),
           "target_accuracy": model.score(xte, yte), "source_accuracy": model.score(xse, yse),
           "seconds": seconds, "seconds_per_epoch": float(np.mean([h["seconds"] for h in model.history_])),
           "a_distance": a_distance(model.transform(xse[:2000]), model.transform(xte[:2000]), seed=seed)}
    if out is not None:
        import pandas as pd

        os.makedirs(out, exist_ok=True)
        frame = pd.DataFrame([row])
        frame.to_csv(os.path.join(out, "metrics.csv"), index=False)
        frame.to_parquet(os.path.join(out, "metrics.parquet"), index=False)
        model.save(os.path.join(out, "model.pt"))
        if method == "cdlm":
            save_translation_grid(model, xte, os.path.join(out, "translation.png"))
    return (row, model) if return_model else row


def cmd_adapt(args) -> int:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)  # tasklens --threads N also bounds torch's CPU threads here
    row = run_adapt(args.method, args.pair, out=args.out, reverse=args.reverse, epochs=args.epochs,
                    seed=args.seed, subsample=args.subsample, batch_size=args.batch_size, width=args.width,
                    device=args.device)
    print(f"{row['method']} {row['source']} -> {row['target']}: target test accuracy "
          f"{row['target_accuracy']:.4f}, source test accuracy {row['source_accuracy']:.4f}, "
          f"{row['seconds_per_epoch']:.1f} s/epoch; wrote {args.out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("adapt", help="unsupervised domain adaptation on image pairs (CDLM, DANN, bounds)",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--method", choices=METHODS, required=True,
                   help="cdlm, dann, source (source-only lower bound) or target (target-only upper bound)")
    p.add_argument("--pair", choices=PAIRS, required=True,
                   help="fashion-m (Fashion -> Fashion-M) or digits (synthetic -> handwritten)")
    p.add_argument("--reverse", action="store_true", help="swap source and target (default: off)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the labelled training set (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--subsample", type=int, default=None, metavar="N",
                   help="training images kept per domain, seeded (default: all)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64, the paper's)")
    p.add_argument("--width", type=int, default=64, help="trunk width w: channels w, 2w, 4w (default: 64)")
    p.add_argument("--device", default="auto", help="torch device; auto uses CUDA when present (default: auto)")
    p.add_argument("--out", required=True, help="output directory (metrics.csv, metrics.parquet, model.pt, "
                   "translation.png for cdlm)")
    p.set_defaults(func=cmd_adapt)
