"""Box volume, intersection and containment on numpy arrays and torch tensors (CPU or CUDA).

Validation and dispatch for the native kernels in ``cpp/src/boxes.cpp`` and ``cuda/boxes.cu`` (per-element
math in ``cpp/include/tasklens/boxes_math.h``), and the ``torch.autograd.Function`` wrappers whose
backward passes are the native backward kernels.

Conventions shared by every function
------------------------------------
A batch of N boxes in k dimensions is given by its lower corners ``lo`` and upper corners ``hi``, both of
shape (N, k), float32 or float64 (other real dtypes are converted; mixed inputs are computed in float64).
numpy in -> numpy out (torch is never imported); torch in -> torch out on the same device, with gradients
for inputs that require them.

Volumes and intersections follow box-embeddings 0.1.0, the library of the Task2Box reference code, with
``eps = 1e-13`` and the Euler-Mascheroni constant ``gamma``:

- hard volume: ``log vol = sum_d log(max(hi_d - lo_d, eps))``;
- soft volume: ``sum_d log(softplus_b(hi_d - lo_d) + eps)`` with ``softplus_b(x) = log(1 + exp(b x)) / b``,
  ``b = 1 / volume_temperature``;
- gumbel (Bessel-approximate) volume: ``sum_d log(softplus_b(hi_d - lo_d - 2 gamma t) + eps)``,
  ``t = intersection_temperature``;
- hard intersection: ``max`` of the lower corners, ``min`` of the upper corners;
- gumbel intersection: ``lo = t logaddexp(lo_a / t, lo_b / t)``, ``hi = -t logaddexp(-hi_a / t, -hi_b / t)``,
  evaluated as ``max(lo_a, lo_b) + t log1p(exp(-|lo_a - lo_b| / t))`` (and its mirror for ``hi``), which is
  always at least as tight as the hard intersection.

Special boxes: *flipped* boxes (``lo > hi`` in some dimension) and *zero-width* boxes are valid input. Their
hard width is clamped to ``eps`` (log-width ``log(1e-13) = -29.93``, gradient 0 below ``eps``), and their
soft/gumbel width is the softplus of a negative number (small, positive, smooth). The intersection of
*disjoint* boxes is a flipped box; its volume is therefore tiny but positive, never 0 or NaN.

Numerics: per-element math runs in the input dtype (shared with the CUDA kernels through
``cpp/include/tasklens/boxes_math.h``); sums over dimensions and over pairs are accumulated in float64. CPU
kernels flush denormal intermediates to zero (they lie below 1e-38 / 1e-308 and cannot change a result) and
are bit-identical for any thread count on a given machine (the vectorised loops are chosen per CPU: AVX-512,
AVX2+FMA or baseline, whose fused multiply-adds may differ in the last bits).
"""

from __future__ import annotations

import numpy as np

from .._dispatch import Backend, backend_of, call, cast
from .._native import native
from .._validation import check_array, check_choice, check_labels, check_positive, describe, is_torch

VOLUME_MODES = ("hard", "soft", "gumbel")
INTERSECTION_MODES = ("hard", "gumbel")
_MODE_CODE = {"hard": 0, "soft": 1, "gumbel": 2}


# ------------------------------------------------------------------------------------------ validation

def _boxes(lo, hi, lo_name: str, hi_name: str):
    lo = check_array(lo, lo_name, ndim=2)
    hi = check_array(hi, hi_name, ndim=2)
    if tuple(lo.shape) != tuple(hi.shape):
        raise ValueError(f"{hi_name}: expected the shape of {lo_name} {tuple(lo.shape)}, got {describe(hi)}; "
                         f"{lo_name} and {hi_name} are the lower and upper corners of the same boxes")
    return lo, hi


def _same_k(lo_a, lo_b, a_name: str, b_name: str) -> None:
    if lo_a.shape[1] != lo_b.shape[1]:
        raise ValueError(f"{b_name}: boxes must have the dimension k={lo_a.shape[1]} of {a_name}, "
                         f"got {describe(lo_b)}")


