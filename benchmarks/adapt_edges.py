"""Cross-domain image mapping (CDLM paper §4.3, Table 2 analogue): Fashion edge maps <-> Fashion images (issue 10).

Two domains built from Fashion-MNIST: the images and their edge maps (``tasklens.datasets.edge_maps``: Sobel
magnitude scaled to [0, 1] per image by default, or Canny). CDLM is unpaired: its training set draws the two domains
from DISJOINT halves of a seeded subsample of the training images (so no image is ever seen with its own edge map),
with the source domain labelled (CDLM's classifier needs source labels). Two models, one per direction:

- edges -> images: source = images (labelled), target = edge maps; ``translate(test edge maps)`` gives image-style
  x~_ts, scored against each edge map's own image;
- images -> edges: source = edge maps (labelled with their images' classes), target = images;
  ``translate(test images)`` gives edge-style x~_ts, scored against each image's own edge map.

Scores (``tasklens.metrics``): SSIM (Wang et al. 2004, Gaussian window 11, sigma 1.5), MSE and PSNR (dB), per test
image with data range 1 and averaged over the test images (PSNR: mean of per-image PSNRs). "spread" is the
per-pixel standard deviation of the outputs across the test images, averaged over pixels: 0 for a translation that
ignores its input, that of the true images (printed above the table) for one that varies as much as they do.
Reference rows on the same test images, for context:

- identity: the input itself taken as the translation (what "doing nothing" scores);
- mean image: the mean training image of the output domain, the same for every input (a translation that ignores
  its input);
- paired ridge: a linear least-squares map input -> output pixels (ridge 1.0, clipped to [0, 1]) fitted on the
  PAIRED training images of the output domain's half, i.e. supervision that CDLM never gets.

Paper, for reference only (Table 2, "Sketch" -> "Face" on CelebA, a different task): E-CDRD SSIM 0.6229 / MSE
0.0207 / PSNR 16.86; StarGAN 0.8026 / 0.0142 / 19.04; CDLM 0.7961 / 0.0140 / 19.89.

Writes ``adapt_edges_edges_to_images.png`` and ``adapt_edges_images_to_edges.png`` (rows: input, CDLM translation,
truth; seed of the first ``--seeds``; ``adapt_edges_*_canny.png`` with ``--edges canny``) to ``--figures`` and prints
a markdown table. Defaults: 10,000 training images
(5,000 per domain), 1,000 test images, 5 epochs, width 64, one seed. A reduced run for a shared 2-core CPU, e.g.
``--train 2000 --epochs 2 --width 32 --threads 1``, takes minutes.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from tasklens.datasets import edge_maps, load_fashion_mnist  # noqa: E402
from tasklens.metrics import mse, psnr, ssim  # noqa: E402

DIRECTIONS = (("edges", "images"), ("images", "edges"))  # (input domain, output domain)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, 1, H, W) -> float32 (N, 1, H, W) in [0, 1]."""
    x = images.astype(np.float32) / 255.0
    return x if x.ndim == 4 else x[:, None]


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Mean SSIM, MSE and PSNR of predicted vs true images (data range 1), float64."""
    pred = np.clip(pred.astype(np.float64), 0.0, 1.0)
    truth = truth.astype(np.float64)
    return {"ssim": ssim(pred, truth, data_range=1.0), "mse": mse(pred, truth),
            "psnr": psnr(pred, truth, data_range=1.0), "spread": float(pred.std(axis=0).mean())}


def ridge_map(x_in: np.ndarray, x_out: np.ndarray, alpha: float = 1.0):
    """Least-squares linear map (with bias) of flattened input pixels to output pixels, ridge ``alpha``."""
    a = x_in.reshape(len(x_in), -1).astype(np.float64)
    b = x_out.reshape(len(x_out), -1).astype(np.float64)
    a1 = np.hstack([a, np.ones((len(a), 1))])
    reg = alpha * np.eye(a1.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(a1.T @ a1 + reg, a1.T @ b)

    def apply(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64)
        return np.clip(np.hstack([flat, np.ones((len(flat), 1))]) @ w, 0.0, 1.0).reshape(x.shape)

    return apply


def save_grid(path: str, rows, labels, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = rows[0].shape[0]
    fig, axes = plt.subplots(len(rows), k, figsize=(0.9 * k + 0.9, 0.95 * len(rows) + 0.4), squeeze=False)
    for r, (imgs, label) in enumerate(zip(rows, labels)):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(imgs[c, 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(vals, digits: int) -> str:
    vals = np.asarray(vals, dtype=float)
    if len(vals) > 1:
        return f"{vals.mean():.{digits}f} ± {vals.std():.{digits}f}"
    return f"{vals[0]:.{digits}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=10000,
                    help="training images used, split into two disjoint halves, one per domain (default: 10000)")
    ap.add_argument("--test", type=int, default=1000, help="test images scored (default: 1000)")
    ap.add_argument("--epochs", type=int, default=5, help="CDLM epochs (default: 5)")
    ap.add_argument("--width", type=int, default=64, help="CDLM trunk width (default: 64)")
    ap.add_argument("--latent", type=int, default=64, help="CDLM latent dimension (default: 64)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="CDLM seeds (default: 0)")
    ap.add_argument("--edges", choices=("sobel", "canny"), default="sobel", help="edge detector (default: sobel)")
    ap.add_argument("--directions", nargs="+", choices=("edges-to-images", "images-to-edges"),
                    default=["edges-to-images", "images-to-edges"], help="directions to run (default: both)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--device", default="auto", help="CDLM device (default: auto, CUDA when present)")
    ap.add_argument("--figures", default=os.path.join(os.path.dirname(__file__), "figures"),
                    help="directory for adapt_edges_*.png (default: benchmarks/figures)")
    ap.add_argument("--columns", type=int, default=10, help="test images shown in each figure (default: 10)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="extra CDLM keyword options, e.g. --set beta1=0.1 lr_phi=0.01 (values parsed as Python "
                         "literals)")
    ap.add_argument("--json", default=None, help="also write every measured row to this JSON file")
    args = ap.parse_args(argv)
    if args.train < 4 or args.test < 1 or args.epochs < 1:
        ap.error("--train must be >= 4, --test and --epochs >= 1")
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            ap.error(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            extra[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            extra[key] = value

    import torch

    from tasklens.adapt import CDLM

    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    x_train, y_train = load_fashion_mnist("train")
    x_test, _ = load_fashion_mnist("test")
    rng = np.random.default_rng(12345)
    pick = rng.permutation(len(x_train))[:args.train]
    half = len(pick) // 2
    idx = {"source": pick[:half], "target": pick[half:2 * half]}
    test_pick = np.random.default_rng(54321).permutation(len(x_test))[:args.test]
    data = {
        "train": {"images": as_float(x_train[pick]), "y": y_train[pick]},
        "test": {"images": as_float(x_test[test_pick])},
    }
    for split in ("train", "test"):
        data[split]["edges"] = edge_maps(data[split]["images"], method=args.edges)
    n_src = half  # rows [0, half) of the train arrays are the source half, [half, 2 half) the target half

    rows = []
    for name in args.directions:
        src_dom, tgt_dom = ("images", "edges") if name == "edges-to-images" else ("edges", "images")
        # translate() maps the target domain to the source style: input = target domain, output = source domain
        x_in, truth = data["test"][tgt_dom], data["test"][src_dom]
        out_half = data["train"][src_dom][:n_src]
        direction = f"{tgt_dom} -> {src_dom}"
        ref = {
            "identity": x_in,
            "mean image": np.broadcast_to(out_half.mean(0, keepdims=True), truth.shape),
            "paired ridge (supervised)": ridge_map(data["train"][tgt_dom][:n_src], out_half)(x_in),
        }
        for method, pred in ref.items():
            rows.append({"direction": direction, "method": method, "seed": None, "fit_s": 0.0, **scores(pred, truth)})
        for seed in args.seeds:
            model = CDLM(seed=seed, epochs=args.epochs, width=args.width, latent=args.latent, device=args.device,
                         progress=False, **extra)
            t0 = time.perf_counter()
            model.fit(data["train"][src_dom][:n_src], data["train"]["y"][:n_src],
                      data["train"][tgt_dom][n_src:2 * n_src])
            fit_s = time.perf_counter() - t0
            pred = model.translate(x_in)
            rows.append({"direction": direction, "method": "CDLM", "seed": seed, "fit_s": fit_s,
                         **scores(pred, truth)})
            print(f"# {direction} seed {seed}: fit {fit_s:.0f} s, SSIM {rows[-1]['ssim']:.4f}, "
                  f"MSE {rows[-1]['mse']:.4f}, PSNR {rows[-1]['psnr']:.2f}", file=sys.stderr, flush=True)
            if seed == args.seeds[0]:
                k = min(args.columns, len(x_in))
                os.makedirs(args.figures, exist_ok=True)
                suffix = "" if args.edges == "sobel" else f"_{args.edges}"
                path = os.path.join(args.figures, f"adapt_edges_{tgt_dom}_to_{src_dom}{suffix}.png")
                save_grid(path, [x_in[:k], np.clip(pred[:k], 0, 1), truth[:k]],
                          [f"input ({tgt_dom})", "CDLM", f"truth ({src_dom})"],
                          f"CDLM {direction} (Fashion-MNIST test, {args.edges}, seed {seed})")
                print(f"# wrote {path}", file=sys.stderr)

    total = time.perf_counter() - t_start
    print(f"Cross-domain image mapping, Fashion-MNIST {args.edges} edge maps <-> images; finished "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"device {args.device}; train {2 * half} ({half} per domain), test {len(test_pick)}, epochs {args.epochs}, "
          f"width {args.width}, latent {args.latent}, options {extra or '-'}, "
          f"seeds {' '.join(map(str, args.seeds))}; total {total:.0f} s\n")
    spread = {f"{t} -> {s}": float(data["test"][s].std(axis=0).mean()) for t, s in DIRECTIONS}
    print("Spread of the true outputs: " + "; ".join(f"{k} {v:.4f}" for k, v in spread.items()) + "\n")
    print("| direction | method | SSIM ↑ | MSE ↓ | PSNR (dB) ↑ | spread | fit s |")
    print("|---|---|---|---|---|---|---|")
    for direction in dict.fromkeys(r["direction"] for r in rows):
        group = [r for r in rows if r["direction"] == direction]
        for method in dict.fromkeys(r["method"] for r in group):
            rs = [r for r in group if r["method"] == method]
            label = f"**{method}**" if method == "CDLM" else method
            fit = fmt([r["fit_s"] for r in rs], 0) if method == "CDLM" else "-"
            print(f"| {direction} | {label} | {fmt([r['ssim'] for r in rs], 4)} | {fmt([r['mse'] for r in rs], 4)} | "
                  f"{fmt([r['psnr'] for r in rs], 2)} | {fmt([r['spread'] for r in rs], 4)} | {fit} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows, "total_s": total}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
