"""``tasklens.map``: from raw datasets to a Task2Box map (Daroya et al., CVPR 2024, Fig. 1-4).

load -> represent (:mod:`tasklens.represent`: Task2Vec, probe-CNN features, CLIP or given features) -> all-pairs
domain distances ``D(T|S)`` (:func:`tasklens.domain.domain_distance_matrix`) -> relations -> fit Task2Box -> embed
every dataset -> write ``map.html``, ``map.png``, ``pairs.parquet``, ``datasets.parquet`` and ``metrics.csv``.

Relations (``relations[i, j] = 1`` means dataset i ⊂ dataset j):

- ``"auto"`` / ``"labels"``: label-set inclusion, :func:`label_relations`;
- a file (``.csv`` / ``.parquet``) with columns ``subset`` and ``superset`` naming datasets;
- ``"distance"``: thresholded ``D(T|S)``, :func:`distance_relations`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_choice, check_int, check_scalar

OUTPUTS = ("map.html", "map.png", "pairs.parquet", "datasets.parquet", "metrics.csv")


def label_relations(classes, sizes=None) -> np.ndarray:
    """``R[i, j] = 1`` when dataset i ⊂ dataset j by label sets: ``classes[i] ⊊ classes[j]``, or the same class
    set and ``sizes[i] < sizes[j]`` (a smaller sample of the same task). The diagonal, equal sets of equal size
    and datasets without class names are 0."""
    sets = [frozenset(str(c) for c in cs) for cs in classes]
    m = len(sets)
    sizes = np.zeros(m) if sizes is None else np.asarray(sizes, dtype=np.float64)
    if sizes.shape != (m,):
        raise ValueError(f"sizes: expected {m} sizes (one per dataset), got shape {sizes.shape}")
    R = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i == j or not sets[i] or not sets[j]:
                continue
            if sets[i] < sets[j] or (sets[i] == sets[j] and sizes[i] < sizes[j]):
                R[i, j] = 1.0
    return R


def distance_relations(D, quantile: float = 0.1, threshold: float | None = None) -> np.ndarray:
    """``R[t, s] = 1`` when ``D(T_t | S_s) <= threshold`` (t != s): every item of T has a close item in S, so T is
    covered by S. Default threshold: the ``quantile`` of the off-diagonal entries."""
    D = np.asarray(D, dtype=np.float64)
    m = D.shape[0]
    off = ~np.eye(m, dtype=bool)
    if threshold is None:
        quantile = check_scalar(quantile, "quantile", min=0.0, max=1.0)
        threshold = float(np.quantile(D[off], quantile)) if m > 1 else 0.0
    return ((D <= threshold) & off).astype(np.float64)


def relations_from_file(path, names) -> np.ndarray:
    """Relations from a table with columns ``subset`` and ``superset`` (dataset names; other columns ignored)."""
    import pandas as pd

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"relations: {path} does not exist")
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    missing = [c for c in ("subset", "superset") if c not in frame.columns]
    if missing:
        raise ValueError(f"relations: {path} needs columns 'subset' and 'superset', got {list(frame.columns)}")
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({str(v) for v in pd.concat([frame["subset"], frame["superset"]]) if str(v) not in index})
    if unknown:
        raise ValueError(f"relations: {path} names datasets that are not loaded: {unknown[:5]} "
                         f"(loaded: {list(names)[:5]}...)")
    R = np.zeros((len(names), len(names)))
    for a, b in zip(frame["subset"].astype(str), frame["superset"].astype(str)):
        if a != b:
            R[index[a], index[b]] = 1.0
    return R


@dataclass
class MapResult:
    """What :func:`map` computed: names, sizes, base representations ``X`` (M, D), distances ``D`` (M, M) with
    ``D[t, s] = D(T_t | S_s)``, ``relations`` and where they came from, boxes ``lo``/``hi`` (M, k), box containment
    ``S[i, j]`` (i ⊂ j, Eq. 5), the fitted ``model``, ``metrics`` (a DataFrame or None), written ``files`` and
    ``timings`` (seconds per stage)."""

    names: list
    sizes: np.ndarray
    X: np.ndarray
    D: np.ndarray
    relations: np.ndarray
    relation_source: str
    lo: np.ndarray
    hi: np.ndarray
    S: np.ndarray
    model: object
    metrics: object = None
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _evaluate(X, R, *, box_dim: int, epochs: int, seed: int, baselines) -> "object":
    """Task2Box and baselines (§4.2) on held-out pairs of existing datasets and on pairs with novel datasets."""
    import pandas as pd

    from .task2box import (BASELINES, Task2Box, evaluate_hierarchy, novel_mask, split_novel, split_pairs)

    m = len(X)
    existing, novel = split_novel(m, fraction=0.2, seed=seed)
    tr, va, te = split_pairs(m, seed=seed, datasets=existing)
    nm = novel_mask(m, existing, novel)
    rows = []
    methods = [("Task2Box", None)] + [(b, BASELINES[b]) for b in baselines]
    for name, cls in methods:
        t = time.perf_counter()
        if cls is None:
            S = Task2Box(box_dim=box_dim, seed=seed, epochs=epochs, progress=False).fit(X, R, tr, va).containment(X)
        elif name in ("MLP", "Linear"):
            S = cls(seed=seed, epochs=30, eval_every=1, patience=5, progress=False).fit(X, R, tr, va).score(X)
        elif name == "Random":
            S = cls(seed=seed).fit(X, R, tr, va).score(X)
        else:
            S = cls().fit(X, R, tr, va).score(X)
        ex = evaluate_hierarchy(R, S, va, te)
        nv = evaluate_hierarchy(R, S, va, nm)
        rows.append({"method": name, "f1_existing": ex["f1"], "f1_novel": nv["f1"], "val_f1": ex["val_f1"],
                     "threshold": ex["threshold"], "seconds": time.perf_counter() - t})
    out = pd.DataFrame(rows)
    out.attrs.update(existing=existing.size, novel=novel.size, test_pairs=int(te.sum()), novel_pairs=int(nm.sum()))
    return out


def map(datasets, out=None, *, represent: str = "task2vec", relations="auto", box_dim: int = 2, seed: int = 0,
        epochs: int = 300, probe=None, clip=None, sample: int = 1000, quantile: float = 0.1, metric: str = "euclidean",
        metrics: bool = True, baselines=("MLP", "AsymCosine", "AsymEuclidean", "Random"), size=None,
        cache_dir=None, progress: bool | None = None, device: str = "cpu") -> MapResult:
    """Map datasets with Task2Box: load, represent, D(T|S), relations, fit, embed, write.

    Parameters
    ----------
    datasets : paths (see :func:`tasklens.datasets.sources.load_sources`: dataset folders, roots of them, .npz,
        .npy, .parquet, .csv) and/or loaded :class:`~tasklens.datasets.ImageDomain` /
        :class:`~tasklens.datasets.sources.FeatureSet` objects. At least 3.
    out : output folder (created); None writes nothing.
    represent : ``"task2vec"`` (default; the built-in probe trained once and cached, works offline),
        ``"features"`` (``[mu, sigma^2]`` of probe-CNN features, or of given features) or ``"clip"`` (needs
        ``clip=tasklens.represent.load_clip(...)``).
    relations : ``"auto"`` (label-set inclusion, :func:`label_relations`), ``"distance"`` (thresholded D(T|S) at
        its ``quantile``, :func:`distance_relations`), a (M, M) array, or a file with ``subset``/``superset``.
    box_dim, seed, epochs : Task2Box settings (the map model is trained on all pairs, validated on 10%).
    sample : items per dataset for D(T|S) (seeded; 0 = all). metric : D(T|S) metric.
    metrics : also fit on a split and report F1 on held-out pairs and novel datasets next to ``baselines``
        (only when relations are known, i.e. not ``"distance"``, and M >= 5).
    size : image size for folders with mixed sizes. cache_dir : representation cache (False: off).

    Returns
    -------
    :class:`MapResult`
    """
    from .datasets.sources import FeatureSet, load_sources
    from .domain import domain_distance_matrix, sample_datasets
    from .represent.run import represent as represent_all
    from .task2box import Task2Box, split_pairs

    check_choice(represent, "represent", ("task2vec", "features", "clip"))
    box_dim = check_int(box_dim, "box_dim", min=1)
    seed = check_int(seed, "seed", min=0)
    epochs = check_int(epochs, "epochs", min=1)
    sample = check_int(sample, "sample", min=0)
    timings = {}
    t = time.perf_counter()
    if isinstance(datasets, (str, os.PathLike)):
        datasets = [datasets]
    loaded = []
    for d in datasets:
        loaded += [d] if hasattr(d, "x") and hasattr(d, "name") else load_sources([d], size=size)
    names = [d.name for d in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"datasets: names must be unique, got {names}")
    if len(loaded) < 3:
        raise ValueError(f"datasets: a map needs at least 3 datasets, got {len(loaded)} ({names})")
    sizes = np.array([len(d) for d in loaded])
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    X, items, info = represent_all(loaded, represent, probe=probe, clip=clip, seed=seed, cache_dir=cache_dir,
                                   progress=progress, device=device)
    timings["represent"] = time.perf_counter() - t

    t = time.perf_counter()
    parts = sample_datasets(items, sample, seed=seed, names=names) if sample else items
    D = np.asarray(domain_distance_matrix([np.asarray(p, np.float32) for p in parts], metric=metric), np.float64)
    timings["distance"] = time.perf_counter() - t

    m = len(loaded)
    if isinstance(relations, str) and relations in ("auto", "labels"):
        if any(not d.classes for d in loaded):
            bad = [d.name for d in loaded if not d.classes]
            raise ValueError(f"relations: 'auto' uses class names, but {bad[:5]} have none; pass a relations file "
                             "or relations='distance'")
        R, source = label_relations([d.classes for d in loaded], sizes), "labels"
    elif isinstance(relations, str) and relations == "distance":
        R, source = distance_relations(D, quantile), f"distance (D(T|S) <= {quantile:g} quantile)"
    elif isinstance(relations, (str, os.PathLike)):
        R, source = relations_from_file(relations, names), f"file {os.fspath(relations)}"
    else:
        R = np.asarray(relations, dtype=np.float64)
        if R.shape != (m, m):
            raise ValueError(f"relations: expected a ({m}, {m}) array, got shape {R.shape}")
        source = "given"

    t = time.perf_counter()
    table = None
    if metrics and not source.startswith("distance") and m >= 5 and R.sum() > 0:
        table = _evaluate(X, R, box_dim=box_dim, epochs=epochs, seed=seed, baselines=tuple(baselines))
    timings["metrics"] = time.perf_counter() - t

    t = time.perf_counter()
    tr, va, _ = split_pairs(m, fractions=(0.9, 0.1, 0.0), seed=seed)
    model = Task2Box(box_dim=box_dim, seed=seed, epochs=epochs, progress=progress).fit(
        X, R, tr, va if va.any() else None)
    lo, hi = model.embed(X)
    S = np.asarray(model.containment(X), np.float64)
    timings["fit"] = time.perf_counter() - t
    res = MapResult(names, sizes, X, D, R, source, np.asarray(lo, np.float64), np.asarray(hi, np.float64), S, model,
                    table, {}, timings, dict(info, represent=represent,
                                             kinds=["features" if isinstance(d, FeatureSet) else "images"
                                                    for d in loaded]))
    if out is not None:
        t = time.perf_counter()
        res.files = write_outputs(res, out, classes=[d.classes for d in loaded])
        timings["write"] = time.perf_counter() - t
    return res


def _volumes(lo, hi) -> np.ndarray:
    return np.prod(np.maximum(hi - lo, 0.0), axis=1)


def write_outputs(res: MapResult, out, *, classes=None) -> dict:
    """Write ``map.html``, ``map.png``, ``pairs.parquet``, ``datasets.parquet`` and (with metrics)
    ``metrics.csv`` into ``out``; returns ``{name: path}``."""
    import pandas as pd

    from .task2box import plot_boxes

    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    m = len(res.names)
    files = {}
    ii, jj = np.nonzero(~np.eye(m, dtype=bool))
    pairs = pd.DataFrame({"target": [res.names[i] for i in ii], "source": [res.names[j] for j in jj],
                          "distance": res.D[ii, jj], "containment_target_in_source": res.S[ii, jj],
                          "containment_source_in_target": res.S[jj, ii], "relation": res.relations[ii, jj] > 0.5,
                          "relation_source": res.relation_source})
    files["pairs.parquet"] = os.path.join(out, "pairs.parquet")
    pairs.to_parquet(files["pairs.parquet"], index=False)
    k = res.lo.shape[1]
    vol = _volumes(res.lo, res.hi)
    frame = pd.DataFrame({"name": res.names, "size": res.sizes, "volume": vol})
    if classes is not None:
        frame["classes"] = [list(map_str(c)) for c in classes]
    for d in range(k):
        frame[f"lo_{d}"] = res.lo[:, d]
        frame[f"hi_{d}"] = res.hi[:, d]
    frame["representation"] = list(res.X)
    files["datasets.parquet"] = os.path.join(out, "datasets.parquet")
    frame.to_parquet(files["datasets.parquet"], index=False)
    files["map.png"] = os.path.join(out, "map.png")
    fig = plot_boxes(res.lo, res.hi, files["map.png"], labels=res.names, max_labels=80 if m <= 100 else 60,
                     title=f"Task2Box map of {m} datasets ({res.info.get('represent', '')})",
                     figsize=(10, 8) if m > 50 else None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    files["map.html"] = os.path.join(out, "map.html")
    write_html(res, files["map.html"])
    if res.metrics is not None:
        files["metrics.csv"] = os.path.join(out, "metrics.csv")
        res.metrics.to_csv(files["metrics.csv"], index=False)
    return files


def map_str(values):
    return [str(v) for v in values]


def _top(row: np.ndarray, names, exclude: int, k: int = 5, floor: float = 0.05):
    order = [j for j in np.argsort(-row, kind="stable") if j != exclude and row[j] >= floor][:k]
    return [[names[j], round(float(row[j]), 3)] for j in order]


def html_payload(res: MapResult, threshold: float = 0.5) -> dict:
    """The data embedded in ``map.html``: names, sizes, boxes, volumes, top containers / contained (by box
    containment ``S``, Eq. 5) and the lists used for highlighting (``S >= threshold``)."""
    m = len(res.names)
    vol = _volumes(res.lo, res.hi)
    S = res.S
    return {
        "names": list(res.names), "sizes": [int(s) for s in res.sizes], "lo": res.lo.round(5).tolist(),
        "hi": res.hi.round(5).tolist(), "volume": [float(f"{v:.4g}") for v in vol],
        "containers": [_top(S[i], res.names, i) for i in range(m)],
        "contained": [_top(S[:, i], res.names, i) for i in range(m)],
        "up": [[int(j) for j in np.flatnonzero(S[i] >= threshold) if j != i] for i in range(m)],
        "down": [[int(j) for j in np.flatnonzero(S[:, i] >= threshold) if j != i] for i in range(m)],
        "represent": res.info.get("represent", ""), "relations": res.relation_source,
    }


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tasklens map</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh}
#side{width:300px;padding:10px;border-right:1px solid #ccc;overflow:auto;font-size:13px}
#main{flex:1;position:relative}
svg{width:100%;height:100%}
rect.box{fill-opacity:.18;stroke-width:1.2;vector-effect:non-scaling-stroke;cursor:pointer}
rect.box.faded{fill-opacity:.03;stroke-opacity:.15}
rect.box.selected{fill-opacity:.45;stroke-width:3;stroke:#000}
rect.box.container{fill-opacity:.3;stroke-width:2.5;stroke:#d62728}
rect.box.contained{fill-opacity:.3;stroke-width:2.5;stroke:#1f77b4}
rect.box.match{stroke-width:3;stroke:#2ca02c;fill-opacity:.4}
text.lab{font-size:11px;pointer-events:none;fill:#222}
#tip{position:absolute;pointer-events:none;background:#fff;border:1px solid #888;padding:6px;font-size:12px;
display:none;max-width:320px;box-shadow:2px 2px 6px rgba(0,0,0,.2)}
h3{margin:4px 0}
.legend span{display:inline-block;width:10px;height:10px;margin-right:4px;border:2px solid}
</style></head><body>
<div id="side"><h3>tasklens map</h3><div id="meta"></div>
<p><input id="search" type="search" placeholder="search datasets by name" style="width:95%"></p>
<p id="dims">x <select id="dx"></select> y <select id="dy"></select></p>
<div class="legend"><span style="border-color:#000"></span>selected
<span style="border-color:#d62728"></span>contains it <span style="border-color:#1f77b4"></span>inside it</div>
<p>Hover a box for details; click to highlight its containers and the datasets inside it; click the
background to clear.</p><div id="info"></div></div>
<div id="main"><svg id="svg" xmlns="http://www.w3.org/2000/svg"></svg><div id="tip"></div></div>
<script>
const DATA = __DATA__;
const N = DATA.names.length, K = DATA.lo[0].length;
const svg = document.getElementById('svg'), tip = document.getElementById('tip');
const NS = 'http://www.w3.org/2000/svg';
const colors = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
let dx = 0, dy = Math.min(1, K - 1), selected = -1;
document.getElementById('meta').textContent = N + ' datasets, ' + K + '-D boxes, representation: ' +
  DATA.represent + ', relations: ' + DATA.relations;
for (const id of ['dx', 'dy']) {
  const s = document.getElementById(id);
  for (let d = 0; d < K; d++) { const o = document.createElement('option'); o.value = d; o.textContent = 'dim ' + d; s.appendChild(o); }
  s.value = id === 'dx' ? dx : dy;
  s.onchange = () => { dx = +document.getElementById('dx').value; dy = +document.getElementById('dy').value; draw(); };
}
if (K <= 2) document.getElementById('dims').style.display = 'none';
function fmt(list) { return list.length ? list.map(p => p[0] + ' (' + p[1] + ')').join(', ') : 'none'; }
function describe(i) {
  return '<b>' + DATA.names[i] + '</b><br>size: ' + DATA.sizes[i] + '<br>volume: ' + DATA.volume[i] +
    '<br>contained in: ' + fmt(DATA.containers[i]) + '<br>contains: ' + fmt(DATA.contained[i]);
}
function draw() {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < N; i++) {
    x0 = Math.min(x0, DATA.lo[i][dx]); x1 = Math.max(x1, DATA.hi[i][dx]);
    y0 = Math.min(y0, DATA.lo[i][dy]); y1 = Math.max(y1, DATA.hi[i][dy]);
  }
  const W = svg.clientWidth || 800, H = svg.clientHeight || 600, pad = 30;
  const sx = (W - 2 * pad) / Math.max(x1 - x0, 1e-9), sy = (H - 2 * pad) / Math.max(y1 - y0, 1e-9);
  const order = [...Array(N).keys()].sort((a, b) => DATA.volume[b] - DATA.volume[a]);
  for (const i of order) {
    const r = document.createElementNS(NS, 'rect');
    const x = pad + (DATA.lo[i][dx] - x0) * sx, y = H - pad - (DATA.hi[i][dy] - y0) * sy;
    r.setAttribute('x', x); r.setAttribute('y', y);
    r.setAttribute('width', Math.max((DATA.hi[i][dx] - DATA.lo[i][dx]) * sx, 1));
    r.setAttribute('height', Math.max((DATA.hi[i][dy] - DATA.lo[i][dy]) * sy, 1));
    r.setAttribute('class', 'box'); r.setAttribute('id', 'box-' + i); r.dataset.i = i;
    const c = colors[i % colors.length]; r.setAttribute('fill', c); r.setAttribute('stroke', c);
    const t = document.createElementNS(NS, 'title'); t.textContent = DATA.names[i]; r.appendChild(t);
    r.addEventListener('mousemove', ev => {
      tip.innerHTML = describe(i); tip.style.display = 'block';
      const b = svg.getBoundingClientRect();
      tip.style.left = (ev.clientX - b.left + 12) + 'px'; tip.style.top = (ev.clientY - b.top + 12) + 'px';
    });
    r.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    r.addEventListener('click', ev => { ev.stopPropagation(); select(i); });
    svg.appendChild(r);
    if (N <= 120) {
      const l = document.createElementNS(NS, 'text');
      l.setAttribute('x', x + 3); l.setAttribute('y', y + 12); l.setAttribute('class', 'lab');
      l.textContent = DATA.names[i]; svg.appendChild(l);
    }
  }
  apply();
}
function apply() {
  const q = document.getElementById('search').value.trim().toLowerCase();
  for (let i = 0; i < N; i++) {
    const r = document.getElementById('box-' + i); const cls = ['box'];
    if (selected >= 0) {
      if (i === selected) cls.push('selected');
      else if (DATA.up[selected].includes(i)) cls.push('container');
      else if (DATA.down[selected].includes(i)) cls.push('contained');
      else cls.push('faded');
    } else if (q && !DATA.names[i].toLowerCase().includes(q)) cls.push('faded');
    if (q && DATA.names[i].toLowerCase().includes(q)) cls.push('match');
    r.setAttribute('class', cls.join(' '));
  }
}
function select(i) {
  selected = i;
  document.getElementById('info').innerHTML = i < 0 ? '' : describe(i);
  apply();
}
svg.addEventListener('click', () => select(-1));
document.getElementById('search').addEventListener('input', () => {
  const q = document.getElementById('search').value.trim().toLowerCase();
  const hits = DATA.names.map((n, i) => [n, i]).filter(p => q && p[0].toLowerCase().includes(q));
  if (hits.length === 1) select(hits[0][1]); else apply();
});
window.addEventListener('resize', draw);
draw();
</script></body></html>
"""


def write_html(res: MapResult, path) -> str:
    """A standalone interactive map (inline SVG and JavaScript, no external resource): one rectangle per
    dataset on a chosen pair of box dimensions (selectors when k > 2); hover shows name, size, volume and the
    top containers and contained; click highlights containers (red) and contained (blue); search by name."""
    payload = json.dumps(html_payload(res)).replace("</", "<\\/")
    with open(path, "w", encoding="utf-8") as f:
        f.write(_HTML.replace("__DATA__", payload))
    return os.fspath(path)


class _CallableModule(types.ModuleType):
    """``tasklens.map`` is both this module and the function :func:`map` (``tasklens.map(...)`` works after
    ``import tasklens.map`` too)."""

    def __call__(self, *args, **kwargs):
        return self.map(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
