"""Candidate-cluster ranking: a transparent score from named, normalised components.

The components follow UNIDO's criteria for selecting clusters to support (UNIDO 2010,
*Cluster development for pro-poor growth: the UNIDO approach*, "cluster selection"): the
cluster's economic weight (size in firms and in jobs), its specialisation, its density, its
dynamism and growth, its inclusiveness (women-led and micro firms, youth-led firms, informal
firms: UNIDO's pro-poor approach targets clusters where these are many), its institutional
support and the territorial assets it can build on. Each component is in [0, 1] and shown
next to the score, so a planner can see *why* a cluster ranks high and re-weight.

Normalisation (across the candidate clusters being ranked):

- ``size_firms``, ``size_employment``, ``density``, ``assets``, ``institutions``: min–max of
  ``log1p(value)`` (sizes and counts are heavy-tailed: without the log one metropolis
  flattens everything else);
- ``specialisation``: min–max of the location quotient of the cluster's dominant sector in
  its region (clipped at ``LQ_CAP`` = 5 so one tiny-region outlier does not flatten the rest);
- ``growth``: min–max of the growth rate the caller gives (the CAGR of the cluster's firms
  from :mod:`geocluster.dynamics`, or the relative change in firms between two registry
  versions from :mod:`geocluster.clustering.change`), clipped to ``[-GROWTH_CAP,
  GROWTH_CAP]`` (±100 %) first so one outlier does not flatten the rest;
- ``dynamism`` (share of firms founded in the last 5 years), ``inclusiveness`` (mean of
  the women-led and micro-firm shares), ``youth`` (youth-led share) and ``informality``
  (informal share) are shares already in [0, 1] and are used as they are.

When all candidates have the same value, a min–max component is 1 for all (0 if the value is
0). A cluster missing a value gets 0 for that component. A component that no candidate has
(no employment data, no LQ table, no assets, no youth-led flags, ...) is left out and the
remaining weights are rescaled; ``attrs["weights"]`` holds the weights actually used
(summing to 1) and ``attrs["left_out"]`` says, for each component left out, why (its input
missing, or its weight set to 0) -- never a silent 0 weight.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput

__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "GROWTH_CAP",
    "LQ_CAP",
    "rank_clusters",
    "validate_weights",
]

COMPONENTS = (
    "size_firms",
    "size_employment",
    "specialisation",
    "density",
    "dynamism",
    "growth",
    "inclusiveness",
    "youth",
    "informality",
    "institutions",
    "assets",
)

#: Default weights: economic potential (size 0.24, specialisation 0.16, density 0.08),
#: dynamism and growth 0.18, inclusiveness (women-led and micro 0.10, youth-led 0.06,
#: informal 0.04) 0.20, support institutions 0.07, territorial assets 0.07. The first
#: seven keep the proportions of the original UNIDO-criteria weights.
DEFAULT_WEIGHTS: dict[str, float] = {
    "size_firms": 0.12,
    "size_employment": 0.12,
    "specialisation": 0.16,
    "density": 0.08,
    "dynamism": 0.10,
    "growth": 0.08,
    "inclusiveness": 0.10,
    "youth": 0.06,
    "informality": 0.04,
    "institutions": 0.07,
    "assets": 0.07,
}

LQ_CAP = 5.0
GROWTH_CAP = 1.0


def validate_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Defaults updated with ``weights``; raises InvalidInput on unknown keys or bad values.

    Keys given replace the default for that component; the others keep their default (give
    0 to switch a component off). At least one weight must be positive.
    """
    out = dict(DEFAULT_WEIGHTS)
    if weights is None:
        return out
    if not isinstance(weights, Mapping):
        raise InvalidInput(f"expected weights as an object {{component: weight}}, got {weights!r}")
    unknown = sorted(set(weights) - set(COMPONENTS))
    if unknown:
        raise InvalidInput(f"expected weight keys among {list(COMPONENTS)}, got unknown {unknown}")
    for k, v in weights.items():
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise InvalidInput(f"expected a number for weight {k!r}, got {v!r}")
        if not math.isfinite(float(v)) or v < 0:
            raise InvalidInput(f"expected a finite non-negative weight for {k!r}, got {v}")
        out[k] = float(v)
    if sum(out.values()) <= 0:
        raise InvalidInput("expected at least one positive weight, got all zero")
    return out


