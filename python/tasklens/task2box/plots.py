"""Box maps (paper Fig. 1-4) and training curves, drawn with matplotlib (Agg backend, PNG / SVG).

:func:`plot_boxes` draws one translucent rectangle per dataset, edge- and face-coloured by group.
Labels are placed for the largest boxes first and skipped where they would overlap an earlier label,
so maps stay readable from 50 to 500 boxes. ``highlight=`` draws one dataset in full colour with the
boxes it contains and the boxes that contain it (according to ``relations`` or to the boxes
themselves), the others faded. For ``k > 2`` the figure is a grid of 2-D projections.
"""

from __future__ import annotations

import itertools

import numpy as np

from .._dispatch import to_host
from .._validation import check_array, check_int, check_scalar
from .._validation import check_devices

__all__ = ["plot_boxes", "plot_history"]


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "svg", "pdf", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _palette(n: int, plt):
    """Strong, distinguishable colours first (tab10, then the dark half of tab20b/tab20c), then pale ones."""
    strong = list(plt.get_cmap("tab10").colors)
    for name in ("tab20b", "tab20c"):
        cols = plt.get_cmap(name).colors
        strong += [cols[i] for i in range(0, 20, 4)] + [cols[i] for i in range(1, 20, 4)]
    return strong


def _text_color(c):
    r, g, b = c[:3]
    return (0.6 * r, 0.6 * g, 0.6 * b)


def _draw(ax, lo, hi, dims, labels, colors, faded, emphasis, max_labels, fontsize):
    from matplotlib.patches import Rectangle

    a, b = dims
    w, h = hi[:, a] - lo[:, a], hi[:, b] - lo[:, b]
    order = np.lexsort((-(w * h), ~faded))  # faded boxes first, then big boxes first (underneath)
    n = len(lo)
    face = float(np.clip(10.0 / max(n, 1), 0.035, 0.18))  # keep crowded maps from turning into blobs
    edge_w = 0.8 if n <= 150 else 0.55
    for i in order:
        alpha_face = 0.04 if faded[i] else face
        ax.add_patch(Rectangle((lo[i, a], lo[i, b]), w[i], h[i], facecolor=colors[i], alpha=alpha_face,
                               edgecolor="none"))
        ax.add_patch(Rectangle((lo[i, a], lo[i, b]), w[i], h[i], fill=False, edgecolor=colors[i],
                               linewidth=2.2 if emphasis[i] else (0.4 if faded[i] else edge_w),
                               alpha=0.25 if faded[i] else 0.9))
    xlo, xhi = lo[:, a].min(), hi[:, a].max()
    ylo, yhi = lo[:, b].min(), hi[:, b].max()
    px, py = 0.03 * (xhi - xlo + 1e-12), 0.03 * (yhi - ylo + 1e-12)
    ax.set_xlim(xlo - px, xhi + px)
    ax.set_ylim(ylo - py, yhi + py)
    ax.set_xlabel(f"box dim {a + 1}")
    ax.set_ylabel(f"box dim {b + 1}")
    if labels is None:
        return
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    cand = [i for i in np.argsort(-(w * h)) if not faded[i]]
    cand = [i for i in cand if emphasis[i]] + [i for i in cand if not emphasis[i]]
    import matplotlib.patheffects as pe

    for i in cand[: max(len(cand), 0)]:
        if len(placed) >= max_labels:
            break
        t = ax.text(lo[i, a], hi[i, b], str(labels[i]), fontsize=fontsize * (1.25 if emphasis[i] else 1.0),
                    ha="left", va="top", color=_text_color(colors[i]), clip_on=True,
                    fontweight="bold" if emphasis[i] else "normal",
                    path_effects=[pe.withStroke(linewidth=2.0, foreground="white")])
        bb = t.get_window_extent(renderer).expanded(1.02, 1.05)
        if any(bb.overlaps(p) for p in placed):
            t.remove()
            continue
        placed.append(bb)


