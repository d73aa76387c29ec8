"""Pure building blocks of region profiles, comparisons and peer regions.

No I/O: every function takes frames/arrays and returns frames/arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geocluster.errors import CRSError, InvalidInput

__all__ = ["area_km2", "nearest_peers", "rank_descending"]


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


def rank_descending(values: pd.Series) -> pd.Series:
    """Rank 1 = highest value; ties share the best rank (``method="min"``); NaN stays NaN."""
    return values.rank(ascending=False, method="min")


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
