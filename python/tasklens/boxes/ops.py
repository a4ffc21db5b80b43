"""Box volume, intersection and containment on numpy arrays and torch tensors (CPU or CUDA).

Validation and dispatch for the native kernels in ``cpp/src/boxes.cpp`` and ``cuda/boxes.cu`` (per-element
math in ``cpp/include/tasklens/boxes_math.h``), and the ``torch.autograd.Function`` wrappers whose
backward passes are the native backward kernels. Every call follows the seam of :mod:`tasklens._dispatch`:
validate, ``backend_of`` once, the native op through ``call`` (CPU) or :mod:`tasklens.boxes._cuda` (CUDA
allocation and launch), ``backend.out`` for the result. Gradients of gradients (``create_graph=True``, e.g.
a gradient penalty) are exact: the backward is then evaluated with the torch formulas of
:mod:`tasklens.boxes._torch`, which autograd differentiates again.

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

from .._dispatch import backend_of, call, cast, to_host
from .._validation import check_array, check_choice, check_devices, check_labels, check_positive, describe, is_torch

VOLUME_MODES = ("hard", "soft", "gumbel")
INTERSECTION_MODES = ("hard", "gumbel")
_MODE_CODE = {"hard": 0, "soft": 1, "gumbel": 2}


# ------------------------------------------------------------------------------------------ validation

def _boxes(lo, hi, lo_name: str, hi_name: str):
    check_devices(**{lo_name: lo, hi_name: hi})
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


def _needs_grad(be, *xs) -> bool:
    if not be.is_torch:
        return False
    import torch

    return torch.is_grad_enabled() and any(x.requires_grad for x in xs)


# -------------------------------------------------------------------------------------------- native ops

def _run(op: str, be, *args):
    """The native op ``_C.boxes_<op>`` for the backend: on CPU through :func:`tasklens._dispatch.call`, on CUDA
    through the allocation and launch glue of :mod:`tasklens.boxes._cuda` (same arguments)."""
    if be.is_cuda:
        from . import _cuda

        return getattr(_cuda, op)(be, *args)
    return call(f"boxes_{op}", be, *args)


# ------------------------------------------------------------------------------------ autograd wrappers

_FUNCTIONS: dict = {}


def _functions():
    """The torch.autograd.Function classes, defined on first use so that importing this module is torch-free.

    Each backward runs the native backward kernel; under ``create_graph=True`` (grad mode on inside the
    backward) it returns instead the differentiable vector-Jacobian product of the torch formulas of
    :mod:`tasklens.boxes._torch`, so that double backward (gradient penalties, Hessian-vector products) is
    exact rather than silently zero.
    """
    if _FUNCTIONS:
        return _FUNCTIONS
    import torch

    from . import _torch as ref

    def twice(ctx) -> bool:
        return torch.is_grad_enabled()

    class LogVolume(torch.autograd.Function):
        @staticmethod
        def forward(ctx, lo, hi, be, mode, vt, it):
            ctx.save_for_backward(lo, hi)
            ctx.cfg = (be, mode, vt, it)
            return _run("log_volume", be, lo, hi, mode, vt, it)

        @staticmethod
        def backward(ctx, grad):
            lo, hi = ctx.saved_tensors
            be, mode, vt, it = ctx.cfg
            if twice(ctx):
                gs = ref.differentiable_vjp(ref.log_volume, (lo, hi), grad, mode, vt, it)
            else:
                gs = _run("log_volume_backward", be, lo, hi, grad, mode, vt, it)
            return (*gs, None, None, None, None)

    class Intersection(torch.autograd.Function):
        @staticmethod
        def forward(ctx, la, ha, lb, hb, be, mode, it, clip):
            ctx.save_for_backward(la, ha, lb, hb)
            ctx.cfg = (be, mode, it, clip)
            return _run("intersection", be, la, ha, lb, hb, mode, it, clip)

        @staticmethod
        def backward(ctx, glo, ghi):
            la, ha, lb, hb = ctx.saved_tensors
            be, mode, it, clip = ctx.cfg
            if twice(ctx):
                gs = ref.differentiable_vjp(ref.intersection, (la, ha, lb, hb), (glo, ghi), mode, it, clip)
            else:
                glo = torch.zeros_like(la) if glo is None else glo
                ghi = torch.zeros_like(ha) if ghi is None else ghi
                gs = _run("intersection_backward", be, la, ha, lb, hb, glo, ghi, mode, it, clip)
            return (*gs, None, None, None, None)

    class Containment(torch.autograd.Function):
        @staticmethod
        def forward(ctx, la, ha, lb, hb, be, mode, vt, it, log):
            out = _run("containment", be, la, ha, lb, hb, mode, vt, it, log)
            ctx.save_for_backward(la, ha, lb, hb, out)
            ctx.cfg = (be, mode, vt, it, log)
            return out

        @staticmethod
        def backward(ctx, grad):
            la, ha, lb, hb, out = ctx.saved_tensors
            be, mode, vt, it, log = ctx.cfg
            if twice(ctx):
                gs = ref.differentiable_vjp(ref.containment, (la, ha, lb, hb), grad, mode, vt, it, log)
            else:
                gs = _run("containment_backward", be, la, ha, lb, hb, out, grad, mode, vt, it, log)
            return (*gs, None, None, None, None, None)

    class ContainmentPairs(torch.autograd.Function):
        @staticmethod
        def forward(ctx, la, ha, lb, hb, ia, ib, be, mode, vt, it, log):
            out = _run("containment_pairs", be, la, ha, lb, hb, ia, ib, mode, vt, it, log)
            ctx.save_for_backward(la, ha, lb, hb, out)
            ctx.cfg = (be, mode, vt, it, log)
            ctx.pairs = (ia, ib)  # integer indices (numpy on CPU), not part of the graph
            return out

        @staticmethod
        def backward(ctx, grad):
            la, ha, lb, hb, out = ctx.saved_tensors
            be, mode, vt, it, log = ctx.cfg
            ia, ib = ctx.pairs
            if twice(ctx):
                gs = ref.differentiable_vjp(ref.containment_pairs, (la, ha, lb, hb), grad, _on(ia, la), _on(ib, la),
                                            mode, vt, it, log)
            else:
                gs = _run("containment_pairs_backward", be, la, ha, lb, hb, ia, ib, out, grad, mode, vt, it, log)
            return (*gs, None, None, None, None, None, None, None)

    _FUNCTIONS.update(log_volume=LogVolume, intersection=Intersection, containment=Containment,
                      containment_pairs=ContainmentPairs)
    return _FUNCTIONS


def _on(idx, like):
    """Index tensor (numpy or torch) on the device of ``like`` (torch formulas of the double backward)."""
    import torch

    return torch.as_tensor(idx).to(like.device)


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
    if _needs_grad(be, lo, hi):
        return be.out(_functions()["log_volume"].apply(lo, hi, be, code, vt, it))
    return be.out(_run("log_volume", be, lo, hi, code, vt, it))


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
    if _needs_grad(be, lo_a, hi_a, lo_b, hi_b):
        return be.out(_functions()["intersection"].apply(lo_a, hi_a, lo_b, hi_b, be, code, it, clip))
    return be.out(_run("intersection", be, lo_a, hi_a, lo_b, hi_b, code, it, clip))


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
    if _needs_grad(be, lo_a, hi_a, lo_b, hi_b):
        return be.out(_functions()["containment"].apply(lo_a, hi_a, lo_b, hi_b, be, code, vt, it, log))
    return be.out(_run("containment", be, lo_a, hi_a, lo_b, hi_b, code, vt, it, log))


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
    if not be.is_cuda:  # the CPU kernels read numpy views; the CUDA glue moves indices to the device
        idx_a, idx_b = to_host(idx_a), to_host(idx_b)
    lo_a, hi_a, lo_b, hi_b = (cast(x, be) for x in (lo_a, hi_a, lo_b, hi_b))
    code, log = _MODE_CODE[mode], bool(log)
    if _needs_grad(be, lo_a, hi_a, lo_b, hi_b):
        return be.out(_functions()["containment_pairs"].apply(lo_a, hi_a, lo_b, hi_b, idx_a, idx_b, be, code, vt, it,
                                                              log))
    return be.out(_run("containment_pairs", be, lo_a, hi_a, lo_b, hi_b, idx_a, idx_b, code, vt, it, log))


containment.__doc__ = containment.__doc__.format(doc=_CONTAINMENT_DOC)
containment_pairs.__doc__ = containment_pairs.__doc__.format(doc=_CONTAINMENT_DOC)
