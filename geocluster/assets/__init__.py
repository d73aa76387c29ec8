"""Territorial assets: catalogue, UNESCO import, density, co-location, proximity, zonal stats.

Pure computation on (Geo)DataFrames and open rasters; orchestration against a
workspace lives in :mod:`geocluster.analyses.assets`.

- :mod:`~geocluster.assets.catalog` — categories, subtypes, designations, linked sectors
- :mod:`~geocluster.assets.unesco` — World Heritage List export -> canonical assets
- :mod:`~geocluster.assets.density` — assets per region (km², 10,000 inhabitants), asset zones
- :mod:`~geocluster.assets.colocation` — co-location quotient (Leslie & Kronenfeld 2011)
- :mod:`~geocluster.assets.proximity` — firms near assets, asset gaps
- :mod:`~geocluster.assets.zonal` — windowed zonal statistics
"""

from geocluster.assets.catalog import (
    CATEGORIES,
    DESIGNATIONS,
    LINKED_SECTOR_GROUPS,
    linked_divisions,
    normalize_category,
    normalize_designation,
)
from geocluster.assets.colocation import CLQResult, colocation_quotient
from geocluster.assets.density import asset_density, asset_zones, geodesic_area_km2
from geocluster.assets.proximity import asset_gaps, firms_near_assets, firms_within_any
from geocluster.assets.unesco import is_unesco_table, unesco_to_assets
from geocluster.assets.zonal import zonal_stats

__all__ = [
    "CATEGORIES",
    "CLQResult",
    "DESIGNATIONS",
    "LINKED_SECTOR_GROUPS",
    "asset_density",
    "asset_gaps",
    "asset_zones",
    "colocation_quotient",
    "firms_near_assets",
    "firms_within_any",
    "geodesic_area_km2",
    "is_unesco_table",
    "linked_divisions",
    "normalize_category",
    "normalize_designation",
    "unesco_to_assets",
    "zonal_stats",
]
