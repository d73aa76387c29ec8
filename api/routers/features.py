"""OGC API - Features: landing page, conformance, collections and items.

Datasets and analysis-run layers are collections. Items are paged (``limit`` capped by
the settings) with ``next``/``prev`` links, in lon/lat (CRS84) order, as GeoJSON, CSV,
GeoPackage or GeoParquet (``f=`` first, then the ``Accept`` header, as tipg does).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import geopandas as gpd
import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import can_see_collection, check_collection, check_microdata, get_principal
from api.deps import MAX_ITEMS_INDEX, ItemsDep, get_workspace
from api.outlines import publish
from geocluster.auth import Principal
from geocluster.errors import InvalidInput, NotFound
from geocluster.io import csv_safe
from geocluster.store.export import frame_to_bytes

landing_router = APIRouter(tags=["service"])
router = APIRouter(prefix="/collections", tags=["features"])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
]
MEDIA_TYPES = {
    "geojson": "application/geo+json",
    "json": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
    "parquet": "application/vnd.apache.parquet",
}
_ACCEPT = [
    ("application/geo+json", "geojson"),
    ("application/json", "geojson"),
    ("text/csv", "csv"),
    ("application/geopackage+sqlite3", "gpkg"),
    ("application/vnd.apache.parquet", "parquet"),
    ("application/x-parquet", "parquet"),
]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


#: Policy kinds of the result kinds a run records for each stored layer.
_POLICY_KIND = {
    "firm_points": "labels",
    "cluster_summary": "clusters",
    "region_table": "table",
    "cell_counts": "table",
}


def _frame_free_kind(coll, ws) -> str | None:
    """:func:`disclosure_kind` when it can be told without the rows (else None)."""
    kind = str(coll.kind)
    if not kind.startswith("run:"):
        return disclosure_kind(coll, None, ws)
    if getattr(coll, "run_id", None):
        run = ws.run(coll.run_id)
        layer = run.primary if coll.id == run.id else coll.id.split(".", 1)[1]
        recorded = ((run.summary or {}).get("disclosure") or {}).get(layer)
        if recorded is not None:
            return _POLICY_KIND.get(recorded.get("kind"), "other")
    return None


def disclosure_kind(coll, frame: pd.DataFrame | None = None, ws=None) -> str:
    """The disclosure-policy kind of a collection (see :mod:`geocluster.disclosure`).

    Datasets by their kind; run layers by the kind their run recorded when it was saved
    (``summary["disclosure"]``). Only runs saved before kinds were recorded (a migrated
    v1 workspace) fall back to recognising the layer by its columns.
    """
    kind = str(coll.kind)
    if kind == "firms":
        return "firms"
    if kind in ("assets", "boundaries", "indicators"):
        return kind
    if kind == "institutions":  # public, like assets: nothing to aggregate
        return "other"
    if kind.startswith("run:"):
        recorded = None
        if ws is not None and getattr(coll, "run_id", None):
            run = ws.run(coll.run_id)
            layer = run.primary if coll.id == run.id else coll.id.split(".", 1)[1]
            recorded = ((run.summary or {}).get("disclosure") or {}).get(layer)
        if recorded is not None:
            return _POLICY_KIND.get(recorded.get("kind"), "other")
        cols = set(frame.columns) if frame is not None else set()
        if "firm_id" in cols and isinstance(frame, gpd.GeoDataFrame):
            return "labels"
        if "n_firms" in cols:
            return "clusters"
        if "count" in cols:
            return "table"
    return "other"


def collection_dict(coll, request: Request) -> dict[str, Any]:
    """An OGC collection description with links to items, downloads and tiles."""
    base = _base(request)
    href = f"{base}/collections/{coll.id}"
    out: dict[str, Any] = {
        "id": coll.id,
        "title": coll.title,
        "description": f"{coll.kind} ({coll.rows} features)",
        "kind": coll.kind,
        "rows": coll.rows,
        "itemType": "feature",
        "crs": [CRS84],
        "version": coll.version,
        "run_id": coll.run_id,
        "created": coll.created,
        # the page size of /items (as the OpenAPI document advertises it)
        "limit": {
            "default": request.app.state.settings.features.items_limit_default,
            "maximum": request.app.state.settings.features.items_limit_max,
        },
        "links": [
            {"rel": "self", "href": href, "type": "application/json"},
            {"rel": "items", "href": f"{href}/items", "type": "application/geo+json"},
        ]
        + [
            {
                "rel": "alternate",
                "href": f"{href}/items?f={f}",
                "type": MEDIA_TYPES[f],
                "title": f"download ({f})",
            }
            for f in ("csv", "gpkg", "parquet")
        ],
    }
    if coll.bbox:
        out["extent"] = {"spatial": {"bbox": [list(coll.bbox)], "crs": CRS84}}
    if coll.geometry:
        out["links"].append(
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                "href": f"{href}/tiles/WebMercatorQuad/tilejson.json",
                "type": "application/json",
                "title": "TileJSON (Mapbox Vector Tiles)",
            }
        )
    return out


@landing_router.get("/health", summary="Liveness check and auth mode (open or keys)")
def health(request: Request) -> dict[str, str]:
    from api.auth import is_open

    return {"status": "ok", "auth": "open" if is_open(request.app) else "keys"}


@landing_router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    # browsers ask for it on every page; an empty answer keeps their consoles clean
    return Response(status_code=204)


@landing_router.get("/", summary="OGC API landing page")
def landing(request: Request) -> dict[str, Any]:
    base = _base(request)
    return {
        "title": "geocluster",
        "description": "Industrial and territorial clusters, specialisation and inequality",
        "links": [
            {"rel": "self", "href": f"{base}/", "type": "application/json"},
            {
                "rel": "service-desc",
                "href": f"{base}/openapi.json",
                "type": "application/vnd.oai.openapi+json;version=3.0",
            },
            {"rel": "service-doc", "href": f"{base}/docs", "type": "text/html"},
            {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json"},
            {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
            {"rel": "map", "href": f"{base}/map", "type": "text/html"},
        ],
    }


@landing_router.get("/conformance", summary="OGC conformance classes")
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("", summary="The datasets (and, on request, every analysis-run layer)")
def list_collections(
    request: Request,
    include_runs: Annotated[
        bool,
        Query(
            description="also list the layers of analysis runs (each run adds 1-3); "
            "they stay reachable by id, and GET /runs lists the runs"
        ),
    ] = False,
    ws=Depends(get_workspace),
    principal: Principal = Depends(get_principal),
) -> dict[str, Any]:
    """Datasets only by default, so a client (QGIS, ``ogrinfo``) gets a short list."""
    every = [c for c in ws.collections() if can_see_collection(ws, principal, c)]
    shown = every if include_runs else [c for c in every if c.run_id is None]
    colls = [collection_dict(c, request) for c in shown]
    base = _base(request)
    links = [{"rel": "self", "href": str(request.url), "type": "application/json"}]
    hidden = len(every) - len(shown)
    if hidden:
        links.append(
            {
                "rel": "alternate",
                "href": f"{base}/collections?include_runs=true",
                "type": "application/json",
                "title": f"also the {hidden} analysis-run layers",
            }
        )
    return {
        "collections": colls,
        "numberMatched": len(colls),
        "numberReturned": len(colls),
        "links": links,
    }


@router.get("/{collection_id}", summary="One collection")
def get_collection(
    collection_id: str,
    request: Request,
    ws=Depends(get_workspace),
    principal: Principal = Depends(get_principal),
) -> dict[str, Any]:
    coll = ws.collection(collection_id)
    check_collection(ws, principal, coll)
    return collection_dict(coll, request)


def _output_format(f: str | None, request: Request) -> str:
    if f:
        return "geojson" if f == "json" else f
    accept = request.headers.get("accept", "")
    for media, fmt in _ACCEPT:
        if media in accept:
            return fmt
    return "geojson"


def _columns(ws, collection_id: str) -> list[str]:
    return ws.collection_columns(collection_id)


def _links(
    request: Request, offset: int, limit: int, returned: int, matched: int, fmt: str
) -> list[dict]:
    url = request.url
    media = MEDIA_TYPES[fmt]
    links = [{"rel": "self", "href": str(url), "type": media}]
    if offset + returned < matched:
        links.append(
            {
                "rel": "next",
                "href": str(url.include_query_params(offset=offset + limit, limit=limit)),
                "type": media,
            }
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "href": str(url.include_query_params(offset=max(0, offset - limit), limit=limit)),
                "type": media,
            }
        )
    coll_href = str(url.replace(query="")).rsplit("/items", 1)[0]
    links.append({"rel": "collection", "href": coll_href, "type": "application/json"})
    return links


def id_column(coll, columns) -> str | None:
    """The column holding unique feature ids of a collection, or None (position ids)."""
    by_kind = {"firms": "firm_id", "assets": "asset_id", "boundaries": "region_id"}
    col = by_kind.get(str(coll.kind))
    if col is None and str(coll.kind).startswith("run:"):
        if "firm_id" in columns:
            col = "firm_id"  # per-firm labels
        elif "cluster_id" in columns and "n_firms" in columns:
            col = "cluster_id"  # one row per cluster
    return col if col in columns else None


def _geojson(frame: pd.DataFrame, *, offset: int, id_col: str | None = None) -> str:
    """FeatureCollection text with stable ids; attribute-only frames get null geometry."""
    frame = frame.copy()
    if id_col is not None and not (id_col in frame.columns and frame[id_col].is_unique):
        id_col = None
    if id_col is not None:
        frame.index = frame[id_col].astype(str)
    else:
        frame.index = range(offset, offset + len(frame))
    if isinstance(frame, gpd.GeoDataFrame):
        return frame.to_json(na="null", drop_id=False, default=str)
    features = []
    for idx, row in zip(frame.index, frame.to_dict(orient="records")):
        props = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        features.append({"type": "Feature", "id": idx, "geometry": None, "properties": props})
    return json.dumps({"type": "FeatureCollection", "features": features}, default=str)


def _plain_values(column: pa.ChunkedArray) -> list | None:
    """A page column as the Python values geopandas' ``to_json`` writes, or None.

    Mirrors ``Table.to_pandas()`` then ``astype(object)`` with missing values as
    None, for the types where that is a plain conversion: integers (floats when the
    page has a null, as pandas makes them), floats (NaN as None), booleans and
    strings. Any other type (dates, decimals, dictionaries, lists) returns None and
    the page takes the geopandas path.
    """
    t = column.type
    if pa.types.is_integer(t):
        values = column.to_pylist()
        if column.null_count:
            return [None if v is None else float(v) for v in values]
        return values
    if pa.types.is_floating(t):
        return [None if v is None or v != v else v for v in column.to_pylist()]
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return column.to_pylist()
    return None


def _geometry_dicts(wkb: pa.ChunkedArray) -> list:
    """GeoJSON geometries of WKB values, as ``shapely.geometry.mapping`` gives them."""
    import numpy as np
    import shapely
    from shapely.geometry import mapping

    geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
    is_point = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
    out: list = [None] * len(geoms)
    if is_point.any():
        xy = shapely.get_coordinates(geoms[is_point]).tolist()
        for i, c in zip(np.flatnonzero(is_point).tolist(), xy, strict=True):
            out[i] = {"type": "Point", "coordinates": c}
    for i in np.flatnonzero(~is_point).tolist():
        g = geoms[i]
        out[i] = mapping(g) if g else None  # None and empty geometries: null
    return out


def _geojson_table(
    table: pa.Table, *, offset: int, id_col: str | None = None, geometry: str = "geometry"
) -> str | None:
    """:func:`_geojson` of a page read as Arrow, without pandas, or None (not plain).

    The same FeatureCollection text as ``to_frame`` + :func:`_geojson` (a test
    compares them): property order, ids (the id column's values when unique on the
    page, else positions from ``offset``), missing values as null, geometries as
    ``mapping`` gives them. Pages with a column of another type return None.
    """
    props = [c for c in table.column_names if c != geometry]
    columns = {}
    for c in props:
        values = _plain_values(table[c])
        if values is None:
            return None
        columns[c] = values
    n = table.num_rows
    ids = None
    if id_col is not None and id_col in columns:
        col = table[id_col]
        if col.null_count or not (
            pa.types.is_integer(col.type)
            or pa.types.is_string(col.type)
            or pa.types.is_large_string(col.type)
        ):
            return None  # pandas would print the missing id as "nan": the slow path says it
        if len(set(columns[id_col])) == n:
            ids = [str(v) for v in columns[id_col]]
    if ids is None:
        ids = [str(i) for i in range(offset, offset + n)]
    geoms = _geometry_dicts(table[geometry])
    rows = zip(*columns.values(), strict=True) if props else ((),) * n
    features = [
        {"id": fid, "type": "Feature", "properties": dict(zip(props, row)), "geometry": geom}
        for fid, row, geom in zip(ids, rows, geoms, strict=True)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}, default=str)


def _csv(frame: pd.DataFrame) -> bytes:
    if isinstance(frame, gpd.GeoDataFrame):
        geom = frame.geometry
        out = pd.DataFrame(frame.drop(columns=geom.name))
        if len(frame) and set(geom.dropna().geom_type.unique()) <= {"Point"}:
            out["lon"] = geom.x
            out["lat"] = geom.y
        else:
            out["wkt"] = geom.to_wkt()
        frame = out
    return csv_safe(frame).to_csv(index=False).encode("utf-8")


@router.get(
    # named as in the OGC API Features OpenAPI fragments: GDAL's OAPIF driver looks the
    # items path up by this literal template to read the ``limit`` default and maximum
    "/{collectionId}/items",
    summary="Features of a collection (paged; GeoJSON, CSV, GeoPackage or GeoParquet)",
    responses={
        200: {
            "content": {
                "application/geo+json": {},
                "text/csv": {},
                "application/geopackage+sqlite3": {},
                "application/vnd.apache.parquet": {},
            },
            "description": "A FeatureCollection with numberMatched, numberReturned and links",
        },
        400: {"description": "A query parameter the endpoint does not define"},
    },
)
async def items(
    collection_id: Annotated[str, Path(alias="collectionId", description="collection id")],
    request: Request,
    query: ItemsDep,
    principal: Principal = Depends(get_principal),
) -> Response:
    # one thread-pool round trip per page (sync dependencies and a sync endpoint
    # would take three: at 32 clients on 2 cores they cost more than the page)
    holder = request.app.state.get_workspace
    ws = holder.opened or await run_in_threadpool(holder)
    return await run_in_threadpool(_items_page, collection_id, request, query, ws, principal)


def _items_page(collection_id: str, request: Request, query, ws, principal: Principal) -> Response:
    """The body of :func:`items` (blocking: reads the store)."""
    coll = request.app.state.collections.get(ws, collection_id)
    check_collection(ws, principal, coll)
    available = _columns(ws, collection_id)
    check_microdata(principal, coll, available)
    fmt = _output_format(query.f, request)
    if query.properties is not None:
        unknown = [p for p in query.properties if p not in available]
        if unknown:
            raise InvalidInput(
                f"unknown properties {unknown} for collection {collection_id!r}; available: {available}"
            )
    if fmt in ("csv", "gpkg", "parquet"):  # file downloads: the whole layer by default
        cap = request.app.state.settings.features.download_limit_max
        query.limit = min(query.requested_limit or cap, cap)
    bbox = query.bbox if coll.geometry else None
    if query.bbox is not None and not coll.geometry:
        raise InvalidInput(f"collection {collection_id!r} has no geometry; bbox cannot filter it")
    policy = _policy_for(request, principal)
    text = None
    if fmt == "geojson" and coll.geometry and _passes_unchanged(policy, _frame_free_kind(coll, ws)):
        # a page the policy publishes as stored: GeoJSON straight from Arrow
        table = ws.read_collection_table(
            coll, bbox=bbox, limit=query.limit, offset=query.offset, properties=query.properties
        )
        text = _geojson_table(
            table, offset=query.offset, id_col=id_column(coll, table.column_names)
        )
        returned = table.num_rows
    if text is None:
        frame = ws.read_collection(
            coll.id,
            bbox=bbox,
            limit=query.limit,
            offset=query.offset,
            properties=query.properties,
        )
        frame = publish(ws, coll, frame, policy, disclosure_kind(coll, frame, ws))
        returned = len(frame)
    # the layer resolved above, not the id again: a version landing meanwhile
    # cannot make the count and the page disagree
    matched = ws.store.count(coll.layer, bbox=bbox)
    if fmt == "geojson":
        if text is None:
            text = _geojson(frame, offset=query.offset, id_col=id_column(coll, frame.columns))
        extra = {
            "numberMatched": matched,
            "numberReturned": returned,
            "links": _links(request, query.offset, query.limit, returned, matched, fmt),
        }
        body = text.rstrip()[:-1] + ", " + json.dumps(extra, default=str)[1:]
        return Response(body, media_type=MEDIA_TYPES["geojson"])
    headers = {
        "Content-Disposition": f'attachment; filename="{collection_id}.{fmt}"',
        "OGC-NumberMatched": str(matched),
        "OGC-NumberReturned": str(returned),
    }
    if fmt == "csv":
        return Response(_csv(frame), media_type=MEDIA_TYPES["csv"], headers=headers)
    return Response(
        frame_to_bytes(frame, fmt, layer=collection_id.replace(".", "_")),
        media_type=MEDIA_TYPES[fmt],
        headers=headers,
    )


def _index(text: str) -> bool:
    """Whether ``text`` is a feature position / integer id the readers can take."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_ITEMS_INDEX


