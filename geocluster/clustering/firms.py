"""Point clusters of firms: sector selection, clustering and per-cluster summaries.

Everything here works on a firms GeoDataFrame in its metric working CRS (the canonical
firms frame of ARCHITECTURE.md: ``firm_id``, ``sector_code``, ``employees``, ``founded``,
``women_led``, ``informal``, point geometry). Columns other than ``firm_id`` and the
geometry are optional: a summary statistic whose column is missing is NaN.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocluster.clustering._validation import check_positive
from geocluster.clustering.dbscan import GridDBSCAN
from geocluster.clustering.hdbscan import HDBSCANClusterer
from geocluster.errors import CRSError, InvalidInput

__all__ = [
    "FirmClusters",
    "FirmTable",
    "METHODS",
    "cluster_firm_table",
    "cluster_firms",
    "firm_points",
    "firm_weights",
    "select_firms",
    "summarize_clusters",
]

METHODS = ("dbscan", "hdbscan")
#: Firms with fewer employees than this are "micro" (EU Recommendation 2003/361/EC).
MICRO_MAX_EMPLOYEES = 10
#: "Recently founded" = founded in the last this-many years, reference year included.
RECENT_YEARS = 5
#: Number of sectors listed in a cluster's ``sector_mix``.
TOP_SECTORS = 5
#: Concave hull ratio of :func:`cluster_firms` (see :func:`summarize_clusters`).
HULL_RATIO = 0.3
WEIGHTS = ("employees",)


@dataclass(frozen=True)
class FirmClusters:
    """Result of :func:`cluster_firms`.

    Attributes
    ----------
    labels : GeoDataFrame or DataFrame
        One row per firm clustered: ``firm_id``, ``cluster_id`` (noise ``-1``),
        ``is_core``, point geometry (working CRS). From :func:`cluster_firm_table`: a
        plain DataFrame, the firms' coordinates being ``xy``.
    clusters : GeoDataFrame
        One row per cluster (see :func:`summarize_clusters`), hull polygons (None
        from :func:`label_firm_table`, which returns them later).
    n_clusters : int
        Number of clusters.
    noise : int
        Number of firms labelled noise.
    params : dict
        The parameters used (JSON-ready).
    xy : ndarray of shape (n, 2), optional
        Working-CRS coordinates of the rows of ``labels`` when it has no geometry.
    """

    labels: gpd.GeoDataFrame | pd.DataFrame
    clusters: gpd.GeoDataFrame | None
    n_clusters: int
    noise: int
    params: dict
    xy: np.ndarray | None = None


@dataclass(frozen=True)
class FirmTable:
    """Firms as attribute columns and metric coordinates, without point objects.

    What the clustering paths need of a register: building a shapely point per firm
    of a national register costs seconds and gigabytes that nothing here uses (only
    the clustered firms' coordinates become hull inputs).

    Attributes
    ----------
    attrs : DataFrame
        One row per firm, default index: ``firm_id`` and the optional columns of a
        firms frame (``sector_code``, ``employees``, …), no geometry.
    xy : ndarray of shape (n, 2), float64
        Coordinates in metres in ``crs``.
    crs : CRS-like
        A projected CRS in metres.
    stored_lonlat : callable, optional
        Returns the rows' stored EPSG:4326 ``(lon, lat)`` (or None when the store
        cannot tell); set by :func:`~geocluster.analyses._inputs.read_firm_table`, so
        that a per-firm result is stored at each firm's own point. Not kept by
        :meth:`rows` and :meth:`take`.
    """

    attrs: pd.DataFrame
    xy: np.ndarray
    crs: Any
    stored_lonlat: Callable[[], tuple[np.ndarray, np.ndarray] | None] | None = None

    def __len__(self) -> int:
        return len(self.attrs)

    @classmethod
    def from_frame(cls, firms: gpd.GeoDataFrame) -> FirmTable:
        """The table of a firms GeoDataFrame (checked as :func:`firm_points` does)."""
        xy = firm_points(firms)
        attrs = pd.DataFrame(firms.drop(columns=firms.geometry.name)).reset_index(drop=True)
        return cls(attrs, xy, firms.crs)

    def rows(self, start: int, stop: int) -> FirmTable:
        """Rows ``start:stop`` (the coordinates a view)."""
        return FirmTable(
            self.attrs.iloc[start:stop].reset_index(drop=True), self.xy[start:stop], self.crs
        )

    def take(self, index: np.ndarray) -> FirmTable:
        """Rows at positions ``index``."""
        return FirmTable(self.attrs.take(index).reset_index(drop=True), self.xy[index], self.crs)


def _check_projected(frame: gpd.GeoDataFrame) -> None:
    from geocluster.crs import ensure_projected

    if not isinstance(frame, gpd.GeoDataFrame):
        raise InvalidInput(f"expected a GeoDataFrame of firms, got {type(frame).__name__}")
    if frame.crs is None:
        raise CRSError("expected firms with a projected CRS in metres, got no CRS")
    ensure_projected(frame.crs)


def firm_points(firms: gpd.GeoDataFrame) -> np.ndarray:
    """Coordinates (n, 2) in metres of a firms frame in a projected CRS.

    Raises
    ------
    CRSError
        If the frame is not in a projected CRS in metres.
    InvalidInput
        If a geometry is missing, empty or not a point.
    """
    _check_projected(firms)
    geoms = firms.geometry.values
    if len(geoms) == 0:
        return np.empty((0, 2))
    types = shapely.get_type_id(geoms)
    bad = (types != 0) | shapely.is_empty(geoms)
    if bad.any():
        raise InvalidInput(
            f"expected point geometries for firms, got {int(bad.sum())} missing, empty or "
            "non-point geometries"
        )
    return np.column_stack([shapely.get_x(geoms), shapely.get_y(geoms)])


def _normalise_user_codes(codes: Iterable[object]) -> tuple[list[str], list[str]]:
    """Split user sector codes into ISIC section letters and numeric prefixes."""
    from geocluster.sectors import normalize_codes

    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        codes = [codes]
    raw = [c for c in codes]
    if not raw:
        raise InvalidInput("expected at least one sector code, got an empty list")
    letters: list[str] = []
    numeric: list[object] = []
    for c in raw:
        text = str(c).strip()
        if len(text) == 1 and text.isalpha():
            letters.append(text.upper())
        else:
            numeric.append(c)
    prefixes: list[str] = []
    if numeric:
        norm, unknown = normalize_codes(pd.Series(numeric, dtype="object"))
        bad = [str(v) for v, u, n in zip(numeric, unknown, norm) if u or pd.isna(n)]
        if bad:
            raise InvalidInput(
                f"expected ISIC Rev.4 codes (section letter, 2-digit division, 3-digit group "
                f"or 4-digit class), got unknown {bad}"
            )
        prefixes = sorted(set(norm.tolist()))
    from geocluster.sectors import SECTIONS

    bad_letters = [s for s in letters if s not in SECTIONS]
    if bad_letters:
        raise InvalidInput(f"expected ISIC Rev.4 section letters A-U, got {bad_letters}")
    return sorted(set(letters)), prefixes


def _firm_codes(firms: pd.DataFrame) -> pd.Series:
    if "sector_code" not in firms.columns:
        raise InvalidInput(
            f"expected a sector_code column to select sectors, got columns {list(firms.columns)}"
        )
    return firms["sector_code"].astype("str")


def select_firms(
    firms: gpd.GeoDataFrame,
    *,
    sectors: Iterable[object] | None = None,
    sector_group: str | None = None,
    custom_groups: Mapping[str, Iterable[object]] | None = None,
) -> gpd.GeoDataFrame:
    """Firms of some sectors (all firms when neither filter is given).

    Parameters
    ----------
    firms : GeoDataFrame
        Canonical firms frame (any CRS).
    sectors : iterable of str, optional
        ISIC Rev.4 codes. A code matches a firm whose normalised ``sector_code`` starts
        with it: ``"15"`` (division) selects ``15``, ``151``, ``1520`` …; ``"1520"``
        (class) selects only class 1520 (a firm coded just ``"15"`` does not match).
        A section letter (``"C"``) selects every division of the section.
    sector_group : str, optional
        A group of divisions (:func:`geocluster.sectors.group_divisions`), e.g.
        ``"agro_food"``. With ``sectors`` too, a firm matching either is kept.
    custom_groups : Mapping, optional
        User-defined groups passed to ``group_divisions``.

    Returns
    -------
    GeoDataFrame
        The selected rows, original index and order kept.
    """
    if sectors is None and sector_group is None:
        return firms
    codes = _firm_codes(firms)
    keep = np.zeros(len(firms), bool)
    if sectors is not None:
        letters, prefixes = _normalise_user_codes(sectors)
        for p in prefixes:
            keep |= codes.str.startswith(p).fillna(False).to_numpy(bool)
        if letters:
            from geocluster.sectors import section_of

            keep |= section_of(codes).isin(letters).fillna(False).to_numpy(bool)
    if sector_group is not None:
        from geocluster.sectors import group_divisions

        divisions = group_divisions(sector_group, custom_groups)
        keep |= codes.str.slice(0, 2).isin(sorted(divisions)).fillna(False).to_numpy(bool)
    return firms[keep]


def firm_weights(firms: pd.DataFrame, weight: str | None) -> np.ndarray | None:
    """Per-firm weights for clustering or KDE.

    Parameters
    ----------
    firms : DataFrame
        Firms frame.
    weight : {"employees"} or None
        ``"employees"``: the ``employees`` column, with unknown (NaN) counted as 1 -- a
        firm has at least its owner working in it. Negative counts are rejected.

    Returns
    -------
    ndarray of shape (n,) or None
        None when ``weight`` is None.
    """
    if weight is None:
        return None
    if weight not in WEIGHTS:
        raise InvalidInput(f"expected weight to be one of {list(WEIGHTS)} or none, got {weight!r}")
    if "employees" not in firms.columns:
        raise InvalidInput("expected an employees column to weight by employees, got none")
    emp = pd.to_numeric(firms["employees"], errors="coerce").to_numpy(float, na_value=np.nan)
    if (emp < 0).any():
        raise InvalidInput(f"expected employees >= 0, got {int((emp < 0).sum())} negative values")
    return np.where(np.isfinite(emp), emp, 1.0)


def _bool_values(v: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(value, known)`` of a yes/no column; unknown values are False and not known."""
    known = v.notna().to_numpy()
    if isinstance(v.dtype, pd.BooleanDtype):  # the canonical dtype: no filled copy
        val = v.to_numpy(dtype=bool, na_value=False)
    else:
        val = v.fillna(False).astype(bool).to_numpy()
    return val, known


