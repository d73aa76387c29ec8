"""Copy a workspace between stores (embedded <-> PostGIS), every version and run.

``geocluster store migrate`` calls :func:`copy_workspace`. Dataset versions keep their
version numbers, runs their ids and every catalog field, so references such as
``firms@2`` or a run id in a saved map mean the same thing in the copy. Each dataset
version and each run is copied in its own catalog transaction: an interrupted copy
leaves whole versions only, and running it again copies what is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pandas as pd

from geocluster.errors import InvalidInput

Progress = Callable[[float, str], None]
#: Catalog tables copied row by row besides datasets, runs and rasters.
PLAIN_TABLES = {"gc_groups": "name", "gc_keys": "id"}


def _layer_frame(store: Any, layer: str) -> tuple[pd.DataFrame, tuple[Any, Any] | None]:
    """Every stored column of a layer, and its working ``x``, ``y`` if it has them."""
    frame = store.read_layer(layer, columns=None, geometry=True)
    xy = None
    if isinstance(frame, gpd.GeoDataFrame) and {"x", "y"} <= set(frame.columns):
        xy = (frame["x"].to_numpy(dtype="float64"), frame["y"].to_numpy(dtype="float64"))
        frame = frame.drop(columns=["x", "y"])
    return frame, xy


def _copy_layer(src: Any, dst: Any, layer: str, *, sort_key: str | None = None) -> Any:
    frame, xy = _layer_frame(src.store, layer)
    prefix = layer.rsplit("-", 1)[0]
    return dst.store.write_layer(frame, prefix=prefix, working_xy=xy, sort_key=sort_key)


def copy_workspace(src_ws: Any, dst_ws: Any, *, progress: Progress | None = None) -> dict[str, int]:
    """Copy every dataset version, run, raster, group and key of ``src_ws`` into ``dst_ws``.

    Parameters
    ----------
    src_ws, dst_ws : Workspace
        Any two workspaces (embedded folder or PostGIS), e.g. ``Workspace(path)`` and
        ``Workspace(path2, store_url="postgresql://...")``.
    progress : callable(fraction, message), optional

    Returns
    -------
    dict
        How many ``versions``, ``runs``, ``rasters`` were copied and ``skipped``
        (already present in ``dst_ws``).

    Raises
    ------
    InvalidInput
        When both are the same store.
    """
    if src_ws.store is dst_ws.store or (
        getattr(src_ws.store, "url", None) == getattr(dst_ws.store, "url", object())
    ):
        raise InvalidInput("source and destination are the same workspace store")
    report = progress or (lambda fraction, message: None)
    src_cat, dst_cat = src_ws.catalog, dst_ws.catalog
    versions = src_cat.select("gc_datasets")
    runs = src_cat.select("gc_runs")
    total = max(len(versions) + len(runs), 1)
    done = 0
    counts = {"versions": 0, "runs": 0, "rasters": 0, "skipped": 0}

    for row in versions:
        done += 1
        ref = f"{row['id']}@{row['version']}"
        if dst_cat.select("gc_datasets", id=row["id"], version=row["version"]):
            counts["skipped"] += 1
            continue
        report(done / total, f"copying {ref}")
        sort_key = "isic_division" if row["kind"] == "firms" else None
        layer = _copy_layer(src_ws, dst_ws, row["layer"], sort_key=sort_key)
        new = dict(row, layer=layer.name)
        with dst_ws.store.commit([layer]) as con:
            dst_cat.insert("gc_datasets", new, con=con)
        counts["versions"] += 1

    for row in runs:
        done += 1
        if dst_cat.select("gc_runs", id=row["id"]):
            counts["skipped"] += 1
            continue
        report(done / total, f"copying run {row['id']}")
        written = []
        try:
            for name, layer in (row.get("layers") or {}).items():
                written.append((name, _copy_layer(src_ws, dst_ws, layer)))
        except BaseException:
            for _, layer in written:
                dst_ws.store.discard(layer.name)
            raise
        new = dict(row, layers={name: layer.name for name, layer in written})
        with dst_ws.store.commit([layer for _, layer in written]) as con:
            dst_cat.insert("gc_runs", new, con=con)
        counts["runs"] += 1

    for row in src_cat.select("gc_rasters"):
        if dst_cat.select("gc_rasters", id=row["id"]):
            counts["skipped"] += 1
            continue
        source = src_ws.rasters_dir / row["path"]
        target = dst_ws.rasters_dir / row["path"]
        if source.resolve() != target.resolve():
            dst_ws.rasters_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        dst_cat.insert("gc_rasters", row)
        counts["rasters"] += 1

    for table, key in PLAIN_TABLES.items():
        for row in src_cat.select(table):
            if not dst_cat.select(table, **{key: row[key]}):
                dst_cat.insert(table, row)
    report(1.0, f"copied {counts['versions']} versions and {counts['runs']} runs")
    return counts
