"""Readers: the only place where geocluster opens user files.

:func:`read_table` dispatches on the file's extension and magic bytes and returns a
:class:`RawTable` — the frame as the file has it (no column mapping, no
validation; that is :mod:`geocluster.ingest`'s job) plus the CRS the file declares.
OSM PBF files go through :func:`read_osm`, which needs to know which tags to keep.

Formats: CSV/TSV (delimiter, encoding and decimal-comma sniffing), XLSX, GeoJSON,
GeoPackage (choose the layer), zipped Shapefile (``.cpg`` encoding honoured by GDAL),
GeoParquet, FlatGeobuf, OSM PBF. Rasters live in :mod:`geocluster.io.raster`.

Hostile files: the type comes from the content and the extension together (XML is
refused under any name, a ``.geojson`` must be a JSON object, binary formats need
their signature); GDAL opens only the self-contained driver of that type, with every
referencing driver deregistered and network access off (:mod:`geocluster.io._gdal`);
GeoPackages must be plain tables, zips are checked and only the needed members are
extracted, XLSX XML goes through defusedxml. Error messages name the file by its base
name, carry no server path and at most a short detail.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from geocluster.errors import (
    FileTooLarge,
    GeoclusterError,
    InvalidInput,
    UnsafeArchive,
    UnsupportedFormat,
    UnusableFile,
)
from geocluster.io._archive import extract_member, inspect_zip
from geocluster.io._csv import header_summary, read_csv, sniff_delimiter, sniff_encoding
from geocluster.io._detect import FORMATS, check_size, detect_format
from geocluster.io._export import csv_safe
from geocluster.io._gdal import MAX_DETAIL, check_user_string, clean_detail, harden
from geocluster.io._osm import read_osm as _read_osm
from geocluster.io._vector import check_geopackage, read_geoparquet, read_vector
from geocluster.io._xlsx import read_xlsx

__all__ = [
    "FORMATS",
    "MAX_DETAIL",
    "RawTable",
    "check_size",
    "check_user_string",
    "clean_detail",
    "csv_safe",
    "detect_format",
    "harden",
    "header_summary",
    "inspect_zip",
    "read_osm",
    "read_table",
    "sniff_delimiter",
    "sniff_encoding",
]


@dataclass
class RawTable:
    """A file's content before column mapping.

    Attributes
    ----------
    frame
        ``GeoDataFrame`` for vector formats, ``DataFrame`` for tables; row ``i`` is
        data row / feature ``i + 1`` of the source.
    format
        One of :data:`FORMATS` (a zip reports the format of its member).
    crs
        The CRS the file declares (``"EPSG:n"`` or WKT), ``None`` if none.
    layer
        Layer or sheet read, if the format has several.
    notes
        What was detected (encoding, delimiter, chosen layer ...).
    """

    frame: pd.DataFrame
    format: str
    crs: str | None = None
    layer: str | None = None
    notes: list[str] = field(default_factory=list)


_VECTOR_IN_ZIP = (".shp", ".geojson", ".json", ".gpkg", ".fgb")
_TABLE_IN_ZIP = (".csv", ".tsv", ".txt", ".xlsx", ".parquet")
#: Shapefile parts extracted next to the .shp; nothing else of the archive reaches GDAL.
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
#: Members that describe other files or services: an archive holding one is refused.
_REFERENCING_MEMBERS = (".vrt", ".ovf", ".gdalg")


def _read_zip(
    path: Path,
    *,
    layer: str | None,
    text_columns: Callable[[list[str]], Iterable[str]] | None,
    max_bytes: int | None = None,
    spatial: bool = True,
) -> RawTable:
    files = inspect_zip(path)
    expanded = sum(i.file_size for i in files)
    if max_bytes is not None and expanded > max_bytes:
        raise FileTooLarge(
            f"{path.name} expands to {expanded:,} bytes; the limit is {max_bytes:,} bytes"
        )
    visible = [
        i
        for i in files
        if not PurePosixPath(i.filename).name.startswith(".")
        and "__MACOSX" not in PurePosixPath(i.filename).parts
    ]
    for info in files:
        lowered = info.filename.lower()
        if lowered.endswith(_REFERENCING_MEMBERS):
            member = clean_detail(PurePosixPath(info.filename).name, limit=80)
            raise UnsafeArchive(
                f"{path.name} contains {member!r}, a GDAL virtual file that points at "
                "other files; refusing the archive"
            )
    by_ext: dict[str, list] = {}
    for info in visible:
        by_ext.setdefault(PurePosixPath(info.filename).suffix.lower(), []).append(info)
    shps = by_ext.get(".shp", [])
    if shps:
        if layer is not None:
            wanted = [i for i in shps if PurePosixPath(i.filename).stem == layer]
            if not wanted:
                names = [PurePosixPath(i.filename).stem for i in shps]
                raise InvalidInput(f"{path.name} has no shapefile {layer!r}; it has {names}")
            shp = wanted[0]
        else:
            shp = sorted(shps, key=lambda i: i.filename)[0]
        stem = str(PurePosixPath(shp.filename).with_suffix(""))
        present = {
            PurePosixPath(i.filename).suffix.lower()
            for i in visible
            if str(PurePosixPath(i.filename).with_suffix("")) == stem
        }
        missing = [e for e in (".shx", ".dbf") if e not in present]
        if missing:
            raise UnusableFile(
                f"{path.name}: shapefile {shp.filename!r} lacks {', '.join(missing)} "
                "(a shapefile needs .shp, .shx and .dbf, and .prj for its CRS)"
            )
        # Extract only this shapefile's parts into a private directory and read them
        # there: GDAL never sees the archive, so it cannot reach any other member.
        parts = [
            i
            for i in visible
            if str(PurePosixPath(i.filename).with_suffix("")) == stem
            and PurePosixPath(i.filename).suffix.lower() in _SHAPEFILE_PARTS
        ]
        with tempfile.TemporaryDirectory(prefix="geocluster-zip-") as tmp:
            extracted = {
                PurePosixPath(i.filename).suffix.lower(): extract_member(
                    path, i, Path(tmp), name=f"layer{PurePosixPath(i.filename).suffix.lower()}"
                )
                for i in parts
            }
            frame, crs, _, notes = read_vector(
                str(extracted[".shp"]),
                fmt="shapefile",
                display=f"{path.name}:{PurePosixPath(shp.filename).name}",
            )
        if len(shps) > 1 and layer is None:
            notes.append(
                f"read {shp.filename!r}; the archive also holds "
                f"{[i.filename for i in shps if i is not shp]} (choose with layer)"
            )
        if ".prj" not in present:
            notes.append(f"{shp.filename} has no .prj: its CRS is unknown")
        return RawTable(frame, "shapefile", crs, PurePosixPath(shp.filename).stem, notes)
    candidates = [
        i
        for i in visible
        if PurePosixPath(i.filename).suffix.lower() in _VECTOR_IN_ZIP + _TABLE_IN_ZIP
    ]
    if len(candidates) != 1:
        found = [i.filename for i in visible][:20]
        raise UnsupportedFormat(
            f"{path.name}: expected a zip holding one shapefile (.shp/.shx/.dbf/.prj) or one "
            f"data file, found {found}"
        )
    with tempfile.TemporaryDirectory(prefix="geocluster-zip-") as tmp:
        member = extract_member(path, candidates[0], Path(tmp))
        raw = read_table(
            member, layer=layer, text_columns=text_columns, spatial=spatial, _in_zip=True
        )
    raw.notes.insert(0, f"read {candidates[0].filename!r} from {path.name}")
    return raw


def read_table(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    max_bytes: int | None = None,
    text_columns: Callable[[list[str]], Iterable[str]] | None = None,
    spatial: bool = True,
    _in_zip: bool = False,
) -> RawTable:
    """Read a tabular or vector file as it is.

    Parameters
    ----------
    path
        The file. Format from magic bytes and extension (see :func:`detect_format`).
    layer
        GeoPackage layer, XLSX sheet or shapefile name inside a zip.
    max_bytes
        Refuse files larger than this (:class:`~geocluster.errors.FileTooLarge`).
    text_columns
        For delimited text: called with the header, returns the columns to keep as
        strings (ids, codes with leading zeros).
    spatial
        Without ``layer``, read the first layer with geometry (``True``) or the first
        table without (``False``) from a multi-layer source.

    Returns
    -------
    RawTable

    Raises
    ------
    UnusableFile
        Empty, corrupt or unreadable file (subclasses: UnsupportedFormat,
        FileTooLarge, UnsafeArchive).
    """
    path = Path(path)
    check_user_string(path, "file path")
    if layer is not None:
        check_user_string(layer, "layer")
    try:
        return _read_table(
            path,
            layer=layer,
            max_bytes=max_bytes,
            text_columns=text_columns,
            spatial=spatial,
            _in_zip=_in_zip,
        )
    except GeoclusterError as exc:
        # A message names the file by its base name and carries no server path and
        # no more of the file than a short detail.
        clean = clean_detail(exc, paths=(path, path.parent), limit=2 * MAX_DETAIL)
        if clean == str(exc):
            raise
        raise type(exc)(clean) from exc


def _read_table(
    path: Path,
    *,
    layer: str | None,
    max_bytes: int | None,
    text_columns: Callable[[list[str]], Iterable[str]] | None,
    spatial: bool,
    _in_zip: bool,
) -> RawTable:
    check_size(path, max_bytes)
    fmt = detect_format(path)
    if fmt == "csv":
        frame, notes = read_csv(path, text_columns=text_columns)
        return RawTable(frame, "csv", None, None, notes)
    if fmt == "xlsx":
        frame, sheet, notes = read_xlsx(path, sheet=layer, max_bytes=max_bytes)
        return RawTable(frame, "xlsx", None, sheet, notes)
    if fmt == "zip":
        if _in_zip:
            raise UnsafeArchive(f"{path.name}: nested zip archives are not read")
        return _read_zip(
            path, layer=layer, text_columns=text_columns, max_bytes=max_bytes, spatial=spatial
        )
    if fmt == "geoparquet":
        frame, crs, notes = read_geoparquet(path)
        return RawTable(frame, "geoparquet", crs, None, notes)
    if fmt == "osm":
        raise UnsupportedFormat(
            f"{path.name} is an OSM PBF file; read it with geocluster.io.read_osm "
            "(ingest does this for firms and assets)"
        )
    if fmt in ("geojson", "gpkg", "flatgeobuf", "shapefile"):
        if fmt == "gpkg":
            check_geopackage(path, display=path.name)
        frame, crs, chosen, notes = read_vector(
            str(path), fmt=fmt, layer=layer, display=path.name, spatial=spatial
        )
        return RawTable(frame, fmt, crs, chosen, notes)
    raise UnsupportedFormat(f"{path.name}: unsupported format {fmt!r}")  # pragma: no cover


def read_osm(
    path: str | os.PathLike[str],
    *,
    keys: Iterable[str],
    keep: Callable[[dict[str, str]], object],
    max_bytes: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> RawTable:
    """Read tagged nodes, ways and area relations of an OSM PBF file (:mod:`geocluster.io._osm`).

    Returns
    -------
    RawTable
        ``format="osm"``, ``crs="EPSG:4326"``; the frame has ``osm_type``,
        ``osm_id``, ``name``, ``osm_tags`` (JSON), ``_tags`` (dicts) and geometry.
        ``keep(tags)`` returns the object's class (false: skip it); the notes count the
        objects not imported, by reason.
    """
    path = Path(path)
    check_size(path, max_bytes)
    fmt = detect_format(path)
    if fmt != "osm":
        raise UnsupportedFormat(f"{path.name}: expected an OSM PBF file, got {fmt}")
    frame, notes = _read_osm(path, keys=keys, keep=keep, progress=progress)
    return RawTable(frame, "osm", "EPSG:4326", None, notes)
