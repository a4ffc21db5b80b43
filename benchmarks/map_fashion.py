"""`tasklens map` on real images: a hierarchy of datasets made of Fashion-MNIST and handwritten-digit class subsets.

Datasets (label sets x sizes; relations from label-set inclusion, the smaller of two same-class sets inside the
larger): Fashion-MNIST's test split (the built-in probe is trained on its train split) -- all 10 classes, clothing,
tops ⊃ {shirt, T-shirt} and {pullover, coat}, footwear ⊃ {sneaker, sandal} and {sneaker, ankle boot}, {trouser,
dress}, the 10 singletons -- and scikit-learn's handwritten digits (28x28) -- all, even, odd, 0-4, 5-9, three pairs,
the 10 singletons -- each at 15, 30 and 60 images per class; 100 of the 111 are kept (seeded).

Steps: write the datasets as PNG folders; time `tasklens map ROOT --out ...` (Task2Vec with the built-in probe; cold
cache, then warm); then in Python, Task2Box F1 on held-out pairs of existing datasets and on pairs with novel
datasets (20% held out), Task2Vec and probe-CNN features ([mu, sigma^2]), next to the baselines of §4.2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from PIL import Image  # noqa: E402

FM = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle-boot"]
FM_SETS = {"fashion": range(10), "clothing": [0, 1, 2, 3, 4, 6], "tops": [0, 2, 4, 6], "shirt-tshirt": [0, 6],
           "pullover-coat": [2, 4], "footwear": [5, 7, 9], "sneaker-sandal": [5, 7], "sneaker-boot": [7, 9],
           "trouser-dress": [1, 3], **{FM[c].lower(): [c] for c in range(10)}}
DG_SETS = {"digits": range(10), "even": [0, 2, 4, 6, 8], "odd": [1, 3, 5, 7, 9], "low": [0, 1, 2, 3, 4],
           "high": [5, 6, 7, 8, 9], "d3-d8": [3, 8], "d1-d7": [1, 7], "d0-d6": [0, 6],
           **{f"d{c}": [c] for c in range(10)}}
PER_CLASS = (15, 30, 60)


def build(root: str, n_keep: int = 100, seed: int = 0) -> list[str]:
    """Write the datasets as ``root/<dataset>/<class>/<i>.png``; returns their names."""
    from tasklens.datasets import load_fashion_mnist, load_handwritten_digits

    fx, fy = load_fashion_mnist("test")
    d = load_handwritten_digits(28)
    pools = {"fm": (fx, fy, FM, FM_SETS), "dg": (d.x[:, 0], d.y, [f"digit-{c}" for c in range(10)], DG_SETS)}
    specs = [(src, name, cls, n) for src, (_, _, _, sets) in pools.items() for name, cls in sets.items()
             for n in PER_CLASS]
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(specs), size=min(n_keep, len(specs)), replace=False))
    names = []
    for k in keep:
        src, name, cls, n = specs[k]
        x, y, cnames, _ = pools[src]
        ds = f"{src}-{name}-{n}"
        for c in cls:
            idx = rng.choice(np.flatnonzero(y == c), size=n, replace=False)
            folder = os.path.join(root, ds, cnames[c])
            os.makedirs(folder)
            for i, j in enumerate(idx):
                Image.fromarray(x[j]).save(os.path.join(folder, f"{i:03d}.png"))
        names.append(ds)
    return names


def run_cli(root: str, out: str, cache: str, represent: str = "task2vec") -> float:
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "python"), TASKLENS_OFFLINE="1")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tasklens", "map", root, "--out", out, "--represent", represent,
                    "--cache-dir", cache, "--no-progress"], check=True, env=env)
    return time.perf_counter() - t


def screenshot(html: str, png: str, select: str = "fm-tops") -> str | None:
    """A headless-Chromium screenshot of the map with the first dataset matching ``select`` clicked."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    from _chromium import Browser

    b = Browser(chromium, width=1400, height=900)
    try:
        b.open("file://" + os.path.abspath(html))
        b.eval("(() => {const i = DATA.names.findIndex(n => n.startsWith(%r)); if (i >= 0) select(i);"
               "const r = document.getElementById('box-' + i).getBoundingClientRect();"
               "document.getElementById('box-' + i).dispatchEvent(new MouseEvent('mousemove', "
               "{clientX: r.x + r.width / 2, clientY: r.y + r.height / 2}))})()" % select)
        b.screenshot(png)
    finally:
        b.close()
    return png


