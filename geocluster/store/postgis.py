"""The PostGIS store: the workspace protocol on PostgreSQL >= 15 + PostGIS >= 3.3.

::

    <schema>.gc_datasets, gc_runs, ...     the catalog (the tables of catalog.TABLES,
                                           JSON columns as ``json``, which keeps key
                                           order; ``jsonb`` would not)
    <schema>."<layer>"                     one table per immutable layer: the attribute
                                           columns (typed), ``geometry
                                           geometry(Geometry, 4326)`` with a GiST index,
                                           working ``x``, ``y`` of point layers, and
                                           hidden ``_gc_*`` columns (row order, exact
                                           envelope)

Write protocol (a layer becomes visible in one step)
----------------------------------------------------
:meth:`PostGISStore.write_layer` opens a transaction on the calling thread's
connection, creates the layer table and bulk-loads it with a binary ``COPY``
(geometry as EWKB; about 3x faster than CSV with hex WKB, see docs/POSTGIS.md); the
same transaction stays open until
:meth:`PostGISStore.commit` inserts the catalog rows and commits, so the layer table
and the rows naming it become visible together, or not at all: a writer killed
anywhere leaves nothing behind, because PostgreSQL rolls back a dead client's
transaction (its uncommitted table included). Catalog writers serialise on a
transaction-scoped advisory lock per schema (the SQLite catalog's ``BEGIN IMMEDIATE``),
never during a load.

Reads resolve the layer in the catalog and run one ``COPY (SELECT ...) TO STDOUT``
with the projection, filters and bbox pushed into SQL (the GiST index answers the
bbox), parsed by Arrow's CSV reader into the Arrow types the layer was written with,
so frames come back with the same columns and dtypes as from the embedded store.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from geocluster.errors import GeoclusterError, InvalidInput, NotFound
from geocluster.store import geoparquet as gp
from geocluster.store.catalog import COLUMNS, FORMAT, HOST, JSON_COLUMNS, TABLES, pid_alive

BBox = tuple[float, float, float, float]
GEOMETRY = gp.GEOMETRY
#: Hidden columns of a layer table (never returned): row order and exact envelope.
ORD, XMIN, YMIN, XMAX, YMAX = "_gc_ord", "_gc_xmin", "_gc_ymin", "_gc_xmax", "_gc_ymax"
HIDDEN = (ORD, XMIN, YMIN, XMAX, YMAX)
#: Rows per COPY chunk when loading (bounds the CSV text held in memory).
COPY_ROWS = 200_000
_IDENT_MAX = 63  # PostgreSQL truncates longer identifiers
_ORDER = {"gc_datasets": '"id", "version"', "gc_audit": '"seq"'}
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _sanitize(prefix: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in prefix.lower())
    return out.strip("_")[:48] or "layer"


def _psycopg():
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        raise GeoclusterError(
            "the PostGIS store needs psycopg: pip install 'psycopg[binary]'"
        ) from None
    return psycopg


#: Query parameters of a store URL that are ours, not libpq's.
URL_OPTIONS = ("schema", "published")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``postgresql://...?schema=s&published=p`` -> (libpq URL, ``{"schema": s, ...}``)."""
    parts = urlsplit(str(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in URL_OPTIONS}
    rest = urlencode([(k, v) for k, v in query if k not in URL_OPTIONS])
    return urlunsplit(parts._replace(query=rest)), ours


def safe_url(url: str) -> str:
    """The URL without password, for messages."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _q(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- catalog --------------------------------------------------------------------------------
def _pg_column_ddl(table: str, ddl: str) -> str:
    """Translate one :data:`TABLES` entry to PostgreSQL (json, identity, quoted names)."""
    out = []
    for part in re.split(r",(?![^()]*\))", " ".join(ddl.split())):
        part = part.strip()
        if part.upper().startswith("PRIMARY KEY"):
            cols = re.search(r"\((.*)\)", part).group(1)
            out.append("PRIMARY KEY (" + ", ".join(_q(c.strip()) for c in cols.split(",")) + ")")
            continue
        name, _, rest = part.partition(" ")
        rest = rest.replace(
            "PRIMARY KEY AUTOINCREMENT", "GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        )
        if name in JSON_COLUMNS:
            # json, not jsonb: jsonb reorders object keys, and key order is meaningful
            # here (a run's layer order, the order of summary fields the API returns)
            rest = re.sub(r"^TEXT", "JSON", rest)
        rest = re.sub(r"^INTEGER", "BIGINT", rest)
        rest = re.sub(r"^REAL", "DOUBLE PRECISION", rest)
        out.append(f"{_q(name)} {rest}")
    # insertion order, which the SQLite catalog gets from rowid
    out.append('"_seq" BIGINT GENERATED ALWAYS AS IDENTITY')
    return ", ".join(out)


def _check(table: str, row: dict[str, Any]) -> list[str]:
    if table not in TABLES:
        raise GeoclusterError(f"unknown catalog table {table!r}")
    unknown = set(row) - COLUMNS[table]
    if unknown:
        raise GeoclusterError(f"unknown column(s) {sorted(unknown)} in catalog table {table}")
    return list(row)


class PgCatalog:
    """The catalog of a PostGIS workspace: :class:`~geocluster.store.catalog.Catalog`'s API.

    Parameters
    ----------
    conninfo : str
        libpq URL of the database.
    schema : str
        Schema holding the catalog tables and layer tables (created if missing).
    """

    def __init__(self, conninfo: str, schema: str, *, lock_timeout_s: float = 60.0) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.lock_timeout_s = lock_timeout_s
        digest = hashlib.blake2b(f"geocluster:{schema}".encode(), digest_size=8).digest()
        self.lock_key = int.from_bytes(digest, "big", signed=True)
        self._local = threading.local()
        with self.transaction() as con:
            _ensure_schema(con, schema)
            for table, ddl in TABLES.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_pg_column_ddl(table, ddl)})")
            con.execute(
                "INSERT INTO gc_meta (key, value) VALUES ('format', %s), ('generation', '0') "
                "ON CONFLICT (key) DO NOTHING",
                (FORMAT,),
            )

    def __repr__(self) -> str:
        return f"PgCatalog({self.schema!r})"

    # -- connections ----------------------------------------------------------------------
    def _connection(self):
        """One autocommit connection per thread and process (transactions are explicit)."""
        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid == os.getpid() and not con.closed:
            return con
        psycopg = _psycopg()
        try:
            con = psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.OperationalError:
            raise GeoclusterError(
                f"cannot connect to the PostGIS store at {safe_url(self.conninfo)}"
            ) from None
        # the schema may not exist yet on first connect: search_path ignores it until then
        con.execute(f"SET search_path TO {_q(self.schema)}, public")
        con.execute("SET TimeZone TO 'UTC'")
        con.execute("SET synchronize_seqscans TO off")  # full scans return rows in load order
        con.execute(f"SET lock_timeout TO {int(self.lock_timeout_s * 1000)}")
        self._local.con, self._local.pid, self._local.depth = con, os.getpid(), 0
        return con

    def close(self) -> None:
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def in_transaction(self) -> bool:
        """Whether this thread's connection has an open transaction."""
        from psycopg.pq import TransactionStatus

        con = self._connection()
        return con.info.transaction_status != TransactionStatus.IDLE

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One write transaction: all of it commits, or none.

        Writers serialise on an advisory lock of the schema (held to the end of the
        transaction). A transaction a layer write left open on this thread
        (:meth:`PostGISStore.write_layer`) is completed by the first transaction
        here: the layer commits with the catalog rows that name it.
        """
        con = self._connection()
        if self._local.depth > 0:  # nested use joins the outer transaction
            self._local.depth += 1
            try:
                yield con
            finally:
                self._local.depth -= 1
            return
        if not self.in_transaction():
            con.execute("BEGIN")
        self._local.depth = 1
        try:
            con.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))
            yield con
            con.execute(
                "UPDATE gc_meta SET value = (value::bigint + 1)::text WHERE key = 'generation'"
            )
        except BaseException:
            self._local.depth = 0
            if not con.closed:
                con.execute("ROLLBACK")
            raise
        else:
            self._local.depth = 0
            con.execute("COMMIT")

    def _run(self, con, sql: str, params: Sequence[Any] = ()):
        if con is not None:
            return con.execute(sql, params)
        with self.transaction() as tx:
            return tx.execute(sql, params)

    # -- rows -----------------------------------------------------------------------------
    def insert(self, table: str, row: dict[str, Any], *, con=None) -> None:
        """Insert one row (inside ``con``'s transaction if given)."""
        cols = _check(table, row)
        sql = (
            f"INSERT INTO {table} ({', '.join(map(_q, cols))}) "
            f"VALUES ({', '.join(['%s'] * len(cols))})"
        )
        self._run(con, sql, [_encode(c, row[c]) for c in cols])

    def update(self, table: str, values: dict[str, Any], *, con=None, **where: Any) -> int:
        """Set ``values`` on the rows matching ``where``; return how many changed."""
        cols = _check(table, values)
        _check(table, where)
        if not where:
            raise GeoclusterError("refusing to update a whole catalog table")
        sql = (
            f"UPDATE {table} SET {', '.join(f'{_q(c)} = %s' for c in cols)} WHERE "
            + " AND ".join(f"{_q(k)} = %s" for k in where)
        )
        params = [_encode(c, values[c]) for c in cols] + [_py(v) for v in where.values()]
        return self._run(con, sql, params).rowcount

    def select(self, table: str, *, con=None, **where: Any) -> list[dict[str, Any]]:
        """Rows of ``table`` matching ``column=value`` filters (None matches NULL)."""
        from psycopg.rows import dict_row

        _check(table, where)
        clauses, params = [], []
        for k, v in where.items():
            if v is None:
                clauses.append(f"{_q(k)} IS NULL")
            else:
                clauses.append(f"{_q(k)} = %s")
                params.append(_py(v))
        sql = f"SELECT * FROM {table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {_ORDER.get(table, '_seq')}"
        cur = (con or self._connection()).cursor(row_factory=dict_row)
        rows = cur.execute(sql, params).fetchall()
        for r in rows:
            r.pop("_seq", None)
        return rows

    def delete(self, table: str, *, con=None, **where: Any) -> int:
        """Delete rows matching ``column=value`` filters; return how many."""
        _check(table, where)
        if not where:
            raise GeoclusterError("refusing to delete a whole catalog table")
        sql = f"DELETE FROM {table} WHERE " + " AND ".join(f"{_q(k)} = %s" for k in where)
        return self._run(con, sql, [_py(v) for v in where.values()]).rowcount

    def max_version(self, dataset_id: str, *, con) -> int:
        """Highest stored version of a dataset (0 if none), inside a transaction."""
        row = con.execute(
            "SELECT max(version) FROM gc_datasets WHERE id = %s", (dataset_id,)
        ).fetchone()
        return int(row[0] or 0)

    def signature(self) -> tuple:
        """Changes whenever a catalog transaction commits (a generation counter)."""
        row = (
            self._connection()
            .execute("SELECT value FROM gc_meta WHERE key = 'generation'")
            .fetchone()
        )
        return (row[0] if row else None,)

    def integrity_check(self) -> str:
        """``"ok"`` when every catalog layer has its table and every version its layer."""
        con = self._connection()
        tables = {
            r[0]
            for r in con.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,)
            )
        }
        layers = {r[0] for r in con.execute("SELECT layer FROM gc_layers")}
        problems = [f"layer table {name} missing" for name in sorted(layers - tables)]
        for (layer,) in con.execute("SELECT layer FROM gc_datasets"):
            if layer not in layers:
                problems.append(f"dataset layer {layer} not in gc_layers")
        return "ok" if not problems else "; ".join(problems[:5])

    # -- pending layers -------------------------------------------------------------------
    def add_pending(self, layer: str, created: str) -> None:
        """Mark a layer as being written by this process."""
        self.insert(
            "gc_pending", {"layer": layer, "pid": os.getpid(), "host": HOST, "created": created}
        )

    def referenced_layers(self, *, con=None) -> set[str]:
        """Every layer a catalog row or a live writer names."""
        con = con or self._connection()
        out = {r[0] for r in con.execute("SELECT layer FROM gc_datasets")}
        for (layers,) in con.execute("SELECT layers FROM gc_runs"):
            out.update((layers or {}).values())
        out.update(r[0] for r in con.execute("SELECT layer FROM gc_pending"))
        return out

    def dead_pending(self) -> list[str]:
        """Pending layers whose writer (on this host) is no longer alive."""
        rows = self._connection().execute("SELECT layer, pid, host FROM gc_pending").fetchall()
        return [r[0] for r in rows if r[2] == HOST and not pid_alive(int(r[1] or 0))]


