"""Datasets, relations, base representations and seeded splits for Task2Box (paper §3.1, §4.1).

A *dataset* here is any set of items (e.g. a taxon = the set of its species). Its base representation
is the mean, or the mean and variance, of its items' embeddings (paper Eq. 1-2). The relation matrix
``R[i, j] = d(D_i, D_j)`` is 1 when dataset ``i`` is contained in dataset ``j`` (§4.1.1).

Splits
------
- :func:`split_pairs`: the off-diagonal pairs of N datasets split into train / val / test masks
  (seeded, default 80/10/10) — the *existing datasets* protocol.
- :func:`split_novel`: a seeded held-out set of *novel* datasets; :func:`novel_mask` marks their pairs
  with the existing datasets in both directions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .._dispatch import to_host
from .._validation import check_array, check_int, check_labels, check_scalar
from .._validation import check_devices

__all__ = [
    "Taxa", "relations_from_parents", "relations_from_taxonomy", "base_representations",
    "split_pairs", "split_novel", "novel_mask", "load_taxonomy", "load_compact_taxonomy",
    "TAXONOMY_LEVELS",
]

TAXONOMY_LEVELS = ("class", "order", "family", "genus")


@dataclass
class Taxa:
    """Datasets built from a taxonomy table.

    Attributes
    ----------
    names : list of str, (N,) — ``"level:name"``.
    levels : numpy.ndarray of str, (N,) — the taxonomic level of each dataset.
    group : numpy.ndarray of int, (N,) — index of the top-level ancestor (colouring of box maps).
    group_names : list of str — names of the groups.
    members : list of numpy.ndarray — item (row) indices of each dataset.
    relations : numpy.ndarray, (N, N) float64 — ``R[i, j] = 1`` when ``i`` is contained in ``j``.
    sizes : numpy.ndarray, (N,) int64 — number of items per dataset.
    """

    names: list
    levels: np.ndarray
    group: np.ndarray
    group_names: list
    members: list
    relations: np.ndarray
    sizes: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.sizes is None:
            self.sizes = np.array([len(m) for m in self.members], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index) -> "Taxa":
        """The datasets ``index`` (int array) with their relations and regrouped colours."""
        index = np.asarray(index, dtype=np.int64)
        uniq, group = np.unique(self.group[index], return_inverse=True)
        return Taxa(names=[self.names[i] for i in index], levels=self.levels[index],
                    group=group.astype(np.int64), group_names=[self.group_names[g] for g in uniq],
                    members=[self.members[i] for i in index],
                    relations=self.relations[np.ix_(index, index)], sizes=self.sizes[index])


def relations_from_parents(child, parent, n: int | None = None, *, transitive: bool = True) -> np.ndarray:
    """Relation matrix from a parent-child edge list.

    Parameters
    ----------
    child, parent : array-like of int, (E,) — edge ``child -> parent`` (node indices in ``[0, n)``).
    n : number of nodes; defaults to ``max(index) + 1``.
    transitive : a node is contained in all its ancestors (transitive closure), not only its parents.

    Returns
    -------
    numpy.ndarray, (n, n) float64 with ``R[i, j] = 1`` iff ``i`` is (transitively) below ``j``.
    The diagonal is 0. Cost O(n^2 * depth) time, O(n^2) memory.

    Examples
    --------
    >>> relations_from_parents([1, 2], [0, 1]).astype(int).tolist()
    [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
    """
    child = check_labels(np.ravel(to_host(child)), "child")
    parent = check_labels(np.ravel(to_host(parent)), "parent")
    n = check_int(n, "n", min=0, allow_none=True)
    if child.shape != parent.shape:
        raise ValueError(f"child and parent must have the same length, got {child.shape} and {parent.shape}")
    if child.size and (child.min() < 0 or parent.min() < 0):
        raise ValueError("child/parent: node indices must be non-negative")
    if n is None:
        n = int(max(child.max(initial=-1), parent.max(initial=-1)) + 1)
    elif child.size and max(child.max(), parent.max()) >= n:
        raise ValueError(f"child/parent: index out of range for n={n}")
    R = np.zeros((n, n), dtype=bool)
    R[child, parent] = True
    if transitive:
        while True:  # repeated squaring of the reachability matrix until it stops growing
            nxt = R | ((R.astype(np.float32) @ R.astype(np.float32)) > 0)
            if (nxt == R).all():
                break
            R = nxt
    np.fill_diagonal(R, False)
    return R.astype(np.float64)


def relations_from_taxonomy(table, levels=TAXONOMY_LEVELS, *, min_size: int = 5) -> Taxa:
    """Datasets and containment relations from a taxonomy table (one row per item).

    Every taxon (a value of one of ``levels``) with at least ``min_size`` items is a dataset; a taxon
    is contained in each of its ancestors, i.e. in every taxon of a higher level that appears in the
    same row as one of its items (paper §4.1.1).

    Parameters
    ----------
    table : pandas.DataFrame or mapping of column name -> sequence of str (missing values NaN/None/"").
    levels : column names, most general first.
    min_size : smallest number of items for a taxon to become a dataset.

    Returns
    -------
    Taxa
    """
    min_size = check_int(min_size, "min_size", min=1)
    cols = {lv: np.asarray(table[lv], dtype=object) for lv in levels}
    n_items = len(next(iter(cols.values())))
    names, lvls, members, index = [], [], [], {}
    for lv in levels:
        vals = cols[lv]
        ok = np.array([isinstance(v, str) and v != "" for v in vals])
        uniq, inv = np.unique(vals[ok].astype(str), return_inverse=True)
        rows = np.nonzero(ok)[0]
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        for u, name in enumerate(uniq):
            m = rows[order[bounds[u]:bounds[u + 1]]]
            if len(m) >= min_size:
                index[(lv, name)] = len(names)
                names.append(f"{lv}:{name}")
                lvls.append(lv)
                members.append(m)
    N = len(names)
    child, parent = [], []
    node_of = np.full((n_items, len(levels)), -1, dtype=np.int64)
    for a, lv in enumerate(levels):
        for r, v in enumerate(cols[lv]):
            if isinstance(v, str) and (lv, v) in index:
                node_of[r, a] = index[(lv, v)]
    for a in range(len(levels)):
        for b in range(a):  # b is more general than a
            both = (node_of[:, a] >= 0) & (node_of[:, b] >= 0)
            pairs = np.unique(np.stack([node_of[both, a], node_of[both, b]], 1), axis=0)
            child.extend(pairs[:, 0])
            parent.extend(pairs[:, 1])
    R = np.zeros((N, N))
    R[np.asarray(child, dtype=np.int64), np.asarray(parent, dtype=np.int64)] = 1.0
    # Colour group: the most general ancestor (or the node itself at the top).
    group = np.arange(N)
    for i in range(N):
        anc = np.nonzero(R[i])[0]
        if anc.size:
            top = min(anc, key=lambda j: (levels.index(lvls[j]), j))
            group[i] = top
    tops, group = np.unique(group, return_inverse=True)
    return Taxa(names=names, levels=np.asarray(lvls), group=group.astype(np.int64),
                group_names=[names[t] for t in tops], members=members, relations=R)


def base_representations(item_embeddings, members, *, variance: bool = False, ddof: int = 0):
    """Base representation of each dataset from its items' embeddings (paper Eq. 1-2).

    Parameters
    ----------
    item_embeddings : array-like, (n_items, d) float32/float64.
    members : sequence of index arrays, one per dataset.
    variance : False -> ``e = mu`` (N, d); True -> ``e = [mu, sigma^2]`` (N, 2d) with the diagonal
        variance of Eq. 2.

    Returns
    -------
    numpy.ndarray (N, d) or (N, 2d), float64 (accumulated in float64).

    Examples
    --------
    >>> base_representations(np.eye(3), [[0, 1], [2]]).tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    """
    ddof = check_int(ddof, "ddof", min=0)
    check_devices(item_embeddings=item_embeddings)
    E = check_array(item_embeddings, "item_embeddings", ndim=2)
    E = np.asarray(to_host(E), dtype=np.float64)
    out = np.empty((len(members), E.shape[1] * (2 if variance else 1)))
    for i, m in enumerate(members):
        m = np.asarray(m, dtype=np.int64)
        if m.size == 0:
            raise ValueError(f"members[{i}] is empty: every dataset needs at least one item")
        if m.min() < 0 or m.max() >= E.shape[0]:
            raise ValueError(f"members[{i}]: item index out of range for {E.shape[0]} items")
        x = E[m]
        mu = x.mean(0)
        out[i, :E.shape[1]] = mu
        if variance:
            out[i, E.shape[1]:] = ((x - mu) ** 2).sum(0) / max(len(m) - ddof, 1)
    return out


def split_pairs(n: int, *, fractions=(0.8, 0.1, 0.1), seed: int = 0, datasets=None):
    """Seeded split of the off-diagonal pairs of ``n`` datasets into train / val / test masks.

    Parameters
    ----------
    n : number of datasets.
    fractions : (train, val, test), summing to 1.
    seed : integer seed (numpy ``default_rng``).
    datasets : optional index array (``0 <= index < n``); only pairs among these datasets are split (e.g. the
        existing datasets of the novel protocol). Other pairs are in no mask.

    Returns
    -------
    (train, val, test) : three disjoint boolean (n, n) masks; the diagonal is in none.
    """
    n = check_int(n, "n", min=0)
    seed = check_int(seed, "seed", min=0)
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1) > 1e-9:
        raise ValueError(f"fractions: expected three non-negative numbers summing to 1, got {fractions}")
    keep = np.zeros(n, dtype=bool)
    if datasets is None:
        keep[:] = True
    else:
        datasets = to_host(check_labels(datasets, "datasets", num_classes=n))
        keep[datasets] = True
    cand = keep[:, None] & keep[None, :]
    np.fill_diagonal(cand, False)
    idx = np.flatnonzero(cand)
    perm = np.random.default_rng(seed).permutation(idx.size)
    n_tr = int(round(fr[0] * idx.size))
    n_va = int(round(fr[1] * idx.size))
    masks = []
    for part in (perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]):
        m = np.zeros(n * n, dtype=bool)
        m[idx[part]] = True
        masks.append(m.reshape(n, n))
    return tuple(masks)


def split_novel(n: int, *, fraction: float = 0.1, seed: int = 0, stratify=None):
    """Seeded choice of held-out *novel* datasets.

    Parameters
    ----------
    n : number of datasets. fraction : share held out (at least one). seed : integer seed.
    stratify : optional (n,) labels (e.g. taxonomic level); the fraction is drawn per label.

    Returns
    -------
    (existing, novel) : sorted disjoint int64 index arrays covering ``range(n)``.
    """
    n = check_int(n, "n", min=1)
    seed = check_int(seed, "seed", min=0)
    fraction = check_scalar(fraction, "fraction", min=0.0, max=1.0, min_inclusive=False, max_inclusive=False)
    if stratify is not None and len(stratify) != n:
        raise ValueError(f"stratify: expected {n} labels (one per dataset), got {len(stratify)}")
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=np.int64) if stratify is None else np.unique(np.asarray(stratify), return_inverse=True)[1]
    novel = []
    for lab in np.unique(labels):
        rows = np.nonzero(labels == lab)[0]
        k = int(round(fraction * rows.size))
        novel.extend(rng.choice(rows, size=k, replace=False).tolist())
    if not novel:
        novel = [int(rng.integers(n))]
    novel = np.sort(np.asarray(novel, dtype=np.int64))
    existing = np.setdiff1d(np.arange(n), novel)
    return existing, novel


def novel_mask(n: int, existing, novel) -> np.ndarray:
    """Boolean (n, n) mask of the pairs between novel and existing datasets, in both directions."""
    m = np.zeros((n, n), dtype=bool)
    e = np.asarray(existing, dtype=np.int64)
    v = np.asarray(novel, dtype=np.int64)
    m[np.ix_(v, e)] = True
    m[np.ix_(e, v)] = True
    return m


COMPACT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "taxonomy_compact.npz")


def load_taxonomy(path: str | None = None):
    """The species taxonomy and its item embeddings: the bundled compact data by default, the full data from
    an explicit directory.

    Parameters
    ----------
    path : None (default) loads the compact taxonomy shipped inside the package
        (:func:`load_compact_taxonomy`); a directory holding ``species.csv`` and
        ``species_text_embeddings.npy`` loads the full data (8,338 species, 384-D text embeddings).

    Returns
    -------
    ``(table, embeddings)``: the table maps each level of :data:`TAXONOMY_LEVELS` to one name per species
    (a dict of object arrays for the bundled data, a pandas DataFrame for a directory), and ``embeddings`` is
    a float32 (n_species, p) array. Both feed :func:`relations_from_taxonomy` and
    :func:`base_representations`. No default path points outside the package.

    Examples
    --------
    >>> table, emb = load_taxonomy()
    >>> emb.dtype, len(table["genus"]) == emb.shape[0]
    (dtype('float32'), True)
    """
    if path is None:
        return load_compact_taxonomy()
    import pandas as pd

    path = os.fspath(path)
    csv = os.path.join(path, "species.csv")
    npy = os.path.join(path, "species_text_embeddings.npy")
    if not (os.path.exists(csv) and os.path.exists(npy)):
        raise FileNotFoundError(
            f"taxonomy data not found in {os.path.abspath(path)} (expected species.csv and "
            "species_text_embeddings.npy); call load_taxonomy() without a path for the data bundled "
            "with the package")
    return pd.read_csv(csv), np.load(npy)


def load_compact_taxonomy(path: str | None = None):
    """The compact taxonomy shipped inside the package (made by ``benchmarks/make_compact_taxonomy.py``).

    Returns ``(table, embeddings)``: a dict of level -> object array of names (NaN-free; "" when
    missing) and a float32 (n_items, p) array of PCA-reduced species embeddings.
    """
    z = np.load(path or COMPACT_PATH, allow_pickle=False)
    table = {}
    for lv in TAXONOMY_LEVELS:
        vocab = z[f"{lv}_vocab"].astype(object)
        codes = z[f"{lv}_codes"].astype(np.int64)
        col = np.where(codes >= 0, vocab[np.maximum(codes, 0)], "")
        table[lv] = col.astype(object)
    return table, z["embeddings"].astype(np.float32)
