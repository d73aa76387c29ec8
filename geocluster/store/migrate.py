"""Migration of a v1 workspace (one ``workspace.gpkg``) into the v2 layout.

The old file is opened read-only (SQLite ``mode=ro`` for its catalog tables, GDAL for
its layers) and never written; each dataset version, run and raster row is copied with
its id, version and metadata, so ``name@N`` and run ids keep working. Migration runs
once: ``gc_meta`` records it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

_V1_JSON = {"bbox", "columns", "rejected", "meta", "params", "inputs", "layers", "summary"}


def _v1_rows(path: Path, table: str) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        exists = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()
        if not exists:
            return []
        rows = con.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    finally:
        con.close()
    out = []
    for r in rows:
        row = {}
        for k in r.keys():
            v = r[k]
            row[k] = json.loads(v) if k in _V1_JSON and isinstance(v, str) else v
        out.append(row)
    return out


def migrate_v1(ws, legacy: Path) -> str | None:
    """Copy ``legacy`` (a v1 GeoPackage workspace) into ``ws``; return a one-line notice.

    Returns None when the migration already happened.
    """
    import pyogrio

    catalog = ws.catalog
    if catalog.select("gc_meta", key="migrated_v1"):
        return None
    datasets = _v1_rows(legacy, "gc_datasets")
    runs = _v1_rows(legacy, "gc_runs")
    rasters = _v1_rows(legacy, "gc_rasters")
    store = ws.store
    from geocluster.workspace import _canonical_dtypes, _working_xy, default_visibility

    for row in datasets:
        frame = pyogrio.read_dataframe(legacy, layer=row["layer"], use_arrow=True)
        frame = _canonical_dtypes(frame, row["kind"])
        is_geo = hasattr(frame, "geometry") and "geometry" in getattr(frame, "columns", [])
        layer = store.write_layer(
            frame,
            prefix=f"{row['kind']}_{row['id']}",
            working_xy=_working_xy(frame, row.get("working_crs")) if is_geo else None,
            sort_key="isic_division" if row["kind"] == "firms" else None,
        )
        new = {k: row.get(k) for k in _DATASET_COLUMNS}
        new["layer"] = layer.name
        new["visibility"] = default_visibility(row["kind"])
        with store.commit([layer]) as con:
            catalog.insert("gc_datasets", new, con=con)
    for row in runs:
        written = []
        names = {}
        for name, physical in (row.get("layers") or {}).items():
            frame = pyogrio.read_dataframe(legacy, layer=physical, use_arrow=True)
            layer = store.write_layer(frame, prefix=f"run_{row['id']}_{name}")
            written.append(layer)
            names[name] = layer.name
        new = {k: row.get(k) for k in _RUN_COLUMNS}
        new["layers"] = names
        with store.commit(written) as con:
            catalog.insert("gc_runs", new, con=con)
    for row in rasters:
        if not catalog.select("gc_rasters", id=row["id"]):
            catalog.insert("gc_rasters", {k: row.get(k) for k in _RASTER_COLUMNS})
    catalog.insert("gc_meta", {"key": "migrated_v1", "value": legacy.name})
    return (
        f"migrated v1 workspace: {len(datasets)} dataset version(s), {len(runs)} run(s), "
        f"{len(rasters)} raster(s) copied from {legacy.name} (left untouched)"
    )


_DATASET_COLUMNS = (
    "id version name kind rows crs source_crs working_crs bbox created source checksum "
    "columns rejected rejected_count meta"
).split()
_RUN_COLUMNS = "id kind params inputs primary_layer summary created".split()
_RASTER_COLUMNS = "id name kind path crs bbox width height count dtype nodata meta created".split()
