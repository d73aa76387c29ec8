"""Web map (folium page + vendored static assets under ``maps/static``)."""

from maps.build import build_map

__all__ = ["build_map"]
