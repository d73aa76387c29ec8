"""Vector readers through pyogrio (GDAL) and pyarrow (GeoParquet)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors

from geocluster.errors import InvalidInput, UnusableFile
from geocluster.io._gdal import (
    ALLOWED_VECTOR_DRIVERS,
    check_user_string,
    clean_detail,
    harden,
    opened_driver,
)


def _crs_string(crs) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    if epsg is not None:
        return f"EPSG:{epsg}"
    return crs.to_string() if hasattr(crs, "to_string") else str(crs)


def list_layers(source: str, *, display: str | None = None) -> list[tuple[str, str | None]]:
    """``(name, geometry type or None)`` of each layer of a GDAL data source."""
    harden()
    try:
        return [(str(n), g if g is None else str(g)) for n, g in pyogrio.list_layers(source)]
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        name = display or Path(source).name
        raise UnusableFile(f"cannot open {name}: {clean_detail(exc, paths=(source,))}") from exc


def read_vector(
    source: str,
    *,
    fmt: str,
    layer: str | None = None,
    display: str | None = None,
    spatial: bool = True,
) -> tuple[gpd.GeoDataFrame | pd.DataFrame, str | None, str | None, list[str]]:
    """Read one layer of a GDAL vector source (GeoJSON, GeoPackage, Shapefile, FlatGeobuf).

    Parameters
    ----------
    source
        A path on disk (never a GDAL virtual path or URL).
    fmt
        The validated type (a key of :data:`ALLOWED_VECTOR_DRIVERS`); the file must
        be opened by that type's driver, else it is refused.
    layer
        Layer name; with several layers and ``None`` the first is read and a note
        names the others.
    display
        File name used in messages.
    spatial
        Without ``layer``, prefer the first layer with (``True``) or without
        (``False``) geometry, e.g. a GeoPackage holding both map layers and tables.

    Returns
    -------
    frame, crs, layer, notes
        ``frame`` is a GeoDataFrame (or a DataFrame for a layer without geometry)
        whose row ``i`` is feature ``i + 1``; ``crs`` as ``"EPSG:n"`` or WKT, ``None``
        when the file declares none.
    """
    display = display or Path(source).name
    driver = ALLOWED_VECTOR_DRIVERS.get(fmt)
    if driver is None:
        raise UnusableFile(f"{display}: {fmt!r} is not a format geocluster opens with GDAL")
    if layer is not None:
        check_user_string(layer, "layer")
    harden()
    opened = opened_driver(source)
    if opened != driver:
        raise UnusableFile(
            f"{display} looks like {fmt} but GDAL reads it as {opened}; refusing a "
            "file whose content does not match its type"
        )
    listed = list_layers(source, display=display)
    layers = [name for name, _ in listed]
    notes: list[str] = []
    if not layers:
        raise UnusableFile(f"{display} has no vector layers")
    if layer is not None and layer not in layers:
        raise InvalidInput(
            f"{display} has no layer {layer!r}; its layers are {clean_detail(layers)}"
        )
    preferred = [name for name, geom in listed if (geom is not None) == spatial]
    chosen = layer if layer is not None else (preferred or layers)[0]
    if layer is None and len(layers) > 1:
        notes.append(
            f"read the first layer {chosen!r} of {clean_detail(layers)}; choose another with layer"
        )
    try:
        try:
            frame = pyogrio.read_dataframe(source, layer=chosen, use_arrow=True)
        except (NotImplementedError, TypeError, ValueError):
            # field types Arrow cannot carry: the row-wise reader still can
            frame = pyogrio.read_dataframe(source, layer=chosen, use_arrow=False)
    except (
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
        pyogrio.errors.FieldError,
        pyogrio.errors.GeometryError,
        RuntimeError,
        OSError,
    ) as exc:
        raise UnusableFile(
            f"cannot read layer {chosen!r} of {display}: {clean_detail(exc, paths=(source,))}"
        ) from exc
    if len(frame) == 0:
        raise UnusableFile(f"{display} (layer {chosen!r}) has no features")
    crs = _crs_string(frame.crs) if isinstance(frame, gpd.GeoDataFrame) else None
    frame = frame.reset_index(drop=True)
    return frame, crs, chosen, notes


def read_geoparquet(path: Path) -> tuple[gpd.GeoDataFrame | pd.DataFrame, str | None, list[str]]:
    """Read a GeoParquet file (or a plain Parquet table without geometry)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError
        raise UnusableFile(
            f"{path.name} is not a readable Parquet file: {clean_detail(exc, paths=(path,))}"
        ) from exc
    try:
        if b"geo" in meta:
            frame = gpd.read_parquet(path)
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001
        raise UnusableFile(
            f"{path.name} is not a readable (Geo)Parquet file: {clean_detail(exc, paths=(path,))}"
        ) from exc
    if len(frame) == 0:
        raise UnusableFile(f"{path.name} has no rows")
    crs = _crs_string(frame.crs) if isinstance(frame, gpd.GeoDataFrame) else None
    return frame.reset_index(drop=True), crs, []


#: The content types of ``gpkg_contents`` geocluster reads; tiles and gridded
#: coverages are rasters (and a tile table can point GDAL at other data).
_GPKG_DATA_TYPES = frozenset({"features", "attributes"})
# SQL that reaches outside the file through GDAL's SQLite functions or SQLite itself.
_GPKG_FORBIDDEN_SQL = re.compile(
    r"\b(ogr_\w+|load_extension|readfile|writefile)\s*\(|\bvirtualogr\b",
    re.IGNORECASE,
)


