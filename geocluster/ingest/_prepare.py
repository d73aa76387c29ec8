"""``prepare``: raw file -> canonical, validated frame (nothing is written)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geocluster.crs import (
    area_of_use_text,
    boxes_meet_area_of_use,
    in_area_of_use,
    working_crs_for,
)
from geocluster.errors import CRSError, InvalidInput, MissingColumns, UnusableFile
from geocluster.ingest import _columns as cols
from geocluster.ingest._geometry import (
    check_swapped,
    crs_text,
    looks_like_degrees,
    parse_crs,
    parse_numbers,
    repair,
    to_lonlat,
)
from geocluster.ingest._options import IngestOptions, Prepared, Rejection
from geocluster.ingest._rejects import Rejector
from geocluster.ingest._values import as_code_str, parse_bool, parse_year, take_text
from geocluster.io import RawTable, check_size, detect_format, read_table

KINDS = ("firms", "assets", "boundaries", "indicators", "institutions")
Progress = Callable[[float, str], None]
_WGS84 = pyproj.CRS.from_epsg(4326)
_MAX_LISTED = 20
#: Largest administrative level and indicator year taken as such (beyond, int64 casts
#: would wrap silently).
_MAX_LEVEL = 99
_MAX_YEAR = 9999


def _noop(fraction: float, message: str) -> None:
    return None


# ------------------------------------------------------------------------------ helpers
def _reasons(template: str, raw: pd.Series) -> Callable[[np.ndarray], list[str]]:
    """Messages quoting the offending source value: ``template.format(v=...)``."""

    def make(pos: np.ndarray) -> list[str]:
        values = raw.iloc[pos].tolist()
        return [template.format(v=repr(v) if isinstance(v, str) else v) for v in values]

    return make


def _numbered(template: str, numbers: np.ndarray) -> Callable[[np.ndarray], list[str]]:
    """Messages quoting the parsed number: ``template.format(v=number)``."""

    def make(pos: np.ndarray) -> list[str]:
        return [template.format(v=float(numbers[p])) for p in pos]

    return make


def _explicit_or_detect(
    columns: list[str], option_value: str | None, option_name: str, field: str, taken: set[str]
) -> str | None:
    if option_value is not None:
        return cols.require(columns, option_value, option_name)
    return cols.detect(columns, field, exclude=taken)


def _claim(
    columns: list[str],
    field: str,
    used: set[str],
    option_value: str | None = None,
    option_name: str | None = None,
) -> str | None:
    """The column for ``field`` (explicit option, else detected among unused ones),
    marked as used so that no later field detects it again."""
    if option_name is not None:
        col = _explicit_or_detect(columns, option_value, option_name, field, used)
    else:
        col = cols.detect(columns, field, exclude=used)
    if col is not None:
        used.add(col)
    return col


def _text_columns(kind: str, opts: IngestOptions) -> Callable[[list[str]], list[str]]:
    """Columns to read as text from a CSV (ids and codes keep leading zeros)."""

    def pick(header: list[str]) -> list[str]:
        out = [
            getattr(opts, o)
            for o in ("id_col", "sector_col", "parent_col", "name_col", "wkt_col")
            if getattr(opts, o)
        ]
        for field in ("firm_id", "asset_id", "region_id", "sector", "parent_id", "name", "wkt"):
            c = cols.detect(header, field)
            if c is not None:
                out.append(c)
        return [c for c in out if c in header]

    return pick


def _working_crs(opts: IngestOptions, lon: np.ndarray, lat: np.ndarray) -> str:
    if opts.working_crs is not None:
        crs = parse_crs(opts.working_crs, "working_crs")
        if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
            raise CRSError(
                f"option working_crs: expected a projected CRS in metres, got {opts.working_crs!r}"
            )
        return crs_text(crs)
    return working_crs_for(lon, lat)


# --------------------------------------------------------------------------- geometry
def _span(x: np.ndarray, y: np.ndarray) -> str:
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return ""
    return (
        f"x {np.min(x[ok]):,.10g} .. {np.max(x[ok]):,.10g}, "
        f"y {np.min(y[ok]):,.10g} .. {np.max(y[ok]):,.10g}"
    )


def _check_magnitudes(
    x: np.ndarray, y: np.ndarray, crs: pyproj.CRS, mode: str, a: str, b: str, opts: IngestOptions
) -> None:
    """File-level CRS mistakes: degrees read as metres, or metres in lon/lat columns.

    Both would otherwise be stored at a plausible-looking but wrong place (degrees
    in EPSG:32614 land a few hundred metres from the zone's origin on the equator),
    so the whole file is refused with the option that fixes it.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    if crs.is_projected and looks_like_degrees(x, y):
        raise UnusableFile(
            f"columns {a}/{b} hold values that look like degrees ({_span(x, y)}) but the CRS "
            f"{crs_text(crs)} is projected (metres); values look like degrees: drop --crs "
            "or use --crs EPSG:4326 (option crs)"
        )
    if crs.is_geographic and mode == "lonlat":
        big = (np.abs(x[ok]) > 360) | (np.abs(y[ok]) > 180)
        if big.mean() > 0.5:
            raise UnusableFile(
                f"columns {a}/{b} should be longitude/latitude in degrees but {big.mean():.0%} "
                f"of the values are far beyond ±180/±90 ({_span(x, y)}), like projected "
                f"metres; pass them as --x-col {a} --y-col {b} with their CRS "
                "(--crs EPSG:xxxx; options x_col, y_col, crs)"
            )


def _outside_area(
    crs: pyproj.CRS,
    x: np.ndarray,
    y: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    xname: str,
    yname: str,
) -> Callable[[np.ndarray], list[str]]:
    """Per-row reasons for points outside the CRS's area of use."""
    where = area_of_use_text(crs)
    name = crs_text(crs) if crs.to_epsg() else (crs.name or "the CRS")

    def make(pos: np.ndarray) -> list[str]:
        return [
            f"({xname} {x[p]:,.12g}, {yname} {y[p]:,.12g}) in {name} lands at lon "
            f"{lon[p]:.3f}, lat {lat[p]:.3f}, outside the CRS's area of use ({where}): a mistyped "
            "coordinate or a wrong CRS"
            for p in pos
        ]

    return make


class _Located:
    """Geometries in EPSG:4326 for every frame row (rejected rows hold anything)."""

    def __init__(
        self,
        geoms: np.ndarray | None,
        source_crs: str,
        used: set[str],
        lonlat: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self._geoms = geoms
        self.source_crs = source_crs
        self.used = used
        self.lonlat = lonlat  # point coordinates per row, when built from columns

    @property
    def geoms(self) -> np.ndarray:
        """The geometries (points from :attr:`lonlat` are built on first use only)."""
        if self._geoms is None:
            self._geoms = shapely.points(*self.lonlat)
        return self._geoms


def _coordinates_from_columns(
    frame: pd.DataFrame,
    opts: IngestOptions,
    kind: str,
    rej: Rejector,
    warnings: list[str],
    land: object,
) -> _Located:
    columns = [str(c) for c in frame.columns]
    if opts.wkt_col is not None:
        mode, a, b = "wkt", cols.require(columns, opts.wkt_col, "wkt_col"), None
    elif opts.x_col is not None:
        mode = "xy"
        a = cols.require(columns, opts.x_col, "x_col")
        b = cols.require(columns, opts.y_col, "y_col")
    elif opts.lon_col is not None:
        mode = "lonlat"
        a = cols.require(columns, opts.lon_col, "lon_col")
        b = cols.require(columns, opts.lat_col, "lat_col")
    else:
        lon, lat = cols.detect(columns, "lon"), cols.detect(columns, "lat")
        x, y = cols.detect(columns, "x"), cols.detect(columns, "y")
        wkt = cols.detect(columns, "wkt")
        if lon and lat:
            mode, a, b = "lonlat", lon, lat
        elif x and y:
            mode, a, b = "xy", x, y
        elif wkt:
            mode, a, b = "wkt", wkt, None
        else:
            raise MissingColumns(
                f"{kind} need coordinates: lon/lat columns (lon, lng, longitude / lat, "
                "latitude), x/y columns with a CRS, or a WKT column; columns found: "
                f"{cols.found(columns)}"
            )
    if mode == "wkt":
        return _geometries(
            _parse_wkt(frame[a], a, rej), None, opts, kind, rej, warnings, land, {a}, column=a
        )

    x, xmiss, xbad = parse_numbers(frame[a])
    y, ymiss, ybad = parse_numbers(frame[b])
    xname, yname = ("longitude", "latitude") if mode == "lonlat" else ("x", "y")
    rej.reject(xmiss, a, f"missing {xname}")
    rej.reject(ymiss, b, f"missing {yname}")
    rej.reject(xbad, a, _reasons(f"non-numeric {xname} {{v}}", frame[a]))
    rej.reject(ybad, b, _reasons(f"non-numeric {yname} {{v}}", frame[b]))

    alive = rej.alive
    if opts.crs is not None:
        crs = parse_crs(opts.crs)
    elif mode == "lonlat":
        crs = _WGS84
    elif looks_like_degrees(x[alive], y[alive]):
        crs = _WGS84
        warnings.append(
            f"columns {a}/{b} have no CRS but every value is in degrees; read them as "
            "longitude/latitude (EPSG:4326). Pass crs if they are not."
        )
    else:
        finite = np.isfinite(x) & np.isfinite(y)
        span = (
            f" (x {np.nanmin(x[finite]):,.0f} .. {np.nanmax(x[finite]):,.0f}, "
            f"y {np.nanmin(y[finite]):,.0f} .. {np.nanmax(y[finite]):,.0f})"
            if finite.any()
            else ""
        )
        raise CRSError(
            f"columns {a}/{b} are not longitude/latitude in degrees{span} and no CRS was "
            "given; pass the CRS of the coordinates (--crs EPSG:xxxx). geocluster does not "
            "guess."
        )

    rej.reject(
        (x == 0) & (y == 0),
        None,
        "coordinates (0, 0) ('null island'): a missing location coded as zero",
    )
    _check_magnitudes(x[rej.alive], y[rej.alive], crs, mode, a, b, opts)
    if crs.is_geographic:
        check_swapped(x[rej.alive], y[rej.alive], lon_name=a, lat_name=b, land=land)
        rej.reject(np.abs(y) > 90, b, _numbered("latitude {v:g} outside -90..90", y))
        rej.reject(np.abs(x) > 180, a, _numbered("longitude {v:g} outside -180..180", x))
    lon, lat = to_lonlat(x, y, crs)
    bad = rej.alive & ~(np.isfinite(lon) & np.isfinite(lat))
    rej.reject(
        bad, None, f"({xname}, {yname}) cannot be transformed from {crs_text(crs)} to lon/lat"
    )
    bad = rej.alive & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
    rej.reject(bad, None, f"({xname}, {yname}) fall outside the valid area of {crs_text(crs)}")
    if not crs.equals(_WGS84):
        outside = rej.alive & ~in_area_of_use(crs, lon, lat)
        rej.reject(outside, None, _outside_area(crs, x, y, lon, lat, xname, yname))
    alive = rej.alive
    if not alive.all():
        lon, lat = np.where(alive, lon, 0.0), np.where(alive, lat, 0.0)
    return _Located(None, crs_text(crs), {a, b}, (lon, lat))


def _parse_wkt(values: pd.Series, column: str, rej: Rejector) -> np.ndarray:
    text = values.astype("string").str.strip()
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool, na_value=True)
    geoms = shapely.from_wkt(text.fillna("").to_numpy(dtype=object), on_invalid="ignore")
    rej.reject(missing, column, "missing WKT geometry")
    rej.reject(pd.isna(geoms), column, _reasons("invalid WKT {v}", text.str.slice(0, 60)))
    return geoms


def _geometries(
    geoms: np.ndarray,
    file_crs: str | None,
    opts: IngestOptions,
    kind: str,
    rej: Rejector,
    warnings: list[str],
    land: object,
    used: set[str],
    column: str | None = None,
) -> _Located:
    """Validate, repair and reproject geometries from a vector file or WKT column."""
    geoms = np.asarray(geoms, dtype=object)
    missing = pd.isna(geoms)
    rej.reject(missing, column, "missing geometry")
    safe = np.where(missing, shapely.Point(), geoms)
    rej.reject(shapely.is_empty(safe), column, "empty geometry")
    alive = rej.alive
    if kind == "boundaries":
        types = shapely.get_type_id(safe)
        rej.reject(
            ~np.isin(types, (3, 6)),
            column,
            lambda pos: [f"expected a polygon, got a {safe[p].geom_type}" for p in pos],
        )
        alive = rej.alive
    if opts.crs is not None:
        crs = parse_crs(opts.crs)
        if file_crs is not None and not parse_crs(file_crs).equals(crs):
            warnings.append(f"the file declares {file_crs}; used crs={opts.crs} as asked")
    elif file_crs is not None:
        crs = parse_crs(file_crs)
    else:
        bounds = shapely.bounds(safe[alive])
        if len(bounds) and looks_like_degrees(bounds[:, [0, 2]].ravel(), bounds[:, [1, 3]].ravel()):
            crs = _WGS84
            warnings.append(
                "the file declares no CRS but every coordinate is in degrees; read it as "
                "EPSG:4326. Pass crs if it is not."
            )
        else:
            raise CRSError(
                "the file declares no CRS and its coordinates are not longitude/latitude "
                "degrees; pass the CRS of the coordinates (--crs EPSG:xxxx)"
            )
    if crs.is_projected and alive.any():
        raw_bounds = shapely.bounds(safe[alive])
        if looks_like_degrees(raw_bounds[:, [0, 2]].ravel(), raw_bounds[:, [1, 3]].ravel()):
            said = f"crs={opts.crs}" if opts.crs is not None else f"the file declares {file_crs}"
            fix = "drop --crs or use" if opts.crs is not None else "pass"
            raise UnusableFile(
                f"{said}, a projected CRS in metres, but every coordinate looks like degrees "
                f"(x {np.min(raw_bounds[:, 0]):.6g} .. {np.max(raw_bounds[:, 2]):.6g}, "
                f"y {np.min(raw_bounds[:, 1]):.6g} .. {np.max(raw_bounds[:, 3]):.6g}); values "
                f"look like degrees: {fix} --crs EPSG:4326 (option crs)"
            )
    fixed, invalid, reasons = repair(safe[alive], polygonal=kind == "boundaries")
    if invalid.any():
        rows = rej.source_rows[np.flatnonzero(alive)[invalid]]
        listed = ", ".join(f"row {r} ({why})" for r, why in zip(rows[:_MAX_LISTED], reasons))
        more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
        warnings.append(f"repaired {len(rows)} invalid geometries with make_valid: {listed}{more}")
        safe = safe.copy()
        safe[alive] = fixed
        rej.reject(alive & shapely.is_empty(safe), column, "geometry is empty after repair")
    if not crs.equals(_WGS84):
        series = gpd.GeoSeries(safe, crs=crs).to_crs(_WGS84)
        safe = series.to_numpy()
    bounds = shapely.bounds(safe)
    out = (
        (bounds[:, 0] < -180) | (bounds[:, 2] > 180) | (bounds[:, 1] < -90) | (bounds[:, 3] > 90)
        | ~np.isfinite(bounds).all(axis=1)
    )  # fmt: skip
    rej.reject(
        out & rej.alive,
        column,
        "coordinates outside -180..180 / -90..90 (after reprojection to EPSG:4326)",
    )
    if not crs.equals(_WGS84) and rej.alive.any():
        inside = boxes_meet_area_of_use(crs, bounds)
        where = area_of_use_text(crs)
        rej.reject(
            rej.alive & ~inside,
            column,
            lambda pos: [
                f"geometry at lon {bounds[p, 0]:.4g}, lat {bounds[p, 1]:.4g} (after "
                f"reprojection from {crs_text(crs)}) is outside the CRS's area of use "
                f"({where}): a mistyped coordinate or a wrong CRS"
                for p in pos
            ],
        )
    is_point = shapely.get_type_id(safe) == 0
    px = np.where(is_point, bounds[:, 0], np.nan)
    py = np.where(is_point, bounds[:, 1], np.nan)
    rej.reject(
        is_point & (px == 0) & (py == 0),
        column,
        "coordinates (0, 0) ('null island'): a missing location coded as zero",
    )
    if crs.is_geographic and is_point[rej.alive].any():
        check_swapped(
            px[rej.alive],
            py[rej.alive],
            lon_name="x",
            lat_name="y",
            land=land,
            advice="the file stores latitude as x and longitude as y; write it with "
            "longitude first (x) as GeoJSON and GIS formats expect",
        )
    return _Located(safe, crs_text(crs), used)


def _locate(
    raw: RawTable, opts: IngestOptions, kind: str, rej: Rejector, warnings: list[str], land: object
) -> _Located:
    frame = raw.frame
    explicit = opts.lon_col or opts.x_col or opts.wkt_col
    if (
        isinstance(frame, gpd.GeoDataFrame)
        and frame._geometry_column_name in frame
        and not explicit
    ):
        name = frame.geometry.name
        return _geometries(
            frame.geometry.to_numpy(), raw.crs, opts, kind, rej, warnings, land, {name}
        )
    return _coordinates_from_columns(frame, opts, kind, rej, warnings, land)


def _finish(
    canonical: dict[str, Any],
    frame: pd.DataFrame,
    used: set[str],
    alive: np.ndarray,
    geoms: np.ndarray | None,
) -> pd.DataFrame:
    """Canonical columns first, then the source's unmapped columns, then the geometry."""
    out = pd.DataFrame({k: v for k, v in canonical.items()}, index=frame.index)
    geom_name = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    for c in frame.columns:
        if c in used or c == geom_name or str(c).startswith("_"):
            continue
        name = str(c)
        if name in out.columns or name.lower() in ("fid", "ogc_fid", "geometry"):
            name = f"{name}_source"
        series = frame[c]
        if series.dtype == object and any(
            isinstance(v, (dict, list)) for v in series.head(100).tolist()
        ):
            continue  # nested JSON values (GeoJSON properties) cannot be stored as columns
        out[name] = series
    if alive.all():
        out = out.reset_index(drop=True)
        if geoms is not None and len(geoms) == len(out):
            return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=_WGS84), crs=_WGS84)
    else:
        out = out.loc[alive].reset_index(drop=True)
    if geoms is None:
        return out
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms[alive], crs=_WGS84), crs=_WGS84)


