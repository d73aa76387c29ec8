"""k-distance curve and its knee: guidance for DBSCAN's ``eps_m``.

For each point, its *k-distance* is the distance to its k-th nearest point **counting the
point itself as the first** (so k-distance is the radius of the smallest disc around the
point holding k points). With ``k = min_samples`` and no weights, a point is a DBSCAN core
point at radius ``eps_m`` exactly when its k-distance is <= ``eps_m``. The sorted curve
usually rises slowly through clustered points and sharply through noise; the *knee*, where
it bends, is the classic eps suggestion (Ester et al. 1996, section 4.2; Schubert et al.
2017, "DBSCAN revisited", section 4.1).

The knee is found with the Kneedle idea (Satopaa, Albrecht, Irwin & Raghavan 2011): scale
the curve's index and value to [0, 1] and take the point farthest below the chord from the
first to the last point (for an increasing convex curve that is ``argmax(x - y)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from geocluster.clustering._validation import check_min_count, check_points
from geocluster.errors import InvalidInput

__all__ = ["KDistance", "k_distance", "knee_index"]


@dataclass(frozen=True)
class KDistance:
    """A sorted k-distance curve with its suggested knee.

    Attributes
    ----------
    distances_m : ndarray of shape (n,)
        k-distances in metres, ascending.
    knee_index : int
        Index into ``distances_m`` of the knee.
    knee_m : float
        ``distances_m[knee_index]``: the suggested ``eps_m``.
    k : int
        The k used (point itself counted).
    """

    distances_m: np.ndarray
    knee_index: int
    knee_m: float
    k: int


def knee_index(y: np.ndarray) -> int:
    """Index of the knee of an ascending curve: farthest point below the chord.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Ascending values.

    Returns
    -------
    int
        Index of the point with the largest normalised distance below the chord from
        ``(0, y[0])`` to ``(n-1, y[-1])``; 0 for a flat curve (the last index
        when n < 3).
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if n == 0:
        raise InvalidInput("expected a non-empty curve for the knee, got 0 values")
    if n < 3:
        return n - 1
    span = y[-1] - y[0]
    if span <= 0:
        return 0
    xn = np.linspace(0.0, 1.0, n)
    yn = (y - y[0]) / span
    # Perpendicular distance to the chord y=x is (x - y)/sqrt(2): the argmax is the same.
    return int(np.argmax(xn - yn))


def k_distance(X, k: int = 10) -> KDistance:
    """Sorted k-distance curve of planar points and its knee.

    Parameters
    ----------
    X : array-like of shape (n, 2)
        Coordinates in metres (projected CRS); n >= k.
    k : int, default 10
        Neighbour rank, the point itself counted as the first (use ``k = min_samples``).

    Returns
    -------
    KDistance
        Ascending distances in metres and the knee (suggested ``eps_m``).
    """
    k = check_min_count(k, "k", minimum=1)
    X = check_points(X)
    n = X.shape[0]
    if n < k:
        raise InvalidInput(f"expected at least k={k} points for the k-distance curve, got {n}")
    if k == 1:
        d = np.zeros(n)
    else:
        dist, _ = cKDTree(X).query(X, k=[k])
        d = dist[:, 0]
    d = np.sort(d)
    i = knee_index(d)
    return KDistance(distances_m=d, knee_index=i, knee_m=float(d[i]), k=k)
