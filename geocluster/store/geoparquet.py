"""Immutable GeoParquet 1.1 layer files: write once, read with pushdown.

Layout of one layer file
------------------------
- attributes as written, plus the geometry as WKB (``geometry``, lon/lat, OGC:CRS84);
- a covering ``bbox`` struct column (``xmin``, ``ymin``, ``xmax``, ``ymax``) declared in
  the GeoParquet ``geo`` metadata, so GDAL/QGIS and our reader prune row groups by
  their statistics;
- point layers also carry ``x``, ``y`` (float64) in the dataset's metric working CRS:
  analyses read two columns instead of decoding and re-projecting every geometry;
- rows sorted by an optional leading key (firms: the ISIC division) and then along a
  Hilbert curve, cut into row groups that never straddle two leading-key values, so a
  one-sector read touches that sector's row groups only and a bbox read a few.

Nothing here knows about the catalog; :mod:`geocluster.store.embedded` decides names.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from geocluster.errors import InvalidInput

BBox = tuple[float, float, float, float]
#: ``(column, op, value)``; ops: ``==``, ``!=``, ``in``, ``not in``, ``<``, ``<=``, ``>``,
#: ``>=``, ``is null``, ``not null``. A list of them is ANDed.
Filter = tuple[str, str, Any]

GEOMETRY = "geometry"
BBOX = "bbox"
ROW_GROUP_ROWS = 16_384
#: Above this many rows a layer is written as several part files (parallel readers).
PART_ROWS = 2_000_000
_BBOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")
_OPS = {"==", "!=", "in", "not in", "<", "<=", ">", ">=", "is null", "not null"}


# -- writing ---------------------------------------------------------------------------------
def hilbert_order(cx: np.ndarray, cy: np.ndarray, *, level: int = 16) -> np.ndarray:
    """Hilbert distance of lon/lat centres on a fixed world grid (uint32, ``2**level``).

    Non-finite coordinates count as the grid's centre or edge (NaN as 0, infinities
    as the bound). A large layer goes through one compiled pass
    (:func:`geocluster.store._hilbert.encode_lonlat`, the same values as the NumPy
    expressions below, tested), not five temporaries of its size.
    """
    from geocluster.store._hilbert import SMALL, encode_lonlat
    from geocluster.store._hilbert import encode as _encode

    if len(cx) >= SMALL and 1 <= level <= 16:
        return encode_lonlat(level, cx, cy)
    n = (1 << level) - 1
    cx = np.clip(np.nan_to_num(cx, nan=0.0, posinf=180.0, neginf=-180.0), -180.0, 180.0)
    cy = np.clip(np.nan_to_num(cy, nan=0.0, posinf=90.0, neginf=-90.0), -90.0, 90.0)
    ix = np.clip(((cx + 180.0) / 360.0 * n), 0, n).astype(np.uint32)
    iy = np.clip(((cy + 90.0) / 180.0 * n), 0, n).astype(np.uint32)
    return _encode(level, ix, iy)


def _wkb_points(xy: np.ndarray) -> pa.Array:
    """2D point WKB packed straight from an (n, 2) array of coordinates."""
    return _wkb_points_xy(xy[:, 0], xy[:, 1])


def _wkb_points_xy(x: np.ndarray, y: np.ndarray) -> pa.Array:
    """2D point WKB packed straight from coordinates (10x cheaper than shapely.to_wkb).

    Every value is the 21 bytes of one little-endian point, so the offsets are a range
    and the packed records are the data buffer itself (no copy).
    """
    dtype = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    n = len(x)
    packed = np.empty(n, dtype=dtype)
    packed["order"], packed["type"] = 1, 1
    packed["x"], packed["y"] = x, y
    if dtype.itemsize * n >= 2**31:
        offsets = np.arange(0, dtype.itemsize * (n + 1), dtype.itemsize, dtype=np.int64)
        return pa.Array.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(packed.view(np.uint8))]
        ).cast(pa.binary())
    offsets = np.arange(0, dtype.itemsize * (n + 1), dtype.itemsize, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(packed.view(np.uint8))]
    )


def take_rows(table: pa.Table, order: np.ndarray) -> pa.Table:
    """``table.take(order)``, each column made one chunk first, one range check.

    Arrow's take of a column of many chunks (a layer read row group by row group) costs
    up to 3x the take of the same values in one chunk (5M firm ids in a random order:
    0.32-0.40 s against 0.10-0.24 s, combining included); the indices are checked once
    here instead of per column.
    """
    order = np.asarray(order, dtype=np.int64)
    n = table.num_rows
    if len(order) and (order.min() < 0 or order.max() >= n):
        raise IndexError("take_rows: index out of range")
    if table.num_columns == 0:
        return pa.table({})
    indices = pa.array(order)
    columns = [
        pc.take(c.combine_chunks() if c.num_chunks > 1 else c, indices, boundscheck=False)
        for c in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _attributes_table(frame: pd.DataFrame) -> pa.Table:
    """Arrow table of the non-geometry columns (dicts/lists as JSON text, no null type)."""
    frame = frame.reset_index(drop=True)
    as_json = {}
    for col in frame.columns:
        series = frame[col]
        if series.dtype == object:
            sample = series.dropna()
            if len(sample) and isinstance(sample.iloc[0], dict | list | tuple):
                as_json[col] = series.map(
                    lambda v: None if v is None else json.dumps(v, default=str)
                )
    if as_json:  # copy only when a column changes (a register's frame is gigabytes)
        frame = frame.assign(**{str(k): v for k, v in as_json.items()})
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, fld in enumerate(table.schema):
        if pa.types.is_null(fld.type):
            table = table.set_column(i, fld.with_type(pa.string()), table[i].cast(pa.string()))
    return table.replace_schema_metadata(None)


@dataclass(frozen=True)
class WrittenLayer:
    """What :func:`write_layer` wrote: its name, file names (relative) and facts."""

    name: str
    files: list[str]
    rows: int
    geometry: bool
    geometry_types: list[str]
    bbox: list[float] | None
    columns: list[str]


@dataclass
class PointLayout:
    """A point layer's row order and its sorted geometry, computed before its attributes.

    :func:`point_layout` makes it from the points alone (and any attribute columns
    already known), so that a caller can do this share of :func:`write_layer` while
    it computes the remaining columns: a clustering orders and packs the labels
    layer's 5M points while DBSCAN runs on the other core. Passed to
    :func:`write_layer` as ``points_lonlat``.
    """

    rows: int
    order: np.ndarray
    geometry: pa.Array
    bbox: pa.Array
    xy: tuple[pa.Array, pa.Array] | None
    columns: pa.Table
    geometry_types: list[str]
    total_bbox: list[float] | None
    #: the rows were in layout order already (``order`` is ``0..n-1``): nothing taken
    identity: bool = False
    #: with ``sort_codes``: first row of each run of equal codes (row groups start there)
    starts: np.ndarray | None = None

    def __len__(self) -> int:
        return self.rows


def point_layout(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    working_xy: tuple[np.ndarray, np.ndarray] | None = None,
    columns: pd.DataFrame | None = None,
    sort_codes: np.ndarray | None = None,
) -> PointLayout:
    """Order (Hilbert curve of lon/lat, after ``sort_codes``) and sorted geometry of points.

    ``columns``: attribute columns of the same rows, stored sorted in the layout;
    :func:`write_layer` takes them from here instead of from its frame.
    ``sort_codes``: integer codes of a leading sort key (a sector's rank among the
    sorted sectors); row groups then start at each change of code, as with
    :func:`write_layer`'s ``sort_key``. Rows already in this order (a register read
    from the store, stored by division and Hilbert key) are recognised by one pass
    and nothing is gathered.
    """
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    n = len(lon)
    if lon.shape != (n,) or lat.shape != (n,):
        raise ValueError("points_lonlat must hold one lon and one lat per row")
    # a point's bounds are its lon/lat: two columns, never a 4-column copy
    finite = np.isfinite(lon) & np.isfinite(lat)
    all_finite = bool(finite.all())
    plon, plat = (lon, lat) if all_finite else (
        np.where(finite, lon, np.nan), np.where(finite, lat, np.nan)
    )  # fmt: skip
    keys: list[np.ndarray] = [hilbert_order(plon, plat)]
    codes = None
    if sort_codes is not None:
        codes = np.asarray(sort_codes)
        if codes.shape != (n,) or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError("sort_codes must hold one integer code per row")
        keys.append(codes)
    identity = _in_order(keys)
    # the last key is the primary one; lexsort is stable, so sorted rows keep their order
    order = np.arange(n) if identity else np.lexsort(keys)
    del keys
    starts = None
    if codes is not None:
        sorted_codes = codes if identity else codes[order]
        starts = np.concatenate([[0], np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1])
        del sorted_codes
    total_bbox = None
    if all_finite and n:
        total_bbox = [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]
    elif finite.any():
        flon, flat = lon[finite], lat[finite]
        total_bbox = [float(flon.min()), float(flat.min()), float(flon.max()), float(flat.max())]
    slon, slat = (plon, plat) if identity else (plon[order], plat[order])
    if n and all_finite:
        wkb = _wkb_points_xy(slon, slat)
    else:  # missing points are null geometries
        wkb = pc_if_else(finite[order], _wkb_points_xy(np.nan_to_num(slon), np.nan_to_num(slat)))
    # NaN (a missing point) is a null bound
    bx = pa.array(slon, type=pa.float64(), from_pandas=True)
    by = pa.array(slat, type=pa.float64(), from_pandas=True)
    del slon, slat
    xy = None
    if working_xy is not None:
        wx, wy = (np.asarray(v, dtype="float64") for v in working_xy)
        if wx.shape != (n,) or wy.shape != (n,):
            raise ValueError("working_xy must hold one x and one y per row")
        xy = (
            (pa.array(wx), pa.array(wy)) if identity else (pa.array(wx[order]), pa.array(wy[order]))
        )
    table = _attributes_table(columns) if columns is not None else pa.table({})
    if columns is not None and len(columns) != n:
        raise ValueError("the layout's columns must have one row per point")
    return PointLayout(
        rows=n,
        order=order,
        geometry=wkb,
        bbox=pa.StructArray.from_arrays([bx, by, bx, by], names=list(_BBOX_FIELDS)),
        xy=xy,
        columns=take_rows(table, order) if table.num_columns and not identity else table,
        geometry_types=["Point"] if finite.any() else [],
        total_bbox=total_bbox,
        identity=identity,
        starts=starts,
    )


def _in_order(keys: list[np.ndarray]) -> bool:
    """Whether rows are sorted by ``keys`` already (last key primary, as ``lexsort``)."""
    h = keys[0]
    if len(h) < 2:
        return True
    rising = h[1:] >= h[:-1]
    if len(keys) == 2:
        c = keys[1]
        rising = (c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & rising)
    return bool(rising.all())


def write_layer(
    frame: pd.DataFrame,
    directory: Path,
    name: str,
    *,
    working_xy: tuple[np.ndarray, np.ndarray] | None = None,
    sort_key: str | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    part_rows: int = PART_ROWS,
    tmp_prefix: str = ".tmp-",
    points_lonlat: tuple[np.ndarray, np.ndarray] | PointLayout | None = None,
) -> WrittenLayer:
    """Write ``frame`` as immutable GeoParquet part file(s) ``<name>.<i>.parquet``.

    Each part is written to a temp file in ``directory``, fsynced and renamed into
    place, so a reader never sees a partial file. The caller makes the layer visible
    (catalog transaction) only after this returns.

    Parameters
    ----------
    frame : GeoDataFrame (EPSG:4326) or DataFrame
    working_xy : (x, y) arrays, optional
        Metric working-CRS coordinates of point rows, stored as ``x``, ``y``.
    sort_key : str, optional
        Leading sort column; row groups never straddle two of its values.
    points_lonlat : (lon, lat) arrays or PointLayout, optional
        With a plain DataFrame ``frame``: the layer's geometry is these points
        (EPSG:4326), written without building a geometry object per row. A
        :class:`PointLayout` (of these rows, with ``working_xy``) brings them ordered
        and packed already, and the frame's columns it holds.
    """
    import geopandas as gpd
    import shapely

    n = len(frame)
    layout = points_lonlat if isinstance(points_lonlat, PointLayout) else None
    identity = False
    if layout is None and points_lonlat is not None:
        codes = None
        if sort_key and sort_key in frame.columns:
            codes, _ = pd.factorize(frame[sort_key].astype("string").fillna(""), sort=True)
        layout = point_layout(*points_lonlat, working_xy=working_xy, sort_codes=codes)
    elif layout is not None:
        _check_layout(layout, frame, working_xy, sort_key)
    is_geo = layout is not None or (
        isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
    )
    if layout is not None and len(layout) != n:
        raise ValueError("points_lonlat must hold one lon and one lat per row")
    order = np.arange(n)
    geometry_types: list[str] = []
    total_bbox = None
    if layout is not None:
        order, geometry_types, total_bbox = layout.order, layout.geometry_types, layout.total_bbox
        identity = layout.identity
    elif is_geo:
        geoms = np.asarray(frame.geometry.values)
        bounds = shapely.bounds(geoms)  # nan rows for empty / missing
        type_ids = shapely.get_type_id(geoms)
        geometry_types = sorted({_TYPE_NAMES[t] for t in np.unique(type_ids) if t in _TYPE_NAMES})
        cx = (bounds[:, 0] + bounds[:, 2]) / 2
        cy = (bounds[:, 1] + bounds[:, 3]) / 2
        keys: list[np.ndarray] = [hilbert_order(cx, cy)]
        if sort_key and sort_key in frame.columns:
            codes, _ = pd.factorize(frame[sort_key].astype("string").fillna(""), sort=True)
            keys.append(codes)
        order = np.lexsort(keys)  # last key is the primary one
        finite = np.isfinite(bounds).all(axis=1)
        if finite.any():
            b = bounds[finite]
            total_bbox = [
                float(b[:, 0].min()),
                float(b[:, 1].min()),
                float(b[:, 2].max()),
                float(b[:, 3].max()),
            ]
    elif sort_key and sort_key in frame.columns:
        order = np.argsort(frame[sort_key].astype("string").fillna("").to_numpy(), kind="stable")

    attrs = frame.drop(columns=[frame.geometry.name]) if is_geo and layout is None else frame
    attrs = attrs.drop(columns=[c for c in (BBOX, "x", "y") if c in attrs.columns and is_geo])
    held = layout.columns.column_names if layout is not None else []
    # sorted in Arrow: one gather per column, no pandas block copies
    table = _attributes_table(attrs.drop(columns=held))
    if n and not identity:
        table = take_rows(table, order)
    if held:
        table = pa.Table.from_arrays(
            [layout.columns[c] if c in held else table[c] for c in (str(c) for c in attrs.columns)],
            names=[str(c) for c in attrs.columns],
        )
    if layout is not None:
        table = table.append_column(GEOMETRY, layout.geometry)
        table = table.append_column(BBOX, layout.bbox)
        if layout.xy is not None:
            table = table.append_column("x", layout.xy[0]).append_column("y", layout.xy[1])
    elif is_geo:
        bounds = bounds[order]
        is_point = (type_ids[order] == 0) & np.isfinite(bounds[:, 0])
        if n and is_point.all():
            wkb = _wkb_points(bounds[:, :2])
        else:
            wkb = pa.array(shapely.to_wkb(geoms[order], output_dimension=2), type=pa.binary())
        table = table.append_column(GEOMETRY, wkb)
        bbox_arr = pa.StructArray.from_arrays(
            [pa.array(bounds[:, i], type=pa.float64(), from_pandas=True) for i in range(4)],
            names=list(_BBOX_FIELDS),
        )
        table = table.append_column(BBOX, bbox_arr)
        if working_xy is not None:
            wx, wy = (np.asarray(a, dtype="float64")[order] for a in working_xy)
            table = table.append_column("x", pa.array(wx)).append_column("y", pa.array(wy))
    meta = (
        geo_metadata(geometry_types, total_bbox)
        if is_geo
        else {b"geocluster": json.dumps({"format": 2}).encode()}
    )
    table = table.replace_schema_metadata(meta)

    # Row groups: every row_group_rows rows and at every change of the sort key.
    starts = [0]
    if layout is not None and layout.starts is not None and n:
        starts = [int(c) for c in layout.starts]
    elif sort_key and sort_key in table.column_names and n:
        values = pd.Series(table[sort_key].to_pandas()).astype("string").fillna("")
        change = np.flatnonzero(values.to_numpy()[1:] != values.to_numpy()[:-1]) + 1
        starts.extend(int(c) for c in change)
    writer = LayerWriter(
        directory,
        name,
        table.schema,
        dictionary=_dictionary_columns(table),
        row_group_rows=row_group_rows,
        part_rows=part_rows,
        tmp_prefix=tmp_prefix,
    )
    try:
        for start, stop in zip(starts, [*starts[1:], n], strict=True):
            writer.add(table.slice(start, stop - start))
        files = writer.close()
    finally:
        writer.abort()
    columns = [c for c in table.column_names if c not in (GEOMETRY, BBOX)]
    return WrittenLayer(name, files, n, is_geo, geometry_types, total_bbox, columns)


def _check_layout(
    layout: PointLayout, frame: pd.DataFrame, working_xy: Any, sort_key: str | None
) -> None:
    """A layout handed to :func:`write_layer` must be of these rows: checked cheaply."""
    if sort_key and sort_key in frame.columns:
        raise ValueError("a PointLayout is ordered already: no sort_key with it")
    if (working_xy is None) != (layout.xy is None):
        raise ValueError("a PointLayout must be made with the working_xy it is written with")
    if len(layout) != len(frame):
        raise ValueError("points_lonlat must hold one lon and one lat per row")
    n = len(frame)
    if n and working_xy is not None:
        probe = np.unique(np.linspace(0, n - 1, 7).astype(np.int64))
        for given, held in zip(working_xy, layout.xy, strict=True):
            got = np.array([held[int(i)].as_py() for i in probe], dtype="float64")
            if not np.array_equal(got, np.asarray(given)[layout.order[probe]], equal_nan=True):
                raise ValueError("the layout was made with other working_xy")
    for c in layout.columns.column_names:
        if c not in frame.columns:
            raise ValueError(f"the layout holds column {c!r} that the frame has not")
        if n:
            # spot checks: the held column is the frame's, sorted by the layout's order
            probe = np.unique(np.linspace(0, n - 1, 7).astype(np.int64))
            # one value at a time: a take of a many-chunk column would combine its chunks
            held = layout.columns[c]
            got = [held[int(i)].as_py() for i in probe]
            want = frame[c].iloc[layout.order[probe]].tolist()
            if [str(v) for v in got] != [str(v) for v in want]:
                raise ValueError(f"the layout's column {c!r} is not the frame's")


def geo_metadata(geometry_types: list[str], total_bbox: list[float] | None) -> dict[bytes, bytes]:
    """Schema metadata of a layer file: geocluster's format and GeoParquet 1.1 ``geo``."""
    geo_meta = {
        "version": "1.1.0",
        "primary_column": GEOMETRY,
        "columns": {
            GEOMETRY: {
                "encoding": "WKB",
                "geometry_types": geometry_types,
                "bbox": total_bbox or [],
                "covering": {"bbox": {f: [BBOX, f] for f in _BBOX_FIELDS}},
            }
        },
    }
    return {
        b"geocluster": json.dumps({"format": 2}).encode(),
        b"geo": json.dumps(geo_meta).encode(),
    }