def _ids(
    frame: pd.DataFrame,
    column: str | None,
    canonical: str,
    rej: Rejector,
    warnings: list[str],
    *,
    prefix: str = "",
) -> pd.Series:
    if column is None:
        warnings.append(f"no id column found; {canonical} is the source row number")
        return pd.Series([f"{prefix}{r}" for r in rej.source_rows], index=frame.index, dtype="str")
    ids = as_code_str(frame[column])
    rej.reject(ids.isna().to_numpy(), column, f"missing {canonical}")
    return ids


def _all_distinct(values: pd.Series) -> bool:
    import pyarrow as pa

    from geocluster.ingest._distinct import all_distinct

    try:
        arr = (
            pa.array(values.array)
            if not hasattr(values.array, "_pa_array")
            else values.array._pa_array
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return False
    return all_distinct(arr)


def _reject_duplicates(ids: pd.Series, column: str | None, canonical: str, rej: Rejector) -> None:
    alive = rej.alive
    live_ids = ids if alive.all() else ids[alive]
    if _all_distinct(live_ids):  # the common case, at half the cost of duplicated()
        return
    dup = live_ids.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    first_row = dict(
        zip(
            live_ids[~dup].tolist(),
            rej.source_rows[np.flatnonzero(alive)[~dup]].tolist(),
        )
    )
    mask = np.zeros(len(ids), dtype=bool)
    mask[np.flatnonzero(alive)[dup]] = True

    def reasons(pos: np.ndarray) -> list[str]:
        return [
            f"duplicate {canonical} {ids.iloc[p]!r} (first at row {first_row[ids.iloc[p]]})"
            for p in pos
        ]

    rej.reject(mask, column, reasons)


# ------------------------------------------------------------------------------ firms
def _normalise_sectors(
    values: pd.Series, scheme: str
) -> tuple[pd.Series, pd.Series, np.ndarray, np.ndarray, pd.Series, pd.Series]:
    """Normalise a raw sector column, working once per distinct value.

    Returns
    -------
    code, source, unknown, missing, section, division
        ISIC code (``str``, at the finest level the source gives), the source code as
        written (``str``), rows with an unknown code, rows without a code, and the
        ISIC section letter and division of each row.
    """
    from geocluster.sectors import division_of, normalize_codes, section_of

    idx, uniq = pd.factorize(values, use_na_sentinel=True)
    raw_u = as_code_str(pd.Series(np.asarray(uniq, dtype=object), dtype=object))
    norm_u, unknown_u = normalize_codes(raw_u, scheme=scheme)
    present = idx >= 0
    unknown = present & np.append(np.asarray(unknown_u, bool), False)[idx]
    missing = ~present | np.append(raw_u.isna().to_numpy(), True)[idx]
    as_list = norm_u.to_numpy(dtype=object, na_value=None).tolist()
    code = take_text(idx, as_list, values.index)
    source = take_text(idx, raw_u.to_numpy(dtype=object, na_value=None).tolist(), values.index)
    section = take_text(
        idx, section_of(norm_u).to_numpy(dtype=object, na_value=None).tolist(), values.index
    )
    division = take_text(
        idx, division_of(norm_u).to_numpy(dtype=object, na_value=None).tolist(), values.index
    )
    return code, source, unknown, missing, section, division


def _empty_bool(n: int) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))