def _indices(idx, name: str, n: int, box_name: str):
    idx = check_labels(idx, name, ndim=1)
    if idx.shape[0] and int(idx.max()) >= n:
        raise ValueError(f"{name}: index {int(idx.max())} is out of range for {n} boxes in {box_name} "
                         f"({describe(idx)})")
    return idx


def _temperatures(volume_temperature, intersection_temperature):
    return (check_positive(volume_temperature, "volume_temperature"),
            check_positive(intersection_temperature, "intersection_temperature"))


def _needs_grad(*xs) -> bool:
    import torch

    return torch.is_grad_enabled() and any(x.requires_grad for x in xs)


# --------------------------------------------------------------------------------- native calls (CPU)

def _cuda(name: str, x, *args) -> None:
    """Launch ``_C.boxes_<name>_cuda`` on the tensor's device and current stream."""
    call(f"boxes_{name}", backend_of(x=x), *args, dtype=x.dtype)


# --------------------------------------------------------------------------------- forward / backward

def _log_volume_fwd(be, lo, hi, mode, vt, it):
    if be.is_cuda:
        import torch

        out = torch.empty(lo.shape[0], dtype=lo.dtype, device=lo.device)
        _cuda("log_volume", lo, lo, hi, lo.shape[0], lo.shape[1], mode, vt, it, out)
        return out
    return call("boxes_log_volume", be, lo, hi, mode, vt, it)


def _log_volume_bwd(be, lo, hi, grad, mode, vt, it):
    if be.is_cuda:
        import torch

        g_lo, g_hi = torch.empty_like(lo), torch.empty_like(hi)
        _cuda("log_volume_backward", lo, lo, hi, grad, lo.shape[0], lo.shape[1], mode, vt, it, g_lo, g_hi)
        return g_lo, g_hi
    return call("boxes_log_volume_backward", be, lo, hi, grad, mode, vt, it)


def _intersection_fwd(be, la, ha, lb, hb, mode, it, clip):
    if be.is_cuda:
        import torch

        lo, hi = torch.empty_like(la), torch.empty_like(ha)
        _cuda("intersection", la, la, ha, lb, hb, la.shape[0], la.shape[1], mode, it, clip, lo, hi)
        return lo, hi
    return call("boxes_intersection", be, la, ha, lb, hb, mode, it, clip)


def _intersection_bwd(be, la, ha, lb, hb, glo, ghi, mode, it, clip):
    if be.is_cuda:
        import torch

        gs = [torch.empty_like(la) for _ in range(4)]
        _cuda("intersection_backward", la, la, ha, lb, hb, glo, ghi, la.shape[0], la.shape[1], mode, it, clip, *gs)
        return tuple(gs)
    return call("boxes_intersection_backward", be, la, ha, lb, hb, glo, ghi, mode, it, clip)


def _containment_fwd(be, la, ha, lb, hb, mode, vt, it, log):
    if be.is_cuda:
        import torch

        out = torch.empty(la.shape[0], lb.shape[0], dtype=la.dtype, device=la.device)
        _cuda("containment", la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], mode, vt, it, log, out)
        return out
    return call("boxes_containment", be, la, ha, lb, hb, mode, vt, it, log)


def _containment_bwd(be, la, ha, lb, hb, out, grad, mode, vt, it, log):
    if be.is_cuda:
        import torch

        gs = [torch.empty_like(la), torch.empty_like(ha), torch.empty_like(lb), torch.empty_like(hb)]
        _cuda("containment_backward", la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], out, grad, mode,
              vt, it, log, *gs)
        return tuple(gs)
    return call("boxes_containment_backward", be, la, ha, lb, hb, out, grad, mode, vt, it, log)


