"""Exact DBSCAN by spatial tiles with halos, merged by union-find.

The plane is cut into rectangular tiles (a k-d split of a sample of the points, so dense
areas get small tiles). Each point is *owned* by exactly one tile. A tile task reads the
points within ``2 eps`` of its tile (the halo) and runs the grid DBSCAN kernel of
:mod:`geocluster.clustering.dbscan` on them, with one change: a point's core flag is kept
only when its whole eps-neighbourhood lies in what the task read, i.e. for the points
within ``eps`` of the tile (*trusted* points); the others are treated as non-core.

Why this is exact:

* the core flag of a trusted point is the global one (its neighbourhood was read);
* every core--core edge with an owned endpoint ``p`` is seen in ``p``'s tile: the other
  end is within eps of ``p``, hence trusted, hence known to be core there;
* so the union over tiles of "trusted core points in the same local cluster", joined at
  the core points that appear in several tiles, is the global core partition;
* an owned border point sees every core point within eps of it (all trusted) and picks
  the nearest, ties to the smaller row index -- the local engine's rule. Rows inside a
  task keep source order, so local index order is row order.

Clusters are finally numbered 0, 1, ... by the smallest row index of their core points,
the local engine's (and scikit-learn's) numbering.

Floating point: "within eps" is ``dx*dx + dy*dy <= eps*eps``, which implies
``|dx| <= eps (1 + 1e-15)``; the trusted and read boxes are grown by a relative margin far
larger than that, so rounding can never hide a neighbour from a task.
"""

from __future__ import annotations

import importlib
import math

import numba
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geocluster.errors import InvalidInput

# The module, not the function of the same name that geocluster.clustering exports
# (import_module returns the module whatever the package attribute holds).
_k = importlib.import_module("geocluster.clustering.dbscan")

#: Relative slack of the trusted box (x eps); the read box gets twice as much.
_MARGIN = 1e-6


def halo_boxes(tile, eps: float):
    """``(trusted_box, read_box)`` of a tile ``(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = tile
    t = eps * (1.0 + _MARGIN)
    r = eps * (2.0 + 4 * _MARGIN)
    return (x0 - t, y0 - t, x1 + t, y1 + t), (x0 - r, y0 - r, x1 + r, y1 + r)


def in_box(X: np.ndarray, box, *, half_open: bool = False) -> np.ndarray:
    """Points in ``box``: closed, or ``[x0, x1) x [y0, y1)`` (ownership) when half_open."""
    x0, y0, x1, y1 = box
    x = X[:, 0]
    y = X[:, 1]
    if half_open:
        return (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def plan_tiles(sample: np.ndarray, n_tiles: int) -> list[tuple[float, float, float, float]]:
    """Cut the plane into about ``n_tiles`` tiles holding similar numbers of sample points.

    A k-d split: repeatedly halve the fullest tile at the median of its points along its
    wider axis. Outer tiles are unbounded, so the tiles cover the plane and every point
    has exactly one owner.
    """
    inf = math.inf
    tiles = [((-inf, -inf, inf, inf), sample)]
    while len(tiles) < n_tiles:
        k = max(range(len(tiles)), key=lambda i: len(tiles[i][1]))
        box, pts = tiles[k]
        if len(pts) < 2:
            break
        span = pts.max(axis=0) - pts.min(axis=0)
        order = np.argsort(-span)
        done = False
        for axis in order:
            v = pts[:, axis]
            cut = float(np.median(v))
            left = v < cut
            if not left.any():  # the median is the minimum: cut above it instead
                above = v[v > cut]
                if above.size == 0:
                    continue
                cut = float(above.min())
                left = v < cut
            lo = list(box)
            hi = list(box)
            lo[2 + axis] = cut
            hi[axis] = cut
            tiles[k] = (tuple(lo), pts[left])
            tiles.append((tuple(hi), pts[~left]))
            done = True
            break
        if not done:
            # All sample points of the fullest tile coincide: it cannot be split.
            break
    return [b for b, _ in tiles]


@numba.njit(cache=True, nogil=True)
def _tile_dbscan(X, w, trusted, nonneg, eps, min_samples, side, stride, nkeys, dense):
    """The kernel of ``dbscan._dbscan`` with core flags masked to trusted points."""
    n = X.shape[0]
    x0, y0, _, _ = _k._bounds(X)
    key = _k._cell_keys(X, x0, y0, 1.0 / side, stride)
    if dense:
        order, cell_start, keys = _k._counting_sort(key, nkeys)
        nb_lo, nb_hi = _k._dense_neighbour_cell_ranges(keys, stride, nkeys)
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
        nb_lo, nb_hi = _k._neighbour_cell_ranges(keys, stride)
    xs, ys, ws = _k._gather(X, order, w)
    eps2 = eps * eps
    core_sorted = _k._core_flags(xs, ys, ws, cell_start, nb_lo, nb_hi, eps2, min_samples, nonneg)
    for p in range(n):
        if not trusted[order[p]]:
            core_sorted[p] = False
    parent, cs, cx, cy, cpos, _ = _k._cluster_cells(
        xs, ys, core_sorted, cell_start, keys, stride, nb_lo, nb_hi, eps2
    )
    labels = _k._assign_labels(
        xs, ys, core_sorted, order, cell_start, nb_lo, nb_hi, eps2, parent, cs, cx, cy, cpos
    )
    core = np.empty(n, np.bool_)
    for p in range(n):
        core[order[p]] = core_sorted[p]
    return labels, core


def tile_dbscan(X, w, trusted, eps: float, min_samples: float):
    """Local labels and (trusted) core flags of one tile's points, as in ``dbscan._fit``."""
    n = X.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.zeros(0, bool)
    side = eps / math.sqrt(2.0) * (1.0 - _k._CELL_MARGIN)
    span = np.array([X[:, 0].max() - X[:, 0].min(), X[:, 1].max() - X[:, 1].min()])
    ncells_axis = span / side
    if (ncells_axis > _k._MAX_CELLS_PER_AXIS).any():
        raise InvalidInput(
            f"expected eps_m large enough for the data extent, got eps_m={eps!r} over an "
            f"extent of {span[0]:.6g} x {span[1]:.6g} m; are the coordinates in metres?"
        )
    stride = int(ncells_axis[1]) + 2 * _k._REACH + 3
    nkeys = (int(ncells_axis[0]) + 2 * _k._REACH + 3) * stride
    dense = nkeys <= 4 * n + 1_000_000
    nonneg = w is None or bool((w >= 0).all())
    ww = np.ones(n, np.float64) if w is None else np.ascontiguousarray(w, np.float64)
    return _tile_dbscan(
        np.ascontiguousarray(X),
        ww,
        np.ascontiguousarray(trusted, np.bool_),
        nonneg,
        float(eps),
        float(min_samples),
        side,
        stride,
        nkeys,
        dense,
    )


