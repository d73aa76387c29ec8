"""Firm–asset proximity: firms near each asset, firms near any asset, asset gaps.

All functions take GeoDataFrames in one *projected* CRS in metres (the
caller reads them with ``ws.read(..., crs="working")``) and measure straight
-line distances in that CRS. Assets may have any geometry: a firm is *within
r of an asset* when its distance to the asset's geometry (0 inside a polygon)
is at most ``r`` (GEOS ``dwithin``, through the spatial index).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocluster.crs import ensure_projected
from geocluster.errors import CRSError, InvalidInput

__all__ = [
    "asset_gaps",
    "firms_near_assets",
    "firms_within_any",
    "nearest_distance",
]


def _check_pair(assets: gpd.GeoDataFrame, firms: gpd.GeoDataFrame, radius_m: float) -> None:
    if assets.crs is None or firms.crs is None:
        raise CRSError("expected assets and firms with a CRS, got a frame without one")
    ensure_projected(assets.crs)
    if assets.crs != firms.crs:
        raise CRSError(
            f"expected assets and firms in the same CRS, got {assets.crs.to_string()} "
            f"and {firms.crs.to_string()}"
        )
    if not np.isfinite(radius_m) or radius_m < 0:
        raise InvalidInput(f"expected radius_m >= 0 metres, got {radius_m}")


def _pairs(
    assets: gpd.GeoDataFrame, firms: gpd.GeoDataFrame, radius_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(asset positions, firm positions) of every pair within ``radius_m``."""
    if len(assets) == 0 or len(firms) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    tree = shapely.STRtree(firms.geometry.values)
    a_idx, f_idx = tree.query(assets.geometry.values, predicate="dwithin", distance=radius_m)
    return a_idx.astype(np.int64), f_idx.astype(np.int64)


def firms_near_assets(
    assets: gpd.GeoDataFrame,
    firms: gpd.GeoDataFrame,
    *,
    radius_m: float,
    firm_mask: np.ndarray | pd.DataFrame | None = None,
    employees_col: str = "employees",
) -> pd.DataFrame:
    """For each asset, the firms within ``radius_m``: count and employees.

    Parameters
    ----------
    assets, firms : GeoDataFrame
        Same projected CRS in metres; firms are points.
    radius_m : float
        Search radius in metres (distance to the asset geometry).
    firm_mask : ndarray of bool, shape (n_firms,) or (n_assets, n_firms)-like, optional
        Which firms count. A 1-D mask applies to every asset. A DataFrame with
        one boolean column per distinct value of ``assets["category"]`` (index
        aligned with ``firms``) selects, for each asset, the firms linked to
        its category. None: all firms.
    employees_col : str
        Firm column with employment (NaN = unknown, counted as 0 in the sum;
        ``employees_known`` says how many firms had a value).

    Returns
    -------
    DataFrame, index of ``assets``
        ``n_firms`` (int), ``employees`` (float), ``employees_known`` (int),
        ``nearest_firm_m`` (float; distance to the nearest counted firm within
        the radius, NaN if none).
    """
    _check_pair(assets, firms, radius_m)
    a_idx, f_idx = _pairs(assets, firms, radius_m)
    if firm_mask is not None:
        if isinstance(firm_mask, pd.DataFrame):
            if "category" not in assets.columns:
                raise InvalidInput(
                    "expected an asset 'category' column for per-category firm masks"
                )
            cats = assets["category"].astype(object).to_numpy()
            keep = np.zeros(len(a_idx), bool)
            for cat in pd.unique(cats[a_idx]) if len(a_idx) else []:
                if cat not in firm_mask.columns:
                    continue  # category without linked firms: nothing counts
                sel = cats[a_idx] == cat
                keep[sel] = firm_mask[cat].to_numpy(bool)[f_idx[sel]]
        else:
            mask = np.asarray(firm_mask, bool)
            if mask.shape != (len(firms),):
                raise InvalidInput(
                    f"expected a firm mask of shape ({len(firms)},), got {mask.shape}"
                )
            keep = mask[f_idx]
        a_idx, f_idx = a_idx[keep], f_idx[keep]
    n = len(assets)
    counts = np.bincount(a_idx, minlength=n)
    if employees_col in firms.columns:
        emp = pd.to_numeric(firms[employees_col], errors="coerce").to_numpy(float)
    else:
        emp = np.full(len(firms), np.nan)
    e = emp[f_idx]
    known = ~np.isnan(e)
    emp_sum = np.bincount(a_idx, weights=np.where(known, e, 0.0), minlength=n)
    emp_known = np.bincount(a_idx, weights=known.astype(float), minlength=n).astype(int)
    nearest = np.full(n, np.nan)
    if len(a_idx):
        d = shapely.distance(assets.geometry.values[a_idx], firms.geometry.values[f_idx])
        order = np.lexsort((d, a_idx))
        first = np.ones(len(order), bool)
        first[1:] = a_idx[order][1:] != a_idx[order][:-1]
        nearest[a_idx[order][first]] = d[order][first]
    return pd.DataFrame(
        {
            "n_firms": counts.astype(int),
            "employees": emp_sum,
            "employees_known": emp_known,
            "nearest_firm_m": nearest,
        },
        index=assets.index,
    )


def firms_within_any(
    firms: gpd.GeoDataFrame, assets: gpd.GeoDataFrame, *, radius_m: float
) -> np.ndarray:
    """Boolean mask of the firms within ``radius_m`` of at least one asset.

    Returns
    -------
    ndarray of bool, shape (n_firms,)
    """
    _check_pair(assets, firms, radius_m)
    _, f_idx = _pairs(assets, firms, radius_m)
    out = np.zeros(len(firms), bool)
    out[f_idx] = True
    return out


def nearest_distance(
    sources: gpd.GeoDataFrame, targets: gpd.GeoDataFrame, *, max_distance_m: float | None = None
) -> np.ndarray:
    """Distance in metres from each source geometry to the nearest target.

    NaN where there is no target (or none within ``max_distance_m``).
    """
    _check_pair(targets, sources, 0.0 if max_distance_m is None else max_distance_m)
    out = np.full(len(sources), np.nan)
    if len(sources) == 0 or len(targets) == 0:
        return out
    tree = shapely.STRtree(targets.geometry.values)
    (s_idx, _), dist = tree.query_nearest(
        sources.geometry.values,
        max_distance=max_distance_m,
        return_distance=True,
        all_matches=False,
    )
    out[s_idx] = dist
    return out


def asset_gaps(near: pd.DataFrame) -> np.ndarray:
    """Assets with no linked firm within the radius: the opportunity list.

    Parameters
    ----------
    near : DataFrame
        Output of :func:`firms_near_assets` (with the linked-sector mask).

    Returns
    -------
    ndarray of bool
        True for an asset with ``n_firms == 0``.
    """
    return near["n_firms"].to_numpy() == 0