def _pairs_fwd(be, la, ha, lb, hb, ia, ib, mode, vt, it, log):
    if be.is_cuda:
        import torch

        out = torch.empty(ia.shape[0], dtype=la.dtype, device=la.device)
        _cuda("containment_pairs", la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], ia, ib, ia.shape[0],
              mode, vt, it, log, out)
        return out
    return call("boxes_containment_pairs", be, la, ha, lb, hb, ia, ib, mode, vt, it, log)


def _group_by_row(idx, rows: int):
    """(order, offsets): pairs sorted stably by row, and each row's slice of them (CUDA backward)."""
    import torch

    order = torch.argsort(idx, stable=True)
    offsets = torch.zeros(rows + 1, dtype=torch.int64, device=idx.device)
    offsets[1:] = torch.cumsum(torch.bincount(idx, minlength=rows), 0)
    return order, offsets


def _pairs_bwd(be, la, ha, lb, hb, ia, ib, out, grad, mode, vt, it, log):
    if be.is_cuda:
        import torch

        order_a, offsets_a = _group_by_row(ia, la.shape[0])
        order_b, offsets_b = _group_by_row(ib, lb.shape[0])
        gs = [torch.empty_like(la), torch.empty_like(ha), torch.empty_like(lb), torch.empty_like(hb)]
        _cuda("containment_pairs_backward", la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], ia, ib,
              ia.shape[0], order_a, offsets_a, order_b, offsets_b, out, grad, mode, vt, it, log, *gs)
        return tuple(gs)
    return call("boxes_containment_pairs_backward", be, la, ha, lb, hb, ia, ib, out, grad, mode, vt, it, log)


# ------------------------------------------------------------------------------------ autograd wrappers

_FUNCTIONS: dict = {}


def _functions():
    """The torch.autograd.Function classes, defined on first use so that importing this module is torch-free."""
    if _FUNCTIONS:
        return _FUNCTIONS
    import torch
    from torch.autograd.function import once_differentiable

    class LogVolume(torch.autograd.Function):
        @staticmethod
        def forward(ctx, lo, hi, be, mode, vt, it):
            ctx.save_for_backward(lo, hi)
            ctx.cfg = (be, mode, vt, it)
            return _log_volume_fwd(be, lo, hi, mode, vt, it)

        @staticmethod
        @once_differentiable
        def backward(ctx, grad):
            lo, hi = ctx.saved_tensors
            be, mode, vt, it = ctx.cfg
            g_lo, g_hi = _log_volume_bwd(be, lo, hi, _contiguous(grad), mode, vt, it)
            return g_lo, g_hi, None, None, None, None

    class Intersection(torch.autograd.Function):
        @staticmethod
        def forward(ctx, la, ha, lb, hb, be, mode, it, clip):
            ctx.save_for_backward(la, ha, lb, hb)
            ctx.cfg = (be, mode, it, clip)
            return _intersection_fwd(be, la, ha, lb, hb, mode, it, clip)

        @staticmethod
        @once_differentiable
        def backward(ctx, glo, ghi):
            la, ha, lb, hb = ctx.saved_tensors
            be, mode, it, clip = ctx.cfg
            glo = torch.zeros_like(la) if glo is None else glo.contiguous()
            ghi = torch.zeros_like(ha) if ghi is None else ghi.contiguous()
            return (*_intersection_bwd(be, la, ha, lb, hb, glo, ghi, mode, it, clip), None, None, None, None)

    class Containment(torch.autograd.Function):
        @staticmethod
        def forward(ctx, la, ha, lb, hb, be, mode, vt, it, log):
            out = _containment_fwd(be, la, ha, lb, hb, mode, vt, it, log)
            ctx.save_for_backward(la, ha, lb, hb, out)
            ctx.cfg = (be, mode, vt, it, log)
            return out

        @staticmethod
        @once_differentiable
        def backward(ctx, grad):
            la, ha, lb, hb, out = ctx.saved_tensors
            be, mode, vt, it, log = ctx.cfg
            gs = _containment_bwd(be, la, ha, lb, hb, out, _contiguous(grad), mode, vt, it, log)
            return (*gs, None, None, None, None, None)

    class ContainmentPairs(torch.autograd.Function):
        @staticmethod
        def forward(ctx, la, ha, lb, hb, ia, ib, be, mode, vt, it, log):
            out = _pairs_fwd(be, la, ha, lb, hb, ia, ib, mode, vt, it, log)
            ctx.save_for_backward(la, ha, lb, hb, ia, ib, out)
            ctx.cfg = (be, mode, vt, it, log)
            return out

        @staticmethod
        @once_differentiable
        def backward(ctx, grad):
            la, ha, lb, hb, ia, ib, out = ctx.saved_tensors
            be, mode, vt, it, log = ctx.cfg
            gs = _pairs_bwd(be, la, ha, lb, hb, ia, ib, out, _contiguous(grad), mode, vt, it, log)
            return (*gs, None, None, None, None, None, None, None)

    _FUNCTIONS.update(log_volume=LogVolume, intersection=Intersection, containment=Containment,
                      containment_pairs=ContainmentPairs)
    return _FUNCTIONS