_FIRM_FIELDS = (
    ("firm_id", "id_col"),
    ("name", "name_col"),
    ("sector", "sector_col"),
    ("employees", "employees_col"),
    ("founded", "founded_col"),
    ("women_led", "women_led_col"),
    ("youth_led", "youth_led_col"),
    ("informal", "informal_col"),
)


def firm_columns(
    columns: list[str], opts: IngestOptions, located: set[str]
) -> tuple[set[str], dict[str, str | None]]:
    """The source column of each firm field (explicit option, else detected), in order.

    Returns the columns used (``located`` ones included) and ``{field: column}``.
    """
    used = set(located)
    claimed = {
        f: _claim(columns, f, used, getattr(opts, option), option) for f, option in _FIRM_FIELDS
    }
    return used, claimed


def _firms(
    raw: RawTable,
    opts: IngestOptions,
    rej: Rejector,
    warnings: list[str],
    located: _Located,
    report: Progress,
    *,
    geometry: bool = True,
    duplicates: bool = True,
) -> pd.DataFrame:
    """The canonical firm frame; without ``geometry`` (points from columns only) a plain
    DataFrame whose rows match ``located.lonlat[rej.alive]``; without ``duplicates`` the
    caller rejects repeated firm ids itself (over a whole file read in chunks)."""
    frame = raw.frame
    columns = [str(c) for c in frame.columns]
    used, claimed = firm_columns(columns, opts, located.used)
    id_col, name_col, sector_col = claimed["firm_id"], claimed["name"], claimed["sector"]
    emp_col, founded_col = claimed["employees"], claimed["founded"]
    women_col, youth_col, informal_col = (
        claimed["women_led"], claimed["youth_led"], claimed["informal"]
    )  # fmt: skip

    if sector_col is None and opts.sector_scheme is not None:
        # the user said the file has codes in a scheme: storing firms without any
        # sector would be a useless success
        raise MissingColumns(
            f"option sector_scheme={opts.sector_scheme} was given but no sector column was "
            "found (looked for " + ", ".join(cols.CANDIDATES["sector"][:10]) + " ...); name it "
            f"with --sector-col (option sector_col); columns found: {cols.found(columns)}"
        )
    ids = _ids(frame, id_col, "firm_id", rej, warnings)
    out: dict[str, Any] = {"firm_id": ids}
    out["name"] = (
        frame[name_col].astype("str").where(frame[name_col].notna(), None)
        if name_col
        else pd.Series(None, index=frame.index, dtype="str")
    )
    if sector_col is not None:
        scheme = opts.sector_scheme or cols.scheme_of_column(sector_col)
        label = "osm" if raw.format == "osm" else scheme
        report(0.6, "normalising sector codes")
        code, source, unknown, missing, section, division = _normalise_sectors(
            frame[sector_col], scheme
        )
        rej.reject(
            unknown, sector_col, _reasons(f"unknown {scheme} sector code {{v}}", frame[sector_col])
        )
        n_missing = int(missing.sum())
        if n_missing:
            warnings.append(f"{n_missing} firms have no sector code ({sector_col} empty)")
        out["sector_code"] = code
        out["sector_code_source"] = source
        out["sector_scheme"] = pd.Series(label, index=frame.index, dtype="str")
        out["isic_section"] = section
        out["isic_division"] = division
    else:
        warnings.append(
            "no sector column found (looked for "
            + ", ".join(cols.CANDIDATES["sector"][:8])
            + "); sector_code is empty"
        )
        for c in (
            "sector_code", "sector_code_source", "sector_scheme", "isic_section", "isic_division"
        ):  # fmt: skip
            out[c] = pd.Series(None, index=frame.index, dtype="str")
    if emp_col is not None:
        emp, _, bad = parse_numbers(frame[emp_col])
        limit = opts.employees_limit
        rej.reject(bad, emp_col, _reasons("non-numeric employees {v}", frame[emp_col]))
        rej.reject(emp < 0, emp_col, _numbered("negative employees {v:g}", emp))
        rej.reject(
            emp > limit,
            emp_col,
            _numbered(
                f"employees {{v:g}} above the plausible maximum {limit:,} for one firm "
                "(option employees_max)",
                emp,
            ),
        )
        out["employees"] = emp
    else:
        out["employees"] = np.full(len(frame), np.nan)
    if founded_col is not None:
        years, unparsed = parse_year(frame[founded_col])
        if unparsed:
            warnings.append(f"{unparsed} values of {founded_col} are not years; set to unknown")
        lo, hi = opts.founded_range
        numbers = years.to_numpy(dtype="float64", na_value=np.nan)
        rej.reject(
            np.isfinite(numbers) & ((numbers < lo) | (numbers > hi)),
            founded_col,
            _numbered(
                f"founding year {{v:g}} outside the plausible {lo}..{hi} "
                "(options founded_min, founded_max)",
                numbers,
            ),
        )
        out["founded"] = years
    else:
        out["founded"] = pd.arrays.IntegerArray(
            np.zeros(len(frame), dtype="int64"), np.ones(len(frame), dtype=bool)
        )
    for canonical, c in (
        ("women_led", women_col), ("youth_led", youth_col), ("informal", informal_col)
    ):  # fmt: skip
        if c is not None:
            flags, unparsed = parse_bool(frame[c])
            if unparsed:
                warnings.append(
                    f"{unparsed} values of {c} are not yes/no (yes/no, sí/no, oui/non, "
                    "sim/não, true/false, 1/0, x); set to unknown"
                )
            out[canonical] = flags
        else:
            out[canonical] = _empty_bool(len(frame))
    if duplicates:
        _reject_duplicates(ids, id_col, "firm_id", rej)

    alive = rej.alive
    if not geometry:  # the caller stores the points from located.lonlat
        return _finish(out, frame, used, alive, None)
    geoms = located.geoms
    types = shapely.get_type_id(geoms)
    non_point = alive & (types != 0)
    if non_point.any():
        lonlat = shapely.get_coordinates(shapely.centroid(geoms[non_point]))
        working = _working_crs(opts, lonlat[:, 0], lonlat[:, 1])
        series = gpd.GeoSeries(geoms[non_point], crs=_WGS84).to_crs(working).centroid.to_crs(_WGS84)
        geoms = geoms.copy()
        geoms[non_point] = series.to_numpy()
        warnings.append(
            f"{int(non_point.sum())} non-point firm geometries replaced by their centroid "
            f"(computed in {working})"
        )
    return _finish(out, frame, used, alive, geoms)