@router.get(
    "/{collection_id}/items/{feature_id}",
    summary="One feature by id",
    responses={200: {"content": {"application/geo+json": {}}}},
)
def item(
    collection_id: str,
    feature_id: str,
    request: Request,
    ws=Depends(get_workspace),
    principal: Principal = Depends(get_principal),
) -> Response:
    """The feature whose id column (firm_id, asset_id, region_id or cluster_id) equals
    ``feature_id``; collections without one use the 0-based position as id."""
    coll = ws.collection(collection_id)
    check_collection(ws, principal, coll)
    check_microdata(principal, coll, _columns(ws, collection_id))
    id_col = id_column(coll, _columns(ws, collection_id))
    if id_col is not None:
        frame = ws.read_collection(
            coll.id, filters=[(id_col, "==", _typed_id(feature_id, ws, coll, id_col))], limit=2
        )
    elif _index(feature_id):
        frame = ws.read_collection(collection_id, offset=int(feature_id), limit=1)
    else:
        raise NotFound(f"no feature {feature_id!r} in collection {collection_id!r}")
    if len(frame) == 0:
        raise NotFound(f"no feature {feature_id!r} in collection {collection_id!r}")
    policy = _policy_for(request, principal)
    frame = publish(ws, coll, frame.iloc[:1], policy, disclosure_kind(coll, frame, ws))
    offset = int(feature_id) if id_col is None else 0
    fc = json.loads(_geojson(frame, offset=offset, id_col=id_col))
    feature = fc["features"][0]
    base = _base(request)
    feature["links"] = [
        {"rel": "self", "href": str(request.url), "type": MEDIA_TYPES["geojson"]},
        {
            "rel": "collection",
            "href": f"{base}/collections/{collection_id}",
            "type": "application/json",
        },
    ]
    return Response(json.dumps(feature, default=str), media_type=MEDIA_TYPES["geojson"])


