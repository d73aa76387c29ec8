"""Exact grid-based DBSCAN for planar points (metres).

The result is the DBSCAN of Ester et al. (1996) with the conventions of
:class:`sklearn.cluster.DBSCAN`: a point is *core* when the (weighted) number of points
within ``eps_m`` of it, itself included, is at least ``min_samples``; core points closer
than ``eps_m`` are in the same cluster; a non-core point within ``eps_m`` of a core point
is a *border* point of one of those clusters; everything else is noise (``-1``).

Why not call scikit-learn: it materialises every neighbourhood (about 7.6 GB and 21 s for
1M firms at eps 1 km here). This implementation never stores a neighbourhood:

1. Points are bucketed into square cells of side ``eps_m / sqrt(2)`` (a hair less), so
   any two points of the same cell are within ``eps_m`` of each other and any two points
   within ``eps_m`` lie at most two cells apart (a 5 x 5 block). Cells are ordered by a
   linear-time counting sort of their keys when the key range is small (else a sort), and
   each cell's five neighbour rows are contiguous ranges of that order.
2. Core test: a cell whose total weight reaches ``min_samples`` makes all its points
   core at once; otherwise each point counts its neighbours with exact distance checks in
   the 5 x 5 block, stopping as soon as the count reaches ``min_samples`` (when weights
   are non-negative).
3. Clusters: all core points of one cell belong to the same cluster (they are within
   ``eps_m``), so a union-find runs over *cells*: two neighbouring cells are merged as
   soon as one pair of their core points is within ``eps_m`` (exact check, early exit).
4. Border points join the cluster of their nearest core point within ``eps_m`` (ties to
   the core point with the smaller index) -- a valid DBSCAN assignment; scikit-learn
   picks whichever cluster reaches the point first.

Cluster numbering is stable: clusters are numbered 0, 1, ... in the order of the smallest
index of their core points, which is the order scikit-learn's DBSCAN uses, so the labels of
core points are identical to scikit-learn's on the same input.

Distances are compared as ``dx*dx + dy*dy <= eps_m*eps_m`` on the original coordinates,
the same arithmetic as scikit-learn's tree queries, so points exactly ``eps_m`` apart are
neighbours on both sides (tested on a lattice where every distance is exact).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from geocluster.clustering._validation import (
    check_min_count,
    check_points,
    check_positive,
    check_weights,
)
from geocluster.errors import InvalidInput

__all__ = ["GridDBSCAN", "dbscan", "warm_up"]

# The cell side is eps/sqrt(2) shrunk by this relative margin so that rounding in the
# cell assignment can never put two points farther apart than eps in the same cell.
_CELL_MARGIN = 1e-7
# Above this many cells per axis the rounding error of the cell assignment could exceed
# the margin above: floor((x - x0) / side) is off by at most ~3 * 2**-53 * (cells per
# axis) cells, which must stay well below _CELL_MARGIN (1e8 cells -> 3e-8).
_MAX_CELLS_PER_AXIS = 1e8
_REACH = 2  # cells within eps lie at most two cells apart
_ROWS = 2 * _REACH + 1


@numba.njit(cache=True, nogil=True)
def _lower_bound(a, v):
    lo = 0
    hi = a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _neighbour_cell_ranges(keys, stride):
    """For each cell, the cell-index range [lo, hi) of each of its 5 neighbour rows."""
    ncell = keys.shape[0]
    lo = np.empty((ncell, _ROWS), np.int64)
    hi = np.empty((ncell, _ROWS), np.int64)
    for c in range(ncell):
        k = keys[c]
        for r in range(_ROWS):
            base = k + (r - _REACH) * stride
            lo[c, r] = _lower_bound(keys, base - _REACH)
            hi[c, r] = _lower_bound(keys, base + _REACH + 1)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _core_flags(xs, ys, ws, cell_start, nb_lo, nb_hi, eps2, min_samples, nonneg):
    n = xs.shape[0]
    ncell = cell_start.shape[0] - 1
    core = np.zeros(n, np.bool_)
    for c in range(ncell):
        s = cell_start[c]
        e = cell_start[c + 1]
        if nonneg:
            tot = 0.0
            for i in range(s, e):
                tot += ws[i]
            if tot >= min_samples:
                for i in range(s, e):
                    core[i] = True
                continue
        for i in range(s, e):
            xi = xs[i]
            yi = ys[i]
            cnt = 0.0
            reached = False
            # Own cell first: it is the most likely to hold neighbours.
            for j in range(s, e):
                dx = xs[j] - xi
                dy = ys[j] - yi
                if dx * dx + dy * dy <= eps2:
                    cnt += ws[j]
            if nonneg and cnt >= min_samples:
                reached = True
            if not reached:
                for r in range(_ROWS):
                    p0 = cell_start[nb_lo[c, r]]
                    p1 = cell_start[nb_hi[c, r]]
                    for j in range(p0, p1):
                        if j >= s and j < e:
                            continue
                        dx = xs[j] - xi
                        dy = ys[j] - yi
                        if dx * dx + dy * dy <= eps2:
                            cnt += ws[j]
                    if nonneg and cnt >= min_samples:
                        break
            core[i] = cnt >= min_samples
    return core


@numba.njit(cache=True, nogil=True)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@numba.njit(cache=True, nogil=True)
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra == rb:
        return
    # Deterministic: the smaller cell index becomes the root.
    if ra < rb:
        parent[rb] = ra
    else:
        parent[ra] = rb


@numba.njit(cache=True, nogil=True)
def _any_core_pair_within(cx, cy, cs, c1, c2, bbox, eps2):
    """True when a core point of cell c1 is within eps of a core point of cell c2."""
    # Box of c2's core points: skip c1 points that are farther than eps from it.
    x0 = bbox[c2, 0]
    y0 = bbox[c2, 1]
    x1 = bbox[c2, 2]
    y1 = bbox[c2, 3]
    for i in range(cs[c1], cs[c1 + 1]):
        xi = cx[i]
        yi = cy[i]
        bx = 0.0
        if xi < x0:
            bx = x0 - xi
        elif xi > x1:
            bx = xi - x1
        by = 0.0
        if yi < y0:
            by = y0 - yi
        elif yi > y1:
            by = yi - y1
        if bx * bx + by * by > eps2:
            continue
        for j in range(cs[c2], cs[c2 + 1]):
            dx = cx[j] - xi
            dy = cy[j] - yi
            if dx * dx + dy * dy <= eps2:
                return True
    return False


@numba.njit(cache=True, nogil=True)
def _cluster_cells(xs, ys, core, cell_start, keys, stride, nb_lo, nb_hi, eps2):
    ncell = cell_start.shape[0] - 1
    # Core points grouped by cell (sorted order is already cell-grouped).
    ncore_cell = np.zeros(ncell, np.int64)
    for c in range(ncell):
        for i in range(cell_start[c], cell_start[c + 1]):
            if core[i]:
                ncore_cell[c] += 1
    cs = np.zeros(ncell + 1, np.int64)
    for c in range(ncell):
        cs[c + 1] = cs[c] + ncore_cell[c]
    m = cs[ncell]
    cx = np.empty(m, np.float64)
    cy = np.empty(m, np.float64)
    cpos = np.empty(m, np.int64)  # sorted-order position of each core point
    bbox = np.empty((ncell, 4), np.float64)
    k = 0
    for c in range(ncell):
        bx0 = np.inf
        by0 = np.inf
        bx1 = -np.inf
        by1 = -np.inf
        for i in range(cell_start[c], cell_start[c + 1]):
            if core[i]:
                cx[k] = xs[i]
                cy[k] = ys[i]
                cpos[k] = i
                bx0 = min(bx0, xs[i])
                by0 = min(by0, ys[i])
                bx1 = max(bx1, xs[i])
                by1 = max(by1, ys[i])
                k += 1
        bbox[c, 0] = bx0
        bbox[c, 1] = by0
        bbox[c, 2] = bx1
        bbox[c, 3] = by1

    parent = np.arange(ncell)
    # Two passes: the 3x3 ring first, which connects dense areas cheaply, then the outer
    # ring of the 5x5 block, where most pairs are then already in the same set.
    for ring in range(2):
        for c in range(ncell):
            if ncore_cell[c] == 0:
                continue
            kc = keys[c]
            for r in range(_REACH, _ROWS):  # only rows dx >= 0: pairs with c2 > c
                dxc = r - _REACH
                for c2 in range(nb_lo[c, r], nb_hi[c, r]):
                    if c2 <= c or ncore_cell[c2] == 0:
                        continue
                    dyc = (keys[c2] - kc) - dxc * stride
                    outer = dxc == 2 or dyc == 2 or dyc == -2
                    if outer != (ring == 1):
                        continue
                    if _find(parent, c) == _find(parent, c2):
                        continue
                    if _any_core_pair_within(cx, cy, cs, c, c2, bbox, eps2):
                        _union(parent, c, c2)
    return parent, cs, cx, cy, cpos, ncore_cell


@numba.njit(cache=True, nogil=True)
def _assign_labels(xs, ys, core, order, cell_start, nb_lo, nb_hi, eps2, parent, cs, cx, cy, cpos):
    n = xs.shape[0]
    ncell = cell_start.shape[0] - 1
    # Cell of each sorted point.
    pcell = np.empty(n, np.int64)
    for c in range(ncell):
        for i in range(cell_start[c], cell_start[c + 1]):
            pcell[i] = c
    # Root cell of each sorted point (-1: noise).
    root = np.full(n, -1, np.int64)
    for i in range(n):
        if core[i]:
            root[i] = _find(parent, pcell[i])
            continue
        c = pcell[i]
        xi = xs[i]
        yi = ys[i]
        best = np.inf
        best_idx = -1
        best_cell = -1
        for r in range(_ROWS):
            for c2 in range(nb_lo[c, r], nb_hi[c, r]):
                for j in range(cs[c2], cs[c2 + 1]):
                    dx = cx[j] - xi
                    dy = cy[j] - yi
                    d2 = dx * dx + dy * dy
                    if d2 <= eps2:
                        oj = order[cpos[j]]
                        if d2 < best or (d2 == best and oj < best_idx):
                            best = d2
                            best_idx = oj
                            best_cell = c2
        if best_cell >= 0:
            root[i] = _find(parent, best_cell)
    # Number clusters by the smallest original index of their core points.
    inv = np.empty(n, np.int64)
    for p in range(n):
        inv[order[p]] = p
    cid = np.full(ncell, -1, np.int64)
    nxt = 0
    labels = np.full(n, -1, np.int64)
    for i in range(n):
        p = inv[i]
        if core[p]:
            rt = root[p]
            if cid[rt] == -1:
                cid[rt] = nxt
                nxt += 1
    for i in range(n):
        rt = root[inv[i]]
        if rt >= 0:
            labels[i] = cid[rt]
    return labels


@numba.njit(cache=True, nogil=True)
def _bounds(X):
    x0 = X[0, 0]
    y0 = X[0, 1]
    x1 = x0
    y1 = y0
    for i in range(1, X.shape[0]):
        x = X[i, 0]
        y = X[i, 1]
        if x < x0:
            x0 = x
        elif x > x1:
            x1 = x
        if y < y0:
            y0 = y
        elif y > y1:
            y1 = y
    return x0, y0, x1, y1


@numba.njit(cache=True, nogil=True)
def _dense_neighbour_cell_ranges(keys, stride, nkeys):
    """As _neighbour_cell_ranges, by a lookup table over the whole key range."""
    ncell = keys.shape[0]
    # first[k]: index of the first cell whose key is >= k.
    first = np.empty(nkeys + 1, np.int64)
    c = 0
    for k in range(nkeys + 1):
        while c < ncell and keys[c] < k:
            c += 1
        first[k] = c
    lo = np.empty((ncell, _ROWS), np.int64)
    hi = np.empty((ncell, _ROWS), np.int64)
    for c in range(ncell):
        k = keys[c]
        for r in range(_ROWS):
            base = k + (r - _REACH) * stride
            lo[c, r] = first[base - _REACH]
            hi[c, r] = first[base + _REACH + 1]
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _cell_keys(X, x0, y0, inv_side, stride):
    n = X.shape[0]
    key = np.empty(n, np.int64)
    for i in range(n):
        gx = np.int64(math.floor((X[i, 0] - x0) * inv_side)) + _REACH
        gy = np.int64(math.floor((X[i, 1] - y0) * inv_side)) + _REACH
        key[i] = gx * stride + gy
    return key


@numba.njit(cache=True, nogil=True)
def _counting_sort(key, nkeys):
    """Stable counting sort of keys in [0, nkeys): (order, cell_start, cell_keys)."""
    n = key.shape[0]
    count = np.zeros(nkeys + 1, np.int64)
    for i in range(n):
        count[key[i] + 1] += 1
    ncell = 0
    for k in range(1, nkeys + 1):
        if count[k] > 0:
            ncell += 1
        count[k] += count[k - 1]
    order = np.empty(n, np.int64)
    pos = count[:-1].copy()
    for i in range(n):
        k = key[i]
        order[pos[k]] = i
        pos[k] += 1
    cell_start = np.empty(ncell + 1, np.int64)
    keys = np.empty(ncell, np.int64)
    c = 0
    for k in range(nkeys):
        if count[k + 1] > count[k]:
            cell_start[c] = count[k]
            keys[c] = k
            c += 1
    cell_start[ncell] = n
    return order, cell_start, keys


@numba.njit(cache=True, nogil=True)
def _gather(X, order, w):
    n = order.shape[0]
    xs = np.empty(n, np.float64)
    ys = np.empty(n, np.float64)
    ws = np.empty(n, np.float64)
    for p in range(n):
        i = order[p]
        xs[p] = X[i, 0]
        ys[p] = X[i, 1]
        ws[p] = w[i]
    return xs, ys, ws


@numba.njit(cache=True, nogil=True)
def _dbscan(X, w, nonneg, eps, min_samples, side, stride, nkeys, dense):
    """The whole pipeline in one compiled function (one cache entry to load)."""
    n = X.shape[0]
    x0, y0, _, _ = _bounds(X)
    key = _cell_keys(X, x0, y0, 1.0 / side, stride)
    if dense:
        # A linear-time counting sort and a lookup table beat sorting and binary search.
        order, cell_start, keys = _counting_sort(key, nkeys)
        nb_lo, nb_hi = _dense_neighbour_cell_ranges(keys, stride, nkeys)
    else:
        order = np.argsort(key, kind="mergesort")
        ncell = 1
        for p in range(1, n):
            if key[order[p]] != key[order[p - 1]]:
                ncell += 1
        cell_start = np.empty(ncell + 1, np.int64)
        keys = np.empty(ncell, np.int64)
        cell_start[0] = 0
        keys[0] = key[order[0]]
        c = 1
        for p in range(1, n):
            k = key[order[p]]
            if k != key[order[p - 1]]:
                cell_start[c] = p
                keys[c] = k
                c += 1
        cell_start[ncell] = n
        nb_lo, nb_hi = _neighbour_cell_ranges(keys, stride)
    xs, ys, ws = _gather(X, order, w)
    eps2 = eps * eps
    core_sorted = _core_flags(xs, ys, ws, cell_start, nb_lo, nb_hi, eps2, min_samples, nonneg)
    parent, cs, cx, cy, cpos, _ = _cluster_cells(
        xs, ys, core_sorted, cell_start, keys, stride, nb_lo, nb_hi, eps2
    )
    labels = _assign_labels(
        xs, ys, core_sorted, order, cell_start, nb_lo, nb_hi, eps2, parent, cs, cx, cy, cpos
    )
    core = np.empty(n, np.bool_)
    for p in range(n):
        core[order[p]] = core_sorted[p]
    return labels, core


def _fit(X, eps, min_samples, w):
    n = X.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.zeros(0, bool)
    side = eps / math.sqrt(2.0) * (1.0 - _CELL_MARGIN)
    # Column-wise reductions: X.min(axis=0) on a C-ordered (n, 2) array is 20x slower.
    span = np.array([X[:, 0].max() - X[:, 0].min(), X[:, 1].max() - X[:, 1].min()])
    ncells_axis = span / side
    if (ncells_axis > _MAX_CELLS_PER_AXIS).any():
        raise InvalidInput(
            f"expected eps_m large enough for the data extent (at most "
            f"{_MAX_CELLS_PER_AXIS:.0e} eps-cells per axis), got eps_m={eps!r} over an "
            f"extent of {span[0]:.6g} x {span[1]:.6g} m; are the coordinates in metres?"
        )
    stride = int(ncells_axis[1]) + 2 * _REACH + 3
    nkeys = (int(ncells_axis[0]) + 2 * _REACH + 3) * stride
    dense = nkeys <= 4 * n + 1_000_000
    nonneg = w is None or bool((w >= 0).all())
    ww = np.ones(n, np.float64) if w is None else w
    return _dbscan(X, ww, nonneg, eps, float(min_samples), side, stride, nkeys, dense)


class GridDBSCAN:
    """Exact DBSCAN on planar coordinates in metres, without storing neighbourhoods.

    Parameters
    ----------
    eps_m : float
        Neighbourhood radius in metres (> 0), the ``eps`` of scikit-learn's DBSCAN.
    min_samples : float, default 5
        Weighted number of points within ``eps_m`` (the point itself included) for a
        point to be core (>= 1). Non-integer values make sense with ``sample_weight``.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
        Cluster id per point; noise is ``-1``. Clusters are numbered 0, 1, ... by the
        smallest index of their core points (scikit-learn's numbering).
    core_sample_indices_ : ndarray of shape (n_core,), int64
        Indices of core points, ascending.
    components_ : ndarray of shape (n_core, 2)
        Coordinates of the core points.
    n_clusters_ : int
        Number of clusters found.

    Notes
    -----
    Ester, M., Kriegel, H.-P., Sander, J., Xu, X. (1996). A density-based algorithm for
    discovering clusters in large spatial databases with noise. KDD-96. The grid scheme
    follows Gunawan, A. (2013), *A faster algorithm for DBSCAN*, MSc thesis, TU Eindhoven.
    See the module docstring for details and for how border points are assigned.
    """

    def __init__(self, eps_m: float, *, min_samples: float = 5) -> None:
        self.eps_m = eps_m
        self.min_samples = min_samples

    def fit(self, X, y=None, sample_weight=None) -> GridDBSCAN:
        """Cluster the points.

        Parameters
        ----------
        X : array-like of shape (n, 2)
            Coordinates in a projected CRS, metres.
        y : ignored
            Present for scikit-learn API compatibility.
        sample_weight : array-like of shape (n,), optional
            Weight of each point in the core test (e.g. employees). Negative weights
            are allowed, as in scikit-learn.

        Returns
        -------
        GridDBSCAN
            ``self``, fitted.
        """
        eps = check_positive(self.eps_m, "eps_m")
        min_samples = check_min_count(self.min_samples, "min_samples", real=True)
        X = check_points(X)
        w = check_weights(sample_weight, X.shape[0])
        labels, core = _fit(X, eps, min_samples, w)
        self.labels_ = labels
        self.core_sample_indices_ = np.flatnonzero(core).astype(np.int64)
        self.components_ = X[core].copy()
        self.n_clusters_ = int(labels.max()) + 1 if labels.size else 0
        return self

    def fit_predict(self, X, y=None, sample_weight=None) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_


def dbscan(X, *, eps_m: float, min_samples: float = 5, sample_weight=None) -> np.ndarray:
    """Exact DBSCAN labels of planar points (see :class:`GridDBSCAN`).

    Parameters
    ----------
    X : array-like of shape (n, 2)
        Coordinates in metres (projected CRS).
    eps_m : float
        Neighbourhood radius in metres.
    min_samples : float
        Weighted neighbourhood size (point itself included) for a core point.
    sample_weight : array-like of shape (n,), optional
        Point weights for the core test.

    Returns
    -------
    ndarray of shape (n,), int64
        Cluster labels, noise ``-1``.
    """
    return GridDBSCAN(eps_m, min_samples=min_samples).fit(X, sample_weight=sample_weight).labels_


def warm_up() -> None:
    """Load the compiled DBSCAN code now rather than on the first real call.

    The first numba call in a process pays numba's one-off runtime start (about 0.3 s
    here) plus loading the cached machine code (``cache=True``; compiling from scratch
    takes about 4-10 s and happens once per installation). A server can call this at
    start-up so that the first request does not pay it.
    """
    _fit(np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]]), 1.5, 2.0, None)