# ----------------------------------------------------------------------------- assets
def _assets(
    raw: RawTable,
    opts: IngestOptions,
    rej: Rejector,
    warnings: list[str],
    located: _Located,
    report: Progress,
) -> pd.DataFrame:
    from geocluster.assets.catalog import (
        CATEGORIES,
        category_from_subtype,
        normalize_category,
        normalize_designation,
        normalize_subtype,
    )

    frame = raw.frame
    columns = [str(c) for c in frame.columns]
    used = set(located.used)
    id_col = _claim(columns, "asset_id", used, opts.id_col, "id_col")
    name_col = _claim(columns, "name", used, opts.name_col, "name_col")
    cat_col = _claim(columns, "category", used, opts.category_col, "category_col")
    sub_col = _claim(columns, "subtype", used, opts.subtype_col, "subtype_col")
    des_col = _claim(columns, "designation", used, opts.designation_col, "designation_col")
    if cat_col is None and sub_col is None:
        raise MissingColumns(
            "assets need a category column (category: "
            + ", ".join(CATEGORIES)
            + ") or a subtype column it can be derived from; columns found: "
            + cols.found(columns)
        )
    ids = _ids(frame, id_col, "asset_id", rej, warnings)
    subtype = (
        normalize_subtype(frame[sub_col])
        if sub_col
        else pd.Series(None, index=frame.index, dtype=object)
    )
    if cat_col is not None:
        category, invalid = normalize_category(frame[cat_col])
        raw_cat = frame[cat_col]
        blank = (raw_cat.isna() | (raw_cat.astype("string").str.strip() == "")).to_numpy(
            dtype=bool, na_value=True
        )
        derived = category_from_subtype(subtype)
        category = category.where(~(blank & derived.notna().to_numpy()), derived)
        rej.reject(
            invalid & ~blank,
            cat_col,
            _reasons(f"unknown category {{v}}; expected one of {', '.join(CATEGORIES)}", raw_cat),
        )
        rej.reject(category.isna().to_numpy(), cat_col, "missing category")
    else:
        category = category_from_subtype(subtype)
        rej.reject(
            category.isna().to_numpy(),
            sub_col,
            _reasons("no category column, and subtype {v} does not imply one", frame[sub_col]),
        )
    if des_col is not None:
        designation, bad = normalize_designation(frame[des_col])
        rej.reject(
            bad,
            des_col,
            _reasons(
                "unknown designation {v}; expected unesco, national, regional, local, gi or empty",
                frame[des_col],
            ),
        )
    else:
        designation = pd.Series(None, index=frame.index, dtype=object)
    _reject_duplicates(ids, id_col, "asset_id", rej)
    out = {
        "asset_id": ids,
        "name": frame[name_col].astype("str").where(frame[name_col].notna(), None)
        if name_col
        else pd.Series(None, index=frame.index, dtype="str"),
        "category": category.astype("str"),
        "subtype": subtype.astype("str"),
        "designation": designation.astype("str"),
    }
    return _finish(out, frame, used, rej.alive, located.geoms)