def _ensure_schema(con, schema: str) -> None:
    """Create ``schema`` unless it exists (a service role owning it may not CREATE)."""
    found = con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if not found:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")


def _encode(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        from psycopg.types.json import Json

        return Json(value, dumps=lambda v: json.dumps(v, default=_json_default))
    return _py(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# -- layer tables ---------------------------------------------------------------------------
def _pg_type(t: pa.DataType) -> tuple[str, pa.DataType]:
    """(PostgreSQL type, Arrow type the column is kept as) of an attribute column."""
    if pa.types.is_boolean(t):
        return "boolean", t
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint", t
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "integer", t
    if pa.types.is_integer(t):
        return "bigint", t
    if pa.types.is_float16(t):
        return "real", pa.float32()
    if pa.types.is_float32(t):
        return "real", t
    if pa.types.is_float64(t):
        return "double precision", t
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text", t
    if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
        return "text", t
    if pa.types.is_date32(t):
        return "date", t
    if pa.types.is_timestamp(t):
        return ("timestamptz" if t.tz else "timestamp"), pa.timestamp("us", tz=t.tz)
    return "text", pa.string()  # anything else is kept as its JSON text


#: Binary COPY type of each column type a layer table uses.
_COPY_TYPES = {
    "boolean": "bool",
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "real": "float4",
    "double precision": "float8",
    "text": "text",
    "date": "date",
    "timestamptz": "timestamptz",
    "timestamp": "timestamp",
}


def _copy_rows(copy, table: pa.Table) -> None:
    """Stream one chunk of rows into a binary ``COPY`` (psycopg's C row encoder)."""
    columns = [table[c].to_pylist() for c in table.column_names]
    for row in zip(*columns, strict=True):
        copy.write_row(row)


def _to_text_column(arr: pa.ChunkedArray) -> pa.Array:
    return pa.array(
        [None if v is None else json.dumps(v, default=str) for v in arr.to_pylist()],
        type=pa.string(),
    )


def _row_order(frame, is_geo: bool, bounds, sort_key: str | None) -> np.ndarray:
    """The row order of :func:`geoparquet.write_layer` (sort key, then Hilbert)."""
    n = len(frame)
    if is_geo:
        cx = (bounds[:, 0] + bounds[:, 2]) / 2
        cy = (bounds[:, 1] + bounds[:, 3]) / 2
        keys: list[np.ndarray] = [gp.hilbert_order(cx, cy)]
        if sort_key and sort_key in frame.columns:
            codes, _ = pd.factorize(frame[sort_key].astype("string").fillna(""), sort=True)
            keys.append(codes)
        return np.lexsort(keys)
    if sort_key and sort_key in frame.columns:
        return np.argsort(frame[sort_key].astype("string").fillna("").to_numpy(), kind="stable")
    return np.arange(n)


def _hex_to_binary(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Hex text (``encode(wkb, 'hex')``) -> binary, decoding the whole buffer at once.

    The concatenated characters of a hex string column are one hex string, and every
    value has an even length, so the binary offsets are the text offsets halved.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    arr = arr.cast(pa.large_string())
    if len(arr) == 0:
        return pa.array([], type=pa.binary())
    validity, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    raw = bytes.fromhex(data.to_pybytes()[off[0] : off[-1]].decode("ascii")) if off[-1] else b""
    new_off = ((off - off[0]) // 2).astype(np.int64)
    out = pa.Array.from_buffers(
        pa.large_binary(),
        len(arr),
        [validity if arr.null_count else None, pa.py_buffer(new_off.tobytes()), pa.py_buffer(raw)],
        null_count=arr.null_count,
        offset=0,
    )
    return out.cast(pa.binary())


class PostGISStore:
    """Catalog + one table per immutable layer in a PostgreSQL/PostGIS schema.

    Parameters
    ----------
    url : str
        ``postgresql://user@host:port/db``; ``schema=`` and ``published=`` query
        parameters override ``schema`` and ``published_schema``.
    schema : str
        The schema the service role owns (catalog and layer tables).
    published_schema : str, optional
        Schema of the ``published_<dataset>`` views (public, non-firm datasets) that
        a read-only role may read; refreshed in every catalog commit. None: no views.
    """

    kind = "postgis"

    def __init__(
        self,
        url: str,
        schema: str = "geocluster",
        *,
        published_schema: str | None = None,
        cache_mb: float = 0,  # accepted for open_store's signature; PostgreSQL caches
    ) -> None:
        conninfo, options = split_url(url)
        schema = options.get("schema") or schema
        published_schema = options.get("published") or published_schema
        for s in (schema, published_schema):
            if s is not None and not _SCHEMA_RE.match(s):
                raise InvalidInput(f"expected a lower-case schema name, got {s!r}")
        self.pg_schema = schema
        self.published_schema = published_schema
        self._url = conninfo
        self.catalog = PgCatalog(conninfo, schema)
        self._layer_rows: dict[str, dict[str, Any]] = {}
        self._local = threading.local()
        self.collect_garbage()

    def __repr__(self) -> str:
        return f"PostGISStore({safe_url(self._url)!r}, schema={self.pg_schema!r})"

    @property
    def url(self) -> str:
        """How the store is named in messages (no password)."""
        return f"PostGIS store {safe_url(self._url)} schema {self.pg_schema}"

    def _con(self):
        return self.catalog._connection()

    def _table(self, layer: str) -> str:
        return f"{_q(self.pg_schema)}.{_q(layer)}"

    # -- locking --------------------------------------------------------------------------
    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Serialise short multi-step catalog updates across processes (advisory lock)."""
        con = self._pg_lock_connection()
        con.execute("SELECT pg_advisory_lock(%s)", (self.catalog.lock_key + 1,))
        try:
            yield
        finally:
            con.execute("SELECT pg_advisory_unlock(%s)", (self.catalog.lock_key + 1,))

    def _pg_lock_connection(self):
        # a separate session, so the lock never mixes with this thread's transactions
        con = getattr(self._local, "lock_con", None)
        if con is None or con.closed or getattr(self._local, "lock_pid", None) != os.getpid():
            con = _psycopg().connect(self._url, autocommit=True)
            self._local.lock_con, self._local.lock_pid = con, os.getpid()
        return con

    # -- layers ---------------------------------------------------------------------------
    def point_layout(
        self,
        lon: Any,
        lat: Any,
        *,
        working_xy: tuple[Any, Any] | None = None,
        columns: pd.DataFrame | None = None,
        sort_codes: Any = None,
    ) -> tuple[Any, Any]:
        """``(lon, lat)``: the database orders and packs points itself (no sort key)."""
        return lon, lat

    def write_layer(
        self,
        frame: pd.DataFrame,
        *,
        prefix: str,
        working_xy: tuple[Any, Any] | None = None,
        sort_key: str | None = None,
        points_lonlat: tuple[Any, Any] | None = None,
    ) -> gp.WrittenLayer:
        """Create and ``COPY``-load a layer table in this thread's open transaction.

        The layer is invisible to everyone else until :meth:`commit` (same thread)
        commits the transaction with the catalog rows; :meth:`discard` rolls it back.
        ``points_lonlat``: the geometry of a plain DataFrame as EPSG:4326 points.
        """
        import geopandas as gpd
        import shapely

        if points_lonlat is not None:
            frame = gpd.GeoDataFrame(
                frame,
                geometry=gpd.points_from_xy(
                    np.asarray(points_lonlat[0], float), np.asarray(points_lonlat[1], float)
                ),
                crs="EPSG:4326",
            )

        name = f"{_sanitize(prefix)}-{uuid.uuid4().hex[:10]}"
        is_geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
        n = len(frame)
        geometry_types: list[str] = []
        total_bbox = None
        bounds = None
        if is_geo:
            geoms = np.asarray(frame.geometry.values)
            bounds = shapely.bounds(geoms)
            type_ids = shapely.get_type_id(geoms)
            geometry_types = sorted(
                {gp._TYPE_NAMES[t] for t in np.unique(type_ids) if t in gp._TYPE_NAMES}
            )
            finite = np.isfinite(bounds).all(axis=1)
            if finite.any():
                b = bounds[finite]
                total_bbox = [
                    float(b[:, 0].min()),
                    float(b[:, 1].min()),
                    float(b[:, 2].max()),
                    float(b[:, 3].max()),
                ]
        order = _row_order(frame, is_geo, bounds, sort_key)
        attrs = frame.drop(columns=[frame.geometry.name]) if is_geo else frame
        if is_geo:
            attrs = attrs.drop(columns=[c for c in (gp.BBOX, "x", "y") if c in attrs.columns])
        table = gp._attributes_table(attrs.iloc[order] if n else attrs)
        fields, pg_cols = [], []
        for i, fld in enumerate(table.schema):
            if fld.name in HIDDEN or len(fld.name.encode()) > _IDENT_MAX:
                raise InvalidInput(
                    f"column name {fld.name[:40]!r} cannot be stored in PostGIS "
                    f"(reserved or longer than {_IDENT_MAX} bytes)"
                )
            pg_type, keep = _pg_type(fld.type)
            if keep != fld.type:
                col = table[i]
                text = pa.types.is_string(keep) and not pa.types.is_string(fld.type)
                col = _to_text_column(col) if text else col.cast(keep)
                table = table.set_column(i, fld.with_type(keep), col)
            fields.append(pa.field(fld.name, keep))
            pg_cols.append((fld.name, pg_type, _COPY_TYPES[pg_type]))
        if is_geo:
            geoms = shapely.set_srid(geoms[order], 4326)
            # EWKB (SRID 4326 inside) is what geometry's binary input reads
            ewkb = shapely.to_wkb(geoms, include_srid=True, output_dimension=2)
            table = table.append_column(GEOMETRY, pa.array(ewkb, type=pa.binary()))
            fields.append(pa.field(GEOMETRY, pa.binary()))
            pg_cols.append((GEOMETRY, "geometry(Geometry, 4326)", "bytea"))
            if working_xy is not None:
                wx, wy = (np.asarray(a, dtype="float64")[order] for a in working_xy)
                table = table.append_column("x", pa.array(wx)).append_column("y", pa.array(wy))
                fields += [pa.field("x", pa.float64()), pa.field("y", pa.float64())]
                pg_cols += [
                    ("x", "double precision", "float8"),
                    ("y", "double precision", "float8"),
                ]
            b = bounds[order]
            for j, col in enumerate((XMIN, YMIN, XMAX, YMAX)):
                table = table.append_column(col, pa.array(b[:, j], from_pandas=True))
                pg_cols.append((col, "double precision", "float8"))
        table = table.append_column(ORD, pa.array(np.arange(n, dtype=np.int64)))
        pg_cols.append((ORD, "bigint NOT NULL", "int8"))
        schema = pa.schema(fields)

        con = self._con()
        began = not self.catalog.in_transaction()
        if began:
            con.execute("BEGIN")
        try:
            ddl = ", ".join(f"{_q(c)} {t}" for c, t, _ in pg_cols)
            con.execute(f"CREATE TABLE {self._table(name)} ({ddl})")
            cols = ", ".join(_q(c) for c, _, _ in pg_cols)
            with con.cursor().copy(
                f"COPY {self._table(name)} ({cols}) FROM STDIN (FORMAT binary)"
            ) as copy:
                copy.set_types([t for _, _, t in pg_cols])
                for start in range(0, n, COPY_ROWS):
                    _copy_rows(copy, table.slice(start, COPY_ROWS))
            if is_geo:
                con.execute(f"CREATE INDEX ON {self._table(name)} USING gist ({_q(GEOMETRY)})")
            if sort_key and sort_key in schema.names:
                con.execute(f"CREATE INDEX ON {self._table(name)} ({_q(sort_key)})")
            con.execute(f"ANALYZE {self._table(name)}")
        except BaseException:
            if not con.closed:
                con.execute("ROLLBACK")
            self._open_layers().clear()
            raise
        self._open_layers()[name] = schema
        columns = [c for c in schema.names if c != GEOMETRY]
        return gp.WrittenLayer(name, [], n, is_geo, geometry_types, total_bbox, columns)

    def _open_layers(self) -> dict[str, pa.Schema]:
        """Layers written in this thread's open transaction (not yet committed)."""
        opened = getattr(self._local, "open", None)
        if opened is None or getattr(self._local, "open_pid", None) != os.getpid():
            opened = self._local.open = {}
            self._local.open_pid = os.getpid()
        return opened

    @contextmanager
    def commit(self, layers: Sequence[Any] = ()) -> Iterator[Any]:
        """The catalog transaction that makes ``layers`` visible with the rows added in it.

        Must run in the thread that wrote ``layers`` (their load is this transaction).
        """
        opened = self._open_layers()
        missing = [layer.name for layer in layers if layer.name not in opened]
        if missing:
            raise GeoclusterError("a PostGIS layer must be committed by the thread that wrote it")
        try:
            with self.catalog.transaction() as con:
                for layer in layers:
                    schema = opened[layer.name]
                    self.catalog.insert(
                        "gc_layers",
                        {
                            "layer": layer.name,
                            "files": [],
                            "rows": layer.rows,
                            "geometry": int(layer.geometry),
                            "meta": {
                                "geometry_types": layer.geometry_types,
                                "bbox": layer.bbox,
                                "columns": layer.columns,
                                "arrow_schema": base64.b64encode(
                                    schema.serialize().to_pybytes()
                                ).decode(),
                            },
                            "created": _now(),
                        },
                        con=con,
                    )
                yield con
                if self.published_schema:
                    self.refresh_published_views(con=con)
        finally:
            opened.clear()  # committed or rolled back together

    def discard(self, layer: str) -> None:
        """Drop an uncommitted layer (rolls back this thread's open layer transaction)."""
        opened = self._open_layers()
        if layer in opened:
            con = self._con()
            if self.catalog.in_transaction() and self.catalog._local.depth == 0:
                con.execute("ROLLBACK")
            opened.clear()
            return
        if not self.catalog.select("gc_layers", layer=layer):
            self._drop_tables([layer])

    def layer(self, layer: str) -> dict[str, Any]:
        """Catalog facts of a committed layer: ``rows``, ``geometry``, ``schema`` (Arrow)."""
        row = self._layer_rows.get(layer)
        if row is None:
            rows = self.catalog.select("gc_layers", layer=layer)
            if not rows:
                raise NotFound("that layer is no longer in this workspace")
            row = rows[0]
            raw = base64.b64decode(row["meta"]["arrow_schema"])
            row["schema"] = pa.ipc.read_schema(pa.py_buffer(raw))
            self._layer_rows[layer] = row  # immutable once committed
        return row

    def layer_files(self, layer: str) -> list[Path]:
        """No part files: a PostGIS layer is a table (engines read it through SQL)."""
        self.layer(layer)
        return []

    def schema(self, layer: str) -> pa.Schema:
        """Arrow schema of a layer (attributes, ``geometry`` as WKB, ``x``, ``y``)."""
        return self.layer(layer)["schema"]

    # -- reading --------------------------------------------------------------------------
    def _where(
        self, schema: pa.Schema, filters: Iterable[gp.Filter] | None, bbox: BBox | None
    ) -> list[Any]:
        from psycopg import sql

        clauses = []
        for column, op, value in gp._check_filters(filters, schema):
            col = sql.Identifier(column)
            if isinstance(value, list | tuple | set | np.ndarray | pd.Series):
                value = [_py(v) for v in value]
            else:
                value = _py(value)
            if op in ("==", "!=", "<", "<=", ">", ">="):
                sym = {"==": "=", "!=": "<>"}.get(op, op)
                clauses.append(sql.SQL("{} {} {}").format(col, sql.SQL(sym), sql.Literal(value)))
            elif op in ("in", "not in"):
                values = list(value)
                has_null = any(v is None for v in values)
                lit = sql.Literal([v for v in values if v is not None])
                # Arrow's is_in matches a null to a null in the set; keep that meaning
                if op == "in":
                    tpl = "({0} = ANY({1}) OR {0} IS NULL)" if has_null else "{0} = ANY({1})"
                else:
                    tpl = (
                        "({0} IS NOT NULL AND NOT ({0} = ANY({1})))"
                        if has_null
                        else "(NOT ({0} = ANY({1})) OR {0} IS NULL)"
                    )
                clauses.append(sql.SQL(tpl).format(col, lit))
            elif op == "is null":
                clauses.append(sql.SQL("{} IS NULL").format(col))
            else:
                clauses.append(sql.SQL("{} IS NOT NULL").format(col))
        if bbox is not None and GEOMETRY in schema.names:
            minx, miny, maxx, maxy = (float(v) for v in bbox)
            # the GiST index finds candidates; the stored double envelope decides exactly
            clauses.append(
                sql.SQL(
                    "{g} && ST_MakeEnvelope({a}, {b}, {c}, {d}, 4326) AND {x1} >= {a} AND "
                    "{x0} <= {c} AND {y1} >= {b} AND {y0} <= {d}"
                ).format(
                    g=sql.Identifier(GEOMETRY),
                    a=sql.Literal(minx),
                    b=sql.Literal(miny),
                    c=sql.Literal(maxx),
                    d=sql.Literal(maxy),
                    x0=sql.Identifier(XMIN),
                    y0=sql.Identifier(YMIN),
                    x1=sql.Identifier(XMAX),
                    y1=sql.Identifier(YMAX),
                )
            )
        return clauses

    def read_table(
        self,
        layer: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[gp.Filter] | None = None,
        bbox: BBox | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pa.Table:
        """Rows of a layer as an Arrow table; projection, filters, bbox, paging in SQL."""
        from psycopg import sql

        schema = self.schema(layer)
        if columns is None:
            wanted = list(schema.names)
        else:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise InvalidInput(
                    f"unknown column(s) {', '.join(map(repr, missing[:5]))}; the layer has "
                    f"{', '.join(schema.names[:40])}"
                )
            wanted = list(dict.fromkeys(columns))
        clauses = self._where(schema, filters, bbox)
        select, csv_types = [], {}
        for i, c in enumerate(wanted):
            t = schema.field(c).type
            alias = f"c{i}"
            if c == GEOMETRY:
                select.append(sql.SQL("encode(ST_AsBinary({}), 'hex')").format(sql.Identifier(c)))
                csv_types[alias] = pa.string()
            elif pa.types.is_timestamp(t):
                select.append(
                    sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint").format(sql.Identifier(c))
                )
                csv_types[alias] = pa.int64()
            else:
                select.append(sql.Identifier(c))
                csv_types[alias] = t.value_type if pa.types.is_dictionary(t) else t
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(s, sql.Identifier(f"c{i}")) for i, s in enumerate(select)
            )
            if select
            else sql.SQL("1 AS c"),
            sql.SQL(self._table(layer)),
        )
        if clauses:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)
        if clauses or limit is not None or offset:
            query += sql.SQL(" ORDER BY {}").format(sql.Identifier(ORD))
        if limit is not None:
            query += sql.SQL(" LIMIT {}").format(sql.Literal(max(int(limit), 0)))
        if offset:
            query += sql.SQL(" OFFSET {}").format(sql.Literal(max(int(offset), 0)))
        raw = self._copy_out(query)
        if not wanted:
            return pa.table({})
        names = [f"c{i}" for i in range(len(wanted))]
        if raw:
            parsed = pacsv.read_csv(
                io.BytesIO(raw),
                read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=csv_types,
                    true_values=["t"],
                    false_values=["f"],
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
        else:
            parsed = pa.table({n: pa.array([], type=csv_types[n]) for n in names})
        arrays = []
        for alias, c in zip(names, wanted, strict=True):
            t = schema.field(c).type
            arr = parsed[alias]
            if c == GEOMETRY:
                arr = _hex_to_binary(arr)
            elif pa.types.is_timestamp(t):
                arr = arr.cast(pa.timestamp("us", tz=t.tz))
            elif arr.type != t:
                arr = arr.cast(t)
            arrays.append(arr)
        return pa.table(arrays, schema=pa.schema([schema.field(c) for c in wanted]))

    def _copy_out(self, query) -> bytes:
        psycopg = _psycopg()
        from psycopg import sql

        out = io.BytesIO()
        try:
            with (
                self._con()
                .cursor()
                .copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)) as copy
            ):
                for data in copy:
                    out.write(data)
        except psycopg.errors.UndefinedTable:
            self._rollback_failed()
            raise NotFound("that layer was deleted while it was being read") from None
        except (psycopg.errors.UndefinedFunction, psycopg.errors.DataError) as exc:
            self._rollback_failed()
            first = str(exc).splitlines()[0][:160]
            raise InvalidInput(f"filter does not fit the column type: {first}") from None
        return out.getvalue()

    def _rollback_failed(self) -> None:
        # a failed statement inside this thread's open transaction poisons it
        if self.catalog.in_transaction() and self.catalog._local.depth == 0:
            self._con().execute("ROLLBACK")
            self._open_layers().clear()

    def read_layer(
        self,
        layer: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[gp.Filter] | None = None,
        bbox: BBox | None = None,
        limit: int | None = None,
        offset: int = 0,
        geometry: bool = True,
    ) -> pd.DataFrame:
        """Rows of a layer as a (Geo)DataFrame in EPSG:4326 (geometry unless told not)."""
        info = self.layer(layer)
        names = info["schema"].names
        cols = None if columns is None else list(columns)
        if info["geometry"] and geometry:
            cols = None if cols is None else [*cols, GEOMETRY]
        elif cols is None:
            cols = [c for c in names if c != GEOMETRY]
        table = self.read_table(
            layer, columns=cols, filters=filters, bbox=bbox, limit=limit, offset=offset
        )
        geo = {"primary_column": GEOMETRY} if info["geometry"] and geometry else None
        return gp.to_frame(table, geo=geo)

    def count(
        self, layer: str, *, bbox: BBox | None = None, filters: Iterable[gp.Filter] | None = None
    ) -> int:
        """Rows of a layer, optionally those meeting ``bbox`` (by envelope) and filters."""
        from psycopg import sql

        info = self.layer(layer)
        if bbox is None and not filters:
            return int(info["rows"])
        clauses = self._where(info["schema"], filters, bbox)
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(self._table(layer)))
        if clauses:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)
        return int(self._copy_out(query).decode().strip() or 0)

    def has_geometry(self, layer: str) -> bool:
        """Whether the layer has a geometry column."""
        return bool(self.layer(layer)["geometry"])

    # -- published views ------------------------------------------------------------------
    def refresh_published_views(self, *, con=None) -> list[str]:
        """(Re)create ``published_<dataset>`` views of public, non-firm datasets.

        Only the latest version of datasets whose visibility is ``public`` and whose
        kind is not ``firms`` get a view (attributes and geometry; hidden columns and
        working coordinates stay out). Views of datasets no longer eligible are dropped.
        Returns the view names.
        """
        if not self.published_schema:
            return []
        ps = _q(self.published_schema)

        def work(tx) -> list[str]:
            _ensure_schema(tx, self.published_schema)
            latest: dict[str, dict[str, Any]] = {}
            for row in self.catalog.select("gc_datasets", con=tx):
                latest[row["id"]] = row
            wanted = {}
            for ds_id, row in latest.items():
                if row.get("visibility") != "public" or row["kind"] == "firms":
                    continue
                view = f"published_{re.sub(r'[^a-z0-9_]', '_', ds_id)}"[:_IDENT_MAX]
                wanted[view] = row["layer"]
            existing = {
                r[0]
                for r in tx.execute(
                    "SELECT viewname FROM pg_views WHERE schemaname = %s AND viewname LIKE "
                    "'published\\_%%'",
                    (self.published_schema,),
                )
            }
            for view in existing - set(wanted):
                tx.execute(f"DROP VIEW IF EXISTS {ps}.{_q(view)}")
            for view, layer in wanted.items():
                cols = [c for c in self._schema_in(tx, layer).names if c not in ("x", "y")]
                tx.execute(f"DROP VIEW IF EXISTS {ps}.{_q(view)}")
                tx.execute(
                    f"CREATE VIEW {ps}.{_q(view)} AS SELECT "
                    + ", ".join(_q(c) for c in cols)
                    + f" FROM {self._table(layer)}"
                )
            return sorted(wanted)

        if con is not None:
            return work(con)
        with self.catalog.transaction() as tx:
            return work(tx)

    def _schema_in(self, con, layer: str) -> pa.Schema:
        rows = self.catalog.select("gc_layers", layer=layer, con=con)
        raw = base64.b64decode(rows[0]["meta"]["arrow_schema"])
        return pa.ipc.read_schema(pa.py_buffer(raw))

    # -- garbage --------------------------------------------------------------------------
    def _layer_tables(self) -> set[str]:
        rows = self._con().execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename !~ '^gc_'",
            (self.pg_schema,),
        )
        return {r[0] for r in rows}

    def _drop_tables(self, layers: Iterable[str]) -> int:
        n = 0
        for layer in layers:
            # CASCADE: a published view of a deleted version goes with it
            self._con().execute(f"DROP TABLE IF EXISTS {self._table(layer)} CASCADE")
            self._layer_rows.pop(layer, None)
            n += 1
        return n

    def drop_unreferenced(self) -> int:
        """Drop layer tables and ``gc_layers`` rows no dataset, run or writer refers to."""
        with self.catalog.transaction() as con:
            referenced = self.catalog.referenced_layers(con=con)
            stale = [
                r["layer"]
                for r in self.catalog.select("gc_layers", con=con)
                if r["layer"] not in referenced
            ]
            for layer in stale:
                self.catalog.delete("gc_layers", layer=layer, con=con)
            if self.published_schema and stale:
                self.refresh_published_views(con=con)
            # dropped in the same transaction: a concurrent reader's table lock delays
            # this commit rather than failing the read
            for layer in stale:
                con.execute(f"DROP TABLE IF EXISTS {self._table(layer)} CASCADE")
        for layer in stale:
            self._layer_rows.pop(layer, None)
        return len(stale)

    def collect_garbage(self) -> int:
        """Drop dead writers' pending layers, unreferenced layers and stray tables.

        Uncommitted layer tables of live writers are invisible here (their
        transaction is open), so every visible table without a ``gc_layers`` row is
        debris of an older protocol or of a manual change.
        """
        removed = 0
        for layer in self.catalog.dead_pending():
            removed += self._drop_tables([layer])
            self.catalog.delete("gc_pending", layer=layer)
        removed += self.drop_unreferenced()
        with self.catalog.transaction() as con:
            known = {r["layer"] for r in self.catalog.select("gc_layers", con=con)}
            known |= self.catalog.referenced_layers(con=con)
            stray = sorted(self._layer_tables() - known)
            for layer in stray:
                con.execute(f"DROP TABLE IF EXISTS {self._table(layer)} CASCADE")
        return removed + len(stray)

    def drop_schema(self) -> None:
        """Remove the whole workspace (schema and published views); for tests and tools."""
        con = self._con()
        if self.published_schema:
            con.execute(f"DROP SCHEMA IF EXISTS {_q(self.published_schema)} CASCADE")
        con.execute(f"DROP SCHEMA IF EXISTS {_q(self.pg_schema)} CASCADE")
        self._layer_rows.clear()