def point_columns(table: pa.Table, lon: np.ndarray, lat: np.ndarray) -> pa.Table:
    """``table`` with the geometry (WKB points) and bbox covering of finite lon/lat rows."""
    table = table.append_column(GEOMETRY, _wkb_points_xy(lon, lat))
    x = pa.array(np.asarray(lon, dtype="float64"), type=pa.float64())
    y = pa.array(np.asarray(lat, dtype="float64"), type=pa.float64())
    bbox = pa.StructArray.from_arrays([x, y, x, y], names=list(_BBOX_FIELDS))
    return table.append_column(BBOX, bbox)


class LayerWriter:
    """Writes a layer's part files from tables handed over in final row order.

    Every :meth:`add` starts a new row group (a change of the sort key); within one add,
    a row group ends every ``row_group_rows`` rows counted from the start of the layer.
    A part file takes row groups until the next would bring it past ``part_rows``. Each
    part is written to a temp file in ``directory``, fsynced and renamed into place by
    :meth:`close`; :meth:`abort` removes whatever is left of a failed write.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        schema: pa.Schema,
        *,
        dictionary: list[str] | bool = True,
        row_group_rows: int = ROW_GROUP_ROWS,
        part_rows: int = PART_ROWS,
        tmp_prefix: str = ".tmp-",
    ) -> None:
        self.directory = Path(directory)
        self.name = name
        self.schema = schema
        self.dictionary = dictionary
        self.row_group_rows = row_group_rows
        self.part_rows = part_rows
        self.tmp_prefix = tmp_prefix
        self.rows = 0
        self._files: list[str] = []
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_part = 0
        self._buf: list[pa.Table] = []
        self._buf_rows = 0

    def _tmp_path(self, i: int) -> Path:
        return self.directory / f"{self.tmp_prefix}{os.getpid()}-{self.name}.{i}.parquet"

    def _open(self) -> None:
        self._tmp = self._tmp_path(len(self._files))
        self._writer = pq.ParquetWriter(
            self._tmp,
            self.schema,
            compression=compression_of(self.schema),
            # every column but the WKB, whose min/max bytes no reader uses (the bbox
            # covering's statistics are what prune row groups)
            write_statistics=[c for c in compression_of(self.schema) if c != GEOMETRY],
            use_dictionary=self.dictionary,
        )
        self._rows_in_part = 0

    def _finish_part(self) -> None:
        assert self._writer is not None and self._tmp is not None
        self._writer.close()
        self._writer = None
        fd = os.open(self._tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.directory / f"{self.name}.{len(self._files)}.parquet"
        os.replace(self._tmp, final)
        self._tmp = None
        self._files.append(final.name)

    def _flush(self) -> None:
        """Write the buffered rows as one row group."""
        if not self._buf_rows:
            return
        t = pa.concat_tables(self._buf) if len(self._buf) > 1 else self._buf[0]
        n = self._buf_rows
        self._buf, self._buf_rows = [], 0
        if (
            self._writer is not None
            and self._rows_in_part
            and (self._rows_in_part + n > self.part_rows)
        ):
            self._finish_part()
        if self._writer is None:
            self._open()
        self._writer.write_table(t, row_group_size=1 << 30)
        self._rows_in_part += n

    def add(self, table: pa.Table, new_group: bool = True) -> None:
        """Append rows (already in final order).

        They start a new row group (a change of the sort key) unless ``new_group`` is
        false: then they continue the current one (more rows of the same key).
        """
        if table.schema != self.schema:
            table = table.cast(self.schema)
        if new_group:
            self._flush()
        done = 0
        while done < table.num_rows:
            room = self.row_group_rows - (self.rows % self.row_group_rows)
            take = min(room, table.num_rows - done)
            self._buf.append(table.slice(done, take))
            self._buf_rows += take
            self.rows += take
            done += take
            if self.rows % self.row_group_rows == 0:
                self._flush()

    def close(self) -> list[str]:
        """Finish the last part; returns the file names (relative to ``directory``)."""
        self._flush()
        if self._writer is None and not self._files:
            self._open()  # an empty layer is one file with the schema and no rows
        if self._writer is not None:
            self._finish_part()
        _fsync_dir(self.directory)
        return list(self._files)

    def abort(self) -> None:
        """Remove the temp file of an unfinished part (no-op after :meth:`close`)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - already failing; the file goes anyway
                pass
            self._writer = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def pc_if_else(mask: np.ndarray, values: pa.Array) -> pa.Array:
    """``values`` where ``mask``, null elsewhere."""
    import pyarrow.compute as pc

    return pc.if_else(pa.array(mask), values, pa.scalar(None, values.type))