# -------------------------------------------------------------------------- boundaries
def _boundaries(
    raw: RawTable,
    opts: IngestOptions,
    rej: Rejector,
    warnings: list[str],
    located: _Located,
    report: Progress,
) -> pd.DataFrame:
    frame = raw.frame
    columns = [str(c) for c in frame.columns]
    used = set(located.used)
    id_col = _explicit_or_detect(columns, opts.id_col, "id_col", "region_id", used)
    if id_col is None:
        raise MissingColumns(
            "boundaries need a region id column (region_id, id, code, iso_a3, geoid ... "
            f"or --id-col); columns found: {cols.found(columns)}"
        )
    used.add(id_col)
    name_col = _claim(columns, "name", used, opts.name_col, "name_col")
    parent_col = _claim(columns, "parent_id", used, opts.parent_col, "parent_col")
    ids = _ids(frame, id_col, "region_id", rej, warnings)
    if opts.level is not None:
        level = np.full(len(frame), opts.level, dtype="int64")
    else:
        level_col = cols.detect(columns, "level", exclude=used)
        values = parse_numbers(frame[level_col])[0] if level_col else None
        if (
            values is not None
            and np.isfinite(values).all()
            and (values == np.round(values)).all()
            and ((values >= 0) & (values <= _MAX_LEVEL)).all()  # int64-safe, admin-like
        ):
            level = values.astype("int64")
            used.add(level_col)
        else:
            level = np.zeros(len(frame), dtype="int64")
    out = {
        "region_id": ids,
        "name": frame[name_col].astype("str").where(frame[name_col].notna(), None)
        if name_col
        else pd.Series(None, index=frame.index, dtype="str"),
        "level": level,
        "parent_id": as_code_str(frame[parent_col])
        if parent_col
        else pd.Series(None, index=frame.index, dtype="str"),
    }
    _reject_duplicates(ids, id_col, "region_id", rej)
    return _finish(out, frame, used, rej.alive, located.geoms)


