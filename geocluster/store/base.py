"""The Store protocol: what every storage backend of a workspace provides.

A store holds *physical layers* (feature or attribute tables) and a *catalog*
(datasets with versions, analysis runs, rasters). The catalog is the only
truth: a layer that no catalog row names is invisible, so a write becomes
visible in one step, the catalog transaction that follows a complete layer
write. That is what makes ingestion atomic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import pandas as pd

BBox = tuple[float, float, float, float]
Progress = Callable[[float, str], None]


@runtime_checkable
class Store(Protocol):
    """Storage backend of a workspace (GeoPackage now, PostGIS later)."""

    def write_lock(self) -> AbstractContextManager[None]:
        """Hold the workspace's single-writer lock (readers never wait on it)."""

    def write_layer(self, frame: gpd.GeoDataFrame | pd.DataFrame, *, prefix: str) -> str:
        """Write a new physical layer and return its name; invisible until cataloged."""

    def read_layer(
        self,
        layer: str,
        *,
        bbox: BBox | None = None,
        columns: list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a physical layer (EPSG:4326 for feature layers)."""

    def count(self, layer: str, *, bbox: BBox | None = None) -> int:
        """Number of features, optionally those whose envelope meets ``bbox``."""

    def drop_layer(self, layer: str) -> None:
        """Remove a physical layer."""

    def insert(self, table: str, row: dict[str, Any], *, pending: list[str] = ()) -> None:
        """Insert a catalog row, releasing ``pending`` layers, in one transaction."""

    def select(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Catalog rows of ``table`` matching equality filters, oldest first."""

    def delete(self, table: str, **where: Any) -> int:
        """Delete catalog rows matching equality filters; return how many."""

    def layers(self) -> Iterator[str]:
        """Names of every physical layer, cataloged or not."""