#: Float64 columns stored uncompressed: coordinates, whose bits zstd shrinks by ~10 %
#: only. Writing them costs half the compression time of a points layer, reading them
#: back half its decompression (5M firms' x, y and bbox: 326 instead of 297 MB).
UNCOMPRESSED = ("x", "y", f"{BBOX}.xmin", f"{BBOX}.ymin", f"{BBOX}.xmax", f"{BBOX}.ymax")


def compression_of(schema: pa.Schema) -> dict[str, str]:
    """Per-column codecs of a layer file: zstd, coordinates (:data:`UNCOMPRESSED`) none."""
    codecs = {}
    for fld in schema:
        if pa.types.is_struct(fld.type):
            for child in fld.type:
                path = f"{fld.name}.{child.name}"
                codecs[path] = "none" if path in UNCOMPRESSED else "zstd"
        else:
            plain = fld.name in UNCOMPRESSED and pa.types.is_float64(fld.type)
            codecs[fld.name] = "none" if plain else "zstd"
    return codecs


def _dictionary_columns(table: pa.Table, sample_rows: int = 65_536) -> list[str] | bool:
    """Columns worth dictionary-encoding: those with few distinct values in a sample.

    Parquet's default dictionary-encodes every column and falls back page by page
    when the dictionary grows; on unique columns (ids, names, coordinates, WKB) that is
    wasted work and a larger file (5M firms: 3.1 s and 165 MB against 1.5 s and 133 MB).
    """
    import pyarrow.compute as pc

    if table.num_rows < 50_000:
        return True  # small layers: Parquet's default, not worth sampling
    head = table.slice(0, sample_rows)
    out: list[str] = []
    for fld in table.schema:
        if pa.types.is_struct(fld.type) or pa.types.is_boolean(fld.type):
            continue  # bbox: unique doubles; booleans are bit-packed already
        if fld.name == GEOMETRY or fld.name in UNCOMPRESSED:
            continue  # WKB and coordinates: never worth a dictionary, not worth counting
        values = head[fld.name]
        if len(values) == 0:
            continue
        try:
            distinct = pc.count_distinct(values, mode="all").as_py()
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            continue
        if distinct <= max(16, len(values) // 8):
            out.append(fld.name)
    return out


_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------------
@dataclass
class _PartMeta:
    """Footer facts of one part file, read once per (immutable) file."""

    path: Path
    schema: pa.Schema
    num_rows: list[int]
    stats: list[dict[str, tuple[Any, Any, int]]]  # per row group: column -> (min, max, nulls)
    geo: dict[str, Any] | None

    @property
    def rows(self) -> int:
        return sum(self.num_rows)


@lru_cache(maxsize=4096)
def _part_meta(path: str) -> _PartMeta:
    pf = pq.ParquetFile(path)
    md = pf.metadata
    stats: list[dict[str, tuple[Any, Any, int]]] = []
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        entry: dict[str, tuple[Any, Any, int]] = {}
        for j in range(rg.num_columns):
            col = rg.column(j)
            st = col.statistics
            if st is not None and st.has_min_max:
                entry[col.path_in_schema] = (st.min, st.max, st.null_count)
            elif st is not None:
                entry[col.path_in_schema] = (None, None, st.null_count)
        stats.append(entry)
    raw = pf.schema_arrow.metadata or {}
    geo = json.loads(raw[b"geo"]) if b"geo" in raw else None
    schema = pf.schema_arrow
    return _PartMeta(
        Path(path), schema, [md.row_group(i).num_rows for i in range(md.num_row_groups)], stats, geo
    )


@dataclass
class ReadStats:
    """Counters of what reads touched (tests prove pushdown with them)."""

    row_groups_read: int = 0
    rows_read: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, groups: int, rows: int) -> None:
        """Count one read."""
        with self._lock:
            self.row_groups_read += groups
            self.rows_read += rows

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.row_groups_read = 0
            self.rows_read = 0