# -------------------------------------------------------------------------- indicators
_YEAR_COL = re.compile(r"^(?P<prefix>.*?)[_\-\s]?(?P<year>(?:1[5-9]|20)\d{2})$")


def _indicators(
    raw: RawTable, opts: IngestOptions, warnings: list[str], path: Path
) -> tuple[pd.DataFrame, list[Rejection]]:
    frame = raw.frame
    if isinstance(frame, gpd.GeoDataFrame):
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        warnings.append("indicators carry no geometry; the file's geometry was ignored")
    columns = [str(c) for c in frame.columns]
    rej = Rejector(np.arange(1, len(frame) + 1))
    id_col = _explicit_or_detect(columns, opts.id_col, "id_col", "region_id", set())
    year_col = cols.detect(columns, "year", exclude={id_col})
    value_col = cols.detect(columns, "value", exclude={id_col, year_col})
    ind_col = cols.detect(columns, "indicator", exclude={id_col, year_col, value_col})
    wide: dict[str, list[tuple[str, int]]] = {}
    for c in columns:
        m = _YEAR_COL.match(c.strip())
        if m and c != id_col:
            wide.setdefault(m["prefix"].strip(" _-"), []).append((c, int(m["year"])))
    expected = (
        "indicators need a long table (region_id, year, indicator, value) or a wide table "
        "with one column per year (e.g. PCGDP1940, PCGDP1950 … or 1940, 1950 …) and "
        "--id-col"
    )
    if id_col is None:
        raise MissingColumns(
            f"{expected}; no region id column found; columns found: {cols.found(columns)}"
        )
    if not (year_col and value_col) and not wide:
        raise MissingColumns(f"{expected}; columns found: {cols.found(columns)}")
    ids = as_code_str(frame[id_col])
    rej.reject(ids.isna().to_numpy(), id_col, "missing region_id")
    default_name = opts.indicator or path.stem
    if year_col and value_col:
        year, ymiss, ybad = parse_numbers(frame[year_col])
        rej.reject(ymiss, year_col, "missing year")
        rej.reject(ybad | (np.isfinite(year) & (year != np.round(year))), year_col,
                   _reasons("year {v} is not an integer", frame[year_col]))  # fmt: skip
        rej.reject(
            np.isfinite(year) & ((year < 0) | (year > _MAX_YEAR)),
            year_col,
            _reasons(f"year {{v}} outside 0..{_MAX_YEAR}", frame[year_col]),
        )
        # rejected years (NaN, 1e30) become 0 before the cast, which cannot then wrap
        year_int = np.where(np.isfinite(year) & (np.abs(year) <= _MAX_YEAR), year, 0.0).astype(
            "int64"
        )
        value, vmiss, vbad = parse_numbers(frame[value_col])
        rej.reject(vmiss, value_col, "missing value")
        rej.reject(vbad, value_col, _reasons("non-numeric value {v}", frame[value_col]))
        if ind_col is not None:
            indicator = as_code_str(frame[ind_col])
            rej.reject(indicator.isna().to_numpy(), ind_col, "missing indicator name")
        else:
            indicator = pd.Series(default_name, index=frame.index, dtype="str")
            warnings.append(f"no indicator column; all values are indicator {default_name!r}")
        used = {id_col, year_col, value_col, ind_col} - {None}
        key = (
            ids.fillna("")
            + "\x1f"
            + pd.Series(year_int, index=frame.index).astype("str")
            + "\x1f"
            + indicator.fillna("")
        )
        _reject_duplicates(key, None, "(region_id, year, indicator)", rej)
        canonical = {
            "region_id": ids,
            "year": year_int,
            "indicator": indicator,
            "value": value,
        }
        out = _finish(canonical, frame, used, rej.alive, None)
        return out, rej.rejections()
    # wide: one row per region, one column per (indicator prefix, year)
    _reject_duplicates(ids, id_col, "region_id", rej)
    dropped = [c for c in columns if c != id_col and not _YEAR_COL.match(c.strip())]
    if dropped:
        warnings.append(
            f"wide table: columns {dropped[:10]}{' …' if len(dropped) > 10 else ''} are not year columns and were not kept"
        )
    alive = rej.alive
    parts, cell_rejects = [], []
    n_missing = 0
    for prefix, year_cols in wide.items():
        name = prefix or default_name
        for c, yr in year_cols:
            value, vmiss, vbad = parse_numbers(frame[c])
            for pos in np.flatnonzero(alive & vbad):
                cell_rejects.append(
                    (int(rej.source_rows[pos]), c, f"non-numeric value {frame[c].iloc[pos]!r}")
                )
            keep = alive & ~vmiss & ~vbad
            n_missing += int((alive & vmiss).sum())
            parts.append(pd.DataFrame({
                "region_id": ids[keep].to_numpy(),
                "year": np.full(int(keep.sum()), yr, dtype="int64"),
                "indicator": pd.array([name] * int(keep.sum()), dtype="str"),
                "value": value[keep],
            }))  # fmt: skip
    if n_missing:
        warnings.append(f"wide table: {n_missing} empty cells skipped (no observation)")
    if "" in wide:
        warnings.append(f"year columns without a prefix are indicator {default_name!r}")
    out = pd.concat(parts, ignore_index=True)
    out["region_id"] = out["region_id"].astype("str")

    rejected = rej.rejections() + [Rejection(r, c, m) for r, c, m in cell_rejects]
    rejected.sort(key=lambda r: r.row)
    return out, rejected


