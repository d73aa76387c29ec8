"""Asset density per region and clusters of assets (candidate heritage zones).

Pure functions on GeoDataFrames; the caller states CRSs (assets and regions
in the same projected working CRS in metres).
"""

from __future__ import annotations

from collections import Counter

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geocluster.crs import ensure_projected
from geocluster.errors import CRSError, InvalidInput

__all__ = ["asset_density", "asset_zones", "assign_regions", "geodesic_area_km2"]

_GEOD = pyproj.Geod(ellps="WGS84")


def geodesic_area_km2(geoms: gpd.GeoSeries) -> np.ndarray:
    """Area of each polygon in km², measured on the WGS 84 ellipsoid.

    A geodesic area is exact whatever the working CRS (UTM distorts areas by
    up to ~0.2 % inside a zone and more outside it), so densities per km² do
    not depend on the projection chosen for distances.

    Parameters
    ----------
    geoms : GeoSeries with a CRS
        Polygons in any CRS (converted to lon/lat for the measurement).

    Returns
    -------
    ndarray of float, shape (n,)
    """
    if geoms.crs is None:
        raise CRSError("expected region polygons with a CRS, got none")
    ll = geoms.to_crs("EPSG:4326")
    out = np.empty(len(ll))
    for i, g in enumerate(ll.values):
        if g is None or g.is_empty:
            out[i] = 0.0
        else:
            out[i] = abs(_GEOD.geometry_area_perimeter(g)[0]) / 1e6
    return out


def assign_regions(
    assets: gpd.GeoDataFrame, regions: gpd.GeoDataFrame, *, region_col: str = "region_id"
) -> pd.DataFrame:
    """Pairs (asset position, region id) where the asset lies in the region.

    An asset of any geometry is located by its representative point (a point
    guaranteed inside a polygon), so a protected area straddling two regions
    counts once, in the region holding that point. With several boundary
    levels in ``regions``, an asset gets one pair per level.

    Returns
    -------
    DataFrame with columns ``asset`` (int position in ``assets``) and ``region_id``.
    """
    if assets.crs != regions.crs:
        raise CRSError(
            f"expected assets and regions in the same CRS, got {assets.crs} and {regions.crs}"
        )
    if region_col not in regions.columns:
        raise InvalidInput(f"expected a {region_col!r} column in the regions")
    pts = shapely.point_on_surface(assets.geometry.values)
    tree = shapely.STRtree(regions.geometry.values)
    a_idx, r_idx = tree.query(pts, predicate="within")
    return pd.DataFrame(
        {"asset": a_idx.astype(np.int64), "region_id": regions[region_col].to_numpy()[r_idx]}
    )


