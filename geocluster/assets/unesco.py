"""Import of the UNESCO World Heritage List export as canonical assets.

The World Heritage Centre publishes its list as a spreadsheet/CSV
(https://whc.unesco.org/en/syndication) with one row per property and columns
including ``id_no``, ``name_en``, ``category`` (``Cultural`` / ``Natural`` /
``Mixed``), ``date_inscribed``, ``latitude``, ``longitude``,
``states_name_en`` and ``danger``. This module recognises such a table and
maps it to the canonical asset columns; building point geometries and
rejecting rows with unusable coordinates is the ingest pipeline's job
(``geocluster.ingest.prepare("assets", ...)``), which reads the coordinates
from :data:`LON_COL` / :data:`LAT_COL`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from geocluster.errors import MissingColumns

__all__ = ["LAT_COL", "LON_COL", "REQUIRED_COLUMNS", "is_unesco_table", "unesco_to_assets"]

#: Columns that identify a World Heritage List export.
REQUIRED_COLUMNS: tuple[str, ...] = ("id_no", "name_en", "category", "latitude", "longitude")
#: Coordinate columns of the mapped frame (WGS 84 degrees, as in the export).
LON_COL = "longitude"
LAT_COL = "latitude"

_WHC_CATEGORY = {
    "cultural": ("cultural", "world_heritage_site"),
    "natural": ("natural", "world_heritage_site"),
    # Mixed properties are inscribed for both cultural and natural criteria; an
    # asset has one category, so they count as cultural and the subtype says
    # "mixed" (the original label stays in ``whc_category``).
    "mixed": ("cultural", "mixed_world_heritage_site"),
}

_TRUE = frozenset({"1", "true", "yes", "y", "t", "1.0"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "0.0"})


def _lower_map(columns: Iterable[object]) -> dict[str, str]:
    return {str(c).strip().lower(): c for c in columns}


def is_unesco_table(columns: Iterable[object]) -> bool:
    """True when ``columns`` (case-insensitive) hold a World Heritage List export.

    All of :data:`REQUIRED_COLUMNS` must be present.
    """
    names = _lower_map(columns)
    return all(c in names for c in REQUIRED_COLUMNS)


def _to_bool(values: pd.Series) -> pd.Series:
    out = []
    for v in values.tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out.append(pd.NA)
            continue
        s = str(v).strip().lower()
        out.append(True if s in _TRUE else False if s in _FALSE else pd.NA)
    return pd.Series(out, index=values.index, dtype="boolean")


def unesco_to_assets(df: pd.DataFrame) -> pd.DataFrame:
    """Map a World Heritage List export to canonical asset columns.

    Parameters
    ----------
    df : pandas.DataFrame
        The export as read (column names case-insensitive; one row per
        property; row order is kept so rejections keep source row numbers).

    Returns
    -------
    pandas.DataFrame
        Same index and row order, with columns ``asset_id`` (``"whc-<id_no>"``),
        ``name``, ``category`` (``cultural``/``natural``; an unknown label is
        passed through unchanged so validation reports it), ``subtype``
        (``world_heritage_site`` or ``mixed_world_heritage_site``),
        ``designation`` (``"unesco"``), ``whc_category`` (the original label),
        ``date_inscribed`` (Int64 year), ``states`` (``states_name_en``),
        ``danger`` (boolean; NA if absent), ``longitude`` and ``latitude``
        (as in the source, unparsed, WGS 84 degrees), followed by every other
        source column not already mapped.

    Raises
    ------
    MissingColumns
        A required column is missing; the message lists those found.
    """
    names = _lower_map(df.columns)
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise MissingColumns(
            "expected a UNESCO World Heritage List export with columns "
            f"{', '.join(REQUIRED_COLUMNS)}; missing {', '.join(missing)}; "
            f"found {', '.join(map(str, df.columns))}"
        )

    def col(name: str) -> pd.Series:
        return df[names[name]]

    ids = col("id_no")
    id_str = []
    for v in ids.tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            id_str.append(None)
        else:
            s = str(v).strip()
            if s.endswith(".0") and s[:-2].isdigit():  # read as float by a spreadsheet
                s = s[:-2]
            id_str.append(f"whc-{s}" if s else None)

    raw_cat = col("category")
    cats, subs = [], []
    for v in raw_cat.tolist():
        key = str(v).strip().lower() if isinstance(v, str) else None
        if key in _WHC_CATEGORY:
            c, s = _WHC_CATEGORY[key]
        else:
            c, s = (v if isinstance(v, str) else None), "world_heritage_site"
        cats.append(c)
        subs.append(s)

    out = pd.DataFrame(index=df.index)
    out["asset_id"] = pd.Series(id_str, index=df.index, dtype=object)
    out["name"] = col("name_en").astype(object)
    out["category"] = pd.Series(cats, index=df.index, dtype=object)
    out["subtype"] = pd.Series(subs, index=df.index, dtype=object)
    out["designation"] = "unesco"
    out["whc_category"] = raw_cat.astype(object)
    if "date_inscribed" in names:
        years = pd.to_numeric(col("date_inscribed"), errors="coerce")
        out["date_inscribed"] = years.round().astype("Int64")
    if "states_name_en" in names:
        out["states"] = col("states_name_en").astype(object)
    if "danger" in names:
        out["danger"] = _to_bool(col("danger"))
    # Coordinates pass through unparsed: the ingest pipeline parses and
    # validates them and reports each bad value as it appeared in the file.
    out[LON_COL] = col("longitude")
    out[LAT_COL] = col("latitude")
    used = {
        names[c]
        for c in (*REQUIRED_COLUMNS, "date_inscribed", "states_name_en", "danger")
        if c in names
    }
    for c in df.columns:
        if c not in used and str(c) not in out.columns:
            out[str(c)] = df[c]
    return out
