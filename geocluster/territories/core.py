"""Pure building blocks of region profiles, comparisons and peer regions.

No I/O: every function takes frames/arrays and returns frames/arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geocluster.errors import CRSError, InvalidInput

__all__ = [
    "area_km2",
    "assign_points",
    "location_quotients",
    "nearest_peers",
    "rank_descending",
    "strong_cluster_flags",
]


def area_km2(geometries) -> np.ndarray:
    """Geodesic area of each polygon on the WGS84 ellipsoid, in km².

    Parameters
    ----------
    geometries : geopandas.GeoSeries
        Polygons in any CRS (the series must carry it); they are taken to lon/lat.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Areas in square kilometres (exact on the ellipsoid, independent of any
        projection's distortion).
    """
    from pyproj import Geod

    if geometries.crs is None:
        raise CRSError("expected region geometries with a CRS to measure areas, got none")
    ll = geometries.to_crs("EPSG:4326")
    geod = Geod(ellps="WGS84")
    out = np.empty(len(ll))
    for k, geom in enumerate(ll.to_numpy()):
        if geom is None or geom.is_empty:
            out[k] = np.nan
            continue
        area, _ = geod.geometry_area_perimeter(geom)
        out[k] = abs(area) / 1e6
    return out


def assign_points(points, regions, *, region_col: str = "region_id") -> pd.Series:
    """Region of each point (first region containing it; NaN outside every region).

    Parameters
    ----------
    points : geopandas.GeoDataFrame
        Point features (any geometry: its representative point is used).
    regions : geopandas.GeoDataFrame
        Polygons with ``region_col``; must share the points' CRS.

    Returns
    -------
    pandas.Series
        Indexed like ``points``; values from ``region_col`` (object dtype).
    """
    import geopandas as gpd

    if points.crs != regions.crs:
        raise CRSError(f"points are in {points.crs}, regions in {regions.crs}: expected one CRS")
    if len(points) == 0:
        return pd.Series([], index=points.index, dtype=object)
    geom = points.geometry
    if not (geom.geom_type == "Point").all():
        geom = geom.representative_point()
    pts = gpd.GeoDataFrame(
        {"_pos": np.arange(len(points))}, geometry=geom.to_numpy(), crs=points.crs
    )
    joined = gpd.sjoin(
        pts, regions[[region_col, regions.geometry.name]], how="left", predicate="intersects"
    )
    joined = joined.sort_values("_pos", kind="stable").drop_duplicates("_pos")
    return pd.Series(joined[region_col].to_numpy(dtype=object), index=points.index)


def rank_descending(values: pd.Series) -> pd.Series:
    """Rank 1 = highest value; ties share the best rank (``method="min"``); NaN stays NaN."""
    return values.rank(ascending=False, method="min")


def location_quotients(table: pd.DataFrame) -> pd.DataFrame:
    """Location quotients of a region x sector table of counts or employment.

    ``LQ_rs = (e_rs / e_r) / (e_s / e)`` (Isard 1960; Miller, Gibson & Wright 1991).

    Parameters
    ----------
    table : pandas.DataFrame
        Rows = regions, columns = sectors, non-negative values.

    Returns
    -------
    pandas.DataFrame
        Same shape; NaN where the region total is 0.
    """
    if (table.to_numpy() < 0).any():
        raise InvalidInput("expected non-negative counts for location quotients")
    total = table.to_numpy().sum()
    if total <= 0:
        raise InvalidInput("location quotients need a positive total, got 0")
    region = table.sum(axis=1)
    sector = table.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = table.div(region.replace(0, np.nan), axis=0)
        return share.div(sector / total, axis=1)


def strong_cluster_flags(
    lq: pd.DataFrame, employment: pd.DataFrame, establishments: pd.DataFrame, *, q: float = 0.75
) -> pd.DataFrame:
    """US Cluster Mapping "strong cluster" rule within one region level.

    A region-sector is strong when its LQ is at least the sector's ``q`` quantile
    across regions and at least 1, and both its employment and its number of
    establishments are at least the sector's 25th percentile (Delgado, Porter & Stern
    2014; US Cluster Mapping methodology). Quantiles are taken over the regions where
    the sector is present.

    Parameters
    ----------
    lq, employment, establishments : pandas.DataFrame
        Region x sector tables of the same shape.
    q : float, default 0.75
        The LQ quantile (0.9 gives the stricter variant).

    Returns
    -------
    pandas.DataFrame of bool
    """
    present = establishments > 0
    lq_p = lq.where(present)
    emp_p = employment.where(present)
    est_p = establishments.where(present)
    lq_q = lq_p.quantile(q)
    emp_q = emp_p.quantile(0.25)
    est_q = est_p.quantile(0.25)
    strong = (lq_p >= lq_q) & (lq_p >= 1.0) & (emp_p >= emp_q) & (est_p >= est_q)
    return strong.fillna(False).astype(bool)


def nearest_peers(matrix: pd.DataFrame, target, k: int) -> pd.DataFrame:
    """The ``k`` regions closest to ``target`` on standardised indicators.

    Each column is z-scored over all rows (mean 0, population standard deviation 1;
    columns with no variation are dropped as they cannot tell regions apart), then
    regions are ranked by Euclidean distance to the target.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Rows = regions (index = region id), columns = indicators; no NaN.
    target : hashable
        Index label of the region whose peers are wanted.
    k : int
        Number of peers (fewer if fewer regions exist).

    Returns
    -------
    pandas.DataFrame
        Columns ``region_id`` and ``distance``, nearest first (ties by region id);
        ``attrs["used"]`` lists the indicators used.
    """
    if target not in matrix.index:
        raise InvalidInput(f"region {target!r} has no value for the chosen indicators")
    if matrix.isna().any().any():
        raise InvalidInput("expected a complete region x indicator matrix, got missing values")
    if k < 1:
        raise InvalidInput(f"expected k >= 1 peers, got {k}")
    x = matrix.astype(float)
    sd = x.std(axis=0, ddof=0)
    used = sd.index[sd > 0]
    if len(used) == 0:
        raise InvalidInput(
            "the indicators do not vary across these regions; no basis to find peers"
        )
    z = (x[used] - x[used].mean(axis=0)) / sd[used]
    dist = np.sqrt(((z - z.loc[target]) ** 2).sum(axis=1))
    out = pd.DataFrame({"region_id": dist.index, "distance": dist.to_numpy()})
    out = out[out["region_id"] != target]
    out = out.sort_values(["distance", "region_id"], kind="stable").head(k).reset_index(drop=True)
    out.attrs["used"] = list(used)
    return out