def check_geopackage(path: Path, *, display: str) -> None:
    """Refuse a GeoPackage that is more than self-contained feature or attribute tables.

    Checked with SQLite itself (read-only, immutable) before GDAL opens the file:
    a ``gpkg_contents`` table exists; every entry is a ``features`` or ``attributes``
    table (no raster tiles or gridded coverage, no views); no virtual table other than
    the spatial-index R*Trees; no generated column; no view or trigger calls GDAL's
    ``ogr_*`` SQL functions, ``load_extension`` or ``ATTACH``.

    Raises
    ------
    UnusableFile
        The file is not such a GeoPackage; the message says what was found.
    """
    import sqlite3

    uri = f"file:{path.resolve()}?mode=ro&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise UnusableFile(f"{display} is not a readable GeoPackage (SQLite) file") from exc
    try:
        con.execute("PRAGMA trusted_schema = OFF")
        master = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        kinds = {name: kind for kind, name, _, _ in master}
        if "gpkg_contents" not in kinds:
            raise UnusableFile(
                f"{display} is an SQLite file but not a GeoPackage (no gpkg_contents)"
            )
        for kind, _name, _, sql in master:
            text = sql or ""
            if kind == "table" and re.match(r"\s*CREATE\s+VIRTUAL\s+TABLE", text, re.I):
                if not re.search(r"\bUSING\s+rtree\s*\(", text, re.I):
                    raise UnusableFile(
                        f"{display} holds a virtual table (not a spatial index); refusing a "
                        "GeoPackage that can read outside itself"
                    )
            if kind in ("view", "trigger") and _GPKG_FORBIDDEN_SQL.search(text):
                raise UnusableFile(
                    f"{display} holds a {kind} calling functions that read outside the file; "
                    "refusing it"
                )
        contents = con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall()
        for table, data_type in contents:
            if str(data_type).lower() not in _GPKG_DATA_TYPES:
                raise UnusableFile(
                    f"{display} holds a {clean_detail(data_type, limit=40)!s} table "
                    "(raster tiles or coverage); geocluster reads GeoPackage features and "
                    "attribute tables only (register rasters as GeoTIFF)"
                )
            if kinds.get(table) != "table":
                raise UnusableFile(
                    f"{display}: layer {clean_detail(table, limit=60)!r} is "
                    f"{'a view' if kinds.get(table) == 'view' else 'missing'}; geocluster reads "
                    "GeoPackage tables only (save the layer as a table)"
                )
            hidden = [row[6] for row in con.execute(f'PRAGMA table_xinfo("{_quote(table)}")')]
            if any(h in (2, 3) for h in hidden):
                raise UnusableFile(
                    f"{display}: layer {clean_detail(table, limit=60)!r} has generated "
                    "columns; save the layer with plain columns"
                )
        try:
            tiles = con.execute("SELECT COUNT(*) FROM gpkg_tile_matrix_set").fetchone()[0]
        except sqlite3.Error:
            tiles = 0
        if tiles:
            raise UnusableFile(
                f"{display} holds raster tile matrices; geocluster reads GeoPackage features "
                "and attribute tables only"
            )
    except sqlite3.Error as exc:
        raise UnusableFile(f"{display} is not a readable GeoPackage: {clean_detail(exc)}") from exc
    finally:
        con.close()


def _quote(name: str) -> str:
    return str(name).replace('"', '""')


def iter_geoparquet_chunks(
    path: Path, *, chunk_rows: int = 1_000_000
) -> tuple[str | None, Iterator[gpd.GeoDataFrame | pd.DataFrame]]:
    """Read a (Geo)Parquet file in batches of about ``chunk_rows`` rows.

    Returns the file's CRS (as :func:`read_geoparquet` reports it) and an iterator of
    GeoDataFrames (plain DataFrames for a Parquet table without ``geo`` metadata), in
    file order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from geopandas.io.arrow import _arrow_to_geopandas

    try:
        pf = pq.ParquetFile(path)
        meta = pf.schema_arrow.metadata or {}
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError
        raise UnusableFile(
            f"{path.name} is not a readable Parquet file: {clean_detail(exc, paths=(path,))}"
        ) from exc
    if pf.metadata.num_rows == 0:
        raise UnusableFile(f"{path.name} has no rows")
    geo = b"geo" in meta
    crs = None
    if geo:
        try:  # the CRS as geopandas reads it, from an empty slice of the first batch
            head = pf.schema_arrow.empty_table().replace_schema_metadata(meta)
            crs = _crs_string(_arrow_to_geopandas(head).crs)
        except Exception as exc:  # noqa: BLE001 - bad geo metadata
            raise UnusableFile(
                f"{path.name} is not a readable GeoParquet file: {clean_detail(exc, paths=(path,))}"
            ) from exc

    def chunks() -> Iterator[gpd.GeoDataFrame | pd.DataFrame]:
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows):
                table = pa.Table.from_batches([batch]).replace_schema_metadata(meta)
                yield _arrow_to_geopandas(table) if geo else table.to_pandas()
        except UnusableFile:
            raise
        except Exception as exc:  # noqa: BLE001
            raise UnusableFile(
                f"{path.name} is not a readable (Geo)Parquet file: "
                f"{clean_detail(exc, paths=(path,))}"
            ) from exc

    return crs, chunks()
