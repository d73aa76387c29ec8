"""Economic sectors: ISIC Rev.4 / NACE Rev.2 tables, OSM tag mapping, sector groups.

- :data:`SECTIONS`, :data:`DIVISIONS`, :data:`GROUPS`, :data:`CLASSES`: the complete
  ISIC Rev.4 structure (21 / 88 / 238 / 419) from ``isic4.csv``.
- :func:`normalize_codes`: raw ISIC or NACE codes -> ISIC code strings + unknown mask.
- :func:`section_of`, :func:`division_of`: section letter / division of normalised codes.
- :data:`SECTOR_GROUPS`, :func:`group_divisions`, :func:`load_groups`: built-in and
  user-defined sector groups (``GROUPS.md`` explains the built-in ones).
- :func:`osm_tags_to_isic`, :func:`osm_asset_class` and the tables in
  :mod:`geocluster.sectors.osm` (rendered in ``OSM_MAPPING.md``).
"""

from geocluster.sectors._isic import (
    CLASSES,
    DIVISIONS,
    GROUPS,
    SCHEMES,
    SECTIONS,
    division_of,
    normalize_codes,
    section_of,
    title_of,
)
from geocluster.sectors.groups import (
    SECTOR_GROUP_NOTES,
    SECTOR_GROUPS,
    group_divisions,
    load_groups,
    parse_groups,
)
from geocluster.sectors.osm import (
    ASSET_TAGS,
    FIRM_TAGS,
    osm_asset_class,
    osm_firm_match,
    osm_tags_to_isic,
)

__all__ = [
    "ASSET_TAGS",
    "CLASSES",
    "DIVISIONS",
    "FIRM_TAGS",
    "GROUPS",
    "SCHEMES",
    "SECTIONS",
    "SECTOR_GROUPS",
    "SECTOR_GROUP_NOTES",
    "division_of",
    "group_divisions",
    "load_groups",
    "normalize_codes",
    "osm_asset_class",
    "osm_firm_match",
    "osm_tags_to_isic",
    "parse_groups",
    "section_of",
    "title_of",
]