def _two_largest(cluster: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """Per cluster 0..k-1 its largest and second largest value, shape (k, 2), NaN for none.

    ``cluster`` and ``value`` hold finite values only. Two grouped maxima (the second
    with one occurrence of each first maximum left out), no sort: a pandas sort and
    two group-bys, or a lexsort, of millions of firms took a second. The two largest of
    a union of firm sets are the two largest of each set's two largest
    (:func:`combine_parts`).
    """
    out = np.full((k, 2), np.nan)
    if not len(cluster):
        return out
    first = np.full(k, -np.inf)
    np.maximum.at(first, cluster, value)
    at_max = np.flatnonzero(value == first[cluster])
    drop = np.full(k, -1, dtype=np.int64)
    np.maximum.at(drop, cluster[at_max], at_max)  # one firm holding each maximum
    rest = value.copy()
    rest[drop[drop >= 0]] = -np.inf
    second = np.full(k, -np.inf)
    np.maximum.at(second, cluster, rest)
    count = np.bincount(cluster, minlength=k)
    out[count >= 1, 0] = first[count >= 1]
    out[count >= 2, 1] = second[count >= 2]
    return out


def _pair_sums(top: np.ndarray) -> np.ndarray:
    """Sum of each row's (largest, second largest) of :func:`_two_largest` (NaN: none)."""
    # largest + second largest, the order in which the former group-by summed them
    return np.where(np.isnan(top[:, 1]), top[:, 0], top[:, 0] + top[:, 1])


def _top2_sums(cluster: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """Per cluster 0..k-1 the sum of its two largest values (NaN for none)."""
    return _pair_sums(_two_largest(cluster, value, k))


def _division_counts(labels: np.ndarray, div: pd.Series, k: int) -> pd.DataFrame:
    """``cluster_id`` (0..k-1), ``division``, ``n``: firms per cluster and known division.

    Counted with one ``bincount`` of (cluster, division) pairs: a pandas group-by of
    millions of firms' codes as Python objects took a second. Rows by cluster, then
    division code.
    """
    keep = (labels >= 0) & div.notna().to_numpy()
    if not keep.any():
        return pd.DataFrame(
            {
                "cluster_id": np.zeros(0, np.int64),
                "division": np.zeros(0, object),
                "n": np.zeros(0, np.int64),
            }
        )
    codes, names = pd.factorize(div[keep], sort=True)
    names = np.array([str(v) for v in np.asarray(names, dtype=object)], dtype=object)
    ndiv = len(names)
    pair = labels[keep] * ndiv + codes
    if k * ndiv <= 1 << 24:  # a dense count table is small: one linear pass
        n_pair = np.bincount(pair, minlength=k * ndiv)
        pair = np.flatnonzero(n_pair)
        n_pair = n_pair[pair]
    else:
        pair, n_pair = np.unique(pair, return_counts=True)
    cid, code = np.divmod(pair, ndiv)
    return pd.DataFrame(
        {"cluster_id": cid.astype(np.int64), "division": names[code], "n": n_pair.astype(np.int64)}
    )


def _mix_of_counts(counts: pd.DataFrame, k: int):
    """``(dominant, dominant_share, sector_mix)`` of clusters 0..k-1 from division counts.

    ``counts`` as :func:`_division_counts` (any row order). The dominant division has
    the most firms (ties to the smaller code); the mix is a JSON object of the top
    :data:`TOP_SECTORS` divisions' shares of the cluster's firms with a known division,
    largest first (ties by code).
    """
    dominant = np.full(k, None, dtype=object)
    dominant_share = np.full(k, np.nan)
    mix = np.full(k, "{}", dtype=object)
    if not len(counts):
        return dominant, dominant_share, mix
    code, names = pd.factorize(counts["division"].to_numpy(object), sort=True)
    names = [str(v) for v in np.asarray(names, dtype=object)]
    cid = counts["cluster_id"].to_numpy(np.int64)
    n_pair = counts["n"].to_numpy(np.int64)
    total = np.bincount(cid, weights=n_pair, minlength=k).astype(np.int64)
    share = n_pair / total[cid]
    # each cluster's divisions: most firms first, then the smaller code
    order = np.lexsort((code, -n_pair, cid))
    cid, code, n_pair, share = cid[order], code[order], n_pair[order], share[order]
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    rank = np.arange(len(cid)) - np.repeat(starts, np.diff(np.r_[starts, len(cid)]))
    dominant[cid[starts]] = [names[c] for c in code[starts].tolist()]
    dominant_share[cid[starts]] = share[starts]
    # Plain lists: a per-cluster pandas loop is ~1000x slower with thousands of clusters.
    parts: dict[int, dict[str, float]] = {}
    top = rank < TOP_SECTORS
    for c, d, sh in zip(cid[top].tolist(), code[top].tolist(), share[top].tolist()):
        parts.setdefault(c, {})[names[d]] = round(float(sh), 4)
    for c, top_parts in parts.items():
        mix[c] = json.dumps(top_parts)
    return dominant, dominant_share, mix


def _sector_mix(labels: np.ndarray, div: pd.Series, k: int):
    """``(dominant, dominant_share, sector_mix)`` of clusters 0..k-1 from divisions."""
    return _mix_of_counts(_division_counts(labels, div, k), k)


def text_values(series: pd.Series) -> Any:
    """A text column's values for a new frame, kept Arrow-backed when they are.

    ``astype(str).to_numpy()`` would make one Python string per firm and the new frame
    would convert them back: seconds on a national register.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype | pd.StringDtype) and series.notna().all():
        return series.array
    return series.astype("str").to_numpy()


def _multipoint_wkb(
    xy: np.ndarray, sizes: np.ndarray, order: np.ndarray | None = None
) -> np.ndarray:
    """WKB of one multipoint per run of ``sizes`` consecutive rows of ``xy[order]``.

    Parsed, the geometries of ``shapely.multipoints(xy[order], indices=...)`` (tested).

    Written straight from the coordinates: ``shapely.multipoints`` would first make a
    Python point object per firm and then copy each into its collection (3 s for 3M
    firms), and holding every cluster's GEOS points at once costs hundreds of MB
    that the hulls need only a slice at a time.
    """
    point = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    rec = np.empty(len(xy) if order is None else len(order), dtype=point)
    rec["order"] = 1  # little endian
    rec["type"] = 1  # Point
    rec["x"] = xy[:, 0] if order is None else xy[order, 0]
    rec["y"] = xy[:, 1] if order is None else xy[order, 1]
    stops = np.cumsum(sizes)
    header = np.empty(1, dtype=np.dtype([("order", "u1"), ("type", "<u4"), ("n", "<u4")]))
    header["order"], header["type"] = 1, 4  # MultiPoint
    wkb = np.empty(len(sizes), dtype=object)
    start = 0
    for i, (count, stop) in enumerate(zip(sizes.tolist(), stops.tolist(), strict=True)):
        header["n"] = count
        wkb[i] = header.tobytes() + rec[start:stop].tobytes()
        start = stop
    return wkb


def _concave_hulls(wkb: np.ndarray, sizes: np.ndarray, ratio: float) -> np.ndarray:
    """``shapely.concave_hull`` of each multipoint (given as WKB), on every core.

    Shapely releases the GIL, so threads over contiguous slices of about equal point
    counts share the work (the hulls of a national register's biggest clusters are
    most of a run's summary time); the result is the one call's, element for element.
    Each slice's multipoints exist only while its hulls are computed.
    """
    workers = min(os.cpu_count() or 1, 8)
    total = int(sizes.sum())
    if workers < 2 or len(wkb) < 2 or total < 50_000:
        return shapely.concave_hull(shapely.from_wkb(wkb), ratio=ratio)
    from concurrent.futures import ThreadPoolExecutor

    # cost grows a little faster than the points: weigh each cluster by n log n
    cost = np.cumsum(sizes * np.log2(np.maximum(sizes, 2)))
    cuts = np.searchsorted(cost, cost[-1] * np.arange(1, workers * 16) / (workers * 16))
    bounds = np.unique(np.concatenate([[0], cuts + 1, [len(wkb)]]).clip(0, len(wkb)))
    out = np.empty(len(wkb), dtype=object)

    def one(i: int) -> None:
        lo, hi = bounds[i], bounds[i + 1]
        out[lo:hi] = shapely.concave_hull(shapely.from_wkb(wkb[lo:hi]), ratio=ratio)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(bounds) - 1)))
    return out


def _members_by_cluster(labels: np.ndarray, k: int) -> np.ndarray:
    """Positions of the clustered firms (label >= 0), by cluster then position.

    ``argsort(labels, kind="stable")`` without the noise; labels of fewer than 2**15
    clusters are sorted as 16-bit integers (NumPy's radix sort: 5M firms in 0.05 s
    instead of 0.4 s), the same order.
    """
    members = np.flatnonzero(labels >= 0)
    keys = labels[members]
    if k < 2**15:
        keys = keys.astype(np.int16)
    return members[np.argsort(keys, kind="stable")]


def _hulls(xy: np.ndarray, labels: np.ndarray, k: int, ratio: float, buffer_m: float):
    """Concave hull per cluster; buffered convex hull for degenerate clusters."""
    order = _members_by_cluster(labels, k)
    sizes = np.bincount(labels[order], minlength=k)
    if len(sizes) != k or (sizes == 0).any():
        raise AssertionError("every cluster id 0..k-1 must have members")
    wkb = _multipoint_wkb(xy, sizes, order)
    del order
    hull = _concave_hulls(wkb, sizes, ratio)
    poly = (shapely.get_type_id(hull) == 3) & (shapely.area(hull) > 0)
    kind = np.where(poly, "concave", "buffer").astype(object)
    if (~poly).any():
        hull = hull.copy()
        degenerate = shapely.from_wkb(wkb[~poly])
        hull[~poly] = shapely.buffer(shapely.convex_hull(degenerate), buffer_m)
    return hull, kind


def summarize_clusters(
    firms: gpd.GeoDataFrame,
    labels: np.ndarray,
    *,
    is_core: np.ndarray | None = None,
    hull_ratio: float = 0.3,
    buffer_m: float = 100.0,
    reference_year: int | None = None,
) -> gpd.GeoDataFrame:
    """One row per cluster: size, sector mix, hull, density and inclusiveness shares.

    Parameters
    ----------
    firms : GeoDataFrame
        Firms in a projected CRS (metres), the rows that ``labels`` describe.
    labels : ndarray of shape (n,), int
        Cluster per firm, 0..k-1, noise ``-1`` (every id in 0..k-1 used).
    is_core : ndarray of shape (n,), bool, optional
        Core flags; gives ``n_core``.
    hull_ratio : float, default 0.3
        ``ratio`` of :func:`shapely.concave_hull` (1 = convex hull, smaller = tighter).
    buffer_m : float, default 100
        Buffer (metres) around the convex hull of clusters with fewer than 3 distinct
        points or collinear points, whose concave hull has no area.
    reference_year : int, optional
        Year from which "founded in the last 5 years" counts back: firms founded in
        ``reference_year - 4 .. reference_year``. Default: the latest ``founded`` year
        in ``firms`` (the data's own "now", so old registers are not all "old"), else
        the current UTC year.

    Returns
    -------
    GeoDataFrame
        Columns ``cluster_id``, ``n_firms``, ``n_core``, ``employees`` (sum of known
        counts, NaN if none known), ``employees_known`` (firms with a count),
        ``top2_employees`` (employees of the two largest firms, for the dominance rule of
        :mod:`geocluster.disclosure`),
        ``dominant_sector`` (ISIC division with most firms; ties to the smaller code),
        ``dominant_share`` (its share of firms with a known division), ``sector_mix``
        (JSON object of the top 5 divisions' shares), ``centroid_lon``/``centroid_lat``
        (EPSG:4326 of the mean position in the working CRS),
        ``area_km2`` (hull area), ``density_per_km2`` (firms per km^2 of hull),
        ``women_led_share``, ``youth_led_share``, ``micro_share`` (< 10 employees, among firms with a
        count), ``informal_share``, ``recent_share`` (among firms with a known
        ``founded``), ``hull_type`` (``"concave"`` or ``"buffer"``); hull polygons in the
        firms' CRS. Shares are NaN where the column is missing or all values unknown.
    """
    return _summarize(
        FirmTable.from_frame(firms),
        labels,
        is_core=is_core,
        hull_ratio=hull_ratio,
        buffer_m=buffer_m,
        reference_year=reference_year,
    )


def _summarize(
    table: FirmTable,
    labels: np.ndarray,
    *,
    is_core: np.ndarray | None = None,
    hull_ratio: float = 0.3,
    buffer_m: float = 100.0,
    reference_year: int | None = None,
    reference_years: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """:func:`summarize_clusters` of a :class:`FirmTable`: parts, hulls, summary rows.

    The one summary implementation: the local engine, the national scan's pooled pass
    and the Dask engine's workers (:mod:`geocluster.engine._summary`) all come here or
    to its steps (:func:`cluster_parts`, :func:`_hulls`, :func:`summary_frame`).
    ``reference_years`` (one per firm) replaces ``reference_year`` when given: a
    national scan summarises every sector at once, each with the reference year of
    its own firms (the table then records no ``reference_year``).
    """
    xy, crs = table.xy, table.crs
    labels = np.asarray(labels, dtype=np.int64)
    n = xy.shape[0]
    if labels.shape != (n,):
        raise InvalidInput(f"expected {n} labels (one per firm), got shape {labels.shape}")
    hull_ratio, buffer_m = _hull_options(hull_ratio, buffer_m)
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    frame = table.attrs
    if k == 0:
        return empty_summary(crs)
    if reference_years is not None:
        ref = np.asarray(reference_years)
    else:
        if reference_year is None:
            reference_year = resolve_reference_year(latest_founded(frame))
        ref = reference_year
    if len(labels) < HULLS_BESIDE_PARTS:
        parts = cluster_parts(frame, xy, labels, is_core=is_core, reference_year=ref, k=k)
        _check_parts(parts)
        hull, hull_kind = _hulls(xy, labels, k, hull_ratio, buffer_m)
        return summary_frame(parts, hull, hull_kind, crs, reference_year)
    from concurrent.futures import ThreadPoolExecutor

    # The hulls (GEOS, GIL released, most of the time) start at once; the sums are
    # added up meanwhile. Same values as one after the other.
    with ThreadPoolExecutor(1, thread_name_prefix="geocluster-hulls") as pool:
        hulls = pool.submit(_hulls, xy, labels, k, hull_ratio, buffer_m)
        try:
            parts = cluster_parts(frame, xy, labels, is_core=is_core, reference_year=ref, k=k)
            _check_parts(parts)
        except BaseException:
            hulls.cancel()
            if not hulls.cancelled():
                hulls.exception()  # a gap also fails the hulls; the sums' error is the one
            raise
        hull, hull_kind = hulls.result()
    return summary_frame(parts, hull, hull_kind, crs, reference_year)


#: From this many firms a summary computes the hulls beside the per-cluster sums.
HULLS_BESIDE_PARTS = 200_000


def _check_parts(parts) -> None:
    if np.any(parts.sums["n_firms"] == 0):
        raise InvalidInput("expected cluster labels numbered 0..k-1 without gaps")


def _hull_options(hull_ratio: float, buffer_m: float) -> tuple[float, float]:
    hull_ratio = float(hull_ratio)
    if not 0.0 <= hull_ratio <= 1.0:
        raise InvalidInput(f"expected hull_ratio between 0 and 1, got {hull_ratio}")
    return hull_ratio, check_positive(buffer_m, "buffer_m")


#: Columns of :func:`summarize_clusters`' table, in order (the hull is the geometry).
SUMMARY_COLUMNS = (
    "cluster_id", "n_firms", "n_core", "employees", "employees_known", "top2_employees",
    "dominant_sector", "dominant_share", "sector_mix", "centroid_lon", "centroid_lat", "area_km2", "density_per_km2",
    "women_led_share", "youth_led_share", "micro_share", "informal_share", "recent_share", "hull_type",
)  # fmt: skip
#: Firm columns a cluster summary reads (all optional besides the points).
SUMMARY_INPUTS = (
    "sector_code", "isic_division", "employees", "founded", "women_led", "youth_led", "informal",
)  # fmt: skip
_SHARES = ("women_led", "youth_led", "informal")


def empty_summary(crs) -> gpd.GeoDataFrame:
    """The summary table of no cluster."""
    return gpd.GeoDataFrame({c: [] for c in SUMMARY_COLUMNS}, geometry=[], crs=crs)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(float, na_value=np.nan)


def latest_founded(frame: pd.DataFrame) -> float:
    """The latest ``founded`` year among the firms (noise included), NaN if none known."""
    founded = _numbers(frame, "founded")
    return float(np.nanmax(founded)) if np.isfinite(founded).any() else np.nan


def resolve_reference_year(latest: float) -> int:
    """:func:`summarize_clusters`' default reference year from the latest founding year.

    The data's own "now": the latest known founding year, else the current UTC year.
    """
    return int(latest) if np.isfinite(latest) else _dt.datetime.now(_dt.UTC).year


@dataclass
class ClusterParts:
    """Per-cluster sums of some firms of the clusters.

    The parts of disjoint sets of firms add up (:func:`combine_parts`) to the parts of
    their union, so the summary of clusters whose firms lie on several machines is made
    from partial sums computed where the firms are (the Dask engine's workers), and
    :func:`summary_frame` turns the sums of whole clusters into their summary rows.

    Attributes
    ----------
    ids : ndarray of int64
        The clusters present, ascending.
    sums : dict of str to ndarray
        One value per id: ``n_firms``, ``n_core`` (with core flags), ``sx``, ``sy``
        (coordinate sums), ``emp_known``, ``emp_sum``, ``micro``, ``recent_num``,
        ``recent_den`` and ``<column>_num`` / ``<column>_den`` of each share column present.
    top : ndarray of shape (len(ids), 2)
        Each cluster's largest and second largest known employee counts (NaN: none).
    divisions : DataFrame
        ``cluster_id``, ``division``, ``n``: firms per cluster and ISIC division.
    """

    ids: np.ndarray
    sums: dict[str, np.ndarray]
    top: np.ndarray
    divisions: pd.DataFrame


def _grouped_sums(val, known, labels, k) -> tuple[np.ndarray, np.ndarray]:
    m = known & (labels >= 0)
    num = np.bincount(labels[m], weights=val[m].astype(float), minlength=k)
    den = np.bincount(labels[m], minlength=k)
    return num, den


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    den = np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def cluster_parts(
    frame: pd.DataFrame,
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    is_core: np.ndarray | None,
    reference_year: int | np.ndarray,
    k: int | None = None,
) -> ClusterParts:
    """Per-cluster sums of some firms (see :class:`ClusterParts`).

    Parameters
    ----------
    frame : DataFrame
        The firms' attributes (any of :data:`SUMMARY_INPUTS`), one row per label.
    xy : ndarray of shape (n, 2)
        Their working-CRS coordinates.
    labels : ndarray of shape (n,)
        Cluster per firm, noise ``-1``.
    is_core : ndarray of bool, optional
    reference_year : int or ndarray of shape (n,)
        As :func:`summarize_clusters` (resolved: the same for every part), or one per
        firm (a national scan's sectors, each with its own).
    k : int, optional
        Labels are 0..k-1 (all firms of the clusters); otherwise any ids.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if k is None:  # any cluster ids: count them 0..k-1 here, keep the ids
        clustered = labels >= 0
        ids, inverse = np.unique(labels[clustered], return_inverse=True)
        labels = np.full(n, -1, np.int64)
        labels[clustered] = inverse
        k = len(ids)
    else:
        ids = np.arange(k, dtype=np.int64)
    m = labels >= 0
    lab = labels[m]
    sums = {"n_firms": np.bincount(lab, minlength=k)}
    if is_core is not None:
        sums["n_core"] = np.bincount(
            lab, weights=np.asarray(is_core, bool)[m].astype(float), minlength=k
        )
    sums["sx"] = np.bincount(lab, weights=xy[m, 0], minlength=k)
    sums["sy"] = np.bincount(lab, weights=xy[m, 1], minlength=k)

    emp = _numbers(frame, "employees")
    known_emp = np.isfinite(emp)
    sel = m & known_emp
    sums["emp_known"] = np.bincount(labels[sel], minlength=k)
    sums["emp_sum"] = np.bincount(labels[sel], weights=emp[sel], minlength=k)
    # Employment of the 2 largest firms: the (k=2, p) dominance rule of
    # geocluster.disclosure compares it with ``employees``.
    top = _two_largest(labels[sel], emp[sel], k)
    sums["micro"] = _grouped_sums(
        np.where(known_emp, emp < MICRO_MAX_EMPLOYEES, False), known_emp, labels, k
    )[0]

    founded = _numbers(frame, "founded")
    known_f = np.isfinite(founded)
    sums["recent_num"], sums["recent_den"] = _grouped_sums(
        np.where(
            known_f,
            (founded >= reference_year - (RECENT_YEARS - 1)) & (founded <= reference_year),
            False,
        ),
        known_f,
        labels,
        k,
    )
    for column in _SHARES:
        if column in frame.columns:
            val, known = _bool_values(frame[column])
            sums[f"{column}_num"], sums[f"{column}_den"] = _grouped_sums(val, known, labels, k)

    # Sector mix at ISIC division level.
    if "isic_division" in frame.columns:
        div = frame["isic_division"].astype("str")
    elif "sector_code" in frame.columns:
        div = frame["sector_code"].astype("str").str.slice(0, 2)
    else:
        div = pd.Series([pd.NA] * n, dtype="str")
    divisions = _division_counts(labels, div, k)
    divisions["cluster_id"] = ids[divisions["cluster_id"].to_numpy()]
    return ClusterParts(ids=ids, sums=sums, top=top, divisions=divisions)


def combine_parts(parts: list[ClusterParts]) -> ClusterParts:
    """The parts of the union of disjoint firm sets (associative: a tree reduction).

    Counts add up exactly; coordinate and employee sums up to float rounding.
    """
    parts = [p for p in parts if p is not None]
    if len(parts) == 1:
        return parts[0]
    keys = list(parts[0].sums)
    if any(list(p.sums) != keys for p in parts):
        raise InvalidInput("expected cluster parts of firms with the same columns")
    ids, inverse = np.unique(np.concatenate([p.ids for p in parts]), return_inverse=True)
    sums = {}
    for key in keys:
        values = np.concatenate([p.sums[key] for p in parts])
        total = np.bincount(inverse, weights=values, minlength=len(ids))
        sums[key] = total.astype(np.int64) if values.dtype.kind in "iu" else total
    # the two largest of the union: the two largest of every part's two largest
    tops = np.concatenate([p.top for p in parts]).ravel()
    owner = np.repeat(inverse, 2)
    known = np.isfinite(tops)
    top = _two_largest(owner[known], tops[known], len(ids))
    divisions = (
        pd.concat([p.divisions for p in parts], ignore_index=True)
        .groupby(["cluster_id", "division"])["n"]
        .sum()
        .reset_index()
    )
    return ClusterParts(ids=ids, sums=sums, top=top, divisions=divisions)


def summary_frame(
    parts: ClusterParts, hull: np.ndarray, hull_kind: np.ndarray, crs, reference_year: int | None
) -> gpd.GeoDataFrame:
    """The summary rows (:func:`summarize_clusters`) of whole clusters 0..k-1.

    Parameters
    ----------
    parts : ClusterParts
        The sums of every firm of the clusters.
    hull, hull_kind : ndarray of shape (k,)
        Each cluster's hull polygon (working CRS) and ``"concave"`` or ``"buffer"``.
    crs
        The working CRS.
    reference_year : int or None
        The year the parts' ``recent`` counts were made with (recorded in the table's
        ``attrs``; None when each firm had its own).
    """
    k = len(parts.ids)
    if not np.array_equal(parts.ids, np.arange(k)):
        raise InvalidInput("expected the parts of every cluster 0..k-1")
    s = parts.sums
    n_firms = s["n_firms"]
    cx = s["sx"] / n_firms
    cy = s["sy"] / n_firms
    emp_known = s["emp_known"]
    employees = np.where(emp_known > 0, s["emp_sum"], np.nan)
    top2 = _pair_sums(parts.top)
    shares = {
        c: _ratio(s[f"{c}_num"], s[f"{c}_den"]) if f"{c}_num" in s else np.full(k, np.nan)
        for c in _SHARES
    }
    dominant, dominant_share, mix = _mix_of_counts(parts.divisions, k)
    area_km2 = shapely.area(hull) / 1e6

    from pyproj import Transformer

    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(cx, cy)
    out = gpd.GeoDataFrame(
        {
            "cluster_id": np.arange(k, dtype=np.int64),
            "n_firms": n_firms.astype(np.int64),
            "n_core": s["n_core"] if "n_core" in s else np.full(k, np.nan),
            "employees": employees,
            "employees_known": emp_known.astype(np.int64),
            "top2_employees": top2,
            "dominant_sector": pd.Series(dominant, dtype="str"),
            "dominant_share": dominant_share,
            "sector_mix": mix.astype(str),
            "centroid_lon": np.asarray(lon, float),
            "centroid_lat": np.asarray(lat, float),
            "area_km2": area_km2,
            "density_per_km2": n_firms / area_km2,
            "women_led_share": shares["women_led"],
            "youth_led_share": shares["youth_led"],
            "micro_share": _ratio(s["micro"], emp_known),
            "informal_share": shares["informal"],
            "recent_share": _ratio(s["recent_num"], s["recent_den"]),
            "hull_type": hull_kind.astype(str),
        },
        geometry=hull,
        crs=crs,
    )
    if "n_core" in s:
        out["n_core"] = out["n_core"].astype(np.int64)
    if reference_year is not None:
        out.attrs["reference_year"] = int(reference_year)
    return out


def summary_options(
    method: str = "dbscan",
    eps_m: float = 1000.0,
    *,
    hull_ratio: float = HULL_RATIO,
    buffer_m: float | None = None,
) -> dict[str, float]:
    """``hull_ratio`` and ``buffer_m`` that :func:`cluster_firms` summarises with.

    The buffer of degenerate hulls defaults to ``eps_m / 2`` for DBSCAN, 100 m for
    HDBSCAN. An engine summarising clusters where the firms are uses the same values.
    """
    if buffer_m is None:
        buffer_m = float(eps_m) / 2 if method == "dbscan" else 100.0
    return {"hull_ratio": hull_ratio, "buffer_m": buffer_m}


def cluster_firms(
    firms: gpd.GeoDataFrame,
    *,
    method: str = "dbscan",
    eps_m: float = 1000.0,
    min_samples: float = 10,
    min_cluster_size: int = 15,
    weight: str | None = None,
    hull_ratio: float = HULL_RATIO,
    buffer_m: float | None = None,
    reference_year: int | None = None,
    engine=None,
) -> FirmClusters:
    """Density clusters of firm locations with per-firm labels and per-cluster summaries.

    Parameters
    ----------
    firms : GeoDataFrame
        Firms (already selected) in a projected CRS in metres.
    method : {"dbscan", "hdbscan"}
        :class:`~geocluster.clustering.dbscan.GridDBSCAN` (exact DBSCAN) or
        :class:`~geocluster.clustering.hdbscan.HDBSCANClusterer`.
    eps_m : float, default 1000
        DBSCAN radius in metres.
    min_samples : float, default 10
        DBSCAN: (weighted) neighbours for a core firm, itself included. HDBSCAN: the
        core-distance neighbourhood.
    min_cluster_size : int, default 15
        HDBSCAN's smallest cluster.
    weight : {"employees"} or None
        Weight firms by employees (see :func:`firm_weights`): with DBSCAN a firm is
        core when the employees within ``eps_m`` sum to ``min_samples``.
    hull_ratio : float, default 0.3
        Concave hull ratio (see :func:`summarize_clusters`).
    buffer_m : float, optional
        Buffer for degenerate hulls; default ``eps_m / 2`` for DBSCAN, 100 m for HDBSCAN.
    reference_year : int, optional
        See :func:`summarize_clusters`.
    engine : Engine, optional
        Computes DBSCAN labels instead of the in-process kernel (``--engine dask``: on
        the workers of a Dask cluster); the labels are equal (tested). When its result
        carries the cluster summaries too (``DBSCANResult.clusters``, made where the
        firms are with :func:`summary_options`), they are used as they are.

    Returns
    -------
    FirmClusters
        Labels per firm, summaries per cluster, counts and parameters.
    """
    if method not in METHODS:
        raise InvalidInput(f"expected method one of {list(METHODS)}, got {method!r}")
    table = FirmTable.from_frame(firms)
    if len(table) and "firm_id" not in firms.columns:
        firm_weights(table.attrs, weight)  # its errors come first, as they always did
        raise InvalidInput(f"expected a firm_id column, got columns {list(firms.columns)}")
    result = cluster_firm_table(
        table,
        method=method,
        eps_m=eps_m,
        min_samples=min_samples,
        min_cluster_size=min_cluster_size,
        weight=weight,
        hull_ratio=hull_ratio,
        buffer_m=buffer_m,
        reference_year=reference_year,
        engine=engine,
    )
    labels = result.labels
    label_frame = gpd.GeoDataFrame(
        {c: labels[c].array for c in labels.columns},
        geometry=firms.geometry.to_numpy(),
        crs=firms.crs,
    )
    return dataclasses.replace(result, labels=label_frame, xy=None)


def cluster_firm_table(
    table: FirmTable,
    *,
    method: str = "dbscan",
    eps_m: float = 1000.0,
    min_samples: float = 10,
    min_cluster_size: int = 15,
    weight: str | None = None,
    hull_ratio: float = HULL_RATIO,
    buffer_m: float | None = None,
    reference_year: int | None = None,
    engine=None,
) -> FirmClusters:
    """:func:`cluster_firms` of a :class:`FirmTable`: labels without point geometry.

    The same labels and summaries as :func:`cluster_firms` of the same firms (tested);
    ``labels`` is a plain DataFrame (``firm_id``, ``cluster_id``, ``is_core``) whose
    rows are at ``xy``.
    """
    result, summarize = label_firm_table(
        table,
        method=method,
        eps_m=eps_m,
        min_samples=min_samples,
        min_cluster_size=min_cluster_size,
        weight=weight,
        hull_ratio=hull_ratio,
        buffer_m=buffer_m,
        reference_year=reference_year,
        engine=engine,
    )
    return dataclasses.replace(result, clusters=summarize())


def label_firm_table(
    table: FirmTable,
    *,
    method: str = "dbscan",
    eps_m: float = 1000.0,
    min_samples: float = 10,
    min_cluster_size: int = 15,
    weight: str | None = None,
    hull_ratio: float = HULL_RATIO,
    buffer_m: float | None = None,
    reference_year: int | None = None,
    engine=None,
) -> tuple[FirmClusters, Callable[[], gpd.GeoDataFrame]]:
    """:func:`cluster_firm_table` in two steps: the labels now, the summaries later.

    Returns
    -------
    (FirmClusters, callable)
        The result without its ``clusters`` (None; ``params`` complete), and a
        function of no argument returning them: a caller can compute the summaries
        (mostly hulls, which release the GIL) while it stores the labels. When the
        engine summarised the clusters where the firms are, the function returns its
        table.
    """
    if method not in METHODS:
        raise InvalidInput(f"expected method one of {list(METHODS)}, got {method!r}")
    xy, attrs = table.xy, table.attrs
    if xy.shape[0] == 0:
        raise InvalidInput("expected at least one firm to cluster, got none after filtering")
    w = firm_weights(attrs, weight)
    if "firm_id" not in attrs.columns:
        raise InvalidInput(f"expected a firm_id column, got columns {list(attrs.columns)}")
    labels, core, params, computed = _fit_labels(
        xy,
        w,
        method=method,
        eps_m=eps_m,
        min_samples=min_samples,
        min_cluster_size=min_cluster_size,
        engine=engine,
    )
    params["weight"] = weight
    options = summary_options(method, eps_m, hull_ratio=hull_ratio, buffer_m=buffer_m)
    _hull_options(**options)  # checked now, not when summarising
    n_clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
    params["hull_ratio"] = hull_ratio
    if computed is not None:
        _check_computed(computed, n_clusters)
        # the year the engine's summaries were made with (the client may not have read
        # the founding years: on the Dask engine the workers did)
        params["reference_year"] = computed.attrs.get("reference_year")
        summarize = functools.partial(_given, computed)
    else:
        # what the summaries record (none without a cluster)
        if reference_year is not None:
            year = reference_year
        else:
            year = resolve_reference_year(latest_founded(attrs))
        params["reference_year"] = int(year) if n_clusters else None
        summarize = functools.partial(
            _summarize, table, labels, is_core=core, reference_year=reference_year, **options
        )
    label_frame = pd.DataFrame(
        {
            "firm_id": text_values(attrs["firm_id"]),
            "cluster_id": labels.astype(np.int64),
            "is_core": core,
        }
    )
    result = FirmClusters(
        labels=label_frame,
        clusters=None,
        n_clusters=n_clusters,
        noise=int((labels < 0).sum()),
        params=params,
        xy=xy,
    )
    return result, summarize


def _given(summary: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return summary


def _check_computed(summary: gpd.GeoDataFrame, n_clusters: int) -> None:
    if len(summary) != n_clusters:
        from geocluster.engine import EngineError

        raise EngineError("the engine summarised other clusters than it labelled")  # a bug


def _fit_labels(
    xy: np.ndarray,
    w: np.ndarray | None,
    *,
    method: str,
    eps_m: float,
    min_samples: float | None,
    min_cluster_size: int,
    engine=None,
) -> tuple[np.ndarray, np.ndarray, dict, gpd.GeoDataFrame | None]:
    """``(labels, core, params, clusters)`` of one clustering of ``xy``.

    ``clusters`` is the engine's summary table when it made one where the firms are
    (``DBSCANResult.clusters``), else None.
    """
    if method == "dbscan":
        clusters = None
        if engine is not None:  # e.g. the Dask engine: the same labels, computed elsewhere
            import pyarrow as pa

            cols = {"x": xy[:, 0], "y": xy[:, 1]}
            if w is not None:
                cols["w"] = np.asarray(w, dtype="float64")
            found = engine.dbscan(
                pa.table(cols),
                eps_m=eps_m,
                min_samples=min_samples,
                weight="w" if w is not None else None,
            )
            labels = np.asarray(found.labels, dtype=np.int64)
            core = np.asarray(found.core, dtype=bool)
            clusters = getattr(found, "clusters", None)
        else:
            model = GridDBSCAN(eps_m, min_samples=min_samples).fit(xy, sample_weight=w)
            labels = model.labels_
            core = np.zeros(len(labels), bool)
            core[model.core_sample_indices_] = True
        params = {"method": method, "eps_m": float(eps_m), "min_samples": min_samples}
        return labels, core, params, clusters
    ms = None if min_samples is None else int(min_samples)
    model = HDBSCANClusterer(min_cluster_size=min_cluster_size, min_samples=ms).fit(
        xy, sample_weight=w
    )
    labels = model.labels_
    # HDBSCAN has no core points; firms at full membership strength play that role.
    core = (labels >= 0) & (model.probabilities_ >= 1.0)
    params = {"method": method, "min_cluster_size": min_cluster_size, "min_samples": ms}
    return labels, core, params, None