# ------------------------------------------------------------------------------ XLSX
def _sheets_with_data(path: Path) -> list[str] | None:
    """Names of the workbook's sheets that have a data row under a header row.

    ``None`` when the workbook cannot be opened (the reader then says why).
    """
    try:
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - corrupt workbooks are reported by the reader
        return None
    try:
        out = []
        for sheet in book.worksheets:
            rows = sheet.iter_rows(min_row=1, max_row=50, values_only=True)
            filled = sum(1 for row in rows if any(v not in (None, "") for v in row))
            if filled >= 2:  # a header and at least one row
                out.append(sheet.title)
        return out
    except Exception:  # noqa: BLE001 - as above: hostile XML is the reader's to report
        return None
    finally:
        book.close()


def _check_one_sheet(path: Path) -> None:
    """Refuse to guess between several sheets with data: name them and ``--layer``."""
    sheets = _sheets_with_data(path)
    if sheets is not None and len(sheets) > 1:
        listed = ", ".join(repr(s) for s in sheets)
        raise UnusableFile(
            f"{path.name} has data on {len(sheets)} sheets ({listed}); choose one with "
            f"--layer NAME (option layer), e.g. --layer {sheets[0]!r}"
        )


# ------------------------------------------------------------------------------ entry
def prepare(
    kind: str,
    path: str | Path,
    opts: IngestOptions | dict | None = None,
    progress: Progress | None = None,
    *,
    land: object = None,
) -> Prepared:
    """Read a file and turn it into the canonical frame of ``kind``.

    Parameters
    ----------
    kind : {"firms", "assets", "boundaries", "indicators", "institutions"}
    path
        The file (CSV/TSV, XLSX, GeoJSON, GPKG, zipped Shapefile, GeoParquet,
        FlatGeobuf; OSM PBF for firms, assets and institutions).
    opts
        Column, CRS and limit options (:class:`IngestOptions` or a dict of its keys).
    progress
        ``progress(fraction, message)`` with ``fraction`` in 0..1.
    land
        Land polygons for the swapped-coordinates test: a path or a
        GeoSeries/GeoDataFrame; default Natural Earth countries in ``data/boundaries``.

    Returns
    -------
    Prepared
        Frame in EPSG:4326 (no geometry for indicators), rejections, source and
        working CRS, warnings.

    Raises
    ------
    UnusableFile
        (and its subclasses UnsupportedFormat, FileTooLarge, MissingColumns,
        UnsafeArchive) when the file as a whole cannot be used.
    CRSError
        Coordinates that are not degrees and no CRS, or an unknown CRS.
    InvalidInput
        Bad options; coordinates that look swapped.
    """
    if kind not in KINDS:
        raise InvalidInput(f"expected kind one of {', '.join(KINDS)}, got {kind!r}")
    if opts is None:
        opts = IngestOptions()
    elif isinstance(opts, dict):
        opts = IngestOptions.from_dict(opts)
    report = progress or _noop
    path = Path(path)
    report(0.0, f"reading {path.name}")
    check_size(path, opts.max_bytes)
    fmt = detect_format(path)
    warnings: list[str] = []
    if fmt == "osm":
        from geocluster.ingest import _osm

        if kind not in _osm.OSM_KINDS:
            raise InvalidInput(f"an OSM PBF file gives firms, assets or institutions, not {kind}")
        raw = _osm.read(kind, path, max_bytes=opts.max_bytes, progress=report)
    else:
        if fmt == "xlsx" and opts.layer is None:
            _check_one_sheet(path)
        raw = read_table(
            path,
            layer=opts.layer,
            max_bytes=opts.max_bytes,
            text_columns=_text_columns(kind, opts),
            spatial=kind != "indicators",
        )
        if kind == "assets" and not isinstance(raw.frame, gpd.GeoDataFrame):
            from geocluster.assets.unesco import is_unesco_table, unesco_to_assets

            if is_unesco_table(raw.frame.columns):
                raw = RawTable(
                    unesco_to_assets(raw.frame), raw.format, raw.crs, raw.layer, raw.notes
                )
                warnings.append("recognised a UNESCO World Heritage List export")
    warnings[:0] = [f"read {raw.format}: {n}" for n in raw.notes]
    report(0.4, f"validating {len(raw.frame):,} rows")
    if kind == "indicators":
        frame, rejected = _indicators(raw, opts, warnings, path)
        report(1.0, f"{len(frame):,} indicator values ready")
        return Prepared(frame, rejected, None, None, warnings)

    rej = Rejector(np.arange(1, len(raw.frame) + 1))
    located = _locate(raw, opts, kind, rej, warnings, land)
    report(0.5, "checking attributes")
    from geocluster.ingest._institutions import institutions as _institutions

    builder = {
        "firms": _firms,
        "assets": _assets,
        "boundaries": _boundaries,
        "institutions": _institutions,
    }[kind]
    frame = builder(raw, opts, rej, warnings, located, report)
    working = None
    if len(frame):
        if located.lonlat is not None:  # points from columns: reuse the parsed numbers
            alive = rej.alive
            xy = np.column_stack([located.lonlat[0][alive], located.lonlat[1][alive]])
        elif kind == "firms":
            xy = shapely.get_coordinates(frame.geometry.to_numpy())
        else:
            xy = shapely.get_coordinates(frame.geometry.representative_point().to_numpy())
        working = _working_crs(opts, xy[:, 0], xy[:, 1])
    rejected = rej.rejections()
    report(1.0, f"{len(frame):,} rows ready, {len(rejected):,} rejected")
    return Prepared(frame, rejected, located.source_crs, working, warnings)
