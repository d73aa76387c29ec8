"""Workspace storage: the Store protocol and its backends.

Outside this package nobody opens SQLite, builds SQL or inspects store files: the
:class:`~geocluster.store.base.Store` protocol is the only door to data.
"""

from geocluster.store.base import Store
from geocluster.store.embedded import EmbeddedStore, open_store

__all__ = ["EmbeddedStore", "Store", "open_store"]