class ColumnCache:
    """Bounded LRU of decoded column chunks, keyed by (immutable file, row group, column)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[tuple[str, int, str], pa.ChunkedArray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str]) -> pa.ChunkedArray | None:
        """The cached chunk, or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, int, str], value: pa.ChunkedArray) -> None:
        """Cache a chunk (evicting the least recently used past the cap)."""
        size = value.nbytes
        if self.max_bytes <= 0 or size > self.max_bytes:
            return
        with self._lock:
            if key in self._data:
                return
            self._data[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes and self._data:
                _, old = self._data.popitem(last=False)
                self._bytes -= old.nbytes

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self._bytes


def layer_schema(paths: Sequence[Path]) -> pa.Schema:
    """Arrow schema of a layer (its first part)."""
    return _part_meta(str(paths[0])).schema


def layer_geo(paths: Sequence[Path]) -> dict[str, Any] | None:
    """The GeoParquet ``geo`` metadata of a layer, or None for attribute tables."""
    return _part_meta(str(paths[0])).geo


def _check_filters(filters: Iterable[Filter] | None, schema: pa.Schema) -> list[Filter]:
    out = []
    for item in filters or ():
        if not (isinstance(item, tuple | list) and len(item) == 3):
            raise InvalidInput(f"expected a filter (column, op, value), got {item!r}")
        column, op, value = item
        if op not in _OPS:
            raise InvalidInput(f"expected a filter operator in {sorted(_OPS)}, got {op!r}")
        if column not in schema.names:
            raise InvalidInput(f"cannot filter on {column!r}: the layer has no such column")
        out.append((column, op, value))
    return out


def _group_may_match(
    stats: dict[str, tuple[Any, Any, int]], filters: list[Filter], bbox: BBox | None, rows: int
) -> bool:
    for column, op, value in filters:
        st = stats.get(column)
        if st is None:
            continue
        lo, hi, nulls = st
        if op == "is null":
            if nulls == 0:
                return False
            continue
        if op == "not null":
            if nulls == rows:
                return False
            continue
        if lo is None:
            if nulls == rows:
                return False
            continue
        try:
            if op == "==" and not (lo <= value <= hi):
                return False
            if op == "in" and not any(lo <= v <= hi for v in value if v is not None):
                return False
            if op == "<" and not lo < value:
                return False
            if op == "<=" and not lo <= value:
                return False
            if op == ">" and not hi > value:
                return False
            if op == ">=" and not hi >= value:
                return False
            if op == "!=" and lo == hi == value and nulls == 0:
                return False
        except TypeError:  # incomparable types: let the row filter decide
            continue
    if bbox is not None:
        minx, miny, maxx, maxy = bbox
        try:
            if stats[f"{BBOX}.xmax"][0] is not None and (
                stats[f"{BBOX}.xmax"][1] < minx
                or stats[f"{BBOX}.xmin"][0] > maxx
                or stats[f"{BBOX}.ymax"][1] < miny
                or stats[f"{BBOX}.ymin"][0] > maxy
            ):
                return False
        except KeyError:
            pass
    return True


def _row_mask(table: pa.Table, filters: list[Filter], bbox: BBox | None) -> pa.Array | None:
    mask = None

    def both(m):
        nonlocal mask
        m = pc.fill_null(m, False)
        mask = m if mask is None else pc.and_(mask, m)

    for column, op, value in filters:
        arr = table[column]
        if op == "==":
            both(pc.equal(arr, pa.scalar(value, type=arr.type) if value is not None else value))
        elif op == "!=":
            both(pc.not_equal(arr, value))
        elif op == "in":
            both(pc.is_in(arr, value_set=pa.array(list(value), type=arr.type)))
        elif op == "not in":
            both(pc.invert(pc.is_in(arr, value_set=pa.array(list(value), type=arr.type))))
        elif op == "<":
            both(pc.less(arr, value))
        elif op == "<=":
            both(pc.less_equal(arr, value))
        elif op == ">":
            both(pc.greater(arr, value))
        elif op == ">=":
            both(pc.greater_equal(arr, value))
        elif op == "is null":
            both(pc.is_null(arr))
        elif op == "not null":
            both(pc.is_valid(arr))
    if bbox is not None and BBOX in table.column_names:
        b = table[BBOX]
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        both(
            pc.and_(
                pc.and_(
                    pc.greater_equal(pc.struct_field(b, "xmax"), minx),
                    pc.less_equal(pc.struct_field(b, "xmin"), maxx),
                ),
                pc.and_(
                    pc.greater_equal(pc.struct_field(b, "ymax"), miny),
                    pc.less_equal(pc.struct_field(b, "ymin"), maxy),
                ),
            )
        )
    return mask


# -- envelope index ----------------------------------------------------------------------------
#: Bytes of envelope indexes one process keeps (least recently used dropped past it).
INDEX_MAX_BYTES = 512 << 20


class EnvelopeIndex:
    """Row envelopes of one immutable layer, bucketed on a uniform grid.

    A bbox read through the row-group statistics still decodes every row group the
    box meets, and firms are sorted by sector first, so a city-block box meets one
    group per sector: ~30 groups of 16k rows for 100 features. This index holds the
    covering ``bbox`` of every row (points: ``x``, ``y`` only) in storage order, so a
    box query is a few grid cells, an exact test on their rows and a sort: the rows a
    statistics-pruned scan would return, in the same order, without reading the
    layer. Built once per layer and process from the ``bbox`` column alone.

    Parameters
    ----------
    paths : sequence of Path
        The layer's part files, in layer order.
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        self.groups: list[tuple[Path, int]] = []
        starts = [0]
        cols: list[list[np.ndarray]] = [[], [], [], []]
        for path in paths:
            meta = _part_meta(str(path))
            table = pq.read_table(path, columns=[BBOX], memory_map=True) if meta.rows else None
            for rg, rows in enumerate(meta.num_rows):
                self.groups.append((meta.path, rg))
                starts.append(starts[-1] + rows)
            if table is None:
                continue
            bbox = table[BBOX]
            for i, name in enumerate(_BBOX_FIELDS):
                # nulls (missing / empty geometry) come out NaN: they never match a box
                cols[i].append(
                    np.asarray(pc.struct_field(bbox, name).to_numpy(zero_copy_only=False), "f8")
                )
        self.starts = np.asarray(starts, dtype=np.int64)
        xmin, ymin, xmax, ymax = (np.concatenate(c) if c else np.empty(0, dtype="f8") for c in cols)
        geo = _part_meta(str(paths[0])).geo if paths else None
        types = ((geo or {}).get("columns", {}).get(GEOMETRY) or {}).get("geometry_types")
        #: A Point layer (its WKB is 2D points, rebuilt exactly from x = xmin, y = ymin).
        self.points = bool(
            types == ["Point"]
            and np.array_equal(xmin, xmax, equal_nan=True)
            and np.array_equal(ymin, ymax, equal_nan=True)
        )
        self.xmin, self.ymin = xmin, ymin
        self.xmax, self.ymax = (xmin, ymin) if self.points else (xmax, ymax)
        valid = np.isfinite(xmin) & np.isfinite(ymin) & np.isfinite(xmax) & np.isfinite(ymax)
        rows = np.flatnonzero(valid)
        n = len(rows)
        # ~4 rows a cell on average, at most 2048 cells a side (32 MB of offsets)
        self.side = side = int(min(2048, max(1, math.isqrt(max(n, 1) // 4))))
        if n:
            self.x0, self.y0 = float(xmin[rows].min()), float(ymin[rows].min())
            span_x = float(xmin[rows].max()) - self.x0
            span_y = float(ymin[rows].max()) - self.y0
            self.max_w = float((xmax[rows] - xmin[rows]).max())
            self.max_h = float((ymax[rows] - ymin[rows]).max())
        else:
            self.x0 = self.y0 = span_x = span_y = self.max_w = self.max_h = 0.0
        self.cell_w = span_x / side if span_x > 0 else 1.0
        self.cell_h = span_y / side if span_y > 0 else 1.0
        gx = self._cells(xmin[rows], self.x0, self.cell_w)
        gy = self._cells(ymin[rows], self.y0, self.cell_h)
        cell = gy * side + gx
        by_cell = np.argsort(cell, kind="stable")
        self.order = rows[by_cell].astype(np.int64 if len(xmin) >= 2**31 else np.int32)
        self.offsets = np.searchsorted(cell[by_cell], np.arange(side * side + 1)).astype(np.int64)
        self._recent: OrderedDict[tuple[float, ...], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _cells(self, v: np.ndarray, origin: float, width: float) -> np.ndarray:
        return np.clip(np.floor((v - origin) / width), 0, self.side - 1).astype(np.int64)

    @property
    def rows(self) -> int:
        """Rows of the layer."""
        return int(self.starts[-1])

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        arrays = [self.xmin, self.ymin, self.order, self.offsets, self.starts]
        if not self.points:
            arrays += [self.xmax, self.ymax]
        return int(sum(a.nbytes for a in arrays))

    def query(self, bbox: BBox) -> np.ndarray:
        """Layer row numbers (ascending) whose envelope meets ``bbox`` (edges included).

        Exactly the rows :func:`_row_mask` keeps: ``xmax >= minx``, ``xmin <= maxx``,
        ``ymax >= miny``, ``ymin <= maxy``, null envelopes never. The last few answers
        are kept: a page and its ``numberMatched`` ask the same box in a row.
        """
        key = tuple(float(v) for v in bbox)
        with self._lock:
            hit = self._recent.get(key)
        if hit is not None:
            return hit
        rows = self._query(*key)
        rows.flags.writeable = False  # shared between callers
        with self._lock:
            self._recent[key] = rows
            while len(self._recent) > 64:
                self._recent.popitem(last=False)
        return rows

    def _query(self, minx: float, miny: float, maxx: float, maxy: float) -> np.ndarray:
        if not len(self.order) or np.isnan([minx, miny, maxx, maxy]).any():
            return np.empty(0, dtype=np.int64)
        side = self.side
        # rows are bucketed by their envelope's lower-left corner: one meeting the box
        # has xmin in [minx - widest, maxx] (and likewise in y)
        gx0, gx1 = (
            int(c) for c in self._cells(np.array([minx - self.max_w, maxx]), self.x0, self.cell_w)
        )
        gy0, gy1 = (
            int(c) for c in self._cells(np.array([miny - self.max_h, maxy]), self.y0, self.cell_h)
        )
        if (gy1 - gy0 + 1) * 8 > side:  # a large share of the grid: one vectorised pass
            cand = self.order
        else:
            first = np.arange(gy0, gy1 + 1, dtype=np.int64) * side
            lo, hi = self.offsets[first + gx0], self.offsets[first + gx1 + 1]
            cand = np.concatenate(
                [self.order[a:b] for a, b in zip(lo.tolist(), hi.tolist()) if b > a]
                or [self.order[:0]]
            )
        keep = (self.xmin[cand] <= maxx) & (self.ymin[cand] <= maxy)
        if self.points:
            keep &= (self.xmin[cand] >= minx) & (self.ymin[cand] >= miny)
        else:
            keep &= (self.xmax[cand] >= minx) & (self.ymax[cand] >= miny)
        return np.sort(cand[keep]).astype(np.int64, copy=False)


_indexes: OrderedDict[tuple[str, ...], EnvelopeIndex] = OrderedDict()
_index_bytes = [0]
_index_lock = threading.Lock()
_index_building: dict[tuple[str, ...], threading.Lock] = {}


def envelope_index(paths: Sequence[Path]) -> EnvelopeIndex:
    """The :class:`EnvelopeIndex` of a layer's files (built once per process, then kept).

    Concurrent first queries of a layer wait for one build instead of each reading it.
    """
    key = tuple(str(p) for p in paths)
    with _index_lock:
        found = _indexes.get(key)
        if found is not None:
            _indexes.move_to_end(key)
            return found
        building = _index_building.setdefault(key, threading.Lock())
    with building:
        with _index_lock:
            found = _indexes.get(key)
        if found is not None:
            return found
        index = EnvelopeIndex(paths)
        with _index_lock:
            _indexes[key] = index
            _index_bytes[0] += index.nbytes
            while _index_bytes[0] > INDEX_MAX_BYTES and len(_indexes) > 1:
                _, old = _indexes.popitem(last=False)
                _index_bytes[0] -= old.nbytes
            _index_building.pop(key, None)
        return index


def _take_rows(
    index: EnvelopeIndex,
    rows: np.ndarray,
    wanted: list[str],
    cache: ColumnCache | None,
    stats: ReadStats | None,
) -> pa.Table:
    """Layer rows ``rows`` (ascending) of columns ``wanted``, as a scan would return them.

    Only the row groups holding them are read (through ``cache``); a point layer's
    geometry is packed from the index's coordinates, which are the exact doubles its
    WKB was written from, so the big WKB column is not decoded.
    """
    synth_geom = index.points and GEOMETRY in wanted
    read_cols = [c for c in wanted if not (synth_geom and c == GEOMETRY)]
    group_of = np.searchsorted(index.starts, rows, side="right") - 1
    cuts = np.flatnonzero(np.diff(group_of)) + 1
    pieces = []
    for sel in np.split(np.arange(len(rows)), cuts):
        g = int(group_of[sel[0]])
        path, rg = index.groups[g]
        local = pa.array(rows[sel] - index.starts[g])
        if read_cols:
            pieces.append(_read_group(path, rg, read_cols, cache).take(local))
        if stats is not None:
            stats.add(1, int(index.starts[g + 1] - index.starts[g]))
    if read_cols:
        table = pa.concat_tables(pieces)
    else:
        table = pa.table({}).slice(0, 0)
    if synth_geom:
        wkb = _wkb_points(np.column_stack([index.xmin[rows], index.ymin[rows]]))
        return pa.table({c: (wkb if c == GEOMETRY else table[c]) for c in wanted})
    return table.select(wanted)


def read_layer(
    paths: Sequence[Path],
    *,
    columns: Sequence[str] | None = None,
    filters: Iterable[Filter] | None = None,
    bbox: BBox | None = None,
    limit: int | None = None,
    offset: int = 0,
    cache: ColumnCache | None = None,
    stats: ReadStats | None = None,
) -> pa.Table:
    """Read rows of a layer with projection and predicate pushdown.

    Row groups are skipped by their statistics (filters and the covering bbox), only
    the named columns are decoded, and decoded chunks come from ``cache`` when hot.
    ``columns=None`` reads every column; the geometry column is included only when
    named (or when ``columns`` is None).
    """
    if not paths:
        return pa.table({})
    schema = layer_schema(paths)
    flt = _check_filters(filters, schema)
    if columns is None:
        wanted = list(schema.names)
    else:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            have = [c for c in schema.names if c != BBOX]
            raise InvalidInput(
                f"unknown column(s) {', '.join(map(repr, missing[:5]))}; the layer has "
                f"{', '.join(have[:40])}"
            )
        wanted = list(dict.fromkeys(columns))
    need_bbox = bbox is not None and BBOX in schema.names
    needed = list(dict.fromkeys(wanted + [c for c, _, _ in flt] + ([BBOX] if need_bbox else [])))
    pieces: list[pa.Table] = []
    skip = max(int(offset), 0)
    remaining = None if limit is None else max(int(limit), 0)
    if need_bbox and not flt:  # a box alone: the envelope index finds the rows
        rows = envelope_index(paths).query(bbox)[skip:]
        if remaining is not None:
            rows = rows[:remaining]
        if not len(rows):
            return schema.empty_table().select(wanted)
        return _take_rows(envelope_index(paths), rows, wanted, cache, stats)
    for path in paths:
        meta = _part_meta(str(path))
        for rg, rows in enumerate(meta.num_rows):
            if remaining is not None and remaining <= 0:
                break
            if not _group_may_match(meta.stats[rg], flt, bbox if need_bbox else None, rows):
                continue
            if not flt and not need_bbox and skip >= rows:  # offset skips whole groups unread
                skip -= rows
                continue
            chunk = _read_group(meta.path, rg, needed, cache)
            if stats is not None:
                stats.add(1, rows)
            mask = _row_mask(chunk, flt, bbox if need_bbox else None)
            if mask is not None:
                chunk = chunk.filter(mask)
            if skip:
                cut = min(skip, chunk.num_rows)
                chunk = chunk.slice(cut)
                skip -= cut
            if remaining is not None:
                chunk = chunk.slice(0, remaining)
                remaining -= chunk.num_rows
            if chunk.num_rows:
                pieces.append(chunk.select(wanted))
        if remaining is not None and remaining <= 0:
            break
    if not pieces:
        return schema.empty_table().select(wanted)
    return pa.concat_tables(pieces)


def column_range(paths: Sequence[Path], column: str) -> tuple[Any, Any] | None:
    """(min, max) of a column from the files' row-group statistics (no data read)."""
    lo = hi = None
    for path in paths:
        for stats in _part_meta(str(path)).stats:
            st = stats.get(column)
            if st is None:
                return None  # a group without statistics: the footer cannot tell
            if st[0] is None:
                continue
            lo = st[0] if lo is None else min(lo, st[0])
            hi = st[1] if hi is None else max(hi, st[1])
    return None if lo is None else (lo, hi)


def count_rows(
    paths: Sequence[Path], *, filters: Iterable[Filter] | None = None, bbox: BBox | None = None
) -> int:
    """Rows matching ``filters`` and ``bbox`` (footer counts when neither is given)."""
    if not paths:
        return 0
    if not filters and bbox is None:
        return sum(_part_meta(str(p)).rows for p in paths)
    if not filters and BBOX in layer_schema(paths).names:
        return int(len(envelope_index(paths).query(bbox)))
    schema = layer_schema(paths)
    cols = [c for c, _, _ in _check_filters(filters, schema)]
    return read_layer(paths, columns=cols or [schema.names[0]], filters=filters, bbox=bbox).num_rows


_files = threading.local()


def _parquet_file(path: Path) -> pq.ParquetFile:
    """An open reader of an immutable part file, one per thread (footer parsed once)."""
    opened = getattr(_files, "opened", None)
    if opened is None:
        opened = _files.opened = OrderedDict()
    key = str(path)
    pf = opened.get(key)
    if pf is None:
        pf = opened[key] = pq.ParquetFile(key, memory_map=True)
        while len(opened) > 64:
            opened.popitem(last=False)
    else:
        opened.move_to_end(key)
    return pf


def _read_group(path: Path, rg: int, columns: list[str], cache: ColumnCache | None) -> pa.Table:
    key = str(path)
    got: dict[str, pa.ChunkedArray] = {}
    missing = []
    for c in columns:
        hit = cache.get((key, rg, c)) if cache is not None else None
        if hit is None:
            missing.append(c)
        else:
            got[c] = hit
    if missing:
        table = _parquet_file(path).read_row_group(rg, columns=missing)
        for c in missing:
            got[c] = table[c]
            if cache is not None and c != GEOMETRY:  # geometry WKB is big and rarely hot
                cache.put((key, rg, c), table[c])
    return pa.table({c: got[c] for c in columns})


def to_frame(table: pa.Table, *, geo: dict[str, Any] | None, crs: str = "EPSG:4326"):
    """Arrow table -> (Geo)DataFrame; points are rebuilt from the bbox when present."""
    import geopandas as gpd
    import shapely

    names = table.column_names
    attrs = [c for c in names if c not in (GEOMETRY, BBOX)]
    frame = table.select(attrs).to_pandas(ignore_metadata=True)
    if GEOMETRY in names and geo is not None:
        wkb = table[GEOMETRY].to_numpy(zero_copy_only=False)
        geoms = shapely.from_wkb(wkb)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs).values, crs=crs)
    return frame
