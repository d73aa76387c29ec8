"""FastAPI dependencies: the workspace, and query parameters as dataclasses.

Dependencies raise domain errors (``InvalidInput``) rather than ``HTTPException``;
:mod:`api.errors` turns them into 422 responses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from api.settings import FeaturesSettings, Settings
from geocluster.errors import GeoclusterError, InvalidInput


class InvalidBBox(InvalidInput):
    """A ``bbox`` query parameter that is not ``minlon,minlat,maxlon,maxlat``."""


class UnknownParameter(GeoclusterError):
    """A query parameter the endpoint does not define (OGC API Features: 400)."""


def get_settings(request: Request) -> Settings:
    """The app's :class:`~api.settings.Settings`."""
    return request.app.state.settings


def get_workspace(request: Request):
    """The app's :class:`geocluster.workspace.Workspace` (opened lazily, once)."""
    return request.app.state.get_workspace()


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """Parse ``minlon,minlat,maxlon,maxlat`` (OGC CRS84 order) or return None.

    Raises
    ------
    InvalidBBox
        Wrong number of values, non-numbers, out-of-range or inverted bounds.
    """
    if text is None or text == "":
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise InvalidBBox(
            f"bbox must be 4 comma-separated numbers minlon,minlat,maxlon,maxlat; got {len(parts)} value(s): {text!r}"
        )
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise InvalidBBox(f"bbox values must be numbers; got {text!r}") from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise InvalidBBox(f"bbox values must be finite numbers; got {text!r}")
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise InvalidBBox(
            f"bbox must be in lon/lat degrees (lon within ±180, lat within ±90); got {text!r}"
        )
    if minx > maxx or miny > maxy:
        raise InvalidBBox(
            f"bbox minimum must not exceed maximum (minlon,minlat,maxlon,maxlat); got {text!r}"
        )
    return (minx, miny, maxx, maxy)


@dataclass
class ItemsQuery:
    """Query parameters of ``/collections/{id}/items``."""

    bbox: tuple[float, float, float, float] | None
    limit: int
    offset: int
    properties: list[str] | None
    f: str | None
    requested_limit: int | None = None


# no "html": items are data; the web map (/map) is the HTML view of a collection
OutputFormat = Literal["geojson", "json", "csv", "gpkg", "parquet"]

#: largest ``offset``/``limit`` accepted: beyond any layer, inside every integer type
#: the readers use (GDAL and SQLite take 64-bit, some C paths 32-bit)
MAX_ITEMS_INDEX = 2**31 - 1
#: ``limit`` default and maximum advertised in the OpenAPI document (the settings'
#: defaults; the collection metadata gives the values this server runs with). GDAL's
#: OAPIF driver (QGIS's) reads them to choose its page size: without them it pages 10
#: features at a time.
ITEMS_LIMIT_DEFAULT = FeaturesSettings.model_fields["items_limit_default"].default
ITEMS_LIMIT_MAX = FeaturesSettings.model_fields["items_limit_max"].default
#: Query parameters of ``/collections/{id}/items``; any other is a 400 (OGC API
#: Features /req/core/query-param-unknown).
ITEMS_PARAMETERS = frozenset({"bbox", "limit", "offset", "properties", "f"})


def reject_unknown_parameters(request: Request, known: frozenset[str]) -> None:
    """Raise :class:`UnknownParameter` for a query parameter not in ``known``."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        shown = ", ".join(repr(u[:40]) for u in unknown[:5])
        raise UnknownParameter(
            f"unknown query parameter(s) {shown}; expected any of {', '.join(sorted(known))}"
        )


async def items_query(
    request: Request,
    bbox: Annotated[
        str | None,
        Query(
            description="minlon,minlat,maxlon,maxlat in WGS84 lon/lat (OGC CRS84)",
            examples=["-103.5,20.5,-101.0,21.5"],
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            description=(
                "page size (larger values are capped at the maximum, "
                "GEOCLUSTER_ITEMS_LIMIT_MAX); downloads (f=csv|gpkg|parquet) without a "
                "limit return the whole layer, up to GEOCLUSTER_DOWNLOAD_LIMIT_MAX"
            ),
            # advertised, not enforced: OGC asks a larger limit to be served as the maximum
            json_schema_extra={"maximum": ITEMS_LIMIT_MAX},
        ),
    ] = ITEMS_LIMIT_DEFAULT,
    offset: Annotated[int, Query(ge=0, le=MAX_ITEMS_INDEX, description="features to skip")] = 0,
    properties: Annotated[
        str | None,
        Query(
            description="comma-separated property names to return", examples=["firm_id,sector_code"]
        ),
    ] = None,
    f: Annotated[
        OutputFormat | None, Query(description="output format; else chosen from the Accept header")
    ] = None,
) -> ItemsQuery:
    """Collect and validate the items query (limit capped by the settings).

    ``async``: it does no I/O, and a sync dependency costs a thread-pool round trip.
    """
    reject_unknown_parameters(request, ITEMS_PARAMETERS)
    # "given or not" from the query string: the OpenAPI default is a number, but
    # downloads without a limit are the whole layer and pages the configured default
    requested = limit if "limit" in request.query_params else None
    if requested is not None and requested > MAX_ITEMS_INDEX:
        raise InvalidInput(f"expected limit <= {MAX_ITEMS_INDEX}, got {requested}")
    settings: Settings = request.app.state.settings
    lim = settings.features.items_limit_default if requested is None else requested
    lim = min(lim, settings.features.items_limit_max)
    props = None
    if properties is not None:
        props = [p.strip() for p in properties.split(",") if p.strip()]
    return ItemsQuery(
        bbox=parse_bbox(bbox),
        limit=lim,
        offset=offset,
        properties=props,
        f=f,
        requested_limit=requested,
    )


ItemsDep = Annotated[ItemsQuery, Depends(items_query)]
