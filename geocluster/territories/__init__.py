"""Territories: region profiles, side-by-side comparison and peer regions.

Pure helpers live in :mod:`geocluster.territories.core`; the workspace-level functions
are in :mod:`geocluster.analyses.territories`. Location quotients, the strong-cluster
rule and the point-in-region join come from :mod:`geocluster.specialization`.
"""

from geocluster.territories.core import area_km2, nearest_peers, rank_descending

__all__ = ["area_km2", "nearest_peers", "rank_descending"]
