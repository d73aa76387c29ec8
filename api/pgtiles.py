"""Vector tiles of a PostGIS workspace cut in the database (``ST_AsMVT``).

The embedded path (:mod:`api.tiling`) reads a whole collection version into memory
once per worker and cuts tiles from that index. On a PostGIS store the same tiles can
be cut by the database instead: no per-worker index build (a 1M-firm register takes
seconds to read out of PostgreSQL), no memory held per worker, and the GiST index
answers the tile envelope. This module builds those tiles with the **same** layer name
(``default``), fields, extent and buffers, and under the same disclosure rules per
audience as :func:`api.routers.tiles.load_index` / :func:`api.routers.tiles.render_tile`:

* points (firms, labels, point assets) are individual features only when the
  :class:`~api.tiling.TileOptions` of the audience allow it (``individual_points``,
  ``points_min_zoom``, ``max_features``), with the preferred properties first, at most
  :data:`~api.tiling.MAX_PROPERTIES`; otherwise grid cells (``count``, ``employees``,
  ``aggregated``) of ``grid_cells`` per side plus the ``point_buffer`` rings, computed by
  a ``GROUP BY`` on the same Web Mercator cell index as the Z-order codes of
  :class:`~api.tiling.PointIndex`, then passed through the rule ``policy.apply(cells,
  kind="table", count_col="count")`` applies there (fewer than ``min_contributors``
  firms: dropped when enforced; ``round_to``), written in SQL;
* point coordinates are snapped with the embedded rule (``floor`` of the tile
  coordinate, kept while ``-buffer <= t < extent + buffer``) in SQL and encoded by
  ``ST_AsMVT``; ``ST_AsMVTGeom`` would round instead, moving points on a tile edge;
* polygons and lines go through :func:`geocluster.store.postgis.postgis_tile`
  (``ST_AsMVTGeom`` clip + snap, ``ST_AsMVT``);
* a layer whose disclosure kind makes the policy rewrite values or outlines in Python
  (``table``, ``clusters``: counts suppressed or rounded, hulls smoothed) is never cut
  here: :meth:`PlanCache.get` returns None and the route keeps the embedded path;
* viewers' tiles of a layer with a ``disclosure`` column hold only its ``ok`` rows, as
  :func:`~api.routers.tiles.load_index` does.

Which path a tile takes is ``GEOCLUSTER_TILE_POSTGIS``: ``never``, ``always`` (every
eligible layer), or ``auto`` (default): polygon and line layers from the database,
point layers from the embedded index, because that is what ``bench/tiles.py
--store`` measured faster (docs/POSTGIS.md, "Tiles from PostGIS").
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.tiling import MAX_PROPERTIES, MORTON_LEVEL, POINT_PROPERTIES_PREFERRED, TileOptions

#: ``GEOCLUSTER_TILE_POSTGIS`` values.
MODES = ("auto", "always", "never")
#: Disclosure kinds whose layer the policy passes whole (or, for firm points, only as
#: grid cells): those are the ones the database can cut with the same result.
PASS_THROUGH_KINDS = frozenset({"firms", "labels", "assets", "boundaries", "indicators", "other"})
#: Largest float64 below 1: unit coordinates are clipped to [0, 1) as in api.tiling.
_BELOW_ONE = float(np.nextafter(1.0, 0.0))
_MAX_LAT = 85.05112878


@dataclass(frozen=True)
class PgPlan:
    """How the database cuts the tiles of one layer for one audience."""

    layer: str
    kind: str
    points: bool
    #: Point properties in the embedded order (preferred first, at most MAX_PROPERTIES).
    properties: tuple[str, ...]
    #: Float columns among them (NaN is left out of a feature, as a null is).
    float_columns: frozenset[str]
    #: Whether cells sum ``employees`` (the layer has a numeric one).
    employees: bool
    #: Only rows with ``disclosure = 'ok'`` (viewers of a layer that has the column).
    ok_rows_only: bool


def is_postgis(ws) -> bool:
    """Whether the workspace's store is PostGIS."""
    return getattr(ws.store, "kind", None) == "postgis"


class PlanCache:
    """Plans per (layer, audience) of one app (layers are immutable; the policy is the app's)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._plans: dict[tuple[str, str], PgPlan | None] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def peek(self, layer: str, audience: str) -> tuple[bool, PgPlan | None]:
        """``(known, plan)`` without touching the store."""
        key = (layer, audience)
        return (key in self._plans, self._plans.get(key))

    def get(self, ws, coll, policy, audience: str) -> PgPlan | None:
        """The database plan of a collection's tiles for ``audience``, or None if not eligible."""
        known, found = self.peek(coll.layer, audience)
        if known:
            return found
        found = _make_plan(ws, coll, policy)
        with self._lock:
            if len(self._plans) >= self.max_entries:
                self._plans.clear()
            self._plans[(coll.layer, audience)] = found
        return found