def run_tile(gid, X, w, tile, eps: float, min_samples: float):
    """One tile task on the points it read (``gid`` ascending).

    Returns
    -------
    dict
        ``gid``, ``label``, ``core`` of the owned points (label: local cluster, -1 noise),
        and ``link_gid``, ``link_label`` of the trusted core points it does *not* own.
    """
    trusted_box, _ = halo_boxes(tile, eps)
    trusted = in_box(X, trusted_box)
    labels, core = tile_dbscan(X, w, trusted, eps, min_samples)
    owned = in_box(X, tile, half_open=True)
    link = core & ~owned
    return {
        "gid": gid[owned],
        "label": labels[owned],
        "core": core[owned],
        "link_gid": gid[link],
        "link_label": labels[link],
    }


def _gid_order(gid: np.ndarray) -> np.ndarray:
    """``argsort(gid)`` for distinct gids; linear time when they are dense (no filter)."""
    if gid.size == 0 or int(gid.max()) >= 4 * gid.size:
        return np.argsort(gid, kind="stable")
    slot = np.full(int(gid.max()) + 1, -1, np.int64)
    slot[gid] = np.arange(gid.size)
    # A duplicate gid would leave fewer filled slots; the caller checks distinctness.
    return (
        slot[slot >= 0]
        if np.count_nonzero(slot >= 0) == gid.size
        else np.argsort(gid, kind="stable")
    )


def merge_tiles(parts: list[dict], *, maps: bool = False):
    """Global ``(gid, labels, core)`` (gid ascending) from the tile results.

    With ``maps``, also each tile's global cluster of each of its local labels
    (``maps[t][local]``), so that a tile's owned points can be labelled where they are.
    """
    offsets = [0]
    for p in parts:
        nl = int(p["label"].max()) + 1 if p["label"].size else 0
        nl = max(nl, int(p["link_label"].max()) + 1 if p["link_label"].size else 0)
        offsets.append(offsets[-1] + nl)
    n_nodes = offsets[-1]
    gid = np.concatenate([p["gid"] for p in parts]) if parts else np.zeros(0, np.int64)
    core = np.concatenate([p["core"] for p in parts]) if parts else np.zeros(0, bool)
    node = (
        np.concatenate(
            [np.where(p["label"] >= 0, p["label"] + off, -1) for p, off in zip(parts, offsets)]
        )
        if parts
        else np.zeros(0, np.int64)
    )
    order = _gid_order(gid)
    gid, core, node = gid[order], core[order], node[order]
    if gid.size and np.any(gid[1:] == gid[:-1]):
        raise RuntimeError("a point is owned by two tiles")  # a bug, never user input
    # Links: a non-owned trusted core point joins its local cluster to its owner's.
    lg = np.concatenate([p["link_gid"] for p in parts]) if parts else np.zeros(0, np.int64)
    ln = (
        np.concatenate([p["link_label"] + off for p, off in zip(parts, offsets)])
        if parts
        else np.zeros(0, np.int64)
    )
    pos = np.searchsorted(gid, lg)
    if lg.size and (np.any(pos >= gid.size) or np.any(gid[np.minimum(pos, gid.size - 1)] != lg)):
        raise RuntimeError("a halo point has no owner")
    owner_node = node[pos]
    if np.any(~core[pos]) or np.any(owner_node < 0):
        raise RuntimeError("a point is core in a halo but not in its own tile")
    graph = coo_matrix((np.ones(lg.size, np.int8), (ln, owner_node)), shape=(n_nodes, n_nodes))
    _, comp = connected_components(graph, directed=False)
    # Number components by the smallest gid of their core points.
    labels = np.full(gid.size, -1, np.int64)
    has = node >= 0
    cc = comp[node[has]]
    # gid is ascending, so a component's first core point in this order has its smallest gid.
    used, first = np.unique(comp[node[core]], return_index=True)
    rank = np.full(n_nodes, -1, np.int64)
    rank[used[np.argsort(first, kind="stable")]] = np.arange(used.size)
    labels[has] = rank[cc]
    if maps:
        glob = rank[comp] if n_nodes else np.zeros(0, np.int64)
        return gid, labels, core, [glob[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return gid, labels, core