def _group_codes(groups, group_names, n: int):
    """(codes (n,) int64, names): integer group codes, or group labels (strings, ...) encoded in sorted order."""
    if groups is None:
        return np.zeros(n, dtype=np.int64), group_names
    g = np.asarray(to_host(groups) if hasattr(groups, "shape") else groups)
    if g.shape != (n,):
        raise ValueError(f"groups: expected one group per box, shape ({n},), got shape {g.shape}")
    if g.dtype.kind in "iub":
        if n and g.min() < 0:
            raise ValueError(f"groups: integer group codes must be >= 0, got {g.min()}")
        if group_names is not None and n and g.max() >= len(group_names):
            raise ValueError(f"group_names: {len(group_names)} names for group code {g.max()}")
        return g.astype(np.int64), group_names
    if g.dtype.kind == "f":
        if not np.all(np.isfinite(g)) or not np.all(g == np.round(g)):
            raise ValueError("groups: expected integer codes or group names, got non-integer numbers")
        return _group_codes(g.astype(np.int64), group_names, n)
    if group_names is not None:
        raise ValueError("group_names: give names only with integer group codes; here groups are the names")
    try:
        names, codes = np.unique(g.astype(str), return_inverse=True)
    except TypeError as exc:
        raise TypeError(f"groups: expected integer codes or group names, got {g.dtype} values ({exc})") from None
    return codes.astype(np.int64), [str(x) for x in names]


def plot_boxes(lo, hi, path=None, *, labels=None, groups=None, group_names=None, highlight=None,
               relations=None, dims=None, max_labels: int = 60, title: str | None = None,
               figsize=None, fontsize: float = 7.0, dpi: int = 110, max_legend: int = 12):
    """Draw a box map.

    Parameters
    ----------
    lo, hi : (N, k) box corners (numpy or torch), e.g. from ``Task2Box.embed``.
    path : file to write (``.png``, ``.svg``, ``.pdf``); None returns the figure only.
    labels : (N,) names. groups : (N,) integer group per box (colour); group_names : legend entries.
    highlight : index (or label) of one dataset: it, the boxes it contains and those containing it are
        drawn in full colour and labelled; the others are faded. Containment is read from
        ``relations`` (``relations[i, j] > 0.5``: i ⊂ j) when given, else from the boxes (hard
        containment of the drawn boxes).
    dims : list of (a, b) dimension pairs to draw; default (0, 1) for k = 2, all pairs (at most 6)
        for k > 2, one panel each.
    max_labels : most labels per panel (largest boxes first; overlapping labels are skipped).
    max_legend : most legend entries: with more groups the legend shows the groups with most boxes and its
        title says so ("largest 12 of 40 groups").

    ``groups`` may be integer codes (``group_names[code]`` names them) or the group names themselves
    (strings or any hashable labels: the legend then names them, ``group_names`` must be None).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_boxes(np.zeros((2, 2)), np.array([[1., 1.], [2., 2.]]), labels=["a", "b"])
    """
    check_devices(lo=lo, hi=hi)
    lo = np.asarray(to_host(check_array(lo, "lo", ndim=2, min_rows=1)), np.float64)
    hi = np.asarray(to_host(check_array(hi, "hi", shape=lo.shape)), np.float64)
    n, k = lo.shape
    max_labels = check_int(max_labels, "max_labels", min=0)
    max_legend = check_int(max_legend, "max_legend", min=1)
    dpi = check_int(dpi, "dpi", min=1)
    fontsize = check_scalar(fontsize, "fontsize", min=0.0, min_inclusive=False)
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: expected {n} names, got {len(labels)}")
    g, group_names = _group_codes(groups, group_names, n)
    if dims is None:
        dims = [(0, 1)] if k == 2 else list(itertools.combinations(range(k), 2))[:6]
        if k == 1:
            raise ValueError("lo, hi: box maps need k >= 2 dimensions")
    plt = _pyplot()
    uniq, g_idx, g_count = np.unique(g, return_inverse=True, return_counts=True)
    palette = _palette(len(uniq), plt)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(-g_count, kind="stable")] = np.arange(len(uniq))  # biggest groups get the strongest colours
    colors = [palette[rank[u] % len(palette)] for u in g_idx]
    faded = np.zeros(n, dtype=bool)
    emphasis = np.zeros(n, dtype=bool)
    role_legend = None
    if highlight is not None:
        if not isinstance(highlight, (int, np.integer)):
            if labels is None or highlight not in list(labels):
                raise ValueError(f"highlight: {highlight!r} is not one of the labels")
            highlight = list(labels).index(highlight)
        if not 0 <= highlight < n:
            raise ValueError(f"highlight: index {highlight} out of range for {n} boxes")
        if relations is not None:
            R = np.asarray(to_host(relations)) > 0.5
            outside, inside = R[highlight].copy(), R[:, highlight].copy()
        else:
            inside = np.all((lo >= lo[highlight] - 1e-9) & (hi <= hi[highlight] + 1e-9), axis=1)
            outside = np.all((lo <= lo[highlight] + 1e-9) & (hi >= hi[highlight] - 1e-9), axis=1)
        inside[highlight] = outside[highlight] = False
        faded = ~(inside | outside)
        faded[highlight] = False
        emphasis[highlight] = True
        role = {"highlighted": (0.85, 0.1, 0.1), "contains it": (0.12, 0.35, 0.8),
                "contained in it": (0.1, 0.6, 0.25)}
        colors = [role["highlighted"] if i == highlight else role["contains it"] if outside[i]
                  else role["contained in it"] if inside[i] else (0.55, 0.55, 0.55) for i in range(n)]
        group_names = None
        role_legend = role
    cols = min(len(dims), 3)
    rows = int(np.ceil(len(dims) / cols))
    if figsize is None:
        side = 9.0 if len(dims) == 1 else 5.5
        figsize = (side * cols, side * rows * (0.85 if len(dims) == 1 else 1.0))
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
    for ax, d in zip(axes.ravel(), dims):
        _draw(ax, lo, hi, d, labels, colors, faded, emphasis, max_labels, fontsize)
    for ax in axes.ravel()[len(dims):]:
        ax.axis("off")
    if role_legend is not None:
        from matplotlib.patches import Patch

        fig.legend(handles=[Patch(facecolor=c, alpha=0.6, label=f"{labels[highlight] if labels is not None and k == 'highlighted' else k}")
                            for k, c in role_legend.items()], loc="lower center", ncol=3,
                   fontsize=fontsize + 2, frameon=False)
        fig.tight_layout(rect=(0, 0.04 / rows, 1, 0.97))
    elif group_names is not None:
        from matplotlib.patches import Patch

        shown = np.argsort(-g_count, kind="stable")[:max_legend]
        handles = [Patch(facecolor=palette[rank[u] % len(palette)], alpha=0.6, label=str(group_names[uniq[u]]))
                   for u in shown]
        heading = (f"largest {len(shown)} of {len(uniq)} groups (by number of boxes)" if len(shown) < len(uniq)
                   else None)
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=fontsize + 1,
                   frameon=False, bbox_to_anchor=(0.5, 0.0), title=heading, title_fontsize=fontsize + 1)
        lines = int(np.ceil(len(handles) / 6)) + (heading is not None)
        fig.tight_layout(rect=(0, 0.035 * lines / rows, 1, 0.97))
    else:
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig


