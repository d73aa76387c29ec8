"""The workspace catalog: one SQLite file, opened only by Python's :mod:`sqlite3`.

Why only Python's SQLite: v1 kept the catalog inside the GeoPackage that GDAL and
rasterio also opened, so three SQLite copies in one process wrote one file (SQLite's
"How to corrupt" §2.2) and eight mixed clients destroyed a workspace. Here GDAL and
rasterio never see this file; every connection is made by :class:`Catalog` with WAL,
``synchronous=FULL`` and a busy timeout, and every change is one transaction.

Rows are dicts; columns listed in :data:`JSON_COLUMNS` hold JSON text. Table names are
checked against :data:`TABLES`, column names against each table's declared columns,
so no caller-supplied text ever becomes SQL.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from geocluster.errors import GeoclusterError

#: Bumped when the catalog schema changes incompatibly.
FORMAT = "geocluster-workspace/2"

#: Catalog tables: name -> column DDL. JSON columns hold lists / dicts.
TABLES: dict[str, str] = {
    "gc_meta": "key TEXT PRIMARY KEY, value TEXT",
    "gc_datasets": """
        id TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
        layer TEXT NOT NULL, rows INTEGER NOT NULL, crs TEXT, source_crs TEXT,
        working_crs TEXT, bbox TEXT, created TEXT NOT NULL, source TEXT, checksum TEXT,
        columns TEXT, rejected TEXT, rejected_count INTEGER, meta TEXT,
        visibility TEXT, owner TEXT,
        PRIMARY KEY (id, version)""",
    "gc_runs": """
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, params TEXT, inputs TEXT, layers TEXT,
        primary_layer TEXT, summary TEXT, created TEXT NOT NULL, owner TEXT""",
    "gc_rasters": """
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL,
        crs TEXT, bbox TEXT, width INTEGER, height INTEGER, count INTEGER, dtype TEXT,
        nodata REAL, meta TEXT, created TEXT NOT NULL, owner TEXT""",
    "gc_pending": "layer TEXT PRIMARY KEY, pid INTEGER, host TEXT, created TEXT",
    "gc_layers": """
        layer TEXT PRIMARY KEY, files TEXT NOT NULL, rows INTEGER NOT NULL,
        geometry INTEGER NOT NULL, meta TEXT, created TEXT NOT NULL""",
    "gc_jobs": """
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, progress REAL,
        message TEXT, params TEXT, result TEXT, error TEXT, created TEXT NOT NULL,
        started TEXT, finished TEXT, pid INTEGER, host TEXT, owner TEXT""",
    "gc_keys": """
        id TEXT PRIMARY KEY, name TEXT, role TEXT NOT NULL, hash TEXT NOT NULL,
        created TEXT NOT NULL, revoked TEXT""",
    "gc_audit": """
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, principal TEXT,
        action TEXT NOT NULL, target TEXT, detail TEXT""",
    "gc_groups": "name TEXT PRIMARY KEY, title TEXT, codes TEXT, created TEXT NOT NULL",
}
JSON_COLUMNS = {
    "bbox",
    "columns",
    "rejected",
    "meta",
    "params",
    "inputs",
    "layers",
    "summary",
    "result",
    "detail",
    "codes",
    "files",
}
#: Order of ``select`` results per table (insertion order elsewhere).
_ORDER = {"gc_datasets": "id, version", "gc_audit": "seq"}


def _columns_of(ddl: str) -> set[str]:
    names = set()
    for part in ddl.replace("\n", " ").split(","):
        word = part.strip().split(" ")[0]
        if word and word.isidentifier() and word.upper() not in {"PRIMARY"}:
            names.add(word)
    return names


COLUMNS: dict[str, set[str]] = {t: _columns_of(ddl) for t, ddl in TABLES.items()}
HOST = socket.gethostname()


class Catalog:
    """The catalog of one workspace (``<workspace>/catalog.sqlite``).

    Parameters
    ----------
    path : path-like
        The SQLite file; created with every table if missing.
    busy_timeout_s : float
        How long a writer waits for another writer's transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as con:
            for table, ddl in TABLES.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
            con.execute(
                "INSERT OR IGNORE INTO gc_meta (key, value) VALUES ('format', ?)", (FORMAT,)
            )

    def __repr__(self) -> str:
        return f"Catalog({self.path.name!r})"

    # -- connections ----------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        """One connection per thread and process (sqlite3 objects must not cross forks)."""
        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid == os.getpid():
            return con
        con = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=True
        )
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA foreign_keys = ON")
        self._local.con, self._local.pid = con, os.getpid()
        return con

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it commits, or none."""
        con = self._connection()
        if con.in_transaction:  # nested use joins the outer transaction
            yield con
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")

    # -- rows -----------------------------------------------------------------------------
    def insert(self, table: str, row: dict[str, Any], *, con: sqlite3.Connection | None = None):
        """Insert one row (inside ``con``'s transaction if given)."""
        cols = _check(table, row)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        values = [_encode(c, row[c]) for c in cols]
        if con is not None:
            con.execute(sql, values)
            return
        with self.transaction() as tx:
            tx.execute(sql, values)

    def update(
        self,
        table: str,
        values: dict[str, Any],
        *,
        con: sqlite3.Connection | None = None,
        **where: Any,
    ) -> int:
        """Set ``values`` on the rows matching ``where``; return how many changed."""
        cols = _check(table, values)
        _check(table, where)
        if not where:
            raise GeoclusterError("refusing to update a whole catalog table")
        sql = f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in cols)} WHERE " + " AND ".join(
            f"{k} = ?" for k in where
        )
        params = [_encode(c, values[c]) for c in cols] + list(where.values())
        if con is not None:
            return con.execute(sql, params).rowcount
        with self.transaction() as tx:
            return tx.execute(sql, params).rowcount

    def select(
        self, table: str, *, con: sqlite3.Connection | None = None, **where: Any
    ) -> list[dict[str, Any]]:
        """Rows of ``table`` matching ``column=value`` filters (None matches NULL)."""
        _check(table, where)
        clauses, params = [], []
        for k, v in where.items():
            if v is None:
                clauses.append(f"{k} IS NULL")
            else:
                clauses.append(f"{k} = ?")
                params.append(v)
        sql = f"SELECT * FROM {table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {_ORDER.get(table, 'rowid')}"
        rows = (con or self._connection()).execute(sql, params).fetchall()
        return [{k: _decode(k, r[k]) for k in r.keys()} for r in rows]

    def delete(self, table: str, *, con: sqlite3.Connection | None = None, **where: Any) -> int:
        """Delete rows matching ``column=value`` filters; return how many."""
        _check(table, where)
        if not where:
            raise GeoclusterError("refusing to delete a whole catalog table")
        sql = f"DELETE FROM {table} WHERE " + " AND ".join(f"{k} = ?" for k in where)
        if con is not None:
            return con.execute(sql, tuple(where.values())).rowcount
        with self.transaction() as tx:
            return tx.execute(sql, tuple(where.values())).rowcount

    def max_version(self, dataset_id: str, *, con: sqlite3.Connection) -> int:
        """Highest stored version of a dataset (0 if none), inside a transaction."""
        row = con.execute(
            "SELECT max(version) FROM gc_datasets WHERE id = ?", (dataset_id,)
        ).fetchone()
        return int(row[0] or 0)

    def signature(self) -> tuple:
        """Changes whenever a transaction commits (stat of the database and its WAL)."""
        sig = []
        for suffix in ("", "-wal"):
            try:
                st = os.stat(f"{self.path}{suffix}")
                sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                sig.append(None)
        return tuple(sig)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``"ok"`` when sound)."""
        return str(self._connection().execute("PRAGMA integrity_check").fetchone()[0])

    # -- pending layers -------------------------------------------------------------------
    def add_pending(self, layer: str, created: str) -> None:
        """Mark a layer file as being written by this process."""
        self.insert(
            "gc_pending", {"layer": layer, "pid": os.getpid(), "host": HOST, "created": created}
        )

    def referenced_layers(self, *, con: sqlite3.Connection | None = None) -> set[str]:
        """Every layer a catalog row or a live writer names (one snapshot inside ``con``)."""
        con = con or self._connection()
        out = {r[0] for r in con.execute("SELECT layer FROM gc_datasets")}
        for (layers,) in con.execute("SELECT layers FROM gc_runs"):
            out.update((json.loads(layers) or {}).values())
        out.update(r[0] for r in con.execute("SELECT layer FROM gc_pending"))
        return out

    def dead_pending(self) -> list[str]:
        """Pending layers whose writer (on this host) is no longer alive."""
        rows = self._connection().execute("SELECT layer, pid, host FROM gc_pending").fetchall()
        return [r[0] for r in rows if r[2] == HOST and not pid_alive(int(r[1] or 0))]


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _check(table: str, row: dict[str, Any]) -> list[str]:
    if table not in TABLES:
        raise GeoclusterError(f"unknown catalog table {table!r}")
    unknown = set(row) - COLUMNS[table]
    if unknown:
        raise GeoclusterError(f"unknown column(s) {sorted(unknown)} in catalog table {table}")
    return list(row)


def _encode(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        return json.dumps(value, default=str)
    return value


def _decode(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)
    return value
