"""CUDA engine of the streaming H-score: device allocation and kernel launches (through ``_dispatch.call``).

Per block: ``hscore_block_moments`` (mean, centred copy, Ledoit-Wolf moments), ``hscore_class_sums`` (per-class
sums and counts, run over chunks of targets with a scratch buffer bounded by :data:`SCRATCH_BYTES`), the block
scatter ``xc.T @ xc`` by cuBLAS (torch) with TF32 disabled, and ``hscore_merge_moments`` (Chan's update) into the
state, all on the caller's current stream. The math and the state layout are those of
:mod:`tasklens.metrics.hscore`.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .._dispatch import call
from .._native import native, require_cuda
from .hscore import ScaleOverflow, moments_ok, narrowest

#: Most bytes of the class-sum scratch buffer of one launch (row segments x targets x classes x features float64).
#: Targets are cut into chunks and row segments reduced so that a launch stays below it; a single target whose
#: class sums alone exceed it runs with one segment (scratch = that target's C x F sums).
SCRATCH_BYTES = 256 << 20
#: Most targets in one class-sum launch (the kernel's grid has one y-block per target: gridDim.y <= 65535).
MAX_TARGETS_PER_LAUNCH = 65535


def class_sum_plan(rows: int, features: int, targets: int, classes: int, segments_for) -> list[tuple[int, int, int]]:
    """(first target, end target, row segments) of each class-sum launch of one block.

    ``segments_for(rows, features, targets)`` is the kernel's preferred segment count
    (``_C.hscore_class_sum_segments_cuda``); the plan keeps ``segments * targets * classes * features * 8`` at most
    :data:`SCRATCH_BYTES` (or one segment of one target when that alone is larger).
    """
    per_target = max(1, classes * features * 8)
    chunk = int(max(1, min(targets, MAX_TARGETS_PER_LAUNCH, SCRATCH_BYTES // per_target)))
    plan = []
    for t0 in range(0, targets, chunk):
        t1 = min(targets, t0 + chunk)
        cap = max(1, SCRATCH_BYTES // (per_target * (t1 - t0)))
        plan.append((t0, t1, int(max(1, min(int(segments_for(rows, features, t1 - t0)), cap)))))
    return plan


@contextmanager
def exact_float32_matmul():
    """Full float32 precision for torch matmuls inside the block (TF32 off), restoring the user's settings.

    ``torch.backends.cuda.matmul.allow_tf32`` (or ``fp32_precision = "tf32"``, or
    ``torch.set_float32_matmul_precision("high")``) would let cuBLAS round the float32 scatter's inputs to
    10-bit mantissas. The flags are process-wide: they are set for the engine's matmul only and restored on exit.
    """
    import torch

    matmul = torch.backends.cuda.matmul
    has_precision = hasattr(matmul, "fp32_precision")
    saved_global = torch.get_float32_matmul_precision()
    saved = matmul.fp32_precision if has_precision else matmul.allow_tf32
    try:
        torch.set_float32_matmul_precision("highest")
        if has_precision:
            matmul.fp32_precision = "ieee"
        else:
            matmul.allow_tf32 = False
        yield
    finally:
        if has_precision:
            matmul.fp32_precision = saved
        else:
            matmul.allow_tf32 = saved
        torch.set_float32_matmul_precision(saved_global)


def new_state(f: int, c: int, t: int, device: str, dtype: str) -> dict:
    """An empty accumulator state on ``device`` (float64 tensors; class counts int64)."""
    import torch

    f64 = dict(dtype=torch.float64, device=device)
    return {"n": 0, "mean": torch.zeros(f, **f64), "scatter": torch.zeros((f, f), **f64),
            "v3": torch.zeros(f, **f64), "q4": torch.zeros(1, **f64), "shift": None,
            "class_sums": torch.zeros((t, c, f), **f64),
            "class_counts": torch.zeros((t, c), dtype=torch.int64, device=device), "dtype": dtype}


def state_to_device(st: dict, device: str) -> dict:
    """A host (numpy) or device state moved to ``device``; ``q4`` becomes a 1-element tensor the kernels update."""
    import torch

    out = {}
    for key, v in st.items():
        if key == "q4":
            out[key] = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(1) if not torch.is_tensor(v)
                                       else v.reshape(1), dtype=torch.float64).to(device)
        elif isinstance(v, np.ndarray) or torch.is_tensor(v):
            out[key] = torch.as_tensor(v).to(device).contiguous()
        else:
            out[key] = v
    return out


def update(acc, x, y, backend) -> None:
    """Fold rows ``x`` (N, F) (CUDA tensor) with labels ``y`` (N, T) (int64 on the same device) into ``acc._state``.

    Raises :class:`ScaleOverflow` before touching the state when a block's moments are not finite (or could
    overflow the float32 scatter); every earlier block is then folded whole.
    """
    import torch

    require_cuda("hscore")
    C = native()
    dev = x.device
    f, c, t = acc.num_features, acc.num_classes, y.shape[1]
    f64 = dict(dtype=torch.float64, device=dev)
    if acc._state is None:
        acc._state = new_state(f, c, t, str(dev), backend.dtype)
    st = acc._state
    st["dtype"] = narrowest(st["dtype"], backend.dtype)
    y = y.to(device=dev, dtype=torch.int64)
    for r0 in range(0, x.shape[0], acc.block_rows):
        xb = x[r0:r0 + acc.block_rows].contiguous()
        rows = xb.shape[0]
        mean_b, v3_b = torch.empty(f, **f64), torch.empty(f, **f64)
        q4_b, norms = torch.empty(1, **f64), torch.empty(rows, **f64)
        xc = torch.empty_like(xb)
        call("hscore_block_moments", backend, xb, rows, f, mean_b, xc, v3_b, q4_b, norms, dtype=xb.dtype)
        if not (bool(torch.isfinite(mean_b).all()) and moments_ok(float(q4_b), rows, backend.dtype)):
            raise ScaleOverflow()
        if st["shift"] is None:
            st["shift"] = mean_b.clone()
        yb = y[r0:r0 + acc.block_rows]
        offset = (mean_b - st["shift"]).contiguous()
        for t0, t1, segments in class_sum_plan(rows, f, t, c, C.hscore_class_sum_segments_cuda):
            tt = t1 - t0
            partial = torch.empty(segments * tt * c * f + tt * c, **f64)
            call("hscore_class_sums", backend, xc, rows, f, yb[:, t0:t1].contiguous(), tt, c, offset,
                 st["class_sums"][t0:t1], st["class_counts"][t0:t1], partial, segments, dtype=xb.dtype)
            del partial
        with exact_float32_matmul():
            gram = torch.matmul(xc.T, xc).to(torch.float64).contiguous()
        work = torch.empty(6 * f + 8, **f64)
        call("hscore_merge_moments", backend, f, float(st["n"]), st["mean"], st["scatter"], st["v3"], st["q4"],
             float(rows), mean_b, gram, v3_b, q4_b, work)
        st["n"] += rows
        del xc, gram
