"""Workspace storage: the Store protocol and its GeoPackage backend."""

from geocluster.store.base import Store
from geocluster.store.gpkg import GeoPackageStore

__all__ = ["GeoPackageStore", "Store"]