# ------------------------------------------------------------------------------------------- public API

def log_volume(lo, hi, *, mode="gumbel", volume_temperature=0.1, intersection_temperature=1e-4):
    r"""Log-volumes of N boxes.

    Parameters
    ----------
    lo, hi : array or tensor, shape (N, k)
        Lower and upper corners.
    mode : {"gumbel", "soft", "hard"}
        ``"hard"``: :math:`\sum_d \log \max(w_d, \epsilon)`; ``"soft"``:
        :math:`\sum_d \log(\mathrm{softplus}_\beta(w_d) + \epsilon)`; ``"gumbel"`` (Bessel-approximate volume of
        Gumbel boxes): :math:`\sum_d \log(\mathrm{softplus}_\beta(w_d - 2\gamma t) + \epsilon)`, with
        :math:`w = hi - lo`, :math:`\beta = 1/\text{volume\_temperature}`, :math:`t =` ``intersection_temperature``,
        :math:`\epsilon = 10^{-13}` (as box-embeddings 0.1.0).
    volume_temperature, intersection_temperature : float > 0
        Defaults are those of the Task2Box reference training.

    Returns
    -------
    (N,) array or tensor of log-volumes (natural log), the dtype and kind of the input.

    Notes
    -----
    Zero-width and flipped dimensions give a finite log-width: ``log(1e-13)`` in hard mode (gradient 0), the
    log of a small softplus value otherwise. Cost O(N k); the k-sum is accumulated in float64.
    Deterministic and independent of the thread count.

    Examples
    --------
    >>> import numpy as np, tasklens.boxes as tb
    >>> tb.log_volume(np.zeros((1, 2)), np.full((1, 2), 2.0), mode="hard")
    array([1.38629436])
    """
    mode = check_choice(mode, "mode", VOLUME_MODES)
    vt, it = _temperatures(volume_temperature, intersection_temperature)
    lo, hi = _boxes(lo, hi, "lo", "hi")
    be = backend_of(lo=lo, hi=hi)
    lo, hi = cast(lo, be), cast(hi, be)
    code = _MODE_CODE[mode]
    if be.kind == "torch" and _needs_grad(lo, hi):
        return _functions()["log_volume"].apply(lo, hi, be, code, vt, it)
    return _log_volume_fwd(be, _detach(lo), _detach(hi), code, vt, it)