def clip_speed(model: str = "ViT-B-32", n: int = 64, batch_size: int = 32) -> None:
    """Image throughput of an open_clip model with random weights on Fashion-MNIST images (needs open_clip)."""
    import torch

    from tasklens.datasets import load_fashion_mnist
    from tasklens.represent.clip import clip_image_features, load_clip

    t = time.perf_counter()
    clip = load_clip(model, None, seed=0)
    print(f"create {model} (random weights) {time.perf_counter() - t:.1f} s")
    x = load_fashion_mnist("test")[0][:n, None]
    clip_image_features(clip, x[:8], batch_size=8)  # warm-up
    t = time.perf_counter()
    clip_image_features(clip, x, batch_size=batch_size)
    print(f"{model} image features on CPU ({torch.get_num_threads()} threads): "
          f"{n / (time.perf_counter() - t):.1f} images/s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--box-dim", type=int, default=2)
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--work", default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--figures", default=os.path.join(HERE, "figures"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--eval-only", action="store_true",
                    help="reuse the datasets and cache of an earlier run in --work; skip the CLI timing and figures")
    ap.add_argument("--clip-speed", action="store_true", help="only time open_clip ViT-B-32 (random weights)")
    args = ap.parse_args(argv)
    if args.clip_speed:
        clip_speed()
        return 0

    from tasklens.datasets.sources import load_sources
    from tasklens.map import _evaluate, label_relations
    from tasklens.represent import default_probe, represent

    work = args.work or tempfile.mkdtemp(prefix="tasklens-map-bench-")
    root, cache = os.path.join(work, "data"), os.path.join(work, "cache")
    cold = warm = None
    if not args.eval_only:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        t = time.perf_counter()
        names = build(root, args.datasets)
        print(f"wrote {len(names)} datasets in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        default_probe(progress=False)  # the default cache; trained once
        print(f"built-in probe ready in {time.perf_counter() - t:.1f} s")
        cold = run_cli(root, os.path.join(work, "out"), cache)
        warm = run_cli(root, os.path.join(work, "out2"), cache)
        print(f"tasklens map, {len(names)} datasets, task2vec: cold cache {cold:.1f} s, warm cache {warm:.1f} s")
        os.makedirs(args.figures, exist_ok=True)
        for f in ("map.html", "map.png"):
            shutil.copy(os.path.join(work, "out", f), os.path.join(args.figures, f"map_fashion.{f.split('.')[1]}"))
        shot = screenshot(os.path.join(args.figures, "map_fashion.html"),
                          os.path.join(args.figures, "map_fashion_browser.png"))
        if shot:
            print(f"wrote {shot}")

    data = load_sources([root])
    sizes = np.array([len(d) for d in data])
    R = label_relations([d.classes for d in data], sizes)
    n_images = int(sizes.sum())
    reps = {}
    for method in ("task2vec", "features"):
        t = time.perf_counter()
        X, _, info = represent(data, method, cache_dir=cache, progress=False)
        reps[method] = X
        print(f"{method}: {X.shape[1]} values per dataset, {info['cache_hits']} cache hits, "
              f"{time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    represent(data, "features", cache_dir=False, progress=False)
    feat_s = time.perf_counter() - t
    t = time.perf_counter()
    represent(data[:10], "task2vec", cache_dir=False, progress=False)
    t2v_s = time.perf_counter() - t
    n10 = int(sizes[:10].sum())
    print(f"throughput (CPU, no cache): probe features {n_images / feat_s:.0f} images/s; Task2Vec "
          f"{n10 / t2v_s:.0f} images/s ({n10} images, 10 datasets)")
    print(f"{len(data)} datasets, {n_images} images, {int(R.sum())} containment pairs")
    rows = []
    for seed in args.seeds:
        for method, X in reps.items():
            base = ("MLP", "Linear", "AsymCosine", "AsymEuclidean", "Random") + (("KL",) if method == "features" else ())
            table = _evaluate(X, R, box_dim=args.box_dim, epochs=args.epochs, seed=seed, baselines=base)
            for r in table.to_dict("records"):
                r.update(rep=method, seed=seed)
                rows.append(r)
                print(f"seed {seed} {method:<9} {r['method']:<14} existing {r['f1_existing']:.3f} "
                      f"novel {r['f1_novel']:.3f} ({r['seconds']:.1f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "cold_s": cold, "warm_s": warm, "datasets": len(data)}, f, indent=1)
    print(f"\n| method | existing Task2Vec | existing CNN [mu, s2] | novel Task2Vec | novel CNN [mu, s2] |")
    print("|---|---|---|---|---|")
    for name in dict.fromkeys(r["method"] for r in rows):
        cells = []
        for split in ("f1_existing", "f1_novel"):
            for rep in reps:
                v = [100 * r[split] for r in rows if r["method"] == name and r["rep"] == rep]
                cells.append(f"{np.mean(v):.1f} ± {np.std(v):.1f}" if v else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.work is None and not args.eval_only:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
