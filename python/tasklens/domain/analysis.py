"""Analysis of transfer experiments against domain distances (Factors of Influence, Sect. 5.1 Eq. 2, Sect. 6).

- :func:`relative_transfer_gain`: ``r(T|S) = (m(T|S) / m(T|baseline) - 1) * 100`` (Eq. 2).
- :func:`classify_gain`: VP (r > 10), P (r > 2), N (r < -2), I otherwise (Sect. 5.1).
- :func:`transfer_table` (Table 6) and :func:`best_source_table` (Table 7): percentages of positive, very
  positive and negative transfer within/across image domain and task type.
- :func:`kendall_tau`: rank correlation between a distance matrix and a gain matrix (Table 8).
- :func:`plot_distance_heatmap`: an M x M heatmap with dataset names, rows = targets (Fig. 8).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import _dispatch
from .._validation import check_array

LEVELS = ("VP", "P", "I", "N")


def relative_transfer_gain(scores, baseline, *, lower_is_better: bool = False) -> np.ndarray:
    """Relative transfer gain in percent (Eq. 2).

    Parameters
    ----------
    scores : (M_t, M_s) — metric ``m(T|S)`` of each target (row) fine-tuned from each source (column); NaN
        marks a missing experiment.
    baseline : (M_t,) — ``m(T|ILSVRC)`` of each target fine-tuned from the baseline (non-zero).
    lower_is_better : multiply by -1 (e.g. depth-estimation errors).

    Returns
    -------
    (M_t, M_s) float64, numpy (or torch on the input's device for torch input).

    Examples
    --------
    >>> relative_transfer_gain([[0.55, 0.45]], [0.5]).round(6).tolist()
    [[10.0, -10.0]]
    """
    s = check_array(scores, "scores", ndim=2, finite=False)
    b = check_array(baseline, "baseline", shape=(s.shape[0],))
    be = _dispatch.backend_of(scores=s, baseline=b)
    s, b = _dispatch.to_host(s).astype(np.float64), _dispatch.to_host(b).astype(np.float64)
    if np.any(b == 0):
        raise ValueError(f"baseline: must be non-zero, got {b.tolist()}")
    r = (s / b[:, None] - 1.0) * 100.0
    return be.out(-r if lower_is_better else r)


def classify_gain(gain) -> np.ndarray:
    """Transfer-effect levels: "VP" (r > 10), "P" (2 < r <= 10), "N" (r < -2), "I" (otherwise), "" for NaN.

    Returns a numpy string array for any input (text has no torch dtype)."""
    g = _dispatch.to_host(check_array(gain, "gain", finite=False)).astype(np.float64)
    out = np.full(g.shape, "I", dtype="<U2")
    out[g > 2] = "P"
    out[g > 10] = "VP"
    out[g < -2] = "N"
    out[np.isnan(g)] = ""
    return out


def _masks(same_domain, same_task, shape):
    dom = _dispatch.to_host(same_domain).astype(bool)
    task = np.ones(shape, bool) if same_task is None else _dispatch.to_host(same_task).astype(bool)
    if dom.shape != shape or task.shape != shape:
        raise ValueError(f"same_domain/same_task: expected boolean arrays of shape {shape} like gains, got "
                         f"{dom.shape} and {task.shape}")
    rows = [("all", "all", np.ones(shape, bool))]
    for dn, dm in (("within", dom), ("cross", ~dom)):
        for tn, tm in (("within", task), ("cross", ~task)):
            rows.append((dn, tn, dm & tm))
    return rows


def _percentages(values: np.ndarray) -> dict:
    n = int(values.size)
    pct = (lambda m: 100.0 * float(m.sum()) / n if n else float("nan"))
    return {"P": pct(values > 2), "VP": pct(values > 10), "N": pct(values < -2), "#": n}


def transfer_table(gains, same_domain, same_task=None):
    """Table 6: percentage of experiments with P (r > 2%), VP (r > 10%) and N (r < -2%) transfer.

    Parameters
    ----------
    gains : (M_t, M_s) relative gains (NaN = no experiment, e.g. the diagonal)
    same_domain : (M_t, M_s) bool — target and source share the image domain
    same_task : (M_t, M_s) bool or None (all within task type)

    Returns
    -------
    pandas.DataFrame indexed by (image domain transfer, task type transfer) in {all, within, cross}, with
    columns P, VP, N (percent) and # (experiments).
    """
    import pandas as pd

    g = _dispatch.to_host(check_array(gains, "gains", ndim=2, finite=False)).astype(np.float64)
    rows = []
    for dn, tn, mask in _masks(same_domain, same_task, g.shape):
        rows.append({"image domain": dn, "task type": tn, **_percentages(g[mask & ~np.isnan(g)])})
    return pd.DataFrame(rows).set_index(["image domain", "task type"])


def best_source_table(gains, same_domain, same_task=None):
    """Table 7: transfer effect of the best available source per target under each constraint.

    Same layout as :func:`transfer_table`; ``#`` counts targets with at least one source in the subset.
    """
    import pandas as pd

    g = _dispatch.to_host(check_array(gains, "gains", ndim=2, finite=False)).astype(np.float64)
    rows = []
    for dn, tn, mask in _masks(same_domain, same_task, g.shape):
        masked = np.where(mask & ~np.isnan(g), g, -np.inf)
        best = masked.max(axis=1)
        rows.append({"image domain": dn, "task type": tn, **_percentages(best[np.isfinite(best)])})
    return pd.DataFrame(rows).set_index(["image domain", "task type"])


def kendall_tau(distance, gains, *, exclude_diagonal: bool = True) -> float:
    """Kendall tau between closeness (``-distance``) and transfer gain over the pairs with a gain (Table 8).

    Positive values mean that closer sources transfer better. NaN gains (and, by default, the diagonal)
    are ignored. The statistic is :func:`tasklens.metrics.kendall_tau` (tau-b, ties handled) of the kept pairs;
    NaN when either side is constant on them. A Python float (a 0-d float64 tensor for torch input).

    Examples
    --------
    >>> d = [[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]]
    >>> g = [[float("nan"), 5.0, 1.0], [4.0, float("nan"), -2.0], [0.5, -1.0, float("nan")]]
    >>> round(kendall_tau(d, g), 6)
    0.894427
    """
    from ..metrics.ranking import kendall_tau as tau_b

    dist = check_array(distance, "distance", ndim=2)
    g = check_array(gains, "gains", shape=tuple(dist.shape), finite=False)
    be = _dispatch.backend_of(distance=dist, gains=g)
    dist, g = _dispatch.to_host(dist).astype(np.float64), _dispatch.to_host(g).astype(np.float64)
    keep = ~np.isnan(g)
    if exclude_diagonal and dist.shape[0] == dist.shape[1]:
        keep &= ~np.eye(dist.shape[0], dtype=bool)
    if keep.sum() < 2:
        raise ValueError("gains: need at least two non-NaN off-diagonal entries to correlate")
    return be.out(float(tau_b(-dist[keep], g[keep])))


def _text_colour(rgba) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba`` (WCAG relative luminance)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    # contrast with black (L + 0.05) / 0.05 against white 1.05 / (L + 0.05): equal at L ~= 0.179
    return "black" if luminance > 0.179 else "white"


def _fit_title(ax, title: str) -> None:
    """Set ``title`` wrapped onto as many lines as needed to fit the figure's width."""
    import textwrap

    fig = ax.figure
    ax.set_title(title)
    fig.canvas.draw()
    width = fig.get_window_extent().width
    text = ax.title

    def fits() -> bool:
        box = text.get_window_extent()
        return box.x0 >= 0 and box.x1 <= width

    for chars in range(max(len(title), 1), 9, -1):
        if fits():
            return
        text.set_text("\n".join(textwrap.wrap(title, chars)))
    while not fits() and text.get_fontsize() > 5:  # very narrow figures: shrink the font as well
        text.set_fontsize(text.get_fontsize() - 1)


def plot_distance_heatmap(matrix, names: Sequence[str] | None = None, *, ax=None, annotate: bool = True,
                          title: str = "Domain distance D(T|S) (rows: targets, columns: sources)"):
    """Fig. 8-style heatmap of an (M, M) distance matrix; lighter = closer. Returns the matplotlib Figure.

    The title is wrapped to fit the figure; the numbers written in the cells (``annotate``, up to 30 datasets)
    are black on light cells and white on dark ones (by the cell colour's relative luminance).
    """
    import matplotlib

    m = _dispatch.to_host(check_array(matrix, "matrix", ndim=2, finite=False)).astype(np.float64)
    if names is not None and len(names) != m.shape[0]:
        raise ValueError(f"names: expected {m.shape[0]} names, got {len(names)}")
    if ax is None:
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        size = max(4.0, 0.45 * m.shape[0] + 2)
        fig, ax = plt.subplots(figsize=(size + 1, size))
    else:
        fig = ax.figure
    shown = m.copy()
    np.fill_diagonal(shown, np.nan)  # the diagonal is 0 by construction; keep it out of the colour scale
    im = ax.imshow(shown, cmap="viridis_r")
    fig.colorbar(im, ax=ax, fraction=0.046)
    labels = list(names) if names is not None else [str(k) for k in range(m.shape[0])]
    ax.set_xticks(range(m.shape[1]), labels=labels, rotation=90)
    ax.set_yticks(range(m.shape[0]), labels=labels)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if annotate and m.shape[0] <= 30:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if i != j:
                    colour = _text_colour(im.cmap(im.norm(shown[i, j]))) if np.isfinite(shown[i, j]) else "black"
                    ax.text(j, i, f"{m[i, j]:.2g}", ha="center", va="center", fontsize=6, color=colour)
    fig.tight_layout()
    _fit_title(ax, title)
    fig.tight_layout()
    return fig
