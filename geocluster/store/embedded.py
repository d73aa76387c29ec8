"""The embedded store: a folder with ``catalog.sqlite`` and immutable GeoParquet files.

::

    <workspace>/catalog.sqlite        the catalog (Python's sqlite3 only; WAL)
    <workspace>/data/<layer>.<i>.parquet   one immutable layer = one or more part files
    <workspace>/rasters/<id>.tif      registered rasters and KDE surfaces (COG)

Write protocol (a layer becomes visible in one step)
----------------------------------------------------
1. ``gc_pending`` gets the layer name with this process's pid (own transaction);
2. the part files are written to temp names in ``data/``, fsynced, renamed;
3. one catalog transaction inserts the ``gc_layers`` row and the dataset/run row and
   removes the pending mark.
A writer killed anywhere leaves either nothing visible or everything visible. The next
open of the workspace garbage-collects temp files and pending layers of dead
processes and every file no catalog row references. Nothing is rewritten in place.

Readers resolve layers through the catalog and read files that never change, so they
see a consistent snapshot without locks; many readers and writers in threads and
processes are safe (writers serialise on the catalog transaction only).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from geocluster.errors import NotFound
from geocluster.store import geoparquet as gp
from geocluster.store.catalog import Catalog, pid_alive

BBox = tuple[float, float, float, float]
_TMP_RE = re.compile(r"^\.tmp-(?P<pid>\d+)-")
_thread_lock = threading.RLock()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _sanitize(prefix: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in prefix.lower())
    return out.strip("_")[:48] or "layer"


class EmbeddedStore:
    """Catalog + immutable GeoParquet layers in one workspace folder.

    Parameters
    ----------
    root : path-like
        The workspace folder (created if missing).
    cache_mb : float
        Size cap of the in-memory cache of decoded column chunks (0 = no cache).
    """

    kind = "embedded"

    def __init__(self, root: str | os.PathLike[str], *, cache_mb: float = 0) -> None:
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.root / "catalog.sqlite")
        self.cache = gp.ColumnCache(int(cache_mb * (1 << 20)))
        self.stats = gp.ReadStats()
        self._layer_rows: dict[str, dict[str, Any]] = {}
        self.collect_garbage()

    def __repr__(self) -> str:
        return f"EmbeddedStore({self.root.name!r})"

    @property
    def url(self) -> str:
        """How the store is named in messages (never a server path)."""
        return f"workspace {self.root.name}"

    # -- locking --------------------------------------------------------------------------
    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Serialise short multi-step catalog updates in this process (id allocation).

        Cross-process safety comes from catalog transactions, not from this lock; no
        layer write ever happens under it.
        """
        with _thread_lock:
            yield

    # -- layers ---------------------------------------------------------------------------
    def write_layer(
        self,
        frame: pd.DataFrame,
        *,
        prefix: str,
        working_xy: tuple[Any, Any] | None = None,
        sort_key: str | None = None,
        points_lonlat: tuple[Any, Any] | None = None,
    ) -> gp.WrittenLayer:
        """Write ``frame`` as a new immutable layer; invisible until :meth:`commit`.

        ``points_lonlat``: the geometry of a plain DataFrame as point coordinates
        (EPSG:4326). Returns the written layer; its ``name`` is what catalog rows
        refer to.
        """
        with self.new_layer(prefix) as name:
            return gp.write_layer(
                frame,
                self.data_dir,
                name,
                working_xy=working_xy,
                sort_key=sort_key,
                points_lonlat=points_lonlat,
            )

    def point_layout(
        self,
        lon: Any,
        lat: Any,
        *,
        working_xy: tuple[Any, Any] | None = None,
        columns: pd.DataFrame | None = None,
        sort_codes: Any = None,
    ) -> gp.PointLayout:
        """The points' row order and packed geometry (:func:`geoparquet.point_layout`)."""
        return gp.point_layout(
            lon, lat, working_xy=working_xy, columns=columns, sort_codes=sort_codes
        )

    @contextmanager
    def new_layer(self, prefix: str) -> Iterator[str]:
        """A fresh layer name, marked pending while the caller writes its files.

        For writers that stream a layer (:class:`geocluster.store.geoparquet.LayerWriter`)
        into :attr:`data_dir`: temp files are named ``.tmp-<pid>-<name>...`` (removed at
        the next start after a kill); on an error every file of the layer goes.
        """
        name = f"{_sanitize(prefix)}-{uuid.uuid4().hex[:10]}"
        self.catalog.add_pending(name, _now())
        try:
            yield name
        except BaseException:
            self._remove_files(name)
            self.catalog.delete("gc_pending", layer=name)
            raise

    @contextmanager
    def commit(self, layers: Sequence[Any] = ()) -> Iterator[Any]:
        """One catalog transaction that makes ``layers`` visible with the rows added in it.

        Usage::

            with store.commit([layer]) as con:
                store.catalog.insert("gc_datasets", row, con=con)
        """
        try:
            with self.catalog.transaction() as con:
                for layer in layers:
                    self.catalog.insert(
                        "gc_layers",
                        {
                            "layer": layer.name,
                            "files": layer.files,
                            "rows": layer.rows,
                            "geometry": int(layer.geometry),
                            "meta": {
                                "geometry_types": layer.geometry_types,
                                "bbox": layer.bbox,
                                "columns": layer.columns,
                            },
                            "created": _now(),
                        },
                        con=con,
                    )
                    self.catalog.delete("gc_pending", layer=layer.name, con=con)
                yield con
        except BaseException:
            for layer in layers:
                self.discard(layer.name)
            raise

    def discard(self, layer: str) -> None:
        """Remove an uncommitted layer's files and pending mark."""
        self._remove_files(layer)
        self.catalog.delete("gc_pending", layer=layer)

    def layer(self, layer: str) -> dict[str, Any]:
        """Catalog facts of a committed layer: ``files`` (paths), ``rows``, ``geometry``."""
        row = self._layer_rows.get(layer)
        if row is None:
            rows = self.catalog.select("gc_layers", layer=layer)
            if not rows:
                raise NotFound("that layer is no longer in this workspace")
            row = rows[0]
            row["paths"] = [self.data_dir / f for f in row["files"]]
            self._layer_rows[layer] = row  # immutable once committed
        return row

    def layer_files(self, layer: str) -> list[Path]:
        """The part files of a layer (for engines that read them in parallel)."""
        return list(self.layer(layer)["paths"])

    def schema(self, layer: str):
        """Arrow schema of a layer."""
        return gp.layer_schema(self.layer_files(layer))

    def read_table(
        self,
        layer: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[gp.Filter] | None = None,
        bbox: BBox | None = None,
        limit: int | None = None,
        offset: int = 0,
    ):
        """Rows of a layer as an Arrow table, with projection and predicate pushdown."""
        paths = self.layer_files(layer)
        try:
            return gp.read_layer(
                paths,
                columns=columns,
                filters=filters,
                bbox=bbox,
                limit=limit,
                offset=offset,
                cache=self.cache,
                stats=self.stats,
            )
        except FileNotFoundError:
            raise NotFound("that layer was deleted while it was being read") from None

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
        cols = None if columns is None else list(columns)
        if info["geometry"] and geometry:
            cols = None if cols is None else [*cols, gp.GEOMETRY]
        elif cols is None:
            names = self.schema(layer).names
            cols = [c for c in names if c not in (gp.GEOMETRY, gp.BBOX)]
        table = self.read_table(
            layer, columns=cols, filters=filters, bbox=bbox, limit=limit, offset=offset
        )
        geo = gp.layer_geo(info["paths"]) if info["geometry"] and geometry else None
        return gp.to_frame(table, geo=geo)

    def count(
        self, layer: str, *, bbox: BBox | None = None, filters: Iterable[gp.Filter] | None = None
    ) -> int:
        """Rows of a layer, optionally those meeting ``bbox`` (by envelope) and filters."""
        if bbox is None and not filters:
            return int(self.layer(layer)["rows"])
        return gp.count_rows(self.layer_files(layer), filters=filters, bbox=bbox)

    def column_range(self, layer: str, column: str):
        """(min, max) of a column from file statistics, or None when they cannot tell."""
        return gp.column_range(self.layer_files(layer), column)

    def has_geometry(self, layer: str) -> bool:
        """Whether the layer has a geometry column."""
        return bool(self.layer(layer)["geometry"])

    # -- garbage --------------------------------------------------------------------------
    def drop_unreferenced(self) -> int:
        """Delete ``gc_layers`` rows and files that no dataset, run or writer refers to."""
        removed = 0
        with self.catalog.transaction() as con:
            referenced = self.catalog.referenced_layers(con=con)
            stale = [
                r["layer"]
                for r in self.catalog.select("gc_layers", con=con)
                if r["layer"] not in referenced
            ]
            for layer in stale:
                self.catalog.delete("gc_layers", layer=layer, con=con)
        for layer in stale:
            self._layer_rows.pop(layer, None)
            removed += self._remove_files(layer)
        return removed

    def collect_garbage(self) -> int:
        """Remove temp files and pending layers of dead writers and unreferenced files."""
        removed = 0
        for layer in self.catalog.dead_pending():
            removed += self._remove_files(layer)
            self.catalog.delete("gc_pending", layer=layer)
        try:
            entries = list(os.scandir(self.data_dir))
        except FileNotFoundError:
            return removed
        for entry in entries:
            match = _TMP_RE.match(entry.name)
            if match and not pid_alive(int(match["pid"])):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        removed += self.drop_unreferenced()
        # One snapshot (one transaction) for what is known: read statement by statement,
        # a writer committing between the reads of its pending mark and of its run row
        # would make its fresh layer look unreferenced.
        with self.catalog.transaction() as con:
            known = {r["layer"] for r in self.catalog.select("gc_layers", con=con)}
            known |= self.catalog.referenced_layers(con=con)
        for entry in entries:  # listed before the snapshot: each was pending or committed
            if entry.name.startswith(".") or not entry.name.endswith(".parquet"):
                continue
            layer = entry.name.rsplit(".", 2)[0]
            if layer not in known:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed

    def _remove_files(self, layer: str) -> int:
        n = 0
        for path in self.data_dir.glob(f"{layer}.*.parquet"):
            path.unlink(missing_ok=True)
            n += 1
        for path in self.data_dir.glob(f".tmp-*-{layer}.*.parquet"):
            path.unlink(missing_ok=True)
        return n


def open_store(location: str | os.PathLike[str], *, cache_mb: float = 0):
    """The store at ``location``: a folder (embedded) or a ``postgresql://`` URL."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from geocluster.store.postgis import PostGISStore

        return PostGISStore(text, cache_mb=cache_mb)
    return EmbeddedStore(location, cache_mb=cache_mb)