def _make_plan(ws, coll, policy) -> PgPlan | None:
    import geopandas as gpd
    import pyarrow as pa

    from api.routers.features import disclosure_kind

    if not is_postgis(ws):
        return None
    info = ws.store.layer(coll.layer)
    if not info["geometry"]:
        return None
    schema: pa.Schema = info["schema"]
    attrs = [f for f in schema if f.name not in ("geometry", "x", "y")]
    # an empty frame with the layer's columns: what a run saved before disclosure
    # kinds were recorded is recognised by (disclosure_kind's fallback)
    empty = gpd.GeoDataFrame(
        {f.name: [] for f in attrs}, geometry=gpd.GeoSeries([], crs="EPSG:4326")
    )
    kind = disclosure_kind(coll, empty, ws)
    if kind not in PASS_THROUGH_KINDS:
        return None
    types = set((info.get("meta") or {}).get("geometry_types") or [])
    points = bool(types) and types <= {"Point", "MultiPoint"}
    scalar = [f for f in attrs if not (pa.types.is_nested(f.type) or pa.types.is_binary(f.type))]
    names = [f.name for f in scalar]
    preferred = [c for c in POINT_PROPERTIES_PREFERRED if c in names]
    keep = (preferred + [c for c in names if c not in preferred])[:MAX_PROPERTIES]
    floats = frozenset(f.name for f in scalar if pa.types.is_floating(f.type))
    emp = schema.field("employees") if "employees" in schema.names else None
    if (
        points
        and emp is not None
        and not (pa.types.is_integer(emp.type) or pa.types.is_floating(emp.type))
    ):
        return None  # the embedded path coerces text employees; not worth mirroring
    ok_only = bool(policy.enforce and not policy.firm_points and "disclosure" in schema.names)
    return PgPlan(
        layer=coll.layer,
        kind=kind,
        points=points,
        properties=tuple(keep),
        float_columns=floats,
        employees=emp is not None,
        ok_rows_only=ok_only,
    )


def use_database(mode: str, found: PgPlan | None, z: int) -> bool:
    """Whether tile ``z`` of a planned layer is cut by the database under ``mode``.

    ``auto`` keeps point layers on the embedded index at every zoom: bench/tiles.py
    --store measured it faster for firm points at z6, z10 and z14, both audiences
    (docs/POSTGIS.md); polygons and lines come from the database.
    """
    if found is None or mode == "never":
        return False
    if mode == "always":
        return True
    return not found.points


# -- SQL --------------------------------------------------------------------------------------
def _unit_to_lonlat(u: float, v: float) -> tuple[float, float]:
    lon = u * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * v))))
    return lon, lat


def _envelope(z: int, x0: float, y0: float, x1: float, y1: float):
    """Lon/lat envelope of the unit-square box [x0, x1] x [y0, y1] at zoom ``z`` (padded).

    Padded by a small margin: the exact membership is then decided on the unit
    coordinates, the way the embedded index decides it.
    """
    n = float(1 << z)
    u0, u1 = max(x0 / n, 0.0), min(x1 / n, 1.0)
    v0, v1 = max(y0 / n, 0.0), min(y1 / n, 1.0)
    west, north = _unit_to_lonlat(u0, v0)
    east, south = _unit_to_lonlat(u1, v1)
    pad = 1e-7
    # the first and last rows of tiles reach the poles: points beyond +-85.05 deg are
    # clipped onto them by the unit projection
    if v0 <= 0.0:
        north = 90.0
    if v1 >= 1.0:
        south = -90.0
    return west - pad, south - pad, east + pad, north + pad


def _unit_sql(sql):
    """``u``, ``v`` (Web Mercator unit square, y down) of ``t.geometry``, as api.tiling."""
    return sql.SQL(
        "CROSS JOIN LATERAL (SELECT ST_GeometryN(t.{g}, 1) AS pt) g0 "
        "CROSS JOIN LATERAL (SELECT least(greatest((ST_X(g0.pt) + 180.0) / 360.0, 0.0), "
        "{one}) AS u, sin(radians(least(greatest(ST_Y(g0.pt), {mlat}), {plat}))) AS s) g1 "
        "CROSS JOIN LATERAL (SELECT g1.u, least(greatest(0.5 - ln((1 + g1.s) / (1 - g1.s)) "
        "/ (4 * pi()), 0.0), {one}) AS v) c"
    ).format(
        g=sql.Identifier("geometry"),
        one=sql.Literal(_BELOW_ONE),
        mlat=sql.Literal(-_MAX_LAT),
        plat=sql.Literal(_MAX_LAT),
    )


