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

import importlib
from typing import Any

# Loaded now: the functions ``dbscan`` and ``hdbscan`` share their modules' names, and a
# submodule loaded later would rebind the package attribute to itself.
from geocluster.clustering.dbscan import GridDBSCAN, dbscan, warm_up
from geocluster.clustering.hdbscan import HDBSCANClusterer, hdbscan, relabel_by_first_index

#: Where each public name lives; its module is imported on first use, so that e.g. the
#: clusters command does not pay for SciPy's signal package (the KDE's FFT, ~0.5 s).
_HOME = {
    "FirmClusters": "firms",
    "cluster_firms": "firms",
    "firm_points": "firms",
    "firm_weights": "firms",
    "select_firms": "firms",
    "summarize_clusters": "firms",
    "KDEGrid": "kde",
    "bandwidth_m": "kde",
    "kde_grid": "kde",
    "KDistance": "kdistance",
    "k_distance": "kdistance",
    "knee_index": "kdistance",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])


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