def intersection(lo_a, hi_a, lo_b, hi_b, *, mode="gumbel", intersection_temperature=1e-4, clip=False):
    r"""Intersections of paired boxes: row i of the result is :math:`a_i \cap b_i`.

    Parameters
    ----------
    lo_a, hi_a, lo_b, hi_b : array or tensor, shape (N, k)
    mode : {"gumbel", "hard"}
        ``"hard"``: ``lo = max(lo_a, lo_b)``, ``hi = min(hi_a, hi_b)`` (ties split the gradient equally, as
        ``torch.max``). ``"gumbel"``: ``lo = t logaddexp(lo_a/t, lo_b/t)``, ``hi = -t logaddexp(-hi_a/t, -hi_b/t)``
        with ``t = intersection_temperature`` (box-embeddings' GumbelIntersection).
    clip : bool
        Gumbel mode only: clamp the corners to the hard intersection (box-embeddings'
        ``approximation_mode="clipping"``). The stable evaluation used here,
        ``max(lo_a, lo_b) + t log1p(exp(-|lo_a - lo_b|/t))``, never lies outside the hard intersection, so
        clipping changes no value; it only splits the gradient at exact ties as torch would.

    Returns
    -------
    (lo, hi) : two (N, k) arrays or tensors.

    Notes
    -----
    Disjoint boxes give a flipped box (``lo > hi``); identical boxes give the box itself in hard mode and a
    box shrunk by ``t log 2`` per side in gumbel mode. Cost O(N k), elementwise, deterministic.

    Examples
    --------
    >>> import numpy as np, tasklens.boxes as tb
    >>> lo, hi = tb.intersection(np.zeros((1, 1)), np.ones((1, 1)), np.full((1, 1), .5), np.full((1, 1), 2.),
    ...                          mode="hard")
    >>> lo, hi
    (array([[0.5]]), array([[1.]]))
    """
    mode = check_choice(mode, "mode", INTERSECTION_MODES)
    it = check_positive(intersection_temperature, "intersection_temperature")
    lo_a, hi_a = _boxes(lo_a, hi_a, "lo_a", "hi_a")
    lo_b, hi_b = _boxes(lo_b, hi_b, "lo_b", "hi_b")
    if tuple(lo_a.shape) != tuple(lo_b.shape):
        raise ValueError(f"lo_b: intersection pairs rows, so a and b need one shape {tuple(lo_a.shape)}, "
                         f"got {describe(lo_b)}")
    be = backend_of(lo_a=lo_a, hi_a=hi_a, lo_b=lo_b, hi_b=hi_b)
    lo_a, hi_a, lo_b, hi_b = (cast(x, be) for x in (lo_a, hi_a, lo_b, hi_b))
    code, clip = _MODE_CODE[mode], bool(clip)
    if be.kind == "torch" and _needs_grad(lo_a, hi_a, lo_b, hi_b):
        return _functions()["intersection"].apply(lo_a, hi_a, lo_b, hi_b, be, code, it, clip)
    return _intersection_fwd(be, *map(_detach, (lo_a, hi_a, lo_b, hi_b)), code, it, clip)


_CONTAINMENT_DOC = r"""
    The containment score of Task2Box (Eq. 5), :math:`d(a, b) = \mathrm{vol}(a \cap b) / \mathrm{vol}(a)`,
    computed in log space as :math:`\log \mathrm{vol}(a \cap b) - \log \mathrm{vol}(a)` and returned as the
    ratio (or its log with ``log=True``). Modes combine an intersection and a volume as box-embeddings
    0.1.0 does at the given temperatures: ``"hard"`` = hard intersection + hard volume, ``"soft"`` = hard
    intersection + softplus volume, ``"gumbel"`` = Gumbel intersection + Bessel-approximate volume (the
    Task2Box reference). See :func:`log_volume` and :func:`intersection` for the formulas.

    Special cases: :math:`d = 1` when a is nested in b (hard and soft modes; slightly below 1 in gumbel mode,
    whose intersection is tighter than the hard one), close to 0 (never exactly 0, never NaN) for disjoint
    boxes, :math:`d(a, a) = 1` (up to rounding) for identical boxes in hard and soft modes. Zero-width and flipped boxes are
    allowed; their widths are clamped to ``1e-13`` (hard) or smoothed by the softplus, so the result stays
    finite. The score is not symmetric: :math:`d(a, b) \ne d(b, a)` in general.
"""


