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

__all__ = ["assign_regions"]

_PREDICATES = ("within", "intersects")
_MAX_CELLS = 4096 * 4096
#: points closer than this (in cells) to a grid line take the exact path
_GRID_TOL = 1e-6


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
        ``64 * len(regions)``, at most 4096².

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
    if predicate not in _PREDICATES:
        raise InvalidInput(f"expected predicate in {_PREDICATES}, got {predicate!r}")
    geoms = np.asarray(regions.geometry.values if hasattr(regions, "geometry") else regions)
    n = len(pts)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(geoms) == 0:
        return out
    types = shapely.get_type_id(geoms)
    if not np.all(np.isin(types, (3, 6)) | shapely.is_missing(geoms) | shapely.is_empty(geoms)):
        raise InvalidInput("expected polygon regions, got other geometry types")
    pts = pts.astype(np.float64, copy=False)
    finite = np.isfinite(pts).all(axis=1)

    valid_geoms = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    # A region the working CRS cannot hold (world countries projected for Mexico's
    # firms) comes back with infinite coordinates: no firm can be assigned to it, and
    # its bounds must not turn the grid's cell size into NaN.
    with np.errstate(invalid="ignore"):
        valid_geoms &= np.isfinite(shapely.bounds(geoms)).all(axis=1)
    if not valid_geoms.any():
        return out
    minx, miny, maxx, maxy = shapely.total_bounds(geoms[valid_geoms])
    inside_box = (
        finite
        & (pts[:, 0] >= minx)
        & (pts[:, 0] <= maxx)
        & (pts[:, 1] >= miny)
        & (pts[:, 1] <= maxy)
    )
    cand = np.flatnonzero(inside_box)
    if len(cand) == 0:
        return out

    width, height = maxx - minx, maxy - miny
    if width <= 0 or height <= 0 or len(cand) < 2000:
        out[cand] = _exact(pts[cand], geoms, predicate)
        return out

    n_cells = cells or int(min(_MAX_CELLS, max(4 * len(cand), 64 * len(geoms))))
    size = np.sqrt(width * height / n_cells)
    nx = max(1, int(np.ceil(width / size)))
    ny = max(1, int(np.ceil(height / size)))
    sx, sy = width / nx, height / ny
    # one cell of padding on every side keeps the outer boundary inside the raster
    x0, y0, nx, ny = minx - sx, maxy + sy, nx + 2, ny + 2
    label, unsure = _burn(geoms, valid_geoms, x0, y0, sx, sy, nx, ny)

    fx = (pts[cand, 0] - x0) / sx
    fy = (y0 - pts[cand, 1]) / sy
    col = np.clip(fx.astype(np.int64), 0, nx - 1)
    row = np.clip(fy.astype(np.int64), 0, ny - 1)
    flat = row * nx + col
    # a point on (or within rounding of) a grid line may belong to the neighbouring cell
    near_x = np.abs(fx - np.rint(fx)) < _GRID_TOL
    near_y = np.abs(fy - np.rint(fy)) < _GRID_TOL
    hard = unsure.ravel()[flat] | near_x | near_y
    out[cand[~hard]] = label.ravel()[flat[~hard]]
    hard_idx = cand[hard]
    if len(hard_idx):
        out[hard_idx] = _exact(pts[hard_idx], geoms, predicate)
    return out


def _burn(geoms, valid, minx, maxy, sx, sy, nx, ny):
    """Burn region positions (by cell centre) and the cells any boundary touches.

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
    label = features.rasterize(
        shapes, out_shape=(ny, nx), transform=transform, fill=-1, dtype="int32"
    )
    boundaries = shapely.boundary(geoms[idx])
    unsure = features.rasterize(
        ((b, 1) for b in boundaries),
        out_shape=(ny, nx),
        transform=transform,
        fill=0,
        all_touched=True,
        dtype="uint8",
    ).astype(bool)
    return label, unsure


def _exact(pts: np.ndarray, geoms: np.ndarray, predicate: str) -> np.ndarray:
    """Exact join of a few points with shapely's STRtree; lowest region position wins."""
    out = np.full(len(pts), -1, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    points = shapely.points(pts)
    p_idx, r_idx = tree.query(points, predicate="within" if predicate == "within" else "intersects")
    if len(p_idx):
        order = np.lexsort((r_idx, p_idx))
        p_idx, r_idx = p_idx[order], r_idx[order]
        first = np.ones(len(p_idx), bool)
        first[1:] = p_idx[1:] != p_idx[:-1]
        out[p_idx[first]] = r_idx[first]
    return out
