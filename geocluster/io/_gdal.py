"""GDAL locked down: self-contained drivers only, no network, clean messages.

GDAL picks a driver by probing every registered one, and several drivers are
pointers: an XML OGR VRT names other files (``/etc/passwd`` as a CSV source) or URLs
(``/vsicurl/http://...``), a GDALG file runs a pipeline, the SQLite driver has
``VirtualOGR``. A file named ``.geojson`` whose content is such a pointer would be
opened by that driver. So, before geocluster opens any user file with GDAL:

* every vector driver of pyogrio's GDAL except the self-contained allow-list
  (:data:`ALLOWED_VECTOR_DRIVERS`) is deregistered (``GDAL_SKIP`` + re-registration),
  so no probe can reach a referencing driver whatever the file holds;
* after opening, the driver that did so must be the one the validated type names;
* network access is made unusable for both GDAL copies (pyogrio's and rasterio's)
  and for PROJ, and any user string holding ``/vsi`` or ``://`` is refused.

Rasters (rasterio's own GDAL) are opened with the GTiff driver only, see
:mod:`geocluster.io.raster`.
"""

from __future__ import annotations

import os
import re
import threading
import warnings

from geocluster.errors import InvalidInput, UnusableFile

#: geocluster format -> the one GDAL vector driver that may open it.
ALLOWED_VECTOR_DRIVERS = {
    "geojson": "GeoJSON",
    "gpkg": "GPKG",
    "shapefile": "ESRI Shapefile",
    "flatgeobuf": "FlatGeobuf",
}
# MEM holds in-memory layers only (no file, no URL); GDAL uses it internally.
_KEEP_DRIVERS = frozenset(ALLOWED_VECTOR_DRIVERS.values()) | {"MEM", "Memory"}

#: Drivers refused by name even if a GDAL build registers them as raster-only.
REFERENCING_DRIVERS = frozenset(
    {
        "VRT", "OGR_VRT", "GTI", "GDALG", "WMS", "WMTS", "WCS", "WFS", "OAPIF", "OGCAPI",
        "HTTP", "CSW", "DERIVED", "PLMosaic", "EEDA", "EEDAI", "DAAS", "STACIT", "STACTA",
        "SQLite", "GPSBabel", "Carto", "Elasticsearch", "NGW", "AmigoCloud", "PLSCENES",
        "ADBC", "AIVector", "MapML", "PMTiles", "MBTiles", "GTFS", "LIBKML", "KML", "GML",
    }
)  # fmt: skip

#: GDAL/PROJ configuration that makes every network access fail: no proxy bypass,
#: no allowed /vsicurl extension, one-second timeouts, no retries, PROJ's CDN off.
NETWORK_OFF = {
    "GDAL_HTTP_PROXY": "127.0.0.1:9",
    "GDAL_HTTPS_PROXY": "127.0.0.1:9",
    "GDAL_HTTP_NOPROXY": "geocluster.invalid",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_USERPWD": "",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".geocluster-no-network",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "GDAL_DISABLE_READDIR_ON_OPEN": "TRUE",
    "OGR_SQLITE_ALLOW_EXTERNAL_ACCESS": "NO",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "GDAL_ENABLE_DEPRECATED_DRIVER_GTX": "NO",
    "PROJ_NETWORK": "OFF",
    # An unclosed ring is a broken polygon: GDAL then gives that feature no geometry
    # (the ingest rejects the row with a reason) instead of a ring GEOS refuses later.
    "OGR_GEOMETRY_ACCEPT_UNCLOSED_RING": "NO",
}

_lock = threading.Lock()
_hardened = False

#: Longest detail a message may carry from a library or a file.
MAX_DETAIL = 300
# GDAL reads "/vsi..." as a virtual file system at the start of a path or after a
# driver prefix ("CSV:/vsicurl/..."); "://" is a URL anywhere.
_UNSAFE = re.compile(r"(?:^|[\s:=\"'(,])/vsi|://", re.IGNORECASE)
# GDAL's advice on prefixing a driver name: noise to a user who uploaded a file
_GDAL_HINT = re.compile(r";?\s*It might help to specify the correct driver.*$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def harden() -> None:
    """Lock down GDAL for this process (idempotent; called before every GDAL open).

    Raises
    ------
    RuntimeError
        A referencing driver is still registered afterwards (a GDAL build that
        ignores ``GDAL_SKIP``): reading must not go on.
    """
    global _hardened
    if _hardened:
        return
    with _lock:
        if _hardened:
            return
        import pyogrio
        from pyogrio._ogr import _register_drivers

        # rasterio's GDAL and PROJ read these from the environment
        for key, value in NETWORK_OFF.items():
            os.environ[key] = value
        registered = set(pyogrio.list_drivers())
        skip = sorted((registered | REFERENCING_DRIVERS) - _KEEP_DRIVERS)
        # comma-separated: some driver names hold a space ("MapInfo File")
        pyogrio.set_gdal_config_options({**NETWORK_OFF, "GDAL_SKIP": ",".join(skip)})
        # GDALAllRegister() applies GDAL_SKIP: it deregisters the drivers named there
        # (and warns about the names this build does not have, which is fine)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _register_drivers()
        left = set(pyogrio.list_drivers()) - _KEEP_DRIVERS
        if left:
            raise RuntimeError(f"GDAL drivers could not be disabled: {sorted(left)}")
        _hardened = True


def check_user_string(value: object, what: str) -> str:
    """Refuse a user-supplied name (layer, sheet, member) GDAL could read as a path or URL.

    Raises
    ------
    InvalidInput
        The value holds ``/vsi``, ``://`` or control characters.
    """
    text = str(value)
    if _UNSAFE.search(text) or _CONTROL.search(text):
        raise InvalidInput(
            f"{what} must be a plain name; GDAL virtual paths (/vsi...), URLs and "
            "control characters are not accepted"
        )
    return text


def clean_detail(text: object, *, paths: tuple[object, ...] = (), limit: int = MAX_DETAIL) -> str:
    """A library's error text fit for a user: one line, no server paths, at most ``limit`` chars.

    Parameters
    ----------
    text
        The error text (``str(exc)``).
    paths
        Server paths to remove (files and their directories); each is replaced by
        its base name.
    limit
        Longest result; longer text is cut with an ellipsis.
    """
    out = _GDAL_HINT.sub("", str(text))
    for p in sorted({str(p).rstrip("/") for p in paths if p}, key=len, reverse=True):
        if not p:
            continue
        out = out.replace(p + "/", "")  # a directory: what is under it keeps its name
        out = out.replace(p, os.path.basename(p) or "file")
    # any other absolute path (a temp directory, the workspace): keep its last part
    out = re.sub(r"(?<![\w.])/(?:[^\s/'\":,;()]+/)+([^\s/'\":,;()]*)", r"\1", out)
    out = _CONTROL.sub(" ", out)
    out = " ".join(out.split())
    if len(out) > limit:
        out = out[: limit - 1].rstrip() + "…"
    return out


def opened_driver(source: str) -> str:
    """Name of the GDAL driver that opens ``source`` (after :func:`harden`)."""
    import pyogrio
    import pyogrio.errors

    try:
        return str(pyogrio.read_info(source, layer=0, force_feature_count=False)["driver"])
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise UnusableFile(
            f"cannot open {os.path.basename(source)}: {clean_detail(exc, paths=(source,))}"
        ) from exc