def containment(lo_a, hi_a, lo_b=None, hi_b=None, *, mode="gumbel", volume_temperature=0.1,
                intersection_temperature=1e-4, log=False):
    r"""All-pairs containment scores d(a_i, b_j) = vol(a_i ∩ b_j) / vol(a_i) (Task2Box Eq. 5).
    {doc}
    Parameters
    ----------
    lo_a, hi_a : array or tensor, shape (N, k)
        Corners of the boxes a.
    lo_b, hi_b : array or tensor, shape (M, k), optional
        Corners of the boxes b; both omitted means b = a (an N x N matrix).
    mode : {{"gumbel", "soft", "hard"}}
    volume_temperature, intersection_temperature : float > 0
        Defaults are those of the Task2Box reference training.
    log : bool
        Return :math:`\log d` (finite, <= 0 up to rounding) instead of :math:`d`.

    Returns
    -------
    (N, M) array or tensor, the dtype and kind of the input.

    Notes
    -----
    One fused kernel per direction: the forward and the backward visit each pair once and never store
    N x M x k intermediates (extra memory O((N + M) k) besides the N x M output; the backward keeps at most
    32 partial (M, 2k) float64 buffers for the gradients of b). Time O(N M k). The k-sums and the sums over
    pairs of the backward are accumulated in float64; results are bit-identical for any thread count.
    On CUDA the forward is tiled through shared memory and the backward gives each (row, dimension) of a
    and of b to one thread, so GPU results are deterministic too (no atomics).

    Examples
    --------
    >>> import numpy as np, tasklens.boxes as tb
    >>> lo = np.array([[0.0, 0.0], [0.0, 0.0]]); hi = np.array([[1.0, 1.0], [2.0, 2.0]])
    >>> tb.containment(lo, hi, mode="hard")
    array([[1.  , 1.  ],
           [0.25, 1.  ]])
    """
    mode = check_choice(mode, "mode", VOLUME_MODES)
    vt, it = _temperatures(volume_temperature, intersection_temperature)
    lo_a, hi_a = _boxes(lo_a, hi_a, "lo_a", "hi_a")
    if (lo_b is None) != (hi_b is None):
        raise ValueError("lo_b, hi_b: give both corners of the boxes b, or neither (b = a)")
    if lo_b is None:
        lo_b, hi_b = lo_a, hi_a
    else:
        lo_b, hi_b = _boxes(lo_b, hi_b, "lo_b", "hi_b")
        _same_k(lo_a, lo_b, "lo_a", "lo_b")
    be = backend_of(lo_a=lo_a, hi_a=hi_a, lo_b=lo_b, hi_b=hi_b)
    lo_a, hi_a, lo_b, hi_b = (cast(x, be) for x in (lo_a, hi_a, lo_b, hi_b))
    code, log = _MODE_CODE[mode], bool(log)
    if be.kind == "torch" and _needs_grad(lo_a, hi_a, lo_b, hi_b):
        return _functions()["containment"].apply(lo_a, hi_a, lo_b, hi_b, be, code, vt, it, log)
    return _containment_fwd(be, *map(_detach, (lo_a, hi_a, lo_b, hi_b)), code, vt, it, log)


