"""GPU path of the domain distances: the fused tiled kernel of ``cuda/distance.cu`` on torch CUDA tensors.

All CUDA allocation and launch glue of :mod:`tasklens.domain` lives here; kernels run through
:func:`tasklens._dispatch.call`.

1. Rows are range-scaled by a power of two where needed (:func:`tasklens.domain._kernels.prescale`, exact) and,
   for the cosine metric, their float64 inverse norms are taken from the scaled rows.
2. Search keys: the (normalised) rows are centred on their float64 mean and scaled by a power of two so the
   largest ``|x - c|`` is near 1, then stored as float32. The kernel scores pairs as ``sum_k (x_k - y_k)^2`` of
   the keys in float32 (no cancellation) and keeps each target row's best source row per dataset with a 64-bit
   atomicMin on ``(score bits, index)`` (the minimum is unique, so the order of the atomics does not matter).
3. The winners are re-scored exactly in float64 from the (range-scaled) rows and scaled back.

Distances agree with the exact CPU path to about ``d * 2**-24`` times the data's spread (``max |x - c|``); the
index may differ from the CPU's only where two source rows are that close to a tie. Means over a dataset's
rows are float64 sums in row order (``distance_segment_mean``: the additions of the CPU's ``add.reduceat``).
"""

from __future__ import annotations

import math

from .. import _dispatch
from ._kernels import METRIC_CODES, prescale, unscale, zero_row_error


def _inverse_norms(x, name):
    import torch

    norms = torch.linalg.vector_norm(x.to(torch.float64), dim=1)
    zero = norms == 0
    if bool(zero.any()):
        raise zero_row_error(name, int(torch.nonzero(zero)[0, 0]), x)
    return (1.0 / norms).contiguous()


def _keys(x, inv):
    """float32 search keys: (x * inv - c) * 2**s, c the float64 column mean, 2**s bringing max |x - c| near 1."""
    import torch

    rows = x.to(torch.float64)
    if inv is not None:
        rows = rows * inv[:, None]
    rows = rows - rows.mean(dim=0)
    spread = float(rows.abs().max()) if rows.numel() else 0.0
    if spread > 0:
        rows = rows * math.ldexp(1.0, -math.frexp(spread)[1])
    return rows.to(torch.float32).contiguous()


def _segmented(x, seg, n_seg: int, metric: str, be):
    """Every row of ``x`` (n, d) against the datasets ``seg`` (n,) int of the same rows: (dist (n, n_seg) float64,
    index (n, n_seg) int64) on the device, distances of the range-scaled rows (see :func:`_search`)."""
    return _search(x, None, seg, n_seg, metric, be)


def _search(tgt, src, seg_src, n_seg: int, metric: str, be):
    """Nearest source row per (target row, source dataset) of range-scaled rows; ``src=None``: the targets."""
    import torch

    same = src is None
    src = tgt if same else src
    inv_t = inv_s = None
    if metric == "cosine":
        inv_t = _inverse_norms(tgt, "target")
        inv_s = inv_t if same else _inverse_norms(src, "source")
    if same:
        kt = ks = _keys(tgt, inv_t)
    else:  # one common centre for both sides
        both = _keys(torch.cat([tgt, src], dim=0), None if inv_t is None else torch.cat([inv_t, inv_s]))
        kt, ks = both[: tgt.shape[0]], both[tgt.shape[0]:]
    n_t, d = tgt.shape
    packed = torch.full((n_t, n_seg), -1, dtype=torch.int64, device=tgt.device)  # all bits set = +inf key
    seg = seg_src.to(device=tgt.device, dtype=torch.int32).contiguous()
    _dispatch.call("distance_segmin", be, kt, ks, n_t, src.shape[0], d, seg, n_seg, packed, dtype="float32")
    dist = torch.empty((n_t, n_seg), dtype=torch.float64, device=tgt.device)
    index = torch.empty((n_t, n_seg), dtype=torch.int64, device=tgt.device)
    _dispatch.call("distance_finalize", be, tgt, inv_t if inv_t is not None else 0, src,
                   inv_s if inv_s is not None else 0, packed, n_t, n_seg, d, METRIC_CODES[metric], dist, index,
                   dtype=tgt.dtype)
    return dist, index


def _common_dtype(xs):
    import torch

    wide = any(x.dtype == torch.float64 for x in xs)
    return [x.to(torch.float64 if wide else torch.float32).contiguous() for x in xs]


def nearest_cuda(target, source, metric: str, be):
    """(dist (n_t,) float64, index (n_t,) int64) on the device."""
    import torch

    (target, source), e, amax = prescale(_common_dtype([target, source]))
    seg = torch.zeros(source.shape[0], dtype=torch.int32, device=source.device)
    dist, index = _search(target, source, seg, 1, metric, be)
    return unscale(dist[:, 0], e, metric, amax), index[:, 0]


def segment_mean(dist, offsets, be):
    """Column means of ``dist`` (N, M) float64 over the row segments ``offsets`` (M_t + 1,), in row order."""
    import torch

    off = torch.as_tensor(offsets, dtype=torch.int64).to(dist.device).contiguous()
    out = torch.empty((off.shape[0] - 1, dist.shape[1]), dtype=torch.float64, device=dist.device)
    _dispatch.call("distance_segment_mean", be, dist.contiguous(), dist.shape[1], off, off.shape[0] - 1, out)
    return out


def matrix_cuda(parts, offsets, metric: str, be):
    """Target->source matrix (M, M) float64 on the device from the stacked (N, d) rows (or a list of parts)
    and the dataset offsets (M + 1,)."""
    import torch

    x = torch.cat(_common_dtype(parts), dim=0).contiguous() if isinstance(parts, list) else \
        _common_dtype([parts])[0]
    (x,), e, amax = prescale([x])
    off = torch.as_tensor(offsets, dtype=torch.int64)
    sizes = off[1:] - off[:-1]
    seg = torch.repeat_interleave(torch.arange(len(sizes), dtype=torch.int32), sizes).to(x.device)
    dist, _ = _segmented(x, seg, len(sizes), metric, be)
    return segment_mean(unscale(dist, e, metric, amax), off, be)