# -- tiles ----------------------------------------------------------------------------------
def postgis_tile(
    store: PostGISStore,
    layer: str,
    z: int,
    x: int,
    y: int,
    *,
    extent: int = 4096,
    buffer: int = 64,
    layer_name: str = "default",
    columns: Sequence[str] | None = None,
    where_ok: bool = False,
) -> bytes:
    """Mapbox Vector Tile ``z/x/y`` of a polygon/line layer cut by PostGIS (``ST_AsMVT``).

    Same layer name and fields as :class:`api.tiling.ShapeIndex` (every scalar
    attribute except the working ``x``, ``y``; nulls left out by ``ST_AsMVT``),
    geometries clipped to the tile plus ``buffer`` and snapped to the tile grid by
    ``ST_AsMVTGeom``. Only for layers whose disclosure rule passes them whole
    (boundaries, polygon assets); firm points keep the aggregating embedded path.
    Returns ``b""`` for an empty tile, as the embedded path does. With ``where_ok``
    only rows whose ``disclosure`` column is ``'ok'`` (a viewer's tiles of a layer
    carrying flags, as :func:`api.routers.tiles.load_index` filters them). Float NaN is
    left out of a feature like a null (the embedded path drops both); geometries are
    clipped to the Web Mercator latitudes first, as projecting a pole fails.
    """
    from psycopg import sql

    info = store.layer(layer)
    if not info["geometry"]:
        raise InvalidInput("that layer has no geometry to tile")
    schema = info["schema"]
    names = [c for c in schema.names if c not in (GEOMETRY, "x", "y")]
    if columns is not None:
        names = [c for c in names if c in set(columns)]
    cols = []
    for c in names:
        ident = sql.SQL("t.{}").format(sql.Identifier(c))
        if pa.types.is_floating(schema.field(c).type):
            ident = sql.SQL("NULLIF({}, 'NaN')").format(ident)
        cols.append(sql.SQL("{} AS {}, ").format(ident, sql.Identifier(c)))
    where = sql.SQL("t.{g} && env.e4326").format(g=sql.Identifier(GEOMETRY))
    if where_ok and "disclosure" in schema.names:
        where += sql.SQL(" AND t.{} = 'ok'").format(sql.Identifier("disclosure"))
    query = sql.SQL(
        "WITH env AS (SELECT ST_TileEnvelope({z}, {x}, {y}) AS e, "
        "ST_Transform(ST_TileEnvelope({z}, {x}, {y}, margin => {m}), 4326) AS e4326), "
        "q AS (SELECT {cols}ST_AsMVTGeom(ST_Transform(CASE WHEN ST_YMax(t.{g}) > 85.06 "
        "OR ST_YMin(t.{g}) < -85.06 THEN ST_ClipByBox2D(t.{g}, "
        "ST_MakeEnvelope(-180, -85.06, 180, 85.06, 4326)) ELSE t.{g} END, 3857), "
        "env.e, {ext}, {buf}, true) "
        "AS mvt_geom FROM {table} t, env WHERE {where} ORDER BY t.{ord}) "
        "SELECT ST_AsMVT(q, {name}, {ext}, 'mvt_geom') FROM q WHERE mvt_geom IS NOT NULL"
    ).format(
        z=sql.Literal(int(z)),
        x=sql.Literal(int(x)),
        y=sql.Literal(int(y)),
        m=sql.Literal(buffer / extent),
        cols=sql.SQL("").join(cols),
        g=sql.Identifier(GEOMETRY),
        ext=sql.Literal(int(extent)),
        buf=sql.Literal(int(buffer)),
        table=sql.SQL(store._table(layer)),
        where=where,
        ord=sql.Identifier(ORD),
        name=sql.Literal(layer_name),
    )
    row = store._con().execute(query).fetchone()
    return bytes(row[0]) if row and row[0] else b""
