"""Region specialisation: firms joined to regions, region × sector tables and measures.

Pure functions; see :mod:`geocluster.specialization.measures` for the formulas and their
sources, :func:`assign_regions` for the point-in-polygon join.
"""

from geocluster.specialization.measures import (
    MEASURES,
    SectorTable,
    bootstrap_lq,
    choose_measure,
    cluster_stars,
    ellison_glaeser,
    herfindahl,
    krugman,
    location_quotient,
    long_table,
    maurel_sedillot,
    sector_table,
    strong_clusters,
)
from geocluster.specialization.regions import assign_regions, assign_regions_xy

__all__ = [
    "MEASURES",
    "SectorTable",
    "assign_regions",
    "assign_regions_xy",
    "bootstrap_lq",
    "choose_measure",
    "cluster_stars",
    "ellison_glaeser",
    "herfindahl",
    "krugman",
    "location_quotient",
    "long_table",
    "maurel_sedillot",
    "sector_table",
    "strong_clusters",
]
