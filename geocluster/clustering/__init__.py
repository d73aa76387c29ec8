"""Point density clusters of firms and kernel density surfaces.

- :class:`GridDBSCAN`, :func:`dbscan`: exact DBSCAN on a grid (numba), same core points
  and core partition as :class:`sklearn.cluster.DBSCAN`, without storing neighbourhoods;
  :func:`warm_up` loads its compiled code (call it at server start-up).
- :class:`HDBSCANClusterer`, :func:`hdbscan`: HDBSCAN through ``fast_hdbscan``.
- :func:`k_distance`: the k-distance curve and its knee (eps guidance).
- :func:`kde_grid`, :func:`bandwidth_m`: binned FFT Gaussian KDE on a grid.
- :func:`select_firms`, :func:`cluster_firms`, :func:`summarize_clusters`: firms in,
  per-firm labels and per-cluster summaries (hulls, sector mix, shares) out.

All coordinates are metres in a projected working CRS.
"""

from geocluster.clustering.dbscan import GridDBSCAN, dbscan, warm_up
from geocluster.clustering.firms import (
    FirmClusters,
    cluster_firms,
    firm_points,
    firm_weights,
    select_firms,
    summarize_clusters,
)
from geocluster.clustering.hdbscan import HDBSCANClusterer, hdbscan, relabel_by_first_index
from geocluster.clustering.kde import KDEGrid, bandwidth_m, kde_grid
from geocluster.clustering.kdistance import KDistance, k_distance, knee_index

__all__ = [
    "FirmClusters",
    "GridDBSCAN",
    "HDBSCANClusterer",
    "KDEGrid",
    "KDistance",
    "bandwidth_m",
    "cluster_firms",
    "dbscan",
    "firm_points",
    "firm_weights",
    "hdbscan",
    "k_distance",
    "kde_grid",
    "knee_index",
    "relabel_by_first_index",
    "select_firms",
    "summarize_clusters",
    "warm_up",
]