def _where(sql, found: PgPlan, env) -> Any:
    west, south, east, north = env
    clause = sql.SQL("t.{g} && ST_MakeEnvelope({a}, {b}, {c}, {d}, 4326)").format(
        g=sql.Identifier("geometry"),
        a=sql.Literal(west),
        b=sql.Literal(south),
        c=sql.Literal(east),
        d=sql.Literal(north),
    )
    if found.ok_rows_only:
        clause += sql.SQL(" AND t.{} = 'ok'").format(sql.Identifier("disclosure"))
    return clause


def _prop(sql, found: PgPlan, column: str):
    ident = sql.SQL("t.{}").format(sql.Identifier(column))
    if column in found.float_columns:  # NaN is a missing value, as in the embedded index
        ident = sql.SQL("NULLIF({}, 'NaN')").format(ident)
    return sql.SQL("{} AS {}").format(ident, sql.Identifier(column))


def _execute(store, query, params=None):
    return store._con().execute(query, params).fetchone()


def point_count(store, found: PgPlan, z: int, x: int, y: int, limit: int | None = None) -> int:
    """Points of tile ``z/x/y`` proper (the embedded ``PointIndex.count``), up to ``limit``."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {table} t {unit} WHERE {where} "
        "AND floor(c.u * {n}) = {x} AND floor(c.v * {n}) = {y}{limit}) s"
    ).format(
        table=sql.SQL(store._table(found.layer)),
        unit=_unit_sql(sql),
        where=_where(sql, found, _envelope(z, x, y, x + 1, y + 1)),
        n=sql.Literal(float(1 << z)),
        x=sql.Literal(x),
        y=sql.Literal(y),
        limit=sql.SQL(f" LIMIT {int(limit)}") if limit is not None else sql.SQL(""),
    )
    row = _execute(store, query)
    return int(row[0]) if row else 0


def _points_tile(store, found: PgPlan, z: int, x: int, y: int, opts: TileOptions, name: str):
    """Individual points of tile ``z/x/y`` within ``opts.buffer``, by ``ST_AsMVT``."""
    from psycopg import sql

    n = 1 << z
    pad = opts.buffer / opts.extent
    env = _envelope(z, x - pad, y - pad, x + 1 + pad, y + 1 + pad)
    inner = [_prop(sql, found, c) for c in found.properties]
    outer = [sql.SQL("p.{}").format(sql.Identifier(c)) for c in found.properties]
    query = sql.SQL(
        "SELECT ST_AsMVT(q, {name}, {ext}, '_gc_geom') FROM ("
        "SELECT ST_MakePoint(floor(p._gc_tx), floor(p._gc_ty)) AS _gc_geom{outer} FROM ("
        "SELECT (c.u * {n} - {x}) * {ext} AS _gc_tx, (c.v * {n} - {y}) * {ext} AS _gc_ty"
        "{inner} FROM {table} t {unit} WHERE {where}) p "
        "WHERE p._gc_tx >= {lo} AND p._gc_tx < {hi} AND p._gc_ty >= {lo} AND p._gc_ty < {hi}) q"
    ).format(
        name=sql.Literal(name),
        ext=sql.Literal(int(opts.extent)),
        outer=sql.SQL("").join(sql.SQL(", ") + o for o in outer),
        inner=sql.SQL("").join(sql.SQL(", ") + i for i in inner),
        n=sql.Literal(float(n)),
        x=sql.Literal(x),
        y=sql.Literal(y),
        table=sql.SQL(store._table(found.layer)),
        unit=_unit_sql(sql),
        where=_where(sql, found, env),
        lo=sql.Literal(-float(opts.buffer)),
        hi=sql.Literal(float(opts.extent + opts.buffer)),
    )
    row = _execute(store, query)
    return bytes(row[0]) if row and row[0] else b""


def _cells_tile(store, found: PgPlan, z: int, x: int, y: int, opts: TileOptions, policy, name):
    """Grid cells of tile ``z/x/y`` (and its buffer rings) under the cell rule, by ``ST_AsMVT``.

    Returns ``b""`` when the tile proper holds no point, as ``PointIndex.tile`` does
    (whatever its buffer holds), or when the rule drops every cell.
    """
    from psycopg import sql

    g = max(0, int(round(math.log2(opts.grid_cells))))
    n_cells = 1 << g
    level = z + g
    step = opts.extent / n_cells
    # deeper than the Z-order index the embedded path bins the tile's points only
    ring = math.ceil(opts.point_buffer / step) if level <= MORTON_LEVEL else 0
    side = float(1 << level)
    pad = ring / n_cells
    env = _envelope(z, x - pad, y - pad, x + 1 + pad, y + 1 + pad)
    weight = (
        sql.SQL("coalesce(NULLIF(t.{}::float8, 'NaN'), 0.0)").format(sql.Identifier("employees"))
        if found.employees
        else sql.SQL("0.0")
    )
    if policy.round_to:
        count = sql.SQL("(round(k.n::float8 / {r}) * {r})::bigint").format(
            r=sql.Literal(float(policy.round_to))
        )
    else:
        count = sql.SQL("k.n::bigint")
    # below editor cells carry counts alone: a cell's employment is a magnitude the
    # dominance and p% rules protect, and cells only pass the threshold (as embedded)
    employees = (
        sql.SQL(", round(k.emp * 10.0) / 10.0 AS employees")
        if found.employees and policy.firm_points
        else sql.SQL("")
    )
    keep = (
        sql.SQL("k.n >= {}").format(sql.Literal(int(policy.min_contributors)))
        if policy.enforce
        else sql.SQL("true")
    )
    query = sql.SQL(
        "WITH k AS (SELECT floor(c.u * {side})::bigint - {x0} AS cx, "
        "floor(c.v * {side})::bigint - {y0} AS cy, count(*) AS n, sum({w}) AS emp "
        "FROM {table} t {unit} WHERE {where} GROUP BY 1, 2) "
        "SELECT EXISTS (SELECT 1 FROM k WHERE k.cx >= 0 AND k.cx < {nc} AND k.cy >= 0 "
        "AND k.cy < {nc}), (SELECT ST_AsMVT(q, {name}, {ext}, 'geom') FROM ("
        "SELECT ST_MakePoint(floor((k.cx + 0.5) * {step}), floor((k.cy + 0.5) * {step})) AS geom, "
        "{count} AS count{employees}, true AS aggregated FROM k "
        "WHERE k.cx >= {lo} AND k.cx < {hi} AND k.cy >= {lo} AND k.cy < {hi} AND {keep}) q)"
    ).format(
        side=sql.Literal(side),
        x0=sql.Literal(x * n_cells),
        y0=sql.Literal(y * n_cells),
        w=weight,
        table=sql.SQL(store._table(found.layer)),
        unit=_unit_sql(sql),
        where=_where(sql, found, env),
        nc=sql.Literal(n_cells),
        name=sql.Literal(name),
        ext=sql.Literal(int(opts.extent)),
        step=sql.Literal(float(step)),
        count=count,
        employees=employees,
        lo=sql.Literal(-ring),
        hi=sql.Literal(n_cells + ring),
        keep=keep,
    )
    row = _execute(store, query)
    if not row or not row[0] or not row[1]:
        return b""
    return bytes(row[1])


def render(ws, found: PgPlan, z: int, x: int, y: int, opts: TileOptions, policy, name: str):
    """Encode tile ``z/x/y`` of a planned layer in the database (bytes; ``b""`` if empty).

    Raises
    ------
    NotFound
        The layer was deleted (garbage-collected) while the tile was being cut.
    psycopg.Error
        Any other database error (the connection is left usable).
    """
    import psycopg

    from geocluster.errors import NotFound

    try:
        return _render(ws.store, found, z, x, y, opts, policy, name)
    except psycopg.errors.UndefinedTable:
        ws.store._rollback_failed()
        raise NotFound("that layer was deleted while its tile was being cut") from None
    except psycopg.Error:
        # a failed statement must not poison this thread's connection; the error itself
        # is a server fault (500, "internal error", logged by the app's handler)
        ws.store._rollback_failed()
        raise


def _render(store, found: PgPlan, z: int, x: int, y: int, opts: TileOptions, policy, name: str):
    from geocluster.store.postgis import postgis_tile

    if not found.points:
        return postgis_tile(
            store,
            found.layer,
            z,
            x,
            y,
            extent=opts.extent,
            buffer=opts.buffer,
            layer_name=name,
            where_ok=found.ok_rows_only,
        )
    if opts.individual_points and z >= opts.points_min_zoom:
        count = point_count(store, found, z, x, y, limit=opts.max_features + 1)
        if count == 0:
            return b""
        if count <= opts.max_features:
            return _points_tile(store, found, z, x, y, opts, name)
    return _cells_tile(store, found, z, x, y, opts, policy, name)


__all__ = ["MODES", "PgPlan", "PlanCache", "render", "use_database", "is_postgis", "point_count"]