def _minmax(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, float)
    known = np.isfinite(v)
    out = np.zeros(len(v))
    if not known.any():
        return np.full(len(v), np.nan)
    lo, hi = v[known].min(), v[known].max()
    if hi > lo:
        out[known] = (v[known] - lo) / (hi - lo)
    else:
        out[known] = 1.0 if hi > 0 else 0.0
    return out


def _col(frame: pd.DataFrame, *names: str) -> np.ndarray | None:
    for n in names:
        if n in frame.columns:
            return pd.to_numeric(frame[n], errors="coerce").to_numpy(float, na_value=np.nan)
    return None


def _share(v: np.ndarray | None, n: int) -> np.ndarray:
    if v is None:
        return np.full(n, np.nan)
    return np.clip(v, 0.0, 1.0)


def rank_clusters(
    clusters: gpd.GeoDataFrame | pd.DataFrame,
    *,
    lq: pd.DataFrame | None = None,
    cluster_regions: pd.Series | np.ndarray | list | None = None,
    assets: gpd.GeoDataFrame | None = None,
    radius_m: float = 5000.0,
    weights: Mapping[str, float] | None = None,
    institutions: np.ndarray | pd.Series | list | None = None,
    growth: np.ndarray | pd.Series | list | None = None,
) -> pd.DataFrame:
    """Score and rank candidate clusters.

    Parameters
    ----------
    clusters : GeoDataFrame
        One row per cluster, as ``geocluster.clustering`` summarises them: ``cluster_id``,
        ``n_firms``, ``employees``, ``dominant_sector``, ``density_per_km2``,
        ``recent_share``, ``women_led_share``, ``micro_share``, ``youth_led_share``,
        ``informal_share`` (``share_recent`` / ``share_women_led`` / ``share_micro`` /
        ``share_youth_led`` / ``share_informal`` are accepted too), optionally
        ``n_institutions`` and ``growth_rate`` (see below), and the hull geometry in a
        projected CRS in metres (needed only with ``assets``).
    lq : DataFrame, optional
        Region × sector location quotients with columns ``region_id``, ``sector``, ``lq``
        (``geocluster.specialization.long_table``), sectors at the level of
        ``dominant_sector`` (ISIC division).
    cluster_regions : sequence, optional
        Aligned with ``clusters``; needed with ``lq``. Each item is the cluster's region id,
        or a mapping ``{region_id: weight}`` (e.g. the number of the cluster's firms in
        each region) when a cluster spans several regions: its LQ is then the weighted mean
        of the dominant sector's LQ over those regions and ``region_id`` the heaviest one.
        ``None`` for a cluster in no region.
    assets : GeoDataFrame, optional
        Territorial assets in the same projected CRS as ``clusters``.
    radius_m : float
        Assets within this distance (metres) of a cluster's hull count for it.
    weights : dict, optional
        Component weights (see :func:`validate_weights`, :data:`DEFAULT_WEIGHTS`).
    institutions : array-like of float, shape (n,), optional
        Number of support institutions within reach of each cluster (training centres,
        associations, ...), counted by the caller; overrides an ``n_institutions`` column.
    growth : array-like of float, shape (n,), optional
        Growth rate of each cluster (e.g. ``0.05`` = +5 % a year; NaN unknown): the CAGR of
        its firms from :func:`geocluster.dynamics.growth` or the relative change in firms
        between two versions from :func:`geocluster.clustering.change.cluster_change`;
        overrides a ``growth_rate`` (or ``growth``) column.

    Returns
    -------
    DataFrame
        ``cluster_id, rank, score`` (in [0, 1]), the components, and the raw inputs
        (``n_firms, employees, dominant_sector, region_id, lq, density_per_km2,
        recent_share, growth_rate, women_led_share, micro_share, youth_led_share,
        informal_share, n_institutions, n_assets``); sorted by rank (1 = best).
        ``attrs["weights"]``: weights used; ``attrs["left_out"]``: ``{component: reason}``
        for each component not in the score.
    """
    w = validate_weights(weights)
    if not isinstance(clusters, pd.DataFrame):
        raise InvalidInput(f"expected clusters as a GeoDataFrame, got {type(clusters).__name__}")
    if not np.isfinite(radius_m) or radius_m < 0:
        raise InvalidInput(f"expected radius_m >= 0 metres, got {radius_m}")
    n = len(clusters)
    if "n_firms" not in clusters.columns:
        raise InvalidInput(
            f"expected a clusters summary with n_firms, got columns {list(clusters.columns)}"
        )
    frame = clusters.reset_index(drop=True)
    ids = frame["cluster_id"].to_numpy() if "cluster_id" in frame.columns else np.arange(n)
    n_firms = _col(frame, "n_firms")
    employees = _col(frame, "employees")
    density = _col(frame, "density_per_km2", "density")
    recent = _share(_col(frame, "recent_share", "share_recent"), n)
    women = _share(_col(frame, "women_led_share", "share_women_led"), n)
    micro = _share(_col(frame, "micro_share", "share_micro"), n)
    youth = _share(_col(frame, "youth_led_share", "share_youth_led"), n)
    informal = _share(_col(frame, "informal_share", "share_informal"), n)
    n_inst = _aligned(institutions, n, "institutions", non_negative=True)
    if n_inst is None:
        n_inst = _col(frame, "n_institutions")
        if n_inst is not None and (n_inst[np.isfinite(n_inst)] < 0).any():
            raise InvalidInput("expected non-negative n_institutions counts")
    growth_rate = _aligned(growth, n, "growth")
    if growth_rate is None:
        growth_rate = _col(frame, "growth_rate", "growth")

    region_id = np.full(n, None, dtype=object)
    lq_value = np.full(n, np.nan)
    if lq is not None:
        missing = {"region_id", "sector", "lq"} - set(lq.columns)
        if missing:
            raise InvalidInput(
                f"expected an LQ table with region_id, sector, lq; missing {sorted(missing)}"
            )
        if cluster_regions is None or len(cluster_regions) != n:
            got = None if cluster_regions is None else len(cluster_regions)
            raise InvalidInput(f"expected one region id per cluster ({n}) with lq, got {got}")
        if "dominant_sector" not in frame.columns:
            raise InvalidInput("expected a dominant_sector column to look up the LQ")
        table = lq.assign(
            region_id=lq["region_id"].astype(str), sector=lq["sector"].astype(str)
        ).set_index(["region_id", "sector"])["lq"]
        table = pd.to_numeric(table[~table.index.duplicated()], errors="coerce")
        sectors = frame["dominant_sector"].astype(str).to_numpy()
        for i, where in enumerate(cluster_regions):
            shares = _region_shares(where)
            if not shares:
                continue
            region_id[i] = max(shares, key=shares.get)
            vals = np.array([table.get((r, sectors[i]), np.nan) for r in shares], float)
            wts = np.array(list(shares.values()), float)
            ok = np.isfinite(vals)
            if ok.any() and wts[ok].sum() > 0:
                lq_value[i] = float(np.sum(vals[ok] * wts[ok]) / wts[ok].sum())

    n_assets = np.full(n, np.nan)
    if assets is not None:
        n_assets = _count_assets(frame, assets, radius_m)

    incl_parts = np.vstack([women, micro])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN, as wanted
        inclusiveness = np.nanmean(incl_parts, axis=0) if n else np.zeros(0)

    nan = np.full(n, np.nan)
    comps = {
        "size_firms": _minmax(np.log1p(n_firms)),
        "size_employment": _minmax(np.log1p(employees)) if employees is not None else nan,
        "specialisation": _minmax(np.minimum(lq_value, LQ_CAP)),
        "density": _minmax(np.log1p(density)) if density is not None else nan,
        "dynamism": recent,
        "growth": _minmax(np.clip(growth_rate, -GROWTH_CAP, GROWTH_CAP))
        if growth_rate is not None
        else nan,
        "inclusiveness": inclusiveness,
        "youth": youth,
        "informality": informal,
        "institutions": _minmax(np.log1p(n_inst)) if n_inst is not None else nan,
        "assets": _minmax(np.log1p(n_assets)),
    }
    why = {
        "size_employment": "no cluster has a known employee count (employees)",
        "specialisation": "no LQ table given (pass boundaries)"
        if lq is None
        else "no cluster's dominant sector has an LQ in its regions",
        "density": "no cluster has a density (density_per_km2)",
        "dynamism": "no cluster has a share of recent firms (needs founding years)",
        "growth": "no growth given (CAGR from dynamics, or the change between two versions)"
        if growth_rate is None
        else "no cluster has a known growth rate",
        "inclusiveness": "no cluster has a women-led or micro-firm share",
        "youth": "no cluster has a youth-led share (needs youth_led in the register)",
        "informality": "no cluster has an informal share (needs informal in the register)",
        "institutions": "no support institutions given (count within reach per cluster)"
        if n_inst is None
        else "no cluster has a known number of institutions",
        "assets": "no assets dataset given" if assets is None else "",
        "size_firms": "no cluster has a firm count",
    }
    left_out: dict[str, str] = {}
    for c in COMPONENTS:
        if n and not np.isfinite(comps[c]).any():
            left_out[c] = why[c]
        elif w[c] == 0:
            left_out[c] = "weight set to 0"
    used = {c: (0.0 if c in left_out else w[c]) for c in COMPONENTS}
    total = sum(used.values())
    if total <= 0:
        raise InvalidInput(
            "expected a positive weight on at least one available component; "
            f"unavailable here: {sorted(left_out)}"
        )
    used = {c: v / total for c, v in used.items()}
    score = np.zeros(n)
    for c in COMPONENTS:
        comps[c] = np.nan_to_num(comps[c], nan=0.0) if c not in left_out else np.full(n, np.nan)
        if used[c] > 0:
            score += used[c] * comps[c]
    out = pd.DataFrame(
        {
            "cluster_id": ids,
            "score": score,
            **{c: comps[c] for c in COMPONENTS},
            "n_firms": n_firms,
            "employees": employees if employees is not None else np.full(n, np.nan),
            "dominant_sector": frame["dominant_sector"].astype(str).to_numpy()
            if "dominant_sector" in frame.columns
            else np.full(n, None, dtype=object),
            "region_id": region_id,
            "lq": lq_value,
            "density_per_km2": density if density is not None else np.full(n, np.nan),
            "recent_share": recent,
            "growth_rate": growth_rate if growth_rate is not None else nan,
            "women_led_share": women,
            "micro_share": micro,
            "youth_led_share": youth,
            "informal_share": informal,
            "n_institutions": n_inst if n_inst is not None else nan,
            "n_assets": n_assets,
        }
    )
    out = out.sort_values(["score", "cluster_id"], ascending=[False, True], kind="stable")
    out.insert(1, "rank", np.arange(1, n + 1))
    out = out.reset_index(drop=True)
    out.attrs["weights"] = used
    out.attrs["left_out"] = left_out
    out.attrs["radius_m"] = float(radius_m)
    return out


