"""Options and results of ingestion."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from geocluster.errors import InvalidInput


@dataclass(frozen=True)
class IngestOptions:
    """How to read a file: column names, CRS, layer and limits.

    Every field is optional; ``None`` means "detect". The keys match the CLI flags in
    snake case (CONTRACT.md).

    Attributes
    ----------
    crs
        The *source* CRS of the coordinates (x/y columns, WKT, or a vector file
        without CRS), e.g. ``"EPSG:32614"``. Overrides a file's own CRS (with a warning).
    lon_col, lat_col
        Longitude/latitude columns in degrees.
    x_col, y_col
        Projected coordinate columns; need ``crs`` unless they are in degrees.
    wkt_col
        A column of WKT geometries.
    id_col, sector_col, sector_scheme, employees_col
        Column names; ``sector_scheme`` is ``"isic4"`` or ``"nace2"``.
    level, parent_col
        Boundaries: administrative level of all regions (default 0) and the column
        holding the parent region id.
    layer
        GeoPackage layer, XLSX sheet or shapefile name inside a zip.
    max_bytes
        Largest accepted file in bytes (``None``: no limit).
    working_crs
        Metric CRS for analysis (default: UTM zone of the data's centroid).
    name_col
        Column with the feature name.
    indicator
        Indicators: the indicator name when the table does not carry one (a long
        table without an ``indicator`` column, or year columns without a prefix).
    """

    crs: str | None = None
    lon_col: str | None = None
    lat_col: str | None = None
    x_col: str | None = None
    y_col: str | None = None
    wkt_col: str | None = None
    id_col: str | None = None
    sector_col: str | None = None
    sector_scheme: str | None = None
    employees_col: str | None = None
    level: int | None = None
    parent_col: str | None = None
    layer: str | None = None
    max_bytes: int | None = None
    working_crs: str | None = None
    name_col: str | None = None
    indicator: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "crs",
            "lon_col",
            "lat_col",
            "x_col",
            "y_col",
            "wkt_col",
            "id_col",
            "sector_col",
            "sector_scheme",
            "employees_col",
            "parent_col",
            "layer",
            "working_crs",
            "name_col",
            "indicator",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInput(f"option {name}: expected a non-empty string, got {value!r}")
        if self.sector_scheme is not None and self.sector_scheme not in ("isic4", "nace2"):
            raise InvalidInput(
                f"option sector_scheme: expected 'isic4' or 'nace2', got {self.sector_scheme!r}"
            )
        if self.level is not None and (
            isinstance(self.level, bool) or not isinstance(self.level, int) or self.level < 0
        ):
            raise InvalidInput(f"option level: expected an integer >= 0, got {self.level!r}")
        if self.max_bytes is not None and (
            isinstance(self.max_bytes, bool)
            or not isinstance(self.max_bytes, int)
            or self.max_bytes <= 0
        ):
            raise InvalidInput(
                f"option max_bytes: expected a positive integer, got {self.max_bytes!r}"
            )
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

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IngestOptions:
        """Build options from a mapping (HTTP ``options`` JSON, CLI flags).

        Unknown keys raise :class:`~geocluster.errors.InvalidInput` naming the known
        ones; ``None`` values are ignored; ``level`` and ``max_bytes`` accept numeric
        strings.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidInput(f"expected options as an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(
                f"unknown ingest option(s) {unknown}; known options are {sorted(known)}"
            )
        clean: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            if key in ("level", "max_bytes") and isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    raise InvalidInput(
                        f"option {key}: expected an integer, got {value!r}"
                    ) from None
            if key in ("level", "max_bytes") and isinstance(value, float) and value.is_integer():
                value = int(value)
            clean[key] = value
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """The options that are set, as a plain dict."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


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
