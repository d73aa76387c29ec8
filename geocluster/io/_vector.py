"""Vector readers through pyogrio (GDAL) and pyarrow (GeoParquet)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors

from geocluster.errors import InvalidInput, UnusableFile


def _crs_string(crs) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    if epsg is not None:
        return f"EPSG:{epsg}"
    return crs.to_string() if hasattr(crs, "to_string") else str(crs)


def list_layers(source: str) -> list[tuple[str, str | None]]:
    """``(name, geometry type or None)`` of each layer of a GDAL data source."""
    try:
        return [(str(n), g if g is None else str(g)) for n, g in pyogrio.list_layers(source)]
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise UnusableFile(f"cannot open {Path(source).name}: {exc}") from exc


def read_vector(
    source: str,
    *,
    layer: str | None = None,
    display: str | None = None,
    spatial: bool = True,
) -> tuple[gpd.GeoDataFrame | pd.DataFrame, str | None, str | None, list[str]]:
    """Read one layer of a GDAL vector source (GeoJSON, GeoPackage, Shapefile, FlatGeobuf).

    Parameters
    ----------
    source
        A path or a GDAL virtual path (``/vsizip/...``).
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
    listed = list_layers(source)
    layers = [name for name, _ in listed]
    notes: list[str] = []
    if not layers:
        raise UnusableFile(f"{display} has no vector layers")
    if layer is not None and layer not in layers:
        raise InvalidInput(f"{display} has no layer {layer!r}; its layers are {layers}")
    preferred = [name for name, geom in listed if (geom is not None) == spatial]
    chosen = layer if layer is not None else (preferred or layers)[0]
    if layer is None and len(layers) > 1:
        notes.append(f"read the first layer {chosen!r} of {layers}; choose another with layer")
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
        raise UnusableFile(f"cannot read layer {chosen!r} of {display}: {exc}") from exc
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
        raise UnusableFile(f"{path.name} is not a readable Parquet file: {exc}") from exc
    try:
        if b"geo" in meta:
            frame = gpd.read_parquet(path)
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001
        raise UnusableFile(f"{path.name} is not a readable (Geo)Parquet file: {exc}") from exc
    if len(frame) == 0:
        raise UnusableFile(f"{path.name} has no rows")
    crs = _crs_string(frame.crs) if isinstance(frame, gpd.GeoDataFrame) else None
    return frame.reset_index(drop=True), crs, []
