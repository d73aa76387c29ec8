"""Support institutions within reach of each cluster, and the clusters without support.

The UNIDO cluster-development approach diagnoses a cluster together with its support
institutions (training, research, business associations, finance ...). This module
answers, per cluster: which institutions lie within ``radius_m`` (straight-line
distance between the cluster geometry and the institution geometry, 0 when inside),
how many of each type, how far the nearest of each gap group is, and whether the
cluster has a *gap*: no institution of a group within the radius.

Default gap groups: ``training`` (type ``training``) and ``association`` (types
``business_association`` and ``chamber``), the two kinds of support a small-firm
cluster cannot do without in the UNIDO diagnostic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geocluster.errors import InvalidInput
from geocluster.sectors.osm import INSTITUTION_TYPES

__all__ = ["DEFAULT_GAP_GROUPS", "gap_table", "institutions_within_reach"]

#: Gap group -> institution types that fill it.
DEFAULT_GAP_GROUPS: Mapping[str, tuple[str, ...]] = {
    "training": ("training",),
    "association": ("business_association", "chamber"),
}


def _metric_crs(frame: gpd.GeoDataFrame, name: str) -> pyproj.CRS:
    if frame.crs is None:
        raise InvalidInput(f"{name} have no CRS; pass them in a metric CRS")
    crs = pyproj.CRS.from_user_input(frame.crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise InvalidInput(
            f"{name} are in {crs.to_string()}, not a metric CRS; radius_m needs metres "
            "(project them to the working CRS first)"
        )
    return crs


def institutions_within_reach(
    clusters: gpd.GeoDataFrame,
    institutions: gpd.GeoDataFrame,
    *,
    radius_m: float,
    cluster_id_col: str = "cluster_id",
    type_col: str = "type",
    gap_groups: Mapping[str, Sequence[str]] | None = None,
) -> gpd.GeoDataFrame:
    """Institutions within ``radius_m`` of each cluster, by type, and the support gaps.

    Parameters
    ----------
    clusters
        One row per cluster (polygons, or points), in a metric CRS.
    institutions
        Canonical ``institutions`` rows (``type`` of
        :data:`geocluster.sectors.osm.INSTITUTION_TYPES`); reprojected to the clusters'
        CRS when it differs.
    radius_m
        Reach in metres (> 0), between the cluster's geometry and the institution's.
    cluster_id_col, type_col
        Column names.
    gap_groups
        Gap group name -> the types that fill it (default :data:`DEFAULT_GAP_GROUPS`).

    Returns
    -------
    geopandas.GeoDataFrame
        The clusters' id and geometry, then ``n_institutions`` (within reach, all
        types), ``n_<type>`` for every type, and for each gap group ``g``:
        ``nearest_<g>_m`` (distance to the nearest institution of the group, NaN when
        there is none at all) and ``<g>_gap`` (no institution of the group within
        reach); ``gap`` is true when any group has a gap.

    Raises
    ------
    InvalidInput
        Non-metric or missing CRS, a non-positive radius, missing columns, or
        institution types outside the vocabulary.
    """
    if not np.isfinite(radius_m) or radius_m <= 0:
        raise InvalidInput(f"radius_m must be a positive number of metres, got {radius_m}")
    groups = dict(DEFAULT_GAP_GROUPS if gap_groups is None else gap_groups)
    for name, types in groups.items():
        bad = sorted(set(types) - set(INSTITUTION_TYPES))
        if bad:
            raise InvalidInput(f"gap group {name!r} names unknown institution types: {bad}")
    if cluster_id_col not in clusters.columns:
        raise InvalidInput(f"clusters have no {cluster_id_col!r} column")
    if type_col not in institutions.columns:
        raise InvalidInput(f"institutions have no {type_col!r} column")
    crs = _metric_crs(clusters, "clusters")
    if institutions.crs is None:
        raise InvalidInput("institutions have no CRS")
    if not pyproj.CRS.from_user_input(institutions.crs).equals(crs):
        institutions = institutions.to_crs(crs)
    types = institutions[type_col].astype("object").to_numpy()
    unknown = sorted({str(t) for t in types if t not in INSTITUTION_TYPES})
    if unknown:
        raise InvalidInput(f"unknown institution types {unknown[:5]}")

    cgeoms = clusters.geometry.to_numpy()
    igeoms = institutions.geometry.to_numpy()
    n_c = len(cgeoms)
    out = gpd.GeoDataFrame(
        {cluster_id_col: clusters[cluster_id_col].to_numpy()},
        geometry=gpd.GeoSeries(cgeoms, crs=crs),
        crs=crs,
    )
    counts = np.zeros(n_c, dtype="int64")
    by_type = {t: np.zeros(n_c, dtype="int64") for t in INSTITUTION_TYPES}
    if len(igeoms):
        tree = shapely.STRtree(igeoms)
        ci, ii = tree.query(cgeoms, predicate="dwithin", distance=radius_m)
        counts = np.bincount(ci, minlength=n_c).astype("int64")
        for t in INSTITUTION_TYPES:
            hit = types[ii] == t
            by_type[t] = np.bincount(ci[hit], minlength=n_c).astype("int64")
    out["n_institutions"] = counts
    for t in INSTITUTION_TYPES:
        out[f"n_{t}"] = by_type[t]
    any_gap = np.zeros(n_c, dtype=bool)
    for name, members in groups.items():
        sub = igeoms[np.isin(types, list(members))]
        nearest = np.full(n_c, np.nan)
        if len(sub) and n_c:
            tree = shapely.STRtree(sub)
            (ci, _), dist = tree.query_nearest(cgeoms, return_distance=True, all_matches=False)
            nearest[ci] = dist
        gap = ~(nearest <= radius_m)  # NaN (no institution of the group at all) is a gap
        out[f"nearest_{name}_m"] = nearest
        out[f"{name}_gap"] = gap
        any_gap |= gap
    out["gap"] = any_gap
    return out


def gap_table(reach: pd.DataFrame, cluster_id_col: str = "cluster_id") -> pd.DataFrame:
    """The clusters with a gap, one row each, naming the missing groups (``missing``)."""
    groups = [c[: -len("_gap")] for c in reach.columns if c.endswith("_gap")]
    rows = reach[reach["gap"].to_numpy(dtype=bool)]
    missing = [", ".join(g for g in groups if bool(r[f"{g}_gap"])) for _, r in rows.iterrows()]
    return pd.DataFrame({cluster_id_col: rows[cluster_id_col].to_numpy(), "missing": missing})
