"""Economic sectors: ISIC Rev.4 / NACE Rev.2 tables, OSM tag mapping, sector groups.

- :data:`SECTIONS`, :data:`DIVISIONS`, :data:`GROUPS`, :data:`CLASSES`: the complete
  ISIC Rev.4 structure (21 / 88 / 238 / 419) from ``isic4.csv``.
- :func:`normalize_codes`: raw ISIC or NACE codes -> ISIC code strings + unknown mask;
  NACE is mapped at the finest common level (:func:`nace_to_isic`, ``NACE_ISIC.md``).
- :func:`normalize_sector_filter`, :func:`no_match_reason`: sector filters written in
  the dataset's own scheme, and why one matched nothing.
- :func:`section_of`, :func:`division_of`: section letter / division of normalised codes.
- :data:`SECTOR_GROUPS`, :func:`group_divisions`, :func:`load_groups`,
  :func:`load_groups_file`: built-in and user-defined sector groups (``GROUPS.md`` explains the built-in ones).
- :func:`osm_tags_to_isic`, :func:`osm_asset_class` and the tables in
  :mod:`geocluster.sectors.osm` (rendered in ``OSM_MAPPING.md``).
"""

from geocluster.sectors._isic import (
    CLASSES,
    DIVISIONS,
    GROUPS,
    NACE_TO_ISIC,
    SCHEMES,
    SECTIONS,
    division_of,
    nace_to_isic,
    normalize_codes,
    section_of,
    title_of,
)
from geocluster.sectors.filters import no_match_reason, normalize_sector_filter
from geocluster.sectors.groups import (
    SECTOR_GROUP_NOTES,
    SECTOR_GROUPS,
    SectorGroup,
    group_divisions,
    load_groups,
    load_groups_file,
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
    "NACE_TO_ISIC",
    "SCHEMES",
    "SECTIONS",
    "SECTOR_GROUPS",
    "SECTOR_GROUP_NOTES",
    "SectorGroup",
    "division_of",
    "group_divisions",
    "load_groups",
    "load_groups_file",
    "nace_to_isic",
    "no_match_reason",
    "normalize_codes",
    "normalize_sector_filter",
    "osm_asset_class",
    "osm_firm_match",
    "osm_tags_to_isic",
    "parse_groups",
    "section_of",
    "title_of",
]
