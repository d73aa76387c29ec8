"""GeoPackage backend: one ``.gpkg`` file per workspace, opens directly in QGIS.

Atomicity
---------
Every dataset version and every run layer is written to a *new* physical layer
with a unique name. The layer is first recorded in ``gc_pending``; only after
GDAL has written it completely does one SQLite transaction insert the catalog
row and remove the pending mark. Readers resolve names through the catalog, so
they never see a half-written layer. If the writer dies (even by SIGKILL), the
next writer, holding the workspace's write lock, drops every pending layer:
while it holds the lock no other write can be in flight, so each pending layer
is an orphan.

Concurrency
-----------
The file is in SQLite WAL mode: readers are never blocked by a writer and see
the last committed state. Writers are serialised by an ``fcntl`` lock on
``<gpkg>.lock`` (cross-process) and a thread lock (in-process).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyogrio.raw
import shapely

from geocluster.errors import GeoclusterError

BBox = tuple[float, float, float, float]

#: Catalog tables: name -> column DDL. JSON columns hold lists / dicts.
CATALOG: dict[str, str] = {
    "gc_datasets": """
        id TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
        layer TEXT NOT NULL, rows INTEGER NOT NULL, crs TEXT, source_crs TEXT,
        working_crs TEXT, bbox TEXT, created TEXT NOT NULL, source TEXT, checksum TEXT,
        columns TEXT, rejected TEXT, rejected_count INTEGER, meta TEXT,
        PRIMARY KEY (id, version)""",
    "gc_runs": """
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, params TEXT, inputs TEXT, layers TEXT,
        primary_layer TEXT, summary TEXT, created TEXT NOT NULL""",
    "gc_rasters": """
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL,
        crs TEXT, bbox TEXT, width INTEGER, height INTEGER, count INTEGER, dtype TEXT,
        nodata REAL, meta TEXT, created TEXT NOT NULL""",
    "gc_pending": "layer TEXT PRIMARY KEY, created TEXT",
}
JSON_COLUMNS = {"bbox", "columns", "rejected", "meta", "params", "inputs", "layers", "summary"}

_thread_lock = threading.RLock()

# SQLite's default page cache (2 MB) makes GDAL spill a large layer write through the
# WAL several times; a larger cache (MB, allocated only as used) writes 1M points ~1.5x
# faster. Synchronous stays at SQLite's safe default.
pyogrio.set_gdal_config_options({"OGR_SQLITE_CACHE": "512"})


class GeoPackageStore:
    """Store backed by one GeoPackage file.

    Parameters
    ----------
    path : path-like
        The ``.gpkg`` file; created (empty catalog, WAL mode) if missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_suffix(self.path.suffix + ".lock")
        if not self.path.exists():
            self._create()

    # -- creation -------------------------------------------------------------------------
    def _create(self) -> None:
        """Create the file under a temporary name and rename it: never half-created."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".new-", suffix=".gpkg", dir=self.path.parent)
        os.close(fd)
        os.unlink(tmp)
        try:
            # GDAL writes the GeoPackage boilerplate (application id, gpkg_* tables).
            pyogrio.write_dataframe(
                pd.DataFrame({"key": ["format"], "value": ["geocluster-workspace/1"]}),
                tmp,
                layer="gc_meta",
                driver="GPKG",
            )
            con = sqlite3.connect(tmp)
            try:
                con.execute("PRAGMA journal_mode=WAL")
                with con:
                    for table, ddl in CATALOG.items():
                        con.execute(f"CREATE TABLE {table} ({ddl})")
                        # Registered as attribute tables so QGIS lists the catalog too.
                        con.execute(
                            "INSERT INTO gpkg_contents (table_name, data_type, identifier) "
                            "VALUES (?, 'attributes', ?)",
                            (table, table),
                        )
            finally:
                con.close()
            with self._file_lock():
                if not self.path.exists():
                    os.replace(tmp, self.path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(tmp + suffix).unlink(missing_ok=True)

    # -- locking --------------------------------------------------------------------------
    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the single-writer lock and clean up what a dead writer left."""
        with _thread_lock, self._file_lock():
            self._drop_orphans()
            yield

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.row_factory = sqlite3.Row
        return con

    def _drop_orphans(self) -> None:
        con = self._connect()
        try:
            pending = [r["layer"] for r in con.execute("SELECT layer FROM gc_pending")]
        finally:
            con.close()
        for layer in pending:
            self.drop_layer(layer)
            self._exec("DELETE FROM gc_pending WHERE layer = ?", (layer,))

    def _exec(self, sql: str, params: tuple = ()) -> None:
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute(sql, params)
            con.execute("COMMIT")
        finally:
            con.close()

    # -- layers ---------------------------------------------------------------------------
    def write_layer(self, frame: gpd.GeoDataFrame | pd.DataFrame, *, prefix: str) -> str:
        """Write ``frame`` to a new layer named ``<prefix>_<random>``; return the name.

        Call inside :meth:`write_lock`. The layer stays marked pending (and is
        dropped by the next writer) until :meth:`insert` releases it.
        """
        layer = f"{_sanitize(prefix)}_{uuid.uuid4().hex[:8]}"
        self._exec("INSERT INTO gc_pending (layer, created) VALUES (?, datetime('now'))", (layer,))
        try:
            frame = _prepare_for_write(frame)
            kwargs: dict[str, Any] = {"layer": layer, "driver": "GPKG"}
            if isinstance(frame, gpd.GeoDataFrame):
                kwargs["layer_options"] = {"SPATIAL_INDEX": "YES"}
                if len(frame) == 0 or frame.geometry.isna().all():
                    # GDAL cannot infer a geometry type from no geometries.
                    kwargs["geometry_type"] = "Unknown"
            points = _point_table(frame) if isinstance(frame, gpd.GeoDataFrame) else None
            if points is not None:
                pyogrio.raw.write_arrow(
                    points,
                    self.path,
                    geometry_name=frame.geometry.name,
                    geometry_type="Point",
                    crs=frame.crs.to_string(),
                    **kwargs,
                )
            else:
                pyogrio.write_dataframe(frame, self.path, use_arrow=True, **kwargs)
        except BaseException:
            self.drop_layer(layer)
            self._exec("DELETE FROM gc_pending WHERE layer = ?", (layer,))
            raise
        return layer

    def read_layer(
        self,
        layer: str,
        *,
        bbox: BBox | None = None,
        columns: list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        where: str | None = None,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a layer; feature layers come back as GeoDataFrames in EPSG:4326."""
        kwargs: dict[str, Any] = {"layer": layer, "use_arrow": True}
        if bbox is not None:
            kwargs["bbox"] = tuple(float(v) for v in bbox)
        if columns is not None:
            kwargs["columns"] = list(columns)
        if offset:
            kwargs["skip_features"] = int(offset)
        if limit is not None:
            kwargs["max_features"] = int(limit)
        if where:
            kwargs["where"] = where
        return pyogrio.read_dataframe(self.path, **kwargs)

    def count(self, layer: str, *, bbox: BBox | None = None) -> int:
        """Number of rows; with ``bbox``, those whose envelope meets it (R-tree)."""
        con = self._connect()
        try:
            if bbox is None:
                return int(con.execute(f'SELECT count(*) FROM "{layer}"').fetchone()[0])
            geom = self._geometry_column(con, layer)
            if geom is None:
                return int(con.execute(f'SELECT count(*) FROM "{layer}"').fetchone()[0])
            minx, miny, maxx, maxy = (float(v) for v in bbox)
            sql = (
                f'SELECT count(*) FROM "rtree_{layer}_{geom}" '
                "WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?"
            )
            return int(con.execute(sql, (minx, maxx, miny, maxy)).fetchone()[0])
        finally:
            con.close()

    @staticmethod
    def _geometry_column(con: sqlite3.Connection, layer: str) -> str | None:
        row = con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        return row[0] if row else None

    def drop_layer(self, layer: str) -> None:
        """Drop a layer and every GeoPackage registration of it (R-tree, contents …)."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            geom = self._geometry_column(con, layer)
            if geom is not None:
                con.execute(f'DROP TABLE IF EXISTS "rtree_{layer}_{geom}"')
            con.execute(f'DROP TABLE IF EXISTS "{layer}"')
            for table in ("gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents"):
                if _table_exists(con, table):
                    con.execute(f"DELETE FROM {table} WHERE lower(table_name) = lower(?)", (layer,))
            con.execute("DELETE FROM gpkg_contents WHERE lower(table_name) = lower(?)", (layer,))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def layers(self) -> Iterator[str]:
        """Every physical layer registered in ``gpkg_contents``."""
        con = self._connect()
        try:
            rows = con.execute("SELECT table_name FROM gpkg_contents").fetchall()
        finally:
            con.close()
        yield from (r[0] for r in rows)

    # -- catalog --------------------------------------------------------------------------
    def insert(self, table: str, row: dict[str, Any], *, pending: list[str] | tuple = ()) -> None:
        """Insert a catalog row and release ``pending`` layers in one transaction."""
        _check_table(table)
        cols = list(row)
        values = [_encode(c, row[c]) for c in cols]
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                values,
            )
            for layer in pending:
                con.execute("DELETE FROM gc_pending WHERE layer = ?", (layer,))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def select(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Rows of a catalog table matching ``column=value`` filters."""
        _check_table(table)
        sql = f"SELECT * FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        # Insertion order (rowid): timestamps have one-second resolution.
        order = "id, version" if table == "gc_datasets" else "rowid"
        con = self._connect()
        try:
            rows = con.execute(f"{sql} ORDER BY {order}", tuple(where.values())).fetchall()
        finally:
            con.close()
        return [{k: _decode(k, r[k]) for k in r.keys()} for r in rows]

    def delete(self, table: str, **where: Any) -> int:
        """Delete catalog rows matching ``column=value`` filters."""
        _check_table(table)
        if not where:
            raise GeoclusterError("refusing to delete a whole catalog table")
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            cur = con.execute(
                f"DELETE FROM {table} WHERE " + " AND ".join(f"{k} = ?" for k in where),
                tuple(where.values()),
            )
            con.execute("COMMIT")
            return cur.rowcount
        finally:
            con.close()


def _prepare_for_write(frame: gpd.GeoDataFrame | pd.DataFrame) -> gpd.GeoDataFrame | pd.DataFrame:
    """Make a frame writable by GDAL: plain index, serialisable object columns."""
    frame = frame.reset_index(drop=True)
    for col in frame.columns:
        if isinstance(frame, gpd.GeoDataFrame) and col == frame.geometry.name:
            continue
        series = frame[col]
        if series.dtype == object:
            sample = series.dropna()
            if len(sample) and isinstance(sample.iloc[0], dict | list | tuple):
                frame[col] = series.map(lambda v: None if v is None else json.dumps(v, default=str))
    return frame


#: Little-endian 2D WKB point: byte order, geometry type 1, x, y (21 bytes, packed).
_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


def _point_table(frame: gpd.GeoDataFrame) -> pa.Table | None:
    """An Arrow table with WKB encoded straight from coordinates, for point layers.

    Firm registers are millions of 2D points: packing their WKB with numpy is ~10x
    cheaper than serialising shapely geometries one by one. Anything else (other
    types, Z, empty or missing geometries, no CRS) returns None for the general path.
    """
    geoms = frame.geometry.values
    if len(frame) == 0 or frame.crs is None or len(frame) > 50_000_000:
        return None
    arr = np.asarray(geoms)
    if (
        (shapely.get_type_id(arr) != 0).any()
        or shapely.has_z(arr).any()
        or shapely.is_empty(arr).any()
    ):
        return None
    xy = shapely.get_coordinates(arr)
    packed = np.empty(len(xy), dtype=_WKB_POINT)
    packed["order"], packed["type"] = 1, 1
    packed["x"], packed["y"] = xy[:, 0], xy[:, 1]
    offsets = np.arange(0, _WKB_POINT.itemsize * (len(xy) + 1), _WKB_POINT.itemsize, dtype=np.int32)
    wkb = pa.Array.from_buffers(
        pa.binary(), len(xy), [None, pa.py_buffer(offsets), pa.py_buffer(packed.tobytes())]
    )
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    table = pa.Table.from_pandas(attrs, preserve_index=False)
    for i, fld in enumerate(table.schema):  # GDAL has no Arrow null type
        if pa.types.is_null(fld.type):
            table = table.set_column(i, fld.with_type(pa.string()), table[i].cast(pa.string()))
    return table.append_column(pa.field(frame.geometry.name, pa.binary()), wkb)


def _sanitize(prefix: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in prefix.lower())
    return out.strip("_")[:48] or "layer"


def _table_exists(con: sqlite3.Connection, table: str) -> bool:
    row = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,))
    return row.fetchone() is not None


def _check_table(table: str) -> None:
    if table not in CATALOG:
        raise GeoclusterError(f"unknown catalog table {table!r}")


def _encode(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        return json.dumps(value, default=str)
    return value


def _decode(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)
    return value
