"""Format detection from the file name and its first bytes.

The extension says what the user meant; the magic bytes say what the file is. Binary
formats are recognised by their signature whatever the extension, so a ``.csv`` that
is really a GeoPackage is read as a GeoPackage, and a ``.gpkg`` that is not SQLite is
reported as corrupt instead of failing deep inside GDAL.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from geocluster.errors import FileTooLarge, UnsupportedFormat, UnusableFile

#: Formats :func:`geocluster.io.read_table` can return.
FORMATS = (
    "csv",
    "xlsx",
    "geojson",
    "gpkg",
    "shapefile",
    "zip",
    "geoparquet",
    "flatgeobuf",
    "osm",
)

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".json": "geojson",
    ".geojson": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".zip": "zip",
    ".parquet": "geoparquet",
    ".geoparquet": "geoparquet",
    ".fgb": "flatgeobuf",
    ".pbf": "osm",
}

# Formats we recognise but do not read, with the advice we give.
_KNOWN_UNSUPPORTED = {
    ".xls": "legacy Excel .xls; save it as .xlsx",
    ".ods": "OpenDocument spreadsheet; save it as .xlsx or .csv",
    ".kml": "KML; convert it to GeoJSON or GeoPackage",
    ".kmz": "KMZ; convert it to GeoJSON or GeoPackage",
    ".osm": "OSM XML; convert it to .osm.pbf (osmium cat in.osm -o out.osm.pbf)",
    ".gz": "a gzip file; decompress it first",
    ".7z": "a 7-zip archive; use a .zip",
    ".rar": "a RAR archive; use a .zip",
    ".tif": "a raster; register rasters with the raster commands",
    ".tiff": "a raster; register rasters with the raster commands",
    ".vrt": "a GDAL virtual file (VRT) that points at other files; upload the data itself",
    ".ovf": "a GDAL virtual file (VRT) that points at other files; upload the data itself",
    ".xml": "XML; geocluster does not read XML formats (convert to GeoJSON or GeoPackage)",
    ".gml": "GML; convert it to GeoJSON or GeoPackage",
    ".gdalg": "a GDAL pipeline description; upload the data itself",
}

# Text that starts like this is XML or HTML (a GDAL VRT, KML, GML, an error page):
# no format geocluster reads is XML, so it is refused under any name.
_XML_START = (b"<",)


def _magic(head: bytes) -> str | None:
    """Name the binary format whose signature starts ``head``, if any."""
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"PAR1"):
        return "geoparquet"
    if head.startswith(b"fgb\x03"):
        return "flatgeobuf"
    if head.startswith(b"\x00\x00\x27\x0a"):
        return "shapefile"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "ole2"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    # An OSM PBF starts with a 4-byte big-endian length and a BlobHeader whose first
    # field is the string "OSMHeader".
    if len(head) > 16 and b"OSMHeader" in head[4:20]:
        return "osm"
    return None


def _text_start(head: bytes) -> bytes:
    """The first bytes of a text file after byte-order marks and blanks (UTF-8 or UTF-16)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            head = head.decode("utf-16", errors="ignore").encode("utf-8")
        except UnicodeError:  # pragma: no cover - errors="ignore"
            return head
    return head.lstrip(b"\xef\xbb\xbf \t\r\n\x00")


def _is_xlsx_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def check_size(path: Path, max_bytes: int | None) -> int:
    """Return the size of ``path`` in bytes; raise if it is empty or over ``max_bytes``.

    Raises
    ------
    UnusableFile
        The file does not exist, is not a regular file or is empty.
    FileTooLarge
        The file is larger than ``max_bytes``.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UnusableFile(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if not Path(path).is_file():
        raise UnusableFile(f"expected a file, got a directory or special file: {path.name}")
    if st.st_size == 0:
        raise UnusableFile(f"{path.name} is empty (0 bytes)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise FileTooLarge(f"{path.name} is {st.st_size:,} bytes; the limit is {max_bytes:,} bytes")
    return st.st_size


def detect_format(path: str | os.PathLike[str]) -> str:
    """Return the format of ``path``: one of :data:`FORMATS`.

    Parameters
    ----------
    path
        A file on disk.

    Raises
    ------
    UnsupportedFormat
        The file is of a format geocluster does not read.
    UnusableFile
        The extension names a binary format but the content is something else.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(512)
    name = path.name.lower()
    ext = path.suffix.lower()
    if name.endswith(".osm.pbf"):
        ext = ".pbf"
    magic = _magic(head)
    if magic == "zip":
        return "xlsx" if _is_xlsx_zip(path) else "zip"
    if magic == "ole2":
        raise UnsupportedFormat(
            f"{path.name} is a legacy Excel .xls (OLE2) file; save it as .xlsx or .csv"
        )
    if magic == "gzip":
        raise UnsupportedFormat(f"{path.name} is gzip-compressed; decompress it first")
    if magic is not None:
        return magic
    by_ext = _EXTENSIONS.get(ext)
    if ext in _KNOWN_UNSUPPORTED:
        raise UnsupportedFormat(f"{path.name}: {_KNOWN_UNSUPPORTED[ext]}")
    binary_formats = {"xlsx", "gpkg", "zip", "geoparquet", "flatgeobuf", "osm", "shapefile"}
    if by_ext in binary_formats:
        raise UnusableFile(
            f"{path.name} does not look like a {by_ext} file (its first bytes are not a "
            f"{by_ext} signature); the file is corrupt or misnamed"
        )
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if utf16 and by_ext in (None, "csv"):
        if _text_start(head).startswith(_XML_START):
            raise UnsupportedFormat(f"{path.name} is XML (such as a GDAL VRT), not CSV")
        return "csv"  # UTF-16 text (Excel's "Unicode text" export): NUL bytes are expected
    if b"\x00" in head:
        raise UnsupportedFormat(
            f"{path.name} is a binary file of an unknown format; expected CSV/TSV, XLSX, "
            "GeoJSON, GeoPackage, zipped Shapefile, GeoParquet, FlatGeobuf or OSM PBF"
        )
    text = _text_start(head)
    if text.startswith(_XML_START):
        raise UnsupportedFormat(
            f"{path.name} is XML (such as a GDAL VRT, KML or GML), not "
            f"{'CSV' if by_ext in (None, 'csv') else by_ext}; geocluster reads no XML format"
        )
    if by_ext == "geojson" and not text.startswith(b"{"):
        raise UnusableFile(
            f"{path.name} does not look like GeoJSON: expected a JSON object starting with '{{'"
        )
    if by_ext is not None:
        return by_ext
    if text.startswith(b"{"):
        return "geojson"
    if ext in ("", ".dat", ".data"):
        return "csv"
    raise UnsupportedFormat(
        f"{path.name}: unsupported file type {ext!r}; expected .csv/.tsv, .xlsx, .geojson, "
        ".gpkg, .zip (Shapefile), .parquet, .fgb or .osm.pbf"
    )
