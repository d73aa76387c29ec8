"""Territories: region profiles, side-by-side comparison and peer regions.

Pure helpers live in :mod:`geocluster.territories.core`; the workspace-level functions
are in :mod:`geocluster.analyses.territories`.
"""

from geocluster.territories.core import (
    area_km2,
    assign_points,
    location_quotients,
    nearest_peers,
    rank_descending,
    strong_cluster_flags,
)

__all__ = [
    "area_km2",
    "assign_points",
    "location_quotients",
    "nearest_peers",
    "rank_descending",
    "strong_cluster_flags",
]
