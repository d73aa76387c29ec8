"""HDBSCAN of planar points through ``fast_hdbscan``.

``fast_hdbscan`` (McInnes) builds the mutual-reachability minimum spanning tree with a
parallel Boruvka over a KD-tree and is much faster than scikit-learn's HDBSCAN on
two-dimensional data (about 27x at 100k points on this machine). This module only
validates input, forwards the two parameters planners need and renumbers the labels so
that they are stable (see :func:`relabel_by_first_index`).
"""

from __future__ import annotations

import numpy as np

from geocluster.clustering._validation import check_min_count, check_points, check_weights

__all__ = ["HDBSCANClusterer", "hdbscan", "relabel_by_first_index"]


def relabel_by_first_index(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster labels 0, 1, ... in the order of each cluster's smallest index.

    Parameters
    ----------
    labels : ndarray of shape (n,), int
        Any labelling with noise ``-1``.

    Returns
    -------
    ndarray of shape (n,), int64
        Same partition, clusters numbered by first appearance; noise stays ``-1``.
    """
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, np.int64)
    mask = labels >= 0
    if not mask.any():
        return out
    uniq, first = np.unique(labels[mask], return_index=True)
    rank = np.empty(uniq.size, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(uniq.size)
    out[mask] = rank[np.searchsorted(uniq, labels[mask])]
    return out


class HDBSCANClusterer:
    """HDBSCAN (Campello, Moulavi & Sander 2013) via ``fast_hdbscan``.

    Parameters
    ----------
    min_cluster_size : int, default 15
        Smallest group of points that counts as a cluster (>= 2).
    min_samples : int or None, default None
        Neighbourhood size of the core distance (>= 1); ``None`` uses
        ``min_cluster_size``, as in scikit-learn and ``hdbscan``.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
        Cluster per point, noise ``-1``; clusters numbered by their smallest point index.
    probabilities_ : ndarray of shape (n,)
        Strength of each point's membership (0 for noise).
    n_clusters_ : int
        Number of clusters.
    """

    def __init__(self, *, min_cluster_size: int = 15, min_samples: int | None = None) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples

    def fit(self, X, y=None, sample_weight=None) -> HDBSCANClusterer:
        """Cluster the points.

        Parameters
        ----------
        X : array-like of shape (n, 2)
            Coordinates in metres (projected CRS).
        y : ignored
            Present for scikit-learn API compatibility.
        sample_weight : array-like of shape (n,), optional
            Non-negative point weights (e.g. employees), forwarded to ``fast_hdbscan``.

        Returns
        -------
        HDBSCANClusterer
            ``self``, fitted.
        """
        from fast_hdbscan import HDBSCAN

        mcs = check_min_count(self.min_cluster_size, "min_cluster_size", minimum=2)
        ms = None
        if self.min_samples is not None:
            ms = check_min_count(self.min_samples, "min_samples", minimum=1)
        X = check_points(X)
        w = check_weights(sample_weight, X.shape[0])
        if w is not None and (w < 0).any():
            from geocluster.errors import InvalidInput

            raise InvalidInput("expected non-negative sample_weight for HDBSCAN, got negatives")
        n = X.shape[0]
        if n == 0:
            self.labels_ = np.empty(0, np.int64)
            self.probabilities_ = np.empty(0)
            self.n_clusters_ = 0
            return self
        if n <= (ms if ms is not None else mcs):
            # Too few points to form a cluster; fast_hdbscan would fail on its KNN graph.
            self.labels_ = np.full(n, -1, np.int64)
            self.probabilities_ = np.zeros(n)
            self.n_clusters_ = 0
            return self
        model = HDBSCAN(min_cluster_size=mcs, min_samples=ms)
        model.fit(X, sample_weight=w)
        self.labels_ = relabel_by_first_index(model.labels_)
        self.probabilities_ = np.asarray(model.probabilities_, dtype=np.float64)
        self.n_clusters_ = int(self.labels_.max()) + 1 if (self.labels_ >= 0).any() else 0
        return self

    def fit_predict(self, X, y=None, sample_weight=None) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_


def hdbscan(
    X, *, min_cluster_size: int = 15, min_samples: int | None = None, sample_weight=None
) -> np.ndarray:
    """HDBSCAN labels of planar points (see :class:`HDBSCANClusterer`).

    Parameters
    ----------
    X : array-like of shape (n, 2)
        Coordinates in metres.
    min_cluster_size : int
        Smallest cluster size.
    min_samples : int or None
        Core-distance neighbourhood size; ``None`` = ``min_cluster_size``.
    sample_weight : array-like of shape (n,), optional
        Non-negative point weights.

    Returns
    -------
    ndarray of shape (n,), int64
        Labels, noise ``-1``, numbered by each cluster's smallest point index.
    """
    return (
        HDBSCANClusterer(min_cluster_size=min_cluster_size, min_samples=min_samples)
        .fit(X, sample_weight=sample_weight)
        .labels_
    )
