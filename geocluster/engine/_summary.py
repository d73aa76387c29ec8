"""Cluster summaries made where the firms are (on the Dask engine's workers).

The summary of :func:`geocluster.clustering.firms.summarize_clusters` is made from the
firms' attributes as the workspace reads them (:func:`firm_frame`: the same dtypes), so a
worker holding a sector's firms makes the very table the client would. Clusters whose
firms lie on several workers are summarised from per-cluster partial sums
(:func:`geocluster.clustering.firms.cluster_parts`, added up by ``combine_parts``) and
hulls made on one worker per group of clusters from the clusters' points gathered there
in row order (:func:`bucket_hulls`): a concave hull is not a sum of parts, and the same
points in the same order give the local engine's polygon exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from geocluster.engine._source import xy

__all__ = ["SummarySpec", "bucket_hulls", "firm_frame", "hull_buckets", "summarize_table"]


@dataclass(frozen=True)
class SummarySpec:
    """How to summarise the clusters of an engine's DBSCAN (picklable: it travels).

    Parameters
    ----------
    crs : str or pyproj.CRS
        The working CRS of the ``x``, ``y`` columns (the hulls' CRS).
    columns : tuple of str
        Firm columns the summary reads (those of
        :data:`geocluster.clustering.firms.SUMMARY_INPUTS` the source has).
    hull_ratio, buffer_m, reference_year
        As :func:`geocluster.clustering.firms.summarize_clusters`
        (:func:`geocluster.clustering.firms.summary_options` gives
        :func:`~geocluster.clustering.firms.cluster_firms`' values).
    """

    crs: Any
    columns: tuple[str, ...] = ()
    hull_ratio: float = 0.3
    buffer_m: float = 100.0
    reference_year: int | None = None

    @classmethod
    def of(cls, crs: Any, available, **options) -> SummarySpec:
        """The spec reading the summary columns among ``available``."""
        from geocluster.clustering.firms import SUMMARY_INPUTS

        have = set(available)
        return cls(crs=crs, columns=tuple(c for c in SUMMARY_INPUTS if c in have), **options)


def firm_frame(
    t: pa.Table, spec: SummarySpec, *, x: str = "x", y: str = "y"
) -> tuple[pd.DataFrame, np.ndarray]:
    """``(attributes, xy)`` of rows read from the files, as the workspace reads them.

    The attributes convert as :meth:`geocluster.workspace.Workspace.read` converts them
    (Arrow to pandas without the pandas metadata, then the canonical firm dtypes), so a
    summary made here equals the one made from the workspace's frame.
    """
    from geocluster.workspace import _canonical_dtypes

    cols = [c for c in spec.columns if c in t.column_names]
    frame = _canonical_dtypes(t.select(cols).to_pandas(ignore_metadata=True), "firms")
    return frame, xy(t, x, y)


def summarize_table(t: pa.Table, labels, core, spec: SummarySpec, *, x: str = "x", y: str = "y"):
    """:func:`~geocluster.clustering.firms.summarize_clusters` of the rows of ``t``.

    Made from the rows' attributes and coordinates (a
    :class:`~geocluster.clustering.firms.FirmTable`, no point object per firm) by the
    same code as the local summaries.
    """
    from geocluster.clustering.firms import FirmTable, _summarize, empty_summary

    frame, X = firm_frame(t, spec, x=x, y=y)
    if not len(frame.columns):
        frame = pd.DataFrame(index=pd.RangeIndex(len(X)))
    if len(X) == 0:
        return empty_summary(spec.crs)
    return _summarize(
        FirmTable(frame, X, spec.crs),
        labels,
        is_core=core,
        hull_ratio=spec.hull_ratio,
        buffer_m=spec.buffer_m,
        reference_year=spec.reference_year,
    )


def hull_buckets(labels: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each cluster 0..k-1: runs of cluster ids of about equal hull cost.

    A hull costs a little more than its points (``n log n``, as the local engine's
    threads weigh it); one bucket's hulls are made by one task.
    """
    sizes = np.bincount(labels[labels >= 0])
    cost = sizes * np.log2(np.maximum(sizes, 2))
    before = np.cumsum(cost) - cost
    return np.minimum((before * n_buckets / max(cost.sum(), 1.0)).astype(np.int64), n_buckets - 1)


def bucket_hulls(spec: SummarySpec, *pieces):
    """Hulls of the clusters of one bucket from their points gathered from every tile.

    Each piece is ``(gid, label, xy)`` of clustered points. Sorted by cluster, then by
    row (``gid``), every cluster's multipoint holds its points in the local engine's
    order, hence the same polygon.

    Returns
    -------
    (ids, hulls, kinds)
    """
    from geocluster.clustering.firms import _hull_options, _hulls

    gid = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int64)
    lab = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.int64)
    X = np.concatenate([p[2] for p in pieces]) if pieces else np.zeros((0, 2))
    if lab.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, object)
    order = np.lexsort((gid, lab))
    ids, compact = np.unique(lab[order], return_inverse=True)
    ratio, buffer_m = _hull_options(spec.hull_ratio, spec.buffer_m)
    hull, kind = _hulls(X[order], compact, len(ids), ratio, buffer_m)
    return ids, hull, kind
