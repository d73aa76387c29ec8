"""Column detection: which source column holds which canonical field.

Names are compared after normalisation (lower case, runs of non-alphanumerics to
``_``), and candidates are tried in order, so ``firm_id`` wins over ``id``. An explicit
option always wins over detection; an explicit option naming a column that is not in
the file raises :class:`~geocluster.errors.MissingColumns` listing the columns found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from geocluster.errors import MissingColumns

#: Canonical field -> source names tried in order (normalised form).
CANDIDATES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "long", "longitude", "longitud", "lon_dd", "decimallongitude", "lon_wgs84", "longitude_wgs84", "x_lon"),
    "lat": ("lat", "latitude", "latitud", "lat_dd", "decimallatitude", "lat_wgs84", "latitude_wgs84", "y_lat"),
    "x": ("x", "easting", "x_coord", "coord_x", "xcoord", "east"),
    "y": ("y", "northing", "y_coord", "coord_y", "ycoord", "north"),
    "wkt": ("wkt", "geometry_wkt", "geom_wkt", "the_geom", "geometry", "geom"),
    "firm_id": ("firm_id", "firmid", "id_firm", "company_id", "establishment_id", "business_id", "enterprise_id", "id", "uid", "osm_id"),
    "asset_id": ("asset_id", "assetid", "site_id", "id_no", "id", "uid"),
    "region_id": ("region_id", "regionid", "region_code", "id", "code", "geoid", "iso_a3", "adm0_a3", "iso3", "gid", "cve_ent", "nuts_id", "fips", "region"),
    "name": ("name", "firm_name", "company_name", "business_name", "company", "nombre", "razon_social", "region_name", "site_name", "name_en", "title", "label"),
    "sector": ("sector_code", "isic", "isic4", "isic_rev4", "isic_code", "isic4_code", "nace", "nace2", "nace_rev2", "nace_code", "sector", "activity", "activity_code", "industry", "industry_code"),
    "employees": ("employees", "n_employees", "num_employees", "nr_employees", "employees_count", "emp", "workers", "employment", "staff", "headcount", "empleados", "personal_ocupado"),
    "founded": ("founded", "year_founded", "founding_year", "foundation_year", "established", "year_established", "start_year"),
    "women_led": ("women_led", "woman_led", "female_led", "female_owner", "female_owned", "women_owned", "woman_owned"),
    "informal": ("informal", "is_informal", "informality"),
    "category": ("category", "asset_category", "type", "class"),
    "subtype": ("subtype", "sub_type", "asset_subtype", "kind"),
    "designation": ("designation", "designation_type", "protection_status", "heritage_designation"),
    "level": ("level", "admin_level", "adm_level"),
    "parent_id": ("parent_id", "parent", "parent_code"),
    "year": ("year", "yr", "anio", "ano", "period", "time"),
    "indicator": ("indicator", "variable", "measure", "series", "indicator_name"),
    "value": ("value", "val", "obs_value", "amount"),
}  # fmt: skip


def normalise_name(name: object) -> str:
    """``" Latitude (WGS84)"`` -> ``"latitude_wgs84"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def detect(columns: Sequence[object], field: str, *, exclude: Iterable[str] = ()) -> str | None:
    """Return the source column for canonical ``field``, or ``None``.

    Parameters
    ----------
    columns
        The source column names.
    field
        A key of :data:`CANDIDATES`.
    exclude
        Columns already taken by another field.
    """
    taken = set(exclude)
    lookup: dict[str, str] = {}
    for c in columns:
        lookup.setdefault(normalise_name(c), str(c))
    for candidate in CANDIDATES[field]:
        col = lookup.get(candidate)
        if col is not None and col not in taken:
            return col
    return None


def require(columns: Sequence[object], name: str, option: str) -> str:
    """Check that an explicitly named column exists (case-insensitively); return its name."""
    cols = [str(c) for c in columns]
    if name in cols:
        return name
    folded = {c.lower(): c for c in cols}
    if name.lower() in folded:
        return folded[name.lower()]
    raise MissingColumns(
        f"option {option} names the column {name!r}, which is not in the file; "
        f"columns found: {', '.join(cols)}"
    )


def found(columns: Sequence[object]) -> str:
    """The columns of a file, for messages."""
    cols = [str(c) for c in columns]
    return ", ".join(cols) if cols else "(none)"