def asset_density(
    assets: gpd.GeoDataFrame,
    regions: gpd.GeoDataFrame,
    *,
    population: pd.Series | None = None,
    region_col: str = "region_id",
    category_col: str = "category",
) -> pd.DataFrame:
    """Number of assets per region and category, per km² and per 10,000 inhabitants.

    Parameters
    ----------
    assets : GeoDataFrame
        Canonical assets (``category`` column), any geometry.
    regions : GeoDataFrame
        Boundaries (``region_id``), same CRS as ``assets``.
    population : Series, optional
        Inhabitants indexed by region id (from an indicators dataset or a
        zonal sum over a population raster). Missing regions get NaN.

    Returns
    -------
    DataFrame
        One row per region and category, plus a ``category == "all"`` row per
        region: ``region_id``, ``category``, ``n_assets``, ``area_km2``
        (geodesic), ``assets_per_km2``, ``population``, ``assets_per_10k``
        (NaN without population or when it is 0). Every region appears, with
        zero counts where it has no asset; categories are those present in
        ``assets``.
    """
    if category_col not in assets.columns:
        raise InvalidInput(f"expected a {category_col!r} column in the assets")
    pairs = assign_regions(assets, regions, region_col=region_col)
    pairs["category"] = assets[category_col].astype(object).to_numpy()[pairs["asset"].to_numpy()]
    region_ids = regions[region_col].astype(str).to_numpy()
    area = pd.Series(geodesic_area_km2(regions.geometry), index=region_ids)
    area = area.groupby(level=0).sum()  # a region split over several rows
    categories = sorted(c for c in pd.unique(assets[category_col].dropna()))
    pairs["region_id"] = pairs["region_id"].astype(str)
    counts = pairs.groupby(["region_id", "category"]).size()
    totals = pairs.groupby("region_id").size()
    pop = None
    if population is not None:
        pop = pd.Series(population, dtype=float)
        pop.index = pop.index.astype(str)
        pop = pop.groupby(level=0).last()
    rows = []
    for rid in area.index:
        p = float(pop.get(rid, np.nan)) if pop is not None else np.nan
        a = float(area[rid])
        for cat in [*categories, "all"]:
            n = int(totals.get(rid, 0)) if cat == "all" else int(counts.get((rid, cat), 0))
            rows.append(
                {
                    "region_id": rid,
                    "category": cat,
                    "n_assets": n,
                    "area_km2": a,
                    "assets_per_km2": n / a if a > 0 else np.nan,
                    "population": p,
                    "assets_per_10k": n / p * 10_000 if p and np.isfinite(p) and p > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def asset_zones(
    assets: gpd.GeoDataFrame,
    *,
    eps_m: float,
    min_samples: int = 3,
    category_col: str = "category",
) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Clusters of assets (DBSCAN) as candidate heritage zones or routes.

    Assets are located by their representative points and clustered with
    :func:`geocluster.clustering.dbscan.dbscan` (exact DBSCAN, sklearn
    conventions). Each cluster becomes a zone polygon: the convex hull of its
    assets' geometries buffered by ``eps_m / 2`` (so that two or three
    aligned assets — a route — still give a polygon, and the zone includes
    the surroundings within which the assets were linked).

    Parameters
    ----------
    assets : GeoDataFrame
        In a projected CRS in metres.
    eps_m : float
        DBSCAN neighbourhood radius in metres.
    min_samples : int
        Assets within ``eps_m`` (itself included) for a core asset.

    Returns
    -------
    labels : ndarray of int, shape (n,)
        Zone id per asset, noise ``-1``.
    zones : GeoDataFrame
        ``zone_id``, ``n_assets``, ``dominant_category``, ``categories``
        (``"cultural:5;natural:2"``), ``n_designated`` (assets with a
        designation), ``area_km2`` (planar area of the zone polygon in the
        working CRS), geometry; same CRS as ``assets``.
    """
    from geocluster.clustering.dbscan import dbscan

    if assets.crs is None:
        raise CRSError("expected assets with a CRS, got none")
    ensure_projected(assets.crs)
    if not np.isfinite(eps_m) or eps_m <= 0:
        raise InvalidInput(f"expected eps_m > 0 metres, got {eps_m}")
    cols = ["zone_id", "n_assets", "dominant_category", "categories", "n_designated", "area_km2"]
    if len(assets) == 0:
        return np.empty(0, np.int64), gpd.GeoDataFrame(
            {c: [] for c in cols}, geometry=[], crs=assets.crs
        )
    pts = shapely.point_on_surface(assets.geometry.values)
    xy = np.column_stack([shapely.get_x(pts), shapely.get_y(pts)])
    labels = np.asarray(dbscan(xy, eps_m=float(eps_m), min_samples=min_samples), dtype=np.int64)
    cats = (
        assets[category_col].astype(object).to_numpy()
        if category_col in assets.columns
        else np.full(len(assets), None)
    )
    des = (
        assets["designation"].astype(object).to_numpy()
        if "designation" in assets.columns
        else np.full(len(assets), None)
    )
    rows, geoms = [], []
    for z in sorted(set(labels.tolist()) - {-1}):
        member = labels == z
        counter = Counter(c for c in cats[member] if isinstance(c, str))
        hull = shapely.convex_hull(shapely.union_all(assets.geometry.values[member]))
        zone = shapely.buffer(hull, eps_m / 2)
        geoms.append(zone)
        rows.append(
            {
                "zone_id": int(z),
                "n_assets": int(member.sum()),
                "dominant_category": counter.most_common(1)[0][0] if counter else None,
                "categories": ";".join(f"{k}:{v}" for k, v in sorted(counter.items())),
                "n_designated": int(sum(isinstance(d, str) and d != "" for d in des[member])),
                "area_km2": float(zone.area) / 1e6,
            }
        )
    zones = gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=geoms, crs=assets.crs)
    return labels, zones
