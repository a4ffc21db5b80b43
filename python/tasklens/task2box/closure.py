"""Relations implied by the training pairs (transitivity of containment), for Task2Box's ``closure`` option.

Containment is transitive: from training pairs ``i ⊂ k`` and ``k ⊂ j`` follows ``i ⊂ j``; from ``i ⊂ k``,
``i ⊄ j`` and ``j' ⊂ j`` follows ``k ⊄ j'`` (otherwise ``i ⊂ k ⊂ j' ⊂ j``). Box containment (Eq. 5) has the same
property, so a box model that fits the training pairs should also fit the pairs they imply; :func:`closure_targets`
makes them explicit training targets. Only the labels of ``train_mask`` are read.
"""

from __future__ import annotations

import numpy as np

__all__ = ["closure_targets", "implied_relations"]

_BLOCK_BYTES = 1 << 25  # working-set size of one block of the packed boolean products (32 MiB)


def implied_relations(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P, Q)``, boolean (N, N): every pair implied positive / negative by the known pairs.

    ``P`` is the transitive closure of ``positive`` (``P[i, j]``: a chain ``i ⊂ ... ⊂ j`` of known positives);
    ``Q[k, m]`` holds when some known negative ``i ⊄ j`` has ``i = k`` or ``i ⊂ k`` in ``P``, and ``j = m`` or
    ``m ⊂ j`` in ``P``, i.e. ``Q = A^T N A^T`` with ``A = I + P``. The diagonal is never set. Pairs implied both
    ways (inconsistent inputs) are left out of both.

    Cost: ``P`` by repeated squaring of a sparse boolean matrix (OR-accumulating, so path counts cannot overflow),
    O(sum_k indeg_P(k) outdeg_P(k) log L) for chains of length up to L (O(N log^2 N) per round on a random
    tree); ``Q`` as two products of the sparse ``A`` with bit-packed dense rows, O(nnz(A) N / 8) bytes, plus the
    dense (N, N) outputs. Memory: the two outputs and O(N^2 / 8 + nnz(P)) besides.
    """
    import scipy.sparse as sp

    pos = np.asarray(positive, dtype=bool)
    neg = np.asarray(negative, dtype=bool)
    n = pos.shape[0]
    if pos.shape != (n, n) or neg.shape != (n, n):
        raise ValueError(f"positive / negative: expected two square (N, N) masks, got {pos.shape} and {neg.shape}")
    if n == 0:
        return np.zeros((0, 0), dtype=bool), np.zeros((0, 0), dtype=bool)
    P = _off_diagonal(sp, *np.nonzero(pos), n)
    while True:  # repeated squaring: chains of length up to 2^t after t rounds; bool products OR, never count
        nxt = P + P @ P
        nxt = _off_diagonal(sp, *nxt.nonzero(), n)
        if nxt.nnz == P.nnz:  # nxt contains P: equal sizes mean equal sets
            break
        P = nxt
    A = (P + sp.eye_array(n, dtype=bool, format="csr")).tocsr()
    # M = N A^T: row m of M^T is the OR of the rows j of N^T with A[m, j] (columns packed 8 to a byte)
    Mt = _or_rows(A, np.ascontiguousarray(np.packbits(neg, axis=0).T))
    # Q = A^T M: row k of Q is the OR of the rows i of M with A[i, k]
    Qp = _or_rows(A.T.tocsr(), _transpose_packed(Mt, n))
    Q = np.unpackbits(Qp, axis=1, count=n).view(bool)
    np.fill_diagonal(Q, False)
    rows, cols = P.nonzero()
    both = Q[rows, cols]  # pairs implied both ways: out of P and Q
    Q[rows[both], cols[both]] = False
    P_dense = np.zeros((n, n), dtype=bool)
    P_dense[rows[~both], cols[~both]] = True
    return P_dense, Q


def _off_diagonal(sp, rows, cols, n):
    """Boolean CSR (n, n) with ones at ``(rows, cols)`` except on the diagonal."""
    keep = rows != cols
    return sp.csr_array((np.ones(int(keep.sum()), dtype=bool), (rows[keep], cols[keep])), shape=(n, n))


def _or_rows(S, Xp: np.ndarray) -> np.ndarray:
    """Boolean product of the sparse pattern ``S`` (CSR, (r, n)) and the bit-packed rows ``Xp`` ((n, w) uint8):
    row ``a`` of the result is the bitwise OR of the rows ``Xp[b]`` with ``S[a, b]`` stored (64 bits at a time)."""
    r, w = S.shape[0], Xp.shape[1]
    w64 = -(-w // 8)
    X64 = np.zeros((Xp.shape[0], 8 * w64), dtype=np.uint8)
    X64[:, :w] = Xp
    X64 = X64.view(np.uint64)
    out = np.zeros((r, w64), dtype=np.uint64)
    indptr, indices = S.indptr, S.indices
    budget = max(1, _BLOCK_BYTES // (8 * max(w64, 1)))  # gathered rows per block
    lo = 0
    while lo < r:
        hi = int(np.searchsorted(indptr, indptr[lo] + budget, side="right")) - 1
        hi = min(max(hi, lo + 1), r)
        a, b = indptr[lo], indptr[hi]
        if b > a:
            nonempty = np.flatnonzero(np.diff(indptr[lo:hi + 1]))
            out[lo + nonempty] = np.bitwise_or.reduceat(X64[indices[a:b]], indptr[lo:hi][nonempty] - a, axis=0)
        lo = hi
    return out.view(np.uint8)[:, :w]


def _transpose_packed(Xp: np.ndarray, n_cols: int) -> np.ndarray:
    """Rows of ``X^T`` packed 8 to a byte, from the packed rows ``Xp`` of ``X`` ((r, n_cols) bits), in blocks of
    rows (never the whole unpacked matrix)."""
    r = Xp.shape[0]
    out = np.empty((-(-r // 8), n_cols), dtype=np.uint8)
    step = 8 * max(1, _BLOCK_BYTES // (8 * max(n_cols, 1)))
    for lo in range(0, r, step):
        block = np.packbits(np.unpackbits(Xp[lo:lo + step], axis=1, count=n_cols), axis=0)
        out[lo // 8:lo // 8 + block.shape[0]] = block
    return np.ascontiguousarray(out.T)


def closure_targets(R: np.ndarray, train_mask: np.ndarray, keep_out: np.ndarray | None = None,
                    negatives: bool = True):
    """``(mask, targets)``: ``train_mask`` extended by the pairs its labels imply (:func:`implied_relations`),
    and a target matrix equal to ``R`` on ``train_mask`` and to the implied label (1 or 0) on the added pairs.

    ``R[i, j] > 0.5`` means ``i ⊂ j``; only ``R[train_mask]`` is read. Pairs in ``keep_out`` (e.g. the validation
    pairs, so that early stopping and thresholds stay on pairs never trained) and pairs of datasets without a
    training pair are never added; neither are pairs whose implied labels conflict. ``negatives=False`` adds the
    implied positives only.
    """
    R = np.asarray(R, dtype=np.float64)
    tr = np.asarray(train_mask, dtype=bool)
    pos, neg = tr & (R > 0.5), tr & ~(R > 0.5)
    P, Q = implied_relations(pos, neg)
    seen = tr.any(0) | tr.any(1)
    add = (P | Q if negatives else P) & ~tr & seen[:, None] & seen[None, :]
    if keep_out is not None:
        add &= ~np.asarray(keep_out, dtype=bool)
    targets = np.where(tr, R, 0.0)
    targets[add & P] = 1.0
    return tr | add, targets
