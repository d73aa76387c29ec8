"""When did today's clusters emerge? Re-detection on the firms founded up to each year.

For each year ``y`` of a range, DBSCAN (:func:`geocluster.clustering.dbscan`, the same
exact algorithm and parameters as the present-day run) is run on the firms founded up to
``y``. A present-day cluster ``C`` is *present* in year ``y`` when some cluster ``K``
detected in that year is mostly made of ``C``'s firms: ``|K ∩ C| / |K| >= min_overlap``.
Its emergence year is the first year it is present; when it is present already in the
first year of the range, the emergence year is that year and ``before_range`` is true
(it may be older).

Caveats, stated in the result: the register holds survivors only, so a cluster whose
early firms closed appears to emerge later than it did; firms with an unknown founding
year are never in a yearly run (they can only delay emergence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geocluster.clustering.dbscan import dbscan
from geocluster.errors import InvalidInput

__all__ = ["Emergence", "emergence"]


@dataclass(frozen=True)
class Emergence:
    """Result of :func:`emergence`.

    Attributes
    ----------
    clusters : DataFrame
        One row per present-day cluster: ``cluster_id, n_firms, n_firms_known_year,
        emergence_year`` (NaN if never present in the range), ``before_range`` (present in
        the first year already), ``n_firms_at_emergence`` (firms of the detected cluster(s)
        that make it present, that year).
    timeline : DataFrame
        One row per year × present-day cluster: ``year, cluster_id, present,
        n_firms_detected`` (size of the matching detected clusters, 0 if absent),
        ``n_founded`` (the cluster's firms founded up to that year).
    years : tuple of int
        The years tested, in order.
    params : dict
        ``eps_m, min_samples, min_overlap``.
    """

    clusters: pd.DataFrame
    timeline: pd.DataFrame
    years: tuple[int, ...]
    params: dict


def emergence(
    xy: np.ndarray,
    founded: np.ndarray,
    *,
    eps_m: float,
    min_samples: float,
    years: tuple[int, int] | list[int],
    labels_now: np.ndarray | None = None,
    min_overlap: float = 0.5,
) -> Emergence:
    """Emergence year of each present-day cluster by yearly re-detection.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Firm coordinates in metres (projected CRS).
    founded : ndarray, shape (n,)
        Founding year per firm (NaN unknown).
    eps_m, min_samples : float
        DBSCAN parameters, those of the present-day run.
    years : (int, int) or list of int
        ``(first, last)`` inclusive, or the explicit years to test (increasing).
    labels_now : ndarray of int, shape (n,), optional
        Present-day cluster per firm (noise ``-1``); default DBSCAN on all firms with
        the same parameters.
    min_overlap : float, default 0.5
        Share of a detected cluster's firms that must belong to a present-day cluster
        for that cluster to count as present, in (0, 1].

    Returns
    -------
    Emergence

    Notes
    -----
    Ester, M., Kriegel, H.-P., Sander, J. & Xu, X. (1996), "A density-based algorithm for
    discovering clusters in large spatial databases with noise", *KDD-96*, 226–231. The
    re-detection on cumulative founding cohorts follows the cluster life-cycle view of
    Menzel, M.-P. & Fornahl, D. (2010), "Cluster life cycles — dimensions and rationales
    of cluster evolution", *Industrial and Corporate Change* 19(1), 205–238: a cluster
    emerges when a critical mass of co-located firms first forms.
    """
    xy = np.asarray(xy, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InvalidInput(f"expected xy of shape (n, 2), got {xy.shape}")
    n = xy.shape[0]
    f = np.asarray(pd.to_numeric(pd.Series(founded), errors="coerce"), dtype=float)
    if f.shape != (n,):
        raise InvalidInput(f"expected {n} founding years (one per firm), got {f.shape[0]}")
    if not 0 < float(min_overlap) <= 1:
        raise InvalidInput(f"expected min_overlap in (0, 1], got {min_overlap}")
    if isinstance(years, tuple) and len(years) == 2:
        lo, hi = int(years[0]), int(years[1])
        if lo > hi:
            raise InvalidInput(f"expected years (first, last) with first <= last, got {years}")
        test_years = list(range(lo, hi + 1))
    else:
        test_years = [int(y) for y in years]
        if not test_years or any(b <= a for a, b in zip(test_years, test_years[1:])):
            raise InvalidInput(f"expected increasing years, got {years}")
    if len(test_years) > 200:
        raise InvalidInput(f"expected at most 200 years to test, got {len(test_years)}")
    if labels_now is None:
        labels_now = dbscan(xy, eps_m=eps_m, min_samples=min_samples)
    labels_now = np.asarray(labels_now, dtype=np.int64)
    if labels_now.shape != (n,):
        raise InvalidInput(f"expected {n} present-day labels, got shape {labels_now.shape}")
    k = int(labels_now.max()) + 1 if (labels_now >= 0).any() else 0
    known_year = np.isfinite(f)
    size_now = np.bincount(labels_now[labels_now >= 0], minlength=k)
    known_now = np.bincount(labels_now[(labels_now >= 0) & known_year], minlength=k)

    present = np.zeros((len(test_years), k), bool)
    detected = np.zeros((len(test_years), k), np.int64)
    founded_so_far = np.zeros((len(test_years), k), np.int64)
    for t, year in enumerate(test_years):
        sel = np.flatnonzero(known_year & (f <= year))
        in_c = labels_now[sel]
        founded_so_far[t] = np.bincount(in_c[in_c >= 0], minlength=k)
        if len(sel) == 0:
            continue
        lab = dbscan(xy[sel], eps_m=eps_m, min_samples=min_samples)
        m = lab >= 0
        if not m.any() or k == 0:
            continue
        kk = int(lab.max()) + 1
        size_k = np.bincount(lab[m], minlength=kk)
        both = m & (in_c >= 0)
        # contingency of detected (rows) by present-day (columns) clusters
        table = np.zeros((kk, k), np.int64)
        np.add.at(table, (lab[both], in_c[both]), 1)
        hit = table / size_k[:, None] >= float(min_overlap)
        present[t] = hit.any(axis=0)
        detected[t] = (hit * size_k[:, None]).sum(axis=0)

    first = np.where(present.any(axis=0), present.argmax(axis=0), -1)
    ids = np.arange(k)
    emerg = np.array([test_years[i] if i >= 0 else np.nan for i in first], float)
    at = np.array([detected[i, c] if i >= 0 else 0 for c, i in zip(ids, first)], np.int64)
    clusters = pd.DataFrame(
        {
            "cluster_id": ids,
            "n_firms": size_now,
            "n_firms_known_year": known_now,
            "emergence_year": emerg,
            "before_range": first == 0,
            "n_firms_at_emergence": at,
        }
    )
    timeline = pd.DataFrame(
        {
            "year": np.repeat(test_years, k),
            "cluster_id": np.tile(ids, len(test_years)),
            "present": present.ravel(),
            "n_firms_detected": detected.ravel(),
            "n_founded": founded_so_far.ravel(),
        }
    )
    return Emergence(
        clusters=clusters,
        timeline=timeline,
        years=tuple(test_years),
        params={
            "eps_m": float(eps_m),
            "min_samples": float(min_samples),
            "min_overlap": float(min_overlap),
        },
    )