def _passes_unchanged(policy, kind: str | None) -> bool:
    """Whether ``policy.apply`` returns a geometry page of ``kind`` as it is.

    :meth:`geocluster.disclosure.DisclosurePolicy.apply` rewrites only tables and
    clusters, and refuses firm points when the policy publishes none; every other
    page leaves it unchanged (and so may skip the DataFrame it takes).
    """
    if kind is None or kind in ("table", "clusters"):
        return False
    return bool(policy.firm_points) or kind not in ("firms", "labels")


def _policy_for(request: Request, principal: Principal):
    """The workspace policy for editors and admins; for anyone else the same policy
    enforced (suppressing, not only flagging) and without exact firm locations."""
    policy = request.app.state.policy
    if principal.sees_microdata:
        return policy
    from dataclasses import replace

    return replace(policy, enforce=True, firm_points=False)


def _typed_id(feature_id: str, ws, coll, id_col: str):
    """``feature_id`` as the id column's type (text ids as given, integer ids parsed)."""
    import pyarrow as pa

    field = ws.store.schema(coll.layer).field(id_col)
    if pa.types.is_integer(field.type):
        text = feature_id.strip()
        if not text.lstrip("-").isdigit() or len(text) > 19:
            raise NotFound(f"no feature {feature_id!r} in collection {coll.id!r}")
        value = int(text)
        if not -(2**63) <= value < 2**63:
            raise NotFound(f"no feature {feature_id!r} in collection {coll.id!r}")
        return value
    return feature_id


__all__ = ["router", "landing_router", "collection_dict", "disclosure_kind", "id_column"]
