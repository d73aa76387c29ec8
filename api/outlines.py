"""Cluster outlines of stored runs as they may leave the server below editor.

A clusters run stores each cluster's hull, and a hull has firms at its corners.
:func:`geocluster.disclosure.apply` already publishes an analysis *result* to a viewer
with outlines made of safe grid cells; this module does the same for the stored run
layers that items, downloads and tiles serve: the hull of every cluster is replaced by
the union of the public-grid cells holding at least ``min_contributors`` of its firms
(:func:`geocluster.disclosure.safe_cluster_outlines`), computed from the run's own
firm labels. A cluster layer whose run has no firm labels gets no outline at all.
Runs are immutable, so the outlines of a run are computed once per process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geocluster.disclosure import outline_measures

__all__ = ["publish", "run_outlines"]

_CACHE: OrderedDict[tuple, gpd.GeoSeries | None] = OrderedDict()
_LOCK = threading.Lock()
_CACHE_RUNS = 64


def _labels_layer(run: Any) -> str | None:
    """The stored layer of the run's per-firm cluster labels, if it has one."""
    kinds = (run.summary or {}).get("disclosure") or {}
    for name, layer in run.layers.items():
        if (kinds.get(name) or {}).get("kind") == "firm_points":
            return layer
    return None


def run_outlines(ws: Any, run_id: str, zoom: int, min_count: int) -> gpd.GeoSeries | None:
    """Safe outline (EPSG:4326) of each cluster of a run, indexed by ``cluster_id``.

    ``None`` when the run stores no firm labels with a ``cluster_id``.
    """
    from geocluster.disclosure import safe_cluster_outlines

    run = ws.run(run_id)
    layer = _labels_layer(run)
    key = (str(getattr(ws, "path", id(ws))), run_id, layer, int(zoom), int(min_count))
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    out = None
    names = ws.store.schema(layer).names if layer is not None else []
    if "cluster_id" in names:
        if "bbox" in names:  # GeoParquet: the covering bbox, no WKB decoding
            table = ws.store.read_table(layer, columns=["cluster_id", "bbox"])
            bbox = table["bbox"].combine_chunks()
            lon = np.asarray(bbox.field("xmin").to_numpy(zero_copy_only=False), float)
            lat = np.asarray(bbox.field("ymin").to_numpy(zero_copy_only=False), float)
            ids = table["cluster_id"].to_pandas()
        else:  # another store (PostGIS): the points themselves
            import shapely

            frame = ws.store.read_layer(layer, columns=["cluster_id"])
            geoms = np.asarray(frame.geometry.values)
            lon, lat = shapely.get_x(geoms), shapely.get_y(geoms)
            ids = frame["cluster_id"]
        labels = pd.to_numeric(ids, errors="coerce").fillna(-1)
        has = np.isfinite(lon) & np.isfinite(lat)
        found = safe_cluster_outlines(
            lon[has], lat[has], labels.to_numpy()[has], zoom, min_count=min_count
        )
        out = found.set_index("cluster_id").geometry
    with _LOCK:
        _CACHE[key] = out
        while len(_CACHE) > _CACHE_RUNS:
            _CACHE.popitem(last=False)
    return out


def publish(ws: Any, coll: Any, frame: pd.DataFrame, policy: Any, kind: str) -> pd.DataFrame:
    """``policy.apply(frame, kind=kind)``, with safe grid outlines for run clusters.

    For a caller who may not see firm points (``policy.firm_points`` false), a
    ``clusters`` layer of a run keeps only the outlines of clusters the policy
    publishes, each the union of safe grid cells of its firms; its centroid, area and
    density are those of the outline (none where there is no outline).
    """
    if (
        kind != "clusters"
        or policy.firm_points
        or not isinstance(frame, gpd.GeoDataFrame)
        or not getattr(coll, "run_id", None)
    ):
        return policy.apply(frame, kind=kind)
    # the count rules as below editor, without smoothing hulls that are replaced next
    out = replace(policy, firm_points=True).apply(frame, kind=kind)
    outlines = None
    if "cluster_id" in out.columns:
        outlines = run_outlines(ws, coll.run_id, policy.public_zoom, policy.min_contributors)
    ok = (
        out["disclosure"].eq("ok").to_numpy()
        if "disclosure" in out.columns
        else np.ones(len(out), bool)
    )
    geoms = np.full(len(out), None, dtype=object)
    if outlines is not None:
        ids = pd.to_numeric(out["cluster_id"], errors="coerce")
        for i, cid in enumerate(ids):
            if ok[i] and cid in outlines.index:
                geoms[i] = outlines.loc[cid]
    crs = out.crs
    shapes = gpd.GeoSeries(list(geoms), crs="EPSG:4326")
    result = gpd.GeoDataFrame(
        out.drop(columns=out.geometry.name),
        geometry=shapes.to_crs(crs).to_numpy() if crs is not None else shapes.to_numpy(),
        crs=crs or "EPSG:4326",
    )
    return outline_measures(result, geoms, "n_firms")
