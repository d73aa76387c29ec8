"""Vectorised point-in-polygon: which region does each firm lie in.

The join answers ``geopandas.sjoin(points, regions, predicate=...)`` for the common case of
many points and non-overlapping regions, several times faster. Most points are resolved by a
raster lookup: the regions are burnt into a grid; every grid cell that no region boundary
touches (the boundaries burnt with ``all_touched``) lies wholly inside one region or wholly
outside all, so the region of its centre is the region of every point in it. Only the points
in boundary cells, or on a grid line, go through the exact test (a shapely ``STRtree`` query
with the requested predicate), so points on or near a boundary get exactly the answer
shapely gives.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from geocluster.errors import InvalidInput

__all__ = ["assign_regions", "assign_regions_xy"]

_PREDICATES = ("within", "intersects")
_MAX_CELLS = 2048 * 2048
#: points closer than this (in cells) to a grid line take the exact path
_GRID_TOL = 1e-6
#: fewer points than this go straight to the exact test (burning a raster costs more)
_MIN_GRID_POINTS = 2000
#: points handled per step of the raster lookup (its temporaries stay in the CPU cache)
_BLOCK = 1 << 15
#: raster code of a cell that a region boundary touches
_UNSURE = -2


def assign_regions(
    points_xy: np.ndarray,
    regions: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    predicate: str = "within",
    cells: int | None = None,
) -> np.ndarray:
    """Region row of each point (point-in-polygon join).

    Parameters
    ----------
    points_xy : ndarray, shape (n, 2)
        Point coordinates in the CRS of ``regions`` (any CRS; nothing is reprojected).
    regions : GeoDataFrame or GeoSeries
        Polygons (or multipolygons), assumed not to overlap. Where they do overlap, a point
        gets the lowest row position of the regions that contain it.
    predicate : {"within", "intersects"}
        ``"within"``: the point lies in the interior (a point on a boundary belongs to no
        region, as with ``geopandas.sjoin(..., predicate="within")``); ``"intersects"``: on
        the boundary counts too (a point on a shared edge gets the lower row position).
    cells : int, optional
        Number of raster cells used for the fast path. Default: about 4 per point, at least
        ``64 * len(regions)``, at most 2048².

    Returns
    -------
    ndarray of int64, shape (n,)
        Row *position* (0..len(regions)-1) in ``regions``, ``-1`` for points in no region or
        with a non-finite coordinate.

    Raises
    ------
    InvalidInput
        If ``points_xy`` is not an (n, 2) numeric array, ``predicate`` is unknown or the
        regions are not polygons.
    """
    pts = np.asarray(points_xy)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.issubdtype(pts.dtype, np.number):
        raise InvalidInput(f"expected points_xy as a numeric (n, 2) array, got shape {pts.shape}")
    pts = pts.astype(np.float64, copy=False)
    return assign_regions_xy(pts[:, 0], pts[:, 1], regions, predicate=predicate, cells=cells)


def assign_regions_xy(
    x: np.ndarray,
    y: np.ndarray,
    regions: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    predicate: str = "within",
    cells: int | None = None,
) -> np.ndarray:
    """:func:`assign_regions` of points given as two coordinate arrays.

    For a table's ``x`` and ``y`` columns as they are: no (n, 2) copy of a register.

    Parameters
    ----------
    x, y : ndarray of float, shape (n,)
        Point coordinates in the CRS of ``regions``.
    regions, predicate, cells
        As for :func:`assign_regions`.

    Returns
    -------
    ndarray of int64, shape (n,)
        As :func:`assign_regions`.

    Raises
    ------
    InvalidInput
        As :func:`assign_regions`, or ``x`` and ``y`` not numeric arrays of one length.
    """
    x, y = np.asarray(x), np.asarray(y)
    if (
        x.ndim != 1
        or x.shape != y.shape
        or not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number))
    ):
        raise InvalidInput(
            f"expected x and y as numeric arrays of one length, got shapes {x.shape}, {y.shape}"
        )
    if predicate not in _PREDICATES:
        raise InvalidInput(f"expected predicate in {_PREDICATES}, got {predicate!r}")
    geoms = np.asarray(regions.geometry.values if hasattr(regions, "geometry") else regions)
    n = len(x)
    if n == 0 or len(geoms) == 0:
        return np.full(n, -1, dtype=np.int64)
    types = shapely.get_type_id(geoms)
    if not np.all(np.isin(types, (3, 6)) | shapely.is_missing(geoms) | shapely.is_empty(geoms)):
        raise InvalidInput("expected polygon regions, got other geometry types")
    x = x.astype(np.float64, copy=False)
    y = y.astype(np.float64, copy=False)

    valid_geoms = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    # A region the working CRS cannot hold (world countries projected for Mexico's
    # firms) comes back with infinite coordinates: no firm can be assigned to it, and
    # its bounds must not turn the grid's cell size into NaN.
    with np.errstate(invalid="ignore"):
        valid_geoms &= np.isfinite(shapely.bounds(geoms)).all(axis=1)
    if not valid_geoms.any():
        return np.full(n, -1, dtype=np.int64)
    box = shapely.total_bounds(geoms[valid_geoms])
    minx, miny, maxx, maxy = box
    width, height = maxx - minx, maxy - miny
    if width <= 0 or height <= 0 or n < _MIN_GRID_POINTS:
        out = np.full(n, -1, dtype=np.int64)
        cand = np.flatnonzero(_in_box(x, y, box))
        if len(cand):
            out[cand] = _exact(x[cand], y[cand], geoms, predicate)
        return out

    n_cells = cells or int(min(_MAX_CELLS, max(4 * n, 64 * len(geoms))))
    size = np.sqrt(width * height / n_cells)
    nx = max(1, int(np.ceil(width / size)))
    ny = max(1, int(np.ceil(height / size)))
    sx, sy = width / nx, height / ny
    # one cell of padding on every side keeps the outer boundary inside the raster
    x0, y0, nx, ny = minx - sx, maxy + sy, nx + 2, ny + 2
    code = _burn(geoms, valid_geoms, x0, y0, sx, sy, nx, ny)
    out = np.empty(n, dtype=np.int64)  # every point gets its raster answer
    hard = _lookup(x, y, code, x0, y0, sx, sy, out)
    if len(hard):
        # the exact test only for finite points within the regions' bounds; the others
        # lie in a padding cell that a boundary happens to touch: in no region
        out[hard] = -1
        hard = hard[_in_box(x[hard], y[hard], box)]
    if len(hard):
        out[hard] = _exact(x[hard], y[hard], geoms, predicate)
    return out


def _in_box(x: np.ndarray, y: np.ndarray, box) -> np.ndarray:
    """Points within the box, edges included (a NaN coordinate compares false)."""
    minx, miny, maxx, maxy = box
    return (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)


def _lookup(x, y, code, x0, y0, sx, sy, out) -> np.ndarray:
    """Raster answer of every point into ``out``; the positions needing the exact test.

    Works through the points in blocks of :data:`_BLOCK`, so that the dozen temporaries
    per point stay in the CPU cache and are allocated once (on 5M points several times
    faster than whole-array NumPy). A point outside the raster (or non-finite) is clamped
    to the middle of an edge column or row, which is padding: ``-1``, or a boundary cell
    whose points go to the exact test anyway.
    """
    ny, nx = code.shape
    flat_code = code.ravel()
    n = len(x)
    m = min(n, _BLOCK)
    fx, fy, frac = (np.empty(m) for _ in range(3))
    ix, iy = np.empty(m, np.intp), np.empty(m, np.intp)
    near, tmp = np.empty(m, bool), np.empty(m, bool)
    got = np.empty(m, code.dtype)
    inv_sx, inv_sy = 1.0 / sx, 1.0 / sy
    hard = []
    with np.errstate(all="ignore"):  # huge or non-finite coordinates are clamped below
        for start in range(0, n, _BLOCK):
            k = min(_BLOCK, n - start)
            s = slice(0, k)
            np.subtract(x[start : start + k], x0, out=fx[s])
            np.multiply(fx[s], inv_sx, out=fx[s])
            np.subtract(y0, y[start : start + k], out=fy[s])
            np.multiply(fy[s], inv_sy, out=fy[s])
            # fmax/fmin turn NaN into the bound: a non-finite point lands in padding
            np.fmax(fx[s], 0.5, out=fx[s])
            np.fmin(fx[s], nx - 0.5, out=fx[s])
            np.fmax(fy[s], 0.5, out=fy[s])
            np.fmin(fy[s], ny - 0.5, out=fy[s])
            ix[s] = fx[s]  # truncation is the floor: the values are positive
            iy[s] = fy[s]
            # a point on (or within rounding of) a grid line may belong to the
            # neighbouring cell: exact test
            np.subtract(fx[s], ix[s], out=frac[s])
            np.less(frac[s], _GRID_TOL, out=near[s])
            np.greater(frac[s], 1.0 - _GRID_TOL, out=tmp[s])
            near[s] |= tmp[s]
            np.subtract(fy[s], iy[s], out=frac[s])
            np.less(frac[s], _GRID_TOL, out=tmp[s])
            near[s] |= tmp[s]
            np.greater(frac[s], 1.0 - _GRID_TOL, out=tmp[s])
            near[s] |= tmp[s]
            np.multiply(iy[s], nx, out=iy[s])
            np.add(iy[s], ix[s], out=iy[s])
            np.take(flat_code, iy[s], out=got[s])
            np.equal(got[s], _UNSURE, out=tmp[s])
            near[s] |= tmp[s]
            out[start : start + k] = got[s]
            idx = np.flatnonzero(near[s])
            if len(idx):
                hard.append(idx + start)
    return np.concatenate(hard) if hard else np.zeros(0, np.intp)


def _burn(geoms, valid, minx, maxy, sx, sy, nx, ny) -> np.ndarray:
    """Raster of region positions (by cell centre), :data:`_UNSURE` where a boundary touches.

    A cell that no boundary touches lies wholly inside one region or outside all, so its
    centre's region is every interior point's region. A boundary running exactly along a
    grid line may be burnt on one side only; the cells on the other side do not meet it
    except on their edge, and points on cell edges are sent to the exact test by the caller.
    """
    from rasterio import features
    from rasterio.transform import Affine

    transform = Affine(sx, 0.0, minx, 0.0, -sy, maxy)
    idx = np.flatnonzero(valid)
    # burn in reverse so that the lowest position wins where regions overlap
    shapes = ((geoms[i], int(i)) for i in idx[::-1])
    # int16 while positions fit: half the memory the lookup gathers from
    dtype = "int16" if len(geoms) < np.iinfo(np.int16).max else "int32"
    label = features.rasterize(
        shapes, out_shape=(ny, nx), transform=transform, fill=-1, dtype=dtype
    )
    boundaries = shapely.boundary(geoms[idx])
    unsure = features.rasterize(
        ((b, 1) for b in boundaries),
        out_shape=(ny, nx),
        transform=transform,
        fill=0,
        all_touched=True,
        dtype="uint8",
    )
    label[unsure.view(bool)] = _UNSURE
    return label


def _exact(x: np.ndarray, y: np.ndarray, geoms: np.ndarray, predicate: str) -> np.ndarray:
    """Exact join of a few points with shapely's STRtree; lowest region position wins."""
    out = np.full(len(x), -1, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    points = shapely.points(x, y)
    p_idx, r_idx = tree.query(points, predicate="within" if predicate == "within" else "intersects")
    if len(p_idx):
        order = np.lexsort((r_idx, p_idx))
        p_idx, r_idx = p_idx[order], r_idx[order]
        first = np.ones(len(p_idx), bool)
        first[1:] = p_idx[1:] != p_idx[:-1]
        out[p_idx[first]] = r_idx[first]
    return out
