"""Options and results of ingestion."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from geocluster.errors import InvalidInput

#: Defaults of the plausibility bounds (rows outside them are rejected, not clipped).
DEFAULT_EMPLOYEES_MAX = 1_000_000
DEFAULT_FOUNDED_MIN = 1800


def _opt(
    help: str, group: str = "columns", *, choices: tuple[str, ...] | None = None, type: Any = str
) -> Any:
    """A field that is also a CLI flag: ``--<name-with-dashes>`` in ``group``."""
    meta: dict[str, Any] = {"help": help, "group": group, "type": type}
    if choices is not None:
        meta["choices"] = choices
    return field(default=None, metadata=meta)


@dataclass(frozen=True)
class IngestOptions:
    """How to read a file: column names, CRS, layer and limits.

    Every field is optional; ``None`` means "detect" (or the default bound). The keys
    are the CLI flags in snake case (CONTRACT.md) and the keys of the HTTP ``options``
    object; the CLI derives its flags from the field metadata here, so a new field is
    a new flag and a new HTTP key at once.

    Attributes
    ----------
    crs
        The *source* CRS of the coordinates (x/y columns, WKT, or a vector file
        without CRS), e.g. ``"EPSG:32614"``. Overrides a file's own CRS (with a warning).
        An unknown code is an error at once.
    lon_col, lat_col
        Longitude/latitude columns in degrees.
    x_col, y_col
        Projected coordinate columns; need ``crs`` unless they are in degrees.
    wkt_col
        A column of WKT geometries.
    id_col, sector_col, sector_scheme, employees_col
        Column names; ``sector_scheme`` is ``"isic4"`` or ``"nace2"``.
    name_col, founded_col, women_led_col, youth_led_col, informal_col
        Firm columns (name also for assets and boundaries).
    category_col, subtype_col, designation_col
        Asset columns.
    level, parent_col
        Boundaries: administrative level of all regions (default 0) and the column
        holding the parent region id.
    layer
        GeoPackage layer, XLSX sheet or shapefile name inside a zip.
    max_bytes
        Largest accepted file in bytes (``None``: no limit). Not a CLI flag.
    working_crs
        Metric CRS for analysis (default: chosen from the accepted rows' extent).
    indicator
        Indicators: the indicator name when the table does not carry one (a long
        table without an ``indicator`` column, or year columns without a prefix).
    employees_max
        Largest plausible employee count of one firm (default
        :data:`DEFAULT_EMPLOYEES_MAX`); rows above it are rejected.
    founded_min, founded_max
        Plausible founding years (default :data:`DEFAULT_FOUNDED_MIN` .. the current
        year); rows outside are rejected.
    chunk_rows
        Firms from CSV or GeoParquet: read, validate and store the file in chunks of
        this many rows (memory bounded by a chunk, not the file). Default: files over
        ``GEOCLUSTER_INGEST_CHUNK_MB`` (256) MB in chunks of 1,000,000 rows. The stored
        dataset is the same as without chunks.
    """

    crs: str | None = _opt("CRS of x/y or of a file without one, e.g. EPSG:32614", "crs")
    lon_col: str | None = _opt("longitude column (degrees)", "coordinates")
    lat_col: str | None = _opt("latitude column (degrees)", "coordinates")
    x_col: str | None = _opt("projected x column (needs --crs)", "coordinates")
    y_col: str | None = _opt("projected y column (needs --crs)", "coordinates")
    wkt_col: str | None = _opt("column of WKT geometries", "coordinates")
    id_col: str | None = _opt("column with the firm/asset/region id")
    sector_col: str | None = _opt("firms: column with the sector code")
    sector_scheme: str | None = _opt(
        "firms: classification of the sector codes (default: isic4, nace2 for a nace* column)",
        choices=("isic4", "nace2"),
    )
    employees_col: str | None = _opt("firms: column with the number of employees")
    level: int | None = _opt("boundaries: administrative level (0 = country)", type=int)
    parent_col: str | None = _opt("boundaries: column with the parent region id")
    layer: str | None = _opt("GeoPackage layer, XLSX sheet or zipped shapefile to read", "file")
    max_bytes: int | None = field(default=None, metadata={"cli": False, "type": int})
    working_crs: str | None = _opt(
        "metric CRS for analyses (default: chosen from the data's extent)", "crs"
    )
    name_col: str | None = _opt("column with the firm/asset/region name")
    indicator: str | None = _opt("indicators: the indicator name when the table has none")
    founded_col: str | None = _opt("firms: column with the founding year (or date)")
    women_led_col: str | None = _opt("firms: yes/no column, led or owned by women")
    youth_led_col: str | None = _opt("firms: yes/no column, led by young people")
    informal_col: str | None = _opt("firms: yes/no column, informal (unregistered) firm")
    category_col: str | None = _opt("assets: column with the category (cultural, natural ...)")
    subtype_col: str | None = _opt("assets: column with the subtype (museum, market ...)")
    designation_col: str | None = _opt("assets: column with the designation (unesco, national ...)")
    employees_max: int | None = _opt(
        f"firms: reject rows with more employees (default {DEFAULT_EMPLOYEES_MAX:,})",
        "bounds",
        type=int,
    )
    founded_min: int | None = _opt(
        f"firms: reject founding years before this (default {DEFAULT_FOUNDED_MIN})",
        "bounds",
        type=int,
    )
    founded_max: int | None = _opt(
        "firms: reject founding years after this (default: the current year)", "bounds", type=int
    )
    chunk_rows: int | None = _opt(
        "firms from CSV/GeoParquet: validate and store the file in chunks of this many rows "
        "(default: files over 256 MB, GEOCLUSTER_INGEST_CHUNK_MB, in chunks of 1,000,000)",
        "file",
        type=int,
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in _INT_OPTIONS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidInput(f"option {f.name}: expected an integer >= 0, got {value!r}")
            elif not isinstance(value, str) or not value.strip():
                raise InvalidInput(f"option {f.name}: expected a non-empty string, got {value!r}")
        if self.sector_scheme is not None and self.sector_scheme not in ("isic4", "nace2"):
            raise InvalidInput(
                f"option sector_scheme: expected 'isic4' or 'nace2', got {self.sector_scheme!r}"
            )
        if self.max_bytes is not None and self.max_bytes == 0:
            raise InvalidInput("option max_bytes: expected a positive integer, got 0")
        if self.chunk_rows is not None and self.chunk_rows < 1:
            raise InvalidInput(
                f"option chunk_rows: expected a positive integer, got {self.chunk_rows}"
            )
        if (
            self.founded_min is not None
            and self.founded_max is not None
            and self.founded_min > self.founded_max
        ):
            raise InvalidInput(
                f"options founded_min {self.founded_min} and founded_max {self.founded_max}: "
                "expected min <= max"
            )
        for name in ("crs", "working_crs"):
            # An unknown code (EPSG:999999) is refused before any file is read, whatever
            # the file turns out to need.
            if getattr(self, name) is not None:
                from geocluster.ingest._geometry import parse_crs

                parse_crs(getattr(self, name), name)
        pairs = (("lon_col", "lat_col"), ("x_col", "y_col"))
        for a, b in pairs:
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise InvalidInput(f"options {a} and {b} go together; got only one of them")
        given = [
            g
            for g, on in (
                ("lon_col/lat_col", self.lon_col),
                ("x_col/y_col", self.x_col),
                ("wkt_col", self.wkt_col),
            )
            if on is not None
        ]
        if len(given) > 1:
            raise InvalidInput(f"give one way to read coordinates, got {' and '.join(given)}")

    @property
    def employees_limit(self) -> int:
        """The largest plausible employee count (option or default)."""
        return DEFAULT_EMPLOYEES_MAX if self.employees_max is None else self.employees_max

    @property
    def founded_range(self) -> tuple[int, int]:
        """Plausible founding years ``(min, max)`` (options or defaults)."""
        lo = DEFAULT_FOUNDED_MIN if self.founded_min is None else self.founded_min
        hi = _dt.date.today().year if self.founded_max is None else self.founded_max
        return lo, hi

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IngestOptions:
        """Build options from a mapping (HTTP ``options`` JSON, CLI flags).

        Unknown keys raise :class:`~geocluster.errors.InvalidInput` naming the known
        ones; ``None`` values are ignored; integer options accept numeric strings.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidInput(f"expected options as an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise InvalidInput(
                f"unknown ingest option(s) {unknown}; known options are {sorted(known)}"
            )
        clean: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            if key in _INT_OPTIONS and isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise InvalidInput(
                        f"option {key}: expected an integer, got {value!r}"
                    ) from None
            if key in _INT_OPTIONS and isinstance(value, float) and value.is_integer():
                value = int(value)
            clean[key] = value
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """The options that are set, as a plain dict."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


#: Options holding integers (the others hold strings).
_INT_OPTIONS = frozenset(f.name for f in fields(IngestOptions) if f.metadata.get("type") is int)


@dataclass(frozen=True)
class Rejection:
    """One rejected source row.

    Attributes
    ----------
    row
        1-based data row in the source (the first row under a CSV header is 1; for
        vector files, the feature number).
    column
        The offending source column, or ``None`` when the whole row/geometry is at fault.
    reason
        What was expected and what came.
    """

    row: int
    column: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """``{"row", "column", "reason"}``."""
        return {"row": self.row, "column": self.column, "reason": self.reason}


@dataclass(frozen=True)
class Prepared:
    """The canonical frame of a file, ready to store.

    Attributes
    ----------
    frame
        GeoDataFrame in EPSG:4326 (firms, assets, boundaries) or DataFrame
        (indicators) with the canonical columns first and extra columns kept.
    rejected
        Rows dropped by validation, sorted by row.
    source_crs
        The CRS the coordinates came in (``"EPSG:n"`` or WKT); ``None`` for indicators.
    working_crs
        Projected metric CRS for analysis; ``None`` for indicators.
    warnings
        Things the user should know that did not drop rows (repaired geometries,
        detected encoding, unparsed optional values ...).
    """

    frame: pd.DataFrame
    rejected: list[Rejection] = field(default_factory=list)
    source_crs: str | None = None
    working_crs: str | None = None
    warnings: list[str] = field(default_factory=list)