def containment_pairs(lo_a, hi_a, lo_b, hi_b, idx_a, idx_b, *, mode="gumbel", volume_temperature=0.1,
                      intersection_temperature=1e-4, log=False):
    r"""Containment scores of P index pairs: ``out[p] = d(a[idx_a[p]], b[idx_b[p]])`` (Task2Box Eq. 5).
    {doc}
    Parameters
    ----------
    lo_a, hi_a : array or tensor, shape (N, k)
    lo_b, hi_b : array or tensor, shape (M, k)
        Pass the a corners again to score pairs within one set of boxes.
    idx_a, idx_b : integer array or tensor, shape (P,)
        Row indices into a (``0 <= idx_a < N``) and into b (``0 <= idx_b < M``).
    mode, volume_temperature, intersection_temperature, log
        As in :func:`containment`.

    Returns
    -------
    (P,) array or tensor.

    Notes
    -----
    One fused kernel per direction; time O(P k + N k), extra memory O(P + N + M) (no P x k intermediates).
    The backward groups the pairs by row with a stable counting sort and sums each row's gradient over its
    pairs in pair order in one thread: deterministic, bit-identical for any thread count (and on CUDA, no
    atomics). Sums are accumulated in float64.

    Examples
    --------
    >>> import numpy as np, tasklens.boxes as tb
    >>> lo = np.array([[0.0, 0.0], [0.0, 0.0]]); hi = np.array([[1.0, 1.0], [2.0, 2.0]])
    >>> tb.containment_pairs(lo, hi, lo, hi, [1, 0], [0, 1], mode="hard")
    array([0.25, 1.  ])
    """
    mode = check_choice(mode, "mode", VOLUME_MODES)
    vt, it = _temperatures(volume_temperature, intersection_temperature)
    lo_a, hi_a = _boxes(lo_a, hi_a, "lo_a", "hi_a")
    lo_b, hi_b = _boxes(lo_b, hi_b, "lo_b", "hi_b")
    _same_k(lo_a, lo_b, "lo_a", "lo_b")
    be = backend_of(lo_a=lo_a, hi_a=hi_a, lo_b=lo_b, hi_b=hi_b)
    idx_a = _indices(idx_a, "idx_a", lo_a.shape[0], "lo_a")
    idx_b = _indices(idx_b, "idx_b", lo_b.shape[0], "lo_b")
    if idx_a.shape[0] != idx_b.shape[0]:
        raise ValueError(f"idx_b: expected {idx_a.shape[0]} indices (one per pair, as idx_a), got {describe(idx_b)}")
    if be.kind != ("torch" if is_torch(idx_a) else "numpy") or be.kind != ("torch" if is_torch(idx_b) else "numpy"):
        idx_a, idx_b = (_index_like(i, be) for i in (idx_a, idx_b))
    elif be.kind == "torch" and (idx_a.device != lo_a.device or idx_b.device != lo_a.device):
        idx_a, idx_b = idx_a.to(lo_a.device), idx_b.to(lo_a.device)
    lo_a, hi_a, lo_b, hi_b = (cast(x, be) for x in (lo_a, hi_a, lo_b, hi_b))
    code, log = _MODE_CODE[mode], bool(log)
    if be.kind == "torch" and _needs_grad(lo_a, hi_a, lo_b, hi_b):
        return _functions()["containment_pairs"].apply(lo_a, hi_a, lo_b, hi_b, idx_a, idx_b, be, code, vt, it, log)
    return _pairs_fwd(be, *map(_detach, (lo_a, hi_a, lo_b, hi_b)), idx_a, idx_b, code, vt, it, log)


containment.__doc__ = containment.__doc__.format(doc=_CONTAINMENT_DOC)
containment_pairs.__doc__ = containment_pairs.__doc__.format(doc=_CONTAINMENT_DOC)


def _index_like(idx, be: Backend):
    """Integer indices converted to the boxes' kind (numpy <-> torch) and device."""
    if be.kind == "numpy":
        return np.ascontiguousarray(idx.detach().cpu().numpy()) if is_torch(idx) else idx
    import torch

    return torch.as_tensor(np.asarray(idx) if not is_torch(idx) else idx, device=be.device)


def _contiguous(grad):
    """Incoming gradients: CUDA ones made contiguous by torch; CPU ones are copied by numpy in ``_cpu``."""
    return grad.contiguous() if grad.device.type == "cuda" else grad


def _detach(x):
    return x.detach() if is_torch(x) else x
