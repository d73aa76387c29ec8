"""The Store protocol: what every storage backend of a workspace provides.

A store holds immutable *layers* (feature or attribute tables) and a *catalog*
(datasets with versions, analysis runs, rasters, jobs, keys, audit). The catalog is the
only truth: a layer no catalog row names is invisible and is garbage-collected, so a
write becomes visible in one step, the catalog transaction of :meth:`Store.commit`.

Backends: :class:`geocluster.store.embedded.EmbeddedStore` (a folder with
``catalog.sqlite`` + GeoParquet files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

BBox = tuple[float, float, float, float]
Progress = Callable[[float, str], None]
#: ``(column, op, value)``: ``==``, ``!=``, ``in``, ``not in``, ``<``, ``<=``, ``>``, ``>=``,
#: ``is null``, ``not null``; a list of filters is ANDed and pushed down to storage.
Filter = tuple[str, str, Any]


@runtime_checkable
class Store(Protocol):
    """Storage backend of a workspace."""

    catalog: Any

    def write_lock(self) -> AbstractContextManager[None]:
        """Serialise a short multi-step catalog update (never held during a layer write)."""

    def write_layer(
        self,
        frame: pd.DataFrame,
        *,
        prefix: str,
        working_xy: tuple[Any, Any] | None = None,
        sort_key: str | None = None,
        points_lonlat: tuple[Any, Any] | None = None,
    ) -> Any:
        """Write an immutable layer; invisible until committed. Returns it (``.name``).

        ``points_lonlat``: a plain DataFrame's geometry given as EPSG:4326 point
        coordinates (one per row), so firm-level layers need no point objects.
        """

    def point_layout(
        self,
        lon: Any,
        lat: Any,
        *,
        working_xy: tuple[Any, Any] | None = None,
        columns: pd.DataFrame | None = None,
        sort_codes: Any = None,
    ) -> Any:
        """What to pass as ``points_lonlat`` for these points (one per row, in order).

        A store may order and pack the points ahead of the write (the embedded store's
        :class:`~geocluster.store.geoparquet.PointLayout`, holding ``columns`` sorted
        too), or return the ``(lon, lat)`` tuple. A caller computes this while it
        computes the rest of the layer, and writes that layer with the same
        ``working_xy`` and ``columns`` values. ``sort_codes``: integer codes of a
        leading sort key (a sector's rank), which a store may order by first.
        """

    def commit(self, layers: Sequence[Any] = ()) -> AbstractContextManager[Any]:
        """A catalog transaction making ``layers`` visible with the rows added in it."""

    def read_table(
        self,
        layer: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[Filter] | None = None,
        bbox: BBox | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Any:
        """Rows as an Arrow table, columns and rows pushed down."""

    def read_layer(
        self,
        layer: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[Filter] | None = None,
        bbox: BBox | None = None,
        limit: int | None = None,
        offset: int = 0,
        geometry: bool = True,
    ) -> pd.DataFrame:
        """Rows as a (Geo)DataFrame in EPSG:4326."""

    def count(
        self, layer: str, *, bbox: BBox | None = None, filters: Iterable[Filter] | None = None
    ) -> int:
        """Number of rows, optionally meeting ``bbox`` (envelope) and ``filters``."""

    def has_geometry(self, layer: str) -> bool:
        """Whether the layer has a geometry column."""

    def layer_files(self, layer: str) -> list[Path]:
        """Part files of a layer, for engines that read them in parallel."""

    def drop_unreferenced(self) -> int:
        """Delete layers no catalog row refers to; return how many files went."""
