"""Shared pieces of the model-zoo benchmark (issue 13): tasks, networks, training and fine-tuning.

Every image is 1 x 28 x 28 gray in [0, 1]. Four base data sets, each cut ONCE into disjoint pools
(``source`` for pre-training, ``train`` / ``val`` / ``test`` for the target protocol), so no image a
model was pre-trained on is ever a target image:

- ``fashion``: Fashion-MNIST (Debian ``dataset-fashion-mnist``); source pool from its train split,
  target pools from its test split.
- ``fashion_m``: Fashion-M (Fashion-MNIST through :func:`tasklens.datasets.to_mstyle`, BT.601 gray),
  different images of the same splits than ``fashion``.
- ``synth``: font-rendered digits (:func:`tasklens.datasets.render_digits`), independent seeds per pool.
- ``hand``: scikit-learn's handwritten digits (8x8, bilinear to 28x28), 1797 images split four ways.

A task is (base data set, label map). Tasks with a class subset keep only those classes.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch
from torch import nn

CACHE = os.environ.get("TASKLENS_ZOO_CACHE", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache", "zoo"))

# Fashion-MNIST: 0 T-shirt, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot
COARSE4 = {0: 0, 2: 0, 4: 0, 6: 0, 1: 1, 3: 1, 5: 2, 7: 2, 9: 2, 8: 3}  # tops / legs+dress / shoes / bag
TOPS5 = {0: 0, 2: 1, 3: 2, 4: 3, 6: 4}
REST5 = {1: 0, 5: 1, 7: 2, 8: 3, 9: 4}
ALL10 = {i: i for i in range(10)}
PARITY = {i: i % 2 for i in range(10)}
LOW5 = {i: i for i in range(5)}
HIGH5 = {i + 5: i for i in range(5)}

# name -> (base data set, label map)
TASKS = {
    "F10": ("fashion", ALL10), "F-coarse4": ("fashion", COARSE4), "F-tops5": ("fashion", TOPS5),
    "F-rest5": ("fashion", REST5),
    "FM10": ("fashion_m", ALL10), "FM-coarse4": ("fashion_m", COARSE4), "FM-tops5": ("fashion_m", TOPS5),
    "S10": ("synth", ALL10), "S-parity2": ("synth", PARITY), "S-low5": ("synth", LOW5),
    "H10": ("hand", ALL10), "H-high5": ("hand", HIGH5),
}

# pool sizes per base data set (before the class subset of a task)
POOLS = {"fashion": (8000, 1000, 600, 2000), "fashion_m": (8000, 1000, 600, 2000),
         "synth": (8000, 1000, 600, 2000), "hand": (800, 400, 250, 347)}


def _gray(x3: np.ndarray) -> np.ndarray:
    from tasklens.datasets import match_channels
    return match_channels(x3, 1)


def base_pools(base: str) -> dict:
    """{'source'|'train'|'val'|'test': (uint8 (N, 1, 28, 28), int64 (N,))}, cached as npz."""
    path = os.path.join(CACHE, "data", f"{base}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return {k: (z[k + "_x"], z[k + "_y"]) for k in ("source", "train", "val", "test")}
    from tasklens import datasets as ds

    n_src, n_tr, n_va, n_te = POOLS[base]
    rng = np.random.default_rng({"fashion": 1, "fashion_m": 2, "synth": 3, "hand": 4}[base])
    if base in ("fashion", "fashion_m"):
        xtr, ytr = ds.load_fashion_mnist("train")
        xte, yte = ds.load_fashion_mnist("test")
        ptr, pte = np.random.default_rng(0).permutation(len(xtr)), np.random.default_rng(0).permutation(len(xte))
        off_tr, off_te = (0, 0) if base == "fashion" else (n_src, n_tr + n_va + n_te)
        s = ptr[off_tr:off_tr + n_src]
        t = pte[off_te:off_te + n_tr + n_va + n_te]
        x = np.concatenate([xtr[s], xte[t]])[:, None]
        y = np.concatenate([ytr[s], yte[t]]).astype(np.int64)
        if base == "fashion_m":
            x = _gray(ds.to_mstyle(x, seed=7))
    elif base == "synth":
        n = n_src + n_tr + n_va + n_te
        y = rng.integers(0, 10, n).astype(np.int64)
        x = ds.render_digits(y, seed=11)
    else:
        d = ds.load_handwritten_digits(28)
        p = rng.permutation(len(d.y))
        x, y = np.asarray(d.x)[p], np.asarray(d.y).astype(np.int64)[p]
        if x.ndim == 3:
            x = x[:, None]
    cuts = np.cumsum([0, n_src, n_tr, n_va, n_te])
    out = {k: (np.ascontiguousarray(x[a:b]), y[a:b]) for k, a, b in zip(("source", "train", "val", "test"),
                                                                         cuts[:-1], cuts[1:])}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path + ".tmp.npz", **{f"{k}_{i}": v[j] for k, v in out.items()
                                            for j, i in enumerate(("x", "y"))})
    os.replace(path + ".tmp.npz", path)
    return out


_TASK_CACHE: dict = {}


def task_split(task: str, split: str):
    """float32 images (N, 1, 28, 28) in [0, 1] and int64 labels of ``task`` on pool ``split``."""
    key = (task, split)
    if key not in _TASK_CACHE:
        base, lmap = TASKS[task]
        x, y = base_pools(base)[split]
        keep = np.isin(y, list(lmap))
        yy = np.array([lmap[int(v)] for v in y[keep]], dtype=np.int64)
        _TASK_CACHE[key] = (torch.from_numpy(x[keep].astype(np.float32) / 255.0), torch.from_numpy(yy))
    return _TASK_CACHE[key]


def num_classes(task: str) -> int:
    return len(set(TASKS[task][1].values()))


# ----------------------------------------------------------------------------------------------- networks
class Net(nn.Module):
    """``features`` (image -> penultimate vector, ``dim`` wide) + linear ``head``."""

    def __init__(self, features: nn.Module, dim: int, classes: int):
        super().__init__()
        self.features, self.dim = features, dim
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.features(x))


class _Res(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                               nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.a(x) + self.skip(x))


def build(arch: str, classes: int) -> Net:
    """Architectures of the zoo; all take (N, 1, 28, 28)."""
    if arch == "cnn":        # 2 conv (8, 16) + pool, fc 64
        f = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 7 * 7, 64), nn.ReLU())
        return Net(f, 64, classes)
    if arch == "cnn_wide":   # 2 conv (16, 32) + pool, fc 128
        f = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32 * 7 * 7, 128), nn.ReLU())
        return Net(f, 128, classes)
    if arch == "mlp":        # 784-256-128
        f = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
        return Net(f, 128, classes)
    if arch == "mlp_small":  # 784-64-64
        f = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        return Net(f, 64, classes)
    if arch == "lenet":      # LeNet-5 style: conv5 6, conv5 16, fc 120, fc 84
        f = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        return Net(f, 84, classes)
    if arch == "resnet":     # tiny ResNet: stem 8 + pool, blocks 8 (s1), 16 (s2), 32 (s2), GAP
        f = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          _Res(8, 8, 1), _Res(8, 16, 2), _Res(16, 32, 2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return Net(f, 32, classes)
    if arch == "unit":       # adapt's UNIT-style strided trunk (width 8) + fc 64 (tasklens.adapt.nets.FeatureNet)
        from tasklens.adapt.nets import FeatureNet, init_weights
        f = FeatureNet(1, 28, 8, 64)
        init_weights(f)
        return Net(f, 64, classes)
    raise ValueError(f"arch: unknown {arch!r}")


# model name -> (architecture, source task). One "cnn" per task (the affinity matrix), plus other architectures.
ZOO = {f"cnn@{t}": ("cnn", t) for t in TASKS}
ZOO.update({
    "mlp@F10": ("mlp", "F10"), "cnn_wide@FM10": ("cnn_wide", "FM10"), "lenet@S10": ("lenet", "S10"),
    "resnet@F-coarse4": ("resnet", "F-coarse4"), "unit@H10": ("unit", "H10"),
    "mlp_small@S-parity2": ("mlp_small", "S-parity2"), "cnn_wide@F-tops5": ("cnn_wide", "F-tops5"),
})

PRETRAIN = dict(steps=600, batch=64, lr=2e-3)           # Adam, source pool
FINETUNE = dict(steps=100, batch=32, lrs=(0.01, 0.03, 0.1), momentum=0.9)  # SGD, target train pool


def _batches(n: int, batch: int, steps: int, seed: int):
    g = np.random.default_rng(seed)
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        if order.size < batch:
            order = np.concatenate([order, g.permutation(n)])
        yield torch.from_numpy(order[:batch])
        order = order[batch:]


def train(net: Net, x, y, *, steps: int, batch: int, opt) -> Net:
    net.train()
    lossf = nn.CrossEntropyLoss()
    for idx in _batches(len(y), batch, steps, seed=0):
        opt.zero_grad()
        loss = lossf(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: Net, x, y) -> float:
    net.eval()
    return float((net(x).argmax(1) == y).double().mean())


@torch.no_grad()
def forward_parts(net: Net, x, chunk: int = 1024):
    """(penultimate features float64 numpy, head softmax float64 numpy)."""
    net.eval()
    fs, ps = [], []
    for s in range(0, len(x), chunk):
        f = net.features(x[s:s + chunk])
        fs.append(f.double().numpy())
        ps.append(torch.softmax(net.head(f).double(), 1).numpy())
    return np.concatenate(fs), np.concatenate(ps)


def source_model(name: str) -> Net:
    """The pre-trained zoo model ``name`` (trained once, cached)."""
    arch, task = ZOO[name]
    path = os.path.join(CACHE, "models", name.replace("@", "_at_") + ".pt")
    net = build(arch, num_classes(task))
    if os.path.exists(path):
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval()
    torch.manual_seed(1000 + sorted(ZOO).index(name))
    x, y = task_split(task, "source")
    t0 = time.perf_counter()
    train(net, x, y, steps=PRETRAIN["steps"], batch=PRETRAIN["batch"],
          opt=torch.optim.Adam(net.parameters(), lr=PRETRAIN["lr"]))
    xv, yv = task_split(task, "test")
    log(f"pretrained {name}: {time.perf_counter() - t0:.1f} s, source-task test acc {accuracy(net, xv, yv):.3f}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(net.state_dict(), path + ".tmp")
    os.replace(path + ".tmp", path)
    return net


def finetune(init: Net | None, arch: str, target: str, lr: float, seed: int = 0):
    """Fine-tune (or, ``init=None``, train from scratch) on ``target``'s train pool: new linear head, the whole
    network trained, SGD(momentum) ``FINETUNE['steps']`` steps of ``FINETUNE['batch']``.
    Returns (val accuracy, test accuracy, per-image test cross-entropy float32 (N_test,))."""
    c = num_classes(target)
    torch.manual_seed(seed)
    net = build(arch, c)
    if init is not None:
        net.features.load_state_dict(init.features.state_dict())
    x, y = task_split(target, "train")
    train(net, x, y, steps=FINETUNE["steps"], batch=FINETUNE["batch"],
          opt=torch.optim.SGD(net.parameters(), lr=lr, momentum=FINETUNE["momentum"]))
    xt, yt = task_split(target, "test")
    with torch.no_grad():
        logits = net(xt)
        losses = nn.functional.cross_entropy(logits, yt, reduction="none").numpy()
        test = float((logits.argmax(1) == yt).double().mean())
    if not np.isfinite(losses).all():  # a diverged run: every image counts as lost
        losses = np.full(len(yt), np.inf, dtype=np.float32)
    return accuracy(net, *task_split(target, "val")), test, losses.astype(np.float32)


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def read_jsonl(path: str) -> list:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def append_jsonl(path: str, row: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")