def _aligned(values, n: int, name: str, *, non_negative: bool = False) -> np.ndarray | None:
    """A caller-given per-cluster array as floats (NaN unknown), or None when not given."""
    if values is None:
        return None
    v = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce")
    arr = v.to_numpy(float, na_value=np.nan)
    if arr.shape != (n,):
        raise InvalidInput(f"expected one {name} value per cluster ({n}), got {arr.shape[0]}")
    if non_negative and (arr[np.isfinite(arr)] < 0).any():
        raise InvalidInput(f"expected non-negative {name} counts, got negative values")
    return arr


def _region_shares(where) -> dict[str, float]:
    """``{region_id: weight}`` from a region id or a mapping of region ids to weights."""
    if where is None or (not isinstance(where, Mapping) and pd.isna(where)):
        return {}
    if isinstance(where, Mapping):
        out = {}
        for k, v in where.items():
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise InvalidInput(f"expected numeric region weights, got {v!r} for {k!r}")
            if not math.isfinite(float(v)) or v < 0:
                raise InvalidInput(f"expected non-negative region weights, got {v!r} for {k!r}")
            if v > 0:
                out[str(k)] = float(v)
        return out
    return {str(where): 1.0}


def _count_assets(frame: pd.DataFrame, assets: gpd.GeoDataFrame, radius_m: float) -> np.ndarray:
    """Assets whose geometry lies within ``radius_m`` of each cluster's hull."""
    import shapely

    if not isinstance(frame, gpd.GeoDataFrame) or not isinstance(assets, gpd.GeoDataFrame):
        raise InvalidInput("expected clusters and assets as GeoDataFrames to count assets")
    from geocluster.crs import ensure_projected

    if frame.crs is None or assets.crs is None:
        raise InvalidInput("expected clusters and assets with a CRS to count assets")
    ensure_projected(frame.crs)
    if not frame.crs.equals(assets.crs):
        raise InvalidInput(
            f"expected assets in the clusters' CRS {frame.crs.to_string()}, got "
            f"{assets.crs.to_string()}"
        )
    hulls = np.asarray(frame.geometry.values)
    geoms = np.asarray(assets.geometry.values)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    counts = np.zeros(len(hulls))
    if len(geoms) == 0 or len(hulls) == 0:
        return counts
    tree = shapely.STRtree(geoms)
    c_idx, _ = tree.query(hulls, predicate="dwithin", distance=float(radius_m))
    np.add.at(counts, c_idx, 1)
    return counts