def plot_history(history: dict, path=None):
    """Loss components and validation score per epoch; the kept (best) epoch is marked. Returns the figure.

    The loss axis is symmetric-log (``symlog``): logarithmic above ``linthresh`` = 1e-3 times the largest loss
    value drawn and linear below it, so components that are exactly 0 for some epochs (e.g. L_D while no
    related boxes are apart) are drawn at 0 instead of vanishing from a log axis, and the three decades
    below the largest value keep their log scale. A dashed
    vertical line marks ``history["best_epoch"]``, the epoch whose parameters the model kept.

    Examples
    --------
    >>> fig = plot_history({"loss": [1.0, 0.5, 0.25], "center": [0.2, 0.0, 0.0], "val": [(2, 0.5)],
    ...                     "best_epoch": 2})
    >>> fig.axes[0].get_yscale()
    'symlog'
    """
    plt = _pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    positive = []
    for key, vals in history.items():
        if key in ("val", "best_epoch", "best_val", "epochs_run") or not isinstance(vals, list):
            continue
        v = np.asarray(vals, dtype=np.float64)
        ax[0].plot(np.arange(1, len(v) + 1), v, label=key)
        positive.append(v[v > 0])
    positive = np.concatenate(positive) if positive else np.zeros(0)
    ax[0].set_yscale("symlog", linthresh=1e-3 * float(positive.max()) if positive.size else 1.0)
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("loss (symlog: 0 drawn)")
    if history.get("val"):
        e, v = zip(*history["val"])
        ax[1].plot(e, v, marker=".")
    best = history.get("best_epoch")
    if best is not None and best > 0:
        for a in ax:
            a.axvline(best, color="0.3", linestyle="--", linewidth=1, label=f"kept epoch {best}")
        ax[1].legend(fontsize=8)
    ax[0].legend(fontsize=8)
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("validation F1")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig
