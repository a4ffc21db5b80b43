"""GPU path of the box operations: output allocation and launch of the ``cuda/boxes.cu`` kernels.

Every function takes the CPU op's arguments (the :class:`tasklens._dispatch.Backend` first, then the same
arrays and settings as ``_C.boxes_<op>``), allocates the outputs on the tensors' device and launches
``_C.boxes_<op>_cuda`` through :func:`tasklens._dispatch.call` (dtype tag first, device and current stream
last). The inputs are contiguous CUDA tensors of one dtype (validated and cast by :mod:`tasklens.boxes.ops`).
"""

from __future__ import annotations

from .._dispatch import Backend, call


def _launch(op: str, be: Backend, x, *args) -> None:
    call(f"boxes_{op}", be, *args, dtype=x.dtype)


def _indices(idx, be: Backend):
    """Pair indices as int64 tensors on the boxes' device (numpy or CPU input accepted)."""
    import numpy as np
    import torch

    if not isinstance(idx, torch.Tensor):
        idx = torch.from_numpy(np.ascontiguousarray(idx))
    return idx.to(device=be.device, dtype=torch.int64).contiguous()


def _grad(g):
    return g.contiguous()


def log_volume(be, lo, hi, mode, vt, it):
    import torch

    out = torch.empty(lo.shape[0], dtype=lo.dtype, device=lo.device)
    _launch("log_volume", be, lo, lo, hi, lo.shape[0], lo.shape[1], mode, vt, it, out)
    return out


def log_volume_backward(be, lo, hi, grad, mode, vt, it):
    import torch

    g_lo, g_hi = torch.empty_like(lo), torch.empty_like(hi)
    _launch("log_volume_backward", be, lo, lo, hi, _grad(grad), lo.shape[0], lo.shape[1], mode, vt, it, g_lo, g_hi)
    return g_lo, g_hi


def intersection(be, la, ha, lb, hb, mode, it, clip):
    import torch

    lo, hi = torch.empty_like(la), torch.empty_like(ha)
    _launch("intersection", be, la, la, ha, lb, hb, la.shape[0], la.shape[1], mode, it, clip, lo, hi)
    return lo, hi


def intersection_backward(be, la, ha, lb, hb, glo, ghi, mode, it, clip):
    import torch

    gs = [torch.empty_like(la) for _ in range(4)]
    _launch("intersection_backward", be, la, la, ha, lb, hb, _grad(glo), _grad(ghi), la.shape[0], la.shape[1],
            mode, it, clip, *gs)
    return tuple(gs)


def containment(be, la, ha, lb, hb, mode, vt, it, log):
    import torch

    out = torch.empty(la.shape[0], lb.shape[0], dtype=la.dtype, device=la.device)
    _launch("containment", be, la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], mode, vt, it, log, out)
    return out


def containment_backward(be, la, ha, lb, hb, out, grad, mode, vt, it, log):
    import torch

    gs = [torch.empty_like(la), torch.empty_like(ha), torch.empty_like(lb), torch.empty_like(hb)]
    _launch("containment_backward", be, la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], out, _grad(grad),
            mode, vt, it, log, *gs)
    return tuple(gs)


def containment_pairs(be, la, ha, lb, hb, ia, ib, mode, vt, it, log):
    import torch

    ia, ib = _indices(ia, be), _indices(ib, be)
    out = torch.empty(ia.shape[0], dtype=la.dtype, device=la.device)
    _launch("containment_pairs", be, la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], ia, ib, ia.shape[0],
            mode, vt, it, log, out)
    return out


def _group_by_row(idx, rows: int):
    """(order, offsets): pairs sorted stably by row, and each row's slice of them (deterministic backward)."""
    import torch

    order = torch.argsort(idx, stable=True)
    offsets = torch.zeros(rows + 1, dtype=torch.int64, device=idx.device)
    offsets[1:] = torch.cumsum(torch.bincount(idx, minlength=rows), 0)
    return order, offsets


def containment_pairs_backward(be, la, ha, lb, hb, ia, ib, out, grad, mode, vt, it, log):
    import torch

    ia, ib = _indices(ia, be), _indices(ib, be)
    order_a, offsets_a = _group_by_row(ia, la.shape[0])
    order_b, offsets_b = _group_by_row(ib, lb.shape[0])
    gs = [torch.empty_like(la), torch.empty_like(ha), torch.empty_like(lb), torch.empty_like(hb)]
    _launch("containment_pairs_backward", be, la, la, ha, la.shape[0], lb, hb, lb.shape[0], la.shape[1], ia, ib,
            ia.shape[0], order_a, offsets_a, order_b, offsets_b, out, _grad(grad), mode, vt, it, log, *gs)
    return tuple(gs)
