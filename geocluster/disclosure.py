"""Disclosure control: the one place every output passes before leaving the service.

Firm microdata come from business registers and are confidential. The API
routes tiles, items, cluster summaries, region × sector tables and downloads
through :meth:`DisclosurePolicy.apply`, so the rules live here:

- **minimum contributors**: a published cell or cluster needs at least
  ``min_contributors`` firms (3, the usual statistical-office threshold);
- **dominance** ``(k, p)``: the ``k`` largest firms must not make up more than
  ``p`` of a cell's employment (checked where the caller passes the top-k sum);
- **rounding** of published counts;
- **no exact firm coordinates** in public layers when ``firm_points`` is off
  (a concave hull's corners are firm locations, so hulls are smoothed too).

The default policy is *permissive*: it flags cells (``disclosure`` column) but
suppresses nothing, and allows firm points. ``enforce=True`` suppresses.

:func:`apply` is the seam every analysis result passes: it receives the
:class:`~geocluster.analyses.result.Result` whose layers declare their kind
(``firm_points``, ``cell_counts``, ``region_table``, ``cluster_summary``, ``surface``,
``public``) and the caller's :class:`Principal`; nothing is guessed from columns.
Anyone below ``editor`` gets the policy enforced with no firm points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocluster.errors import DisclosureError, InvalidInput

if TYPE_CHECKING:
    from geocluster.analyses.result import Layer, Result

#: Roles, lowest first (ARCHITECTURE.md, "Principals").
ROLES = ("viewer", "editor", "admin")
#: Side of the fixed lon/lat grid firm points are counted in for callers without
#: microdata access (degrees; about 5.5 km of latitude).
POINT_GRID_DEG = 0.05


@dataclass(frozen=True)
class Principal:
    """Who is asking: a name and a role among :data:`ROLES`."""

    name: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInput(f"expected a role in {ROLES}, got {self.role!r}")

    @property
    def sees_microdata(self) -> bool:
        """Editors and admins see firm points and small cells."""
        return ROLES.index(self.role) >= ROLES.index("editor")


#: Output kinds the policy knows.
KINDS = ("firms", "labels", "clusters", "table", "assets", "boundaries", "indicators", "other")


@dataclass(frozen=True)
class DisclosurePolicy:
    """Rules applied to every output.

    Parameters
    ----------
    min_contributors : int
        Minimum number of firms behind a published cell or cluster.
    dominance_k, dominance_p : int, float
        ``(k, p)`` dominance rule: flag a cell where the ``k`` largest firms hold
        more than share ``p`` of its employment.
    round_to : int or None
        Round published counts to a multiple of this (None: exact).
    firm_points : bool
        Whether exact firm coordinates may be published.
    enforce : bool
        False: flag only (permissive). True: suppress flagged values.
    hull_smoothing_m : float
        Buffer (metres, roughly) applied to cluster hulls when ``firm_points`` is off.
    """

    min_contributors: int = 3
    dominance_k: int = 2
    dominance_p: float = 0.85
    round_to: int | None = None
    firm_points: bool = True
    enforce: bool = False
    hull_smoothing_m: float = 250.0

    def __post_init__(self) -> None:
        if self.min_contributors < 1:
            raise InvalidInput(f"expected min_contributors >= 1, got {self.min_contributors}")
        if not 0 < self.dominance_p <= 1:
            raise InvalidInput(f"expected dominance_p in (0, 1], got {self.dominance_p}")

    # -- entry point ----------------------------------------------------------------------
    def apply(
        self,
        frame: pd.DataFrame,
        *,
        kind: str,
        count_col: str | None = None,
        top_k_col: str | None = None,
        total_col: str | None = None,
    ) -> pd.DataFrame:
        """Return ``frame`` as it may be published under this policy.

        Parameters
        ----------
        frame : DataFrame or GeoDataFrame
        kind : str
            One of :data:`KINDS`.
        count_col : str, optional
            Column with the number of contributing firms (tables, clusters);
            defaults to ``count`` for tables and ``n_firms`` for clusters.
        top_k_col, total_col : str, optional
            Employment of the ``k`` largest firms and the total, for dominance.

        Raises
        ------
        DisclosureError
            When exact firm locations are requested and not allowed.
        """
        if kind not in KINDS:
            raise InvalidInput(f"expected an output kind in {KINDS}, got {kind!r}")
        if kind in ("firms", "labels"):
            if not self.firm_points and isinstance(frame, gpd.GeoDataFrame):
                raise DisclosureError(
                    "exact firm locations are confidential under this workspace's disclosure "
                    "policy; use aggregated tiles or cluster summaries"
                )
            return frame
        if kind == "table":
            return self._cells(frame, count_col or "count", top_k_col, total_col)
        if kind == "clusters":
            out = self._cells(frame, count_col or "n_firms", top_k_col, total_col)
            if not self.firm_points and isinstance(out, gpd.GeoDataFrame):
                out = self._smooth_hulls(out)
            return out
        return frame

    # -- rules ----------------------------------------------------------------------------
    def _cells(
        self, frame: pd.DataFrame, count_col: str, top_k_col: str | None, total_col: str | None
    ) -> pd.DataFrame:
        if count_col not in frame.columns:
            return frame
        out = frame.copy()
        counts = pd.to_numeric(out[count_col], errors="coerce")
        reason = np.where(counts < self.min_contributors, "few_contributors", "")
        if top_k_col and total_col and {top_k_col, total_col} <= set(out.columns):
            share = pd.to_numeric(out[top_k_col], errors="coerce") / pd.to_numeric(
                out[total_col], errors="coerce"
            )
            dominated = (share > self.dominance_p).to_numpy() & (reason == "")
            reason = np.where(dominated, "dominance", reason)
        out["disclosure"] = pd.Series(reason, index=out.index).replace("", "ok")
        flagged = out["disclosure"] != "ok"
        if self.enforce and flagged.any():
            value_cols = [
                c
                for c in out.columns
                if c
                not in ("disclosure", "region_id", "sector", "cluster_id", "cell_id", "geometry")
                and pd.api.types.is_numeric_dtype(out[c])
            ]
            out[value_cols] = out[value_cols].astype(float)
            out.loc[flagged, value_cols] = np.nan
        if self.round_to:
            rounded = (counts / self.round_to).round() * self.round_to
            out[count_col] = rounded.where(~flagged | (not self.enforce), np.nan)
        return out

    def _smooth_hulls(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Move hull edges off firm locations: buffer out, then simplify."""
        out = frame.copy()
        crs = out.crs
        if out.geometry.isna().all():
            return out
        projected = out.to_crs(out.estimate_utm_crs()) if crs and crs.is_geographic else out
        geoms = shapely.buffer(projected.geometry.values, self.hull_smoothing_m)
        geoms = shapely.simplify(geoms, self.hull_smoothing_m / 2)
        projected = projected.set_geometry(geoms)
        return projected.to_crs(crs) if crs is not None else projected


#: The permissive default: flags cells, suppresses nothing.
PERMISSIVE = DisclosurePolicy()


def policy_for(principal: Principal | None, policy: DisclosurePolicy) -> DisclosurePolicy:
    """The rules that apply to ``principal``.

    ``None`` is the open single-user mode (an editor). Below ``editor`` the rules are
    enforced and firm points are never published, whatever the workspace policy says.
    """
    if principal is None or principal.sees_microdata:
        return policy
    return replace(policy, enforce=True, firm_points=False)


def apply(result: Result, principal: Principal | None, policy: DisclosurePolicy) -> Result:
    """``result`` as ``principal`` may see it, layer by layer according to its kind.

    Parameters
    ----------
    result : Result
        An analysis result whose layers declare their disclosure kind.
    principal : Principal or None
        The caller; None for the open single-user mode (treated as an editor).
    policy : DisclosurePolicy
        The workspace's rules.

    Returns
    -------
    Result
        The same body with every layer passed through the rules of its kind.
    """
    rules = policy_for(principal, policy)
    return result.with_layers({key: _layer(layer, rules) for key, layer in result.layers.items()})


def _layer(layer: Layer, rules: DisclosurePolicy) -> Layer:
    frame = layer.frame
    if layer.kind == "public" or frame is None or len(frame) == 0:
        return layer
    if layer.kind == "firm_points":
        if rules.firm_points:
            return layer
        counts = _grid_counts(frame)
        cells = rules._cells(counts, "n_firms", None, None)
        return layer.with_frame(cells)
    if layer.kind == "surface" and layer.count_col is None:
        return layer  # a raster surface: its bandwidth floor is checked where it is made
    if layer.count_col not in frame.columns:
        raise DisclosureError(
            f"a {layer.kind} layer declares count column {layer.count_col!r} but has "
            f"{[c for c in frame.columns if c != 'geometry']}"
        )
    out = rules._cells(frame, layer.count_col, layer.top_k_col, layer.total_col)
    if isinstance(out, gpd.GeoDataFrame) and layer.kind in ("cluster_summary", "cell_counts"):
        if rules.enforce:
            # the outline of a suppressed cluster or cell is itself a few firm locations
            flagged = (out["disclosure"] != "ok").to_numpy()
            if flagged.any():
                geoms = out.geometry.to_numpy().copy()
                geoms[flagged] = None
                out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
        if layer.kind == "cluster_summary" and not rules.firm_points:
            out = rules._smooth_hulls(out)
    return layer.with_frame(out)


def _grid_counts(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """Firm points as counts in fixed lon/lat cells of :data:`POINT_GRID_DEG` (no names)."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise DisclosureError("a firm_points layer needs geometries to aggregate")
    pts = frame.to_crs("EPSG:4326") if frame.crs is not None else frame
    pts = pts[~pts.geometry.isna() & ~pts.geometry.is_empty]
    xy = shapely.get_coordinates(pts.geometry.representative_point().to_numpy())
    ix = np.floor(xy[:, 0] / POINT_GRID_DEG).astype(np.int64)
    iy = np.floor(xy[:, 1] / POINT_GRID_DEG).astype(np.int64)
    cells = pd.DataFrame({"ix": ix, "iy": iy}).value_counts().rename("n_firms").reset_index()
    cells = cells.sort_values(["iy", "ix"], kind="stable").reset_index(drop=True)
    boxes = shapely.box(
        cells["ix"] * POINT_GRID_DEG,
        cells["iy"] * POINT_GRID_DEG,
        (cells["ix"] + 1) * POINT_GRID_DEG,
        (cells["iy"] + 1) * POINT_GRID_DEG,
    )
    cells["cell_id"] = cells["ix"].astype(str) + "_" + cells["iy"].astype(str)
    return gpd.GeoDataFrame(cells[["cell_id", "n_firms"]], geometry=boxes, crs="EPSG:4326")


# =========================================================================================
# Disclosure algorithms for outputs seen by anyone below ``editor`` (pure functions).
#
# The rules follow the usual practice of statistical offices (Hundepool et al.,
# *Statistical Disclosure Control*, Wiley 2012, ch. 4 and 6; Eurostat's SDC handbook):
# a threshold on contributors, the (n, k) dominance and p% rules on a magnitude
# (employment), secondary suppression so that no suppressed cell can be recovered by
# subtraction from a published margin, and derived measures that inherit suppression.
# Points only ever leave as counts in fixed Web-Mercator grid cells, so every published
# coordinate is a cell corner that does not depend on the data.
# =========================================================================================

#: Latitude limit of the Web-Mercator grid (as WebMercatorQuad tiles).
MERCATOR_MAX_LAT = 85.0511287798066

#: Columns that are derived from a region × sector cell and must go with it.
DERIVED_COLUMNS = (
    "lq",
    "strong",
    "share",
    "shares",
    "share_region",
    "share_sector",
    "sector_mix",
    "dominant_sector",
    "employees",
    "count",
    "n_firms",
)


def grid_cells(
    lon: np.ndarray | pd.Series, lat: np.ndarray | pd.Series, zoom: int
) -> tuple[np.ndarray, np.ndarray]:
    """Web-Mercator grid cell of each point at ``zoom`` (the tile grid of that zoom).

    Cells nest: the parent of cell ``(ix, iy)`` at ``zoom + 1`` is ``(ix // 2, iy // 2)``
    at ``zoom``. Latitudes are clamped to the Web-Mercator range.

    Returns
    -------
    ix, iy : ndarray of int64
    """
    if not 0 <= int(zoom) <= 30:
        raise InvalidInput(f"expected a grid zoom in 0..30, got {zoom}")
    lon = np.asarray(lon, dtype=float)
    lat = np.clip(np.asarray(lat, dtype=float), -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT)
    if lon.shape != lat.shape:
        raise InvalidInput(f"lon and lat differ in length ({lon.size} vs {lat.size})")
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise InvalidInput("grid cells need finite lon/lat for every point")
    n = 1 << int(zoom)
    x = (lon + 180.0) / 360.0
    rad = np.radians(lat)
    y = (1.0 - np.log(np.tan(rad) + 1.0 / np.cos(rad)) / np.pi) / 2.0
    ix = np.clip(np.floor(x * n), 0, n - 1).astype(np.int64)
    iy = np.clip(np.floor(y * n), 0, n - 1).astype(np.int64)
    return ix, iy


def cell_bounds(zoom: int, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Lon/lat bounds ``(minx, miny, maxx, maxy)`` of grid cells, one row per cell."""
    n = float(1 << int(zoom))
    ix = np.asarray(ix, dtype=float)
    iy = np.asarray(iy, dtype=float)
    west = ix / n * 360.0 - 180.0
    east = (ix + 1) / n * 360.0 - 180.0
    north = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * iy / n))))
    south = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (iy + 1) / n))))
    return np.column_stack([west, south, east, north])


def cell_polygons(zoom: int, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Grid cells as shapely polygons (lon/lat)."""
    b = cell_bounds(zoom, ix, iy)
    return shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])


def sensitive_cells(
    cell: np.ndarray | pd.Series,
    employees: np.ndarray | pd.Series | None = None,
    *,
    min_count: int = 3,
    dominance_n: int = 2,
    dominance_k: float = 0.85,
    p_percent: float | None = 0.10,
) -> pd.DataFrame:
    """Primary suppression of cells from their contributors (one row per firm given).

    Rules (a cell is flagged by the first that applies):

    - ``few_contributors``: fewer than ``min_count`` firms;
    - ``dominance``: the ``dominance_n`` largest firms hold more than share
      ``dominance_k`` of the cell's employment ((n, k) rule);
    - ``p_percent``: the rest of the cell, apart from the two largest firms, is less
      than ``p_percent`` of the largest, so the second largest could estimate the
      largest within p% (the p% rule, Hundepool et al. 2012, §4.2.2).

    Parameters
    ----------
    cell : array-like
        Cell key of each contributing firm (any hashable values).
    employees : array-like, optional
        Employment of each firm (the magnitude the dominance rules protect).

    Returns
    -------
    DataFrame
        Index: cell key. Columns ``count``, ``employees`` (if given), ``top1``,
        ``top2``, ``top_n`` and ``reason`` (None for a safe cell).
    """
    if min_count < 1:
        raise InvalidInput(f"expected min_count >= 1, got {min_count}")
    if dominance_n < 1 or not 0 < dominance_k <= 1:
        raise InvalidInput(
            f"expected dominance_n >= 1 and dominance_k in (0, 1], got ({dominance_n}, {dominance_k})"
        )
    frame = pd.DataFrame({"cell": np.asarray(cell)})
    has_emp = employees is not None
    emp = (
        pd.to_numeric(pd.Series(np.asarray(employees)), errors="coerce").fillna(0.0).clip(lower=0)
        if has_emp
        else pd.Series(np.zeros(len(frame)))
    )
    frame["emp"] = emp.to_numpy(dtype=float)
    frame = frame.sort_values(["cell", "emp"], ascending=[True, False], kind="mergesort")
    rank = frame.groupby("cell", sort=True).cumcount()
    grouped = frame.groupby("cell", sort=True)["emp"]
    out = pd.DataFrame({"count": grouped.size().astype(np.int64)})
    out["employees"] = grouped.sum()
    out["top1"] = frame[rank == 0].groupby("cell")["emp"].sum().reindex(out.index, fill_value=0.0)
    out["top2"] = frame[rank == 1].groupby("cell")["emp"].sum().reindex(out.index, fill_value=0.0)
    out["top_n"] = (
        frame[rank < dominance_n].groupby("cell")["emp"].sum().reindex(out.index, fill_value=0.0)
    )
    reason = pd.Series([None] * len(out), index=out.index, dtype=object)
    total = out["employees"]
    if has_emp:
        if p_percent is not None:
            rest = total - out["top1"] - out["top2"]
            p_flag = (out["top1"] > 0) & (rest < p_percent * out["top1"])
            reason[p_flag] = "p_percent"
        dominated = (total > 0) & (out["top_n"] > dominance_k * total)
        reason[dominated] = "dominance"
    reason[out["count"] < min_count] = "few_contributors"
    out["reason"] = reason
    if not has_emp:
        out = out.drop(columns=["employees"])
    return out


def round_to_base(values: np.ndarray | pd.Series, base: int | None) -> np.ndarray:
    """Round to the nearest multiple of ``base`` (NaN stays NaN; None: unchanged)."""
    arr = np.asarray(values, dtype=float)
    if base is None:
        return arr
    if base < 1:
        raise InvalidInput(f"expected a rounding base >= 1, got {base}")
    return np.floor(arr / base + 0.5) * base


def grid_counts(
    lon: np.ndarray | pd.Series,
    lat: np.ndarray | pd.Series,
    zoom: int,
    *,
    employees: np.ndarray | pd.Series | None = None,
    min_count: int = 3,
    dominance_n: int = 2,
    dominance_k: float = 0.85,
    p_percent: float | None = 0.10,
    round_to: int | None = None,
    drop_suppressed: bool = False,
) -> gpd.GeoDataFrame:
    """Points as counts in the fixed Web-Mercator grid of ``zoom`` (disclosure-safe).

    Every output coordinate is a corner of a grid cell, which depends only on ``zoom``;
    counts and employment of sensitive cells (:func:`sensitive_cells`) are null with
    ``disclosure`` naming the rule.

    Returns
    -------
    GeoDataFrame
        ``cell`` (``"z/ix/iy"``), ``zoom``, ``ix``, ``iy``, ``count``, ``employees`` (when
        given), ``disclosure`` (``ok`` or the reason) and the cell polygon (EPSG:4326).
    """
    ix, iy = grid_cells(lon, lat, zoom)
    key = ix * (1 << int(zoom)) + iy  # one int64 per cell (zoom <= 30)
    cells = sensitive_cells(
        key,
        employees,
        min_count=min_count,
        dominance_n=dominance_n,
        dominance_k=dominance_k,
        p_percent=p_percent,
    )
    n = 1 << int(zoom)
    cix = (cells.index.to_numpy() // n).astype(np.int64)
    ciy = (cells.index.to_numpy() % n).astype(np.int64)
    flagged = cells["reason"].notna().to_numpy()
    out = pd.DataFrame(
        {
            "cell": [f"{zoom}/{a}/{b}" for a, b in zip(cix, ciy, strict=True)],
            "zoom": int(zoom),
            "ix": cix,
            "iy": ciy,
            "count": np.where(flagged, np.nan, round_to_base(cells["count"], round_to)),
        }
    )
    if employees is not None:
        out["employees"] = np.where(flagged, np.nan, round_to_base(cells["employees"], round_to))
    out["disclosure"] = cells["reason"].fillna("ok").to_numpy()
    gdf = gpd.GeoDataFrame(out, geometry=cell_polygons(zoom, cix, ciy), crs="EPSG:4326")
    if drop_suppressed:
        gdf = gdf[~flagged].reset_index(drop=True)
    return gdf


def safe_cluster_outlines(
    lon: np.ndarray | pd.Series,
    lat: np.ndarray | pd.Series,
    labels: np.ndarray | pd.Series,
    zoom: int,
    *,
    min_count: int = 3,
    noise_label: int = -1,
) -> gpd.GeoDataFrame:
    """Cluster outlines as unions of the grid cells holding ≥ ``min_count`` of its firms.

    A hull of firm points has firms at its corners; a union of fixed grid cells does
    not. A cluster with no safe cell (or fewer than ``min_count`` firms) gets a null
    geometry and ``disclosure: few_contributors``.

    Returns
    -------
    GeoDataFrame
        ``cluster_id``, ``n_firms`` (null when suppressed), ``n_cells``,
        ``firms_in_outline``, ``disclosure``, geometry (EPSG:4326).
    """
    labels = np.asarray(labels)
    ix, iy = grid_cells(lon, lat, zoom)
    frame = pd.DataFrame({"cluster_id": labels, "ix": ix, "iy": iy})
    frame = frame[frame["cluster_id"] != noise_label]
    rows = []
    for cid, group in frame.groupby("cluster_id", sort=True):
        per_cell = group.groupby(["ix", "iy"]).size()
        safe = per_cell[per_cell >= min_count]
        n_firms = len(group)
        if n_firms < min_count or safe.empty:
            rows.append((cid, np.nan, 0, np.nan, "few_contributors", None))
            continue
        cix = safe.index.get_level_values(0).to_numpy()
        ciy = safe.index.get_level_values(1).to_numpy()
        # grid-aligned boxes share exact edges, so the union is exact (no slivers)
        geom = shapely.union_all(cell_polygons(zoom, cix, ciy))
        rows.append((cid, float(n_firms), len(safe), float(safe.sum()), "ok", geom))
    out = pd.DataFrame(
        rows,
        columns=["cluster_id", "n_firms", "n_cells", "firms_in_outline", "disclosure", "geometry"],
    )
    return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")


def secondary_suppression(
    table: pd.DataFrame,
    primary: pd.Series | np.ndarray,
    *,
    row: str = "region_id",
    col: str = "sector",
    value: str = "count",
    row_groups: dict | None = None,
    col_groups: dict | None = None,
) -> tuple[pd.Series, set[tuple[str, Any]]]:
    """Complementary suppression so no suppressed cell follows from a published margin.

    Every line, i.e. each row, each column and each hierarchy margin (the cells of one
    row within one column group, e.g. the divisions of one section, and the cells of
    one column within one row group, e.g. the municipalities of one state), ends with 0
    or at least 2 suppressed entries. Greedy: while a line has exactly one, suppress
    its smallest published cell (non-zero cells first, preferring one that also
    completes another line). A line with no other cell cannot be protected by a cell:
    its margin is suppressed instead and reported.

    Parameters
    ----------
    table : DataFrame
        Long table, one row per (row, col) cell.
    primary : bool array-like
        Primary suppression (aligned with ``table``).
    row_groups, col_groups : dict, optional
        Parent of each row / column key (hierarchy margins).

    Returns
    -------
    suppressed : Series of bool
        Primary and secondary suppression, aligned with ``table``.
    margins : set of (line kind, key)
        Margins (line totals) that must be suppressed too.
    """
    n = len(table)
    suppressed = np.asarray(primary, dtype=bool).copy()
    if suppressed.shape != (n,):
        raise InvalidInput(f"primary mask has {suppressed.size} entries for a {n}-row table")
    values = pd.to_numeric(table[value], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    rows = table[row].to_numpy()
    cols = table[col].to_numpy()
    lines: dict[tuple, list[int]] = {}
    memberships: list[list[tuple]] = [[] for _ in range(n)]

    def add(kind: str, key, i: int) -> None:
        lines.setdefault((kind, key), []).append(i)
        memberships[i].append((kind, key))

    for i in range(n):
        add("row", rows[i], i)
        add("col", cols[i], i)
        if col_groups is not None and cols[i] in col_groups:
            add("row_colgroup", (rows[i], col_groups[cols[i]]), i)
        if row_groups is not None and rows[i] in row_groups:
            add("col_rowgroup", (cols[i], row_groups[rows[i]]), i)
    margins: set[tuple[str, Any]] = set()

    def n_suppressed(line: tuple) -> int:
        return int(suppressed[lines[line]].sum()) + (1 if line in margins else 0)

    changed = True
    while changed:
        changed = False
        for line in sorted(lines, key=str):
            if n_suppressed(line) != 1:
                continue
            candidates = [i for i in lines[line] if not suppressed[i]]
            if not candidates:
                margins.add(line)
                changed = True
                continue

            def cost(i: int, line: tuple = line) -> tuple:
                completes = sum(
                    1 for other in memberships[i] if other != line and n_suppressed(other) == 1
                )
                return (values[i] == 0, -completes, values[i], i)

            suppressed[min(candidates, key=cost)] = True
            changed = True
    return pd.Series(suppressed, index=table.index), margins


def inherit_suppression(
    frame: pd.DataFrame,
    suppressed: pd.Series | np.ndarray,
    *,
    columns: tuple[str, ...] = DERIVED_COLUMNS,
    reason: str | pd.Series = "secondary",
) -> pd.DataFrame:
    """Null every derived column of the suppressed rows and say why in ``disclosure``.

    ``reason`` fills ``disclosure`` of suppressed rows that have no reason yet.
    """
    out = frame.copy()
    mask = np.asarray(suppressed, dtype=bool)
    for c in columns:
        if c in out.columns:
            if pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
                out[c] = out[c].astype(float)
            else:
                out[c] = out[c].astype(object)
            out.loc[mask, c] = None if out[c].dtype == object else np.nan
    if "disclosure" not in out.columns:
        out["disclosure"] = "ok"
    current = out["disclosure"].astype(object)
    fill = reason if isinstance(reason, str) else pd.Series(reason, index=out.index)
    unset = mask & ((current == "ok") | current.isna()).to_numpy()
    out["disclosure"] = current.where(~unset, fill)
    return out


def suppress_region_sector_table(
    table: pd.DataFrame,
    *,
    row: str = "region_id",
    col: str = "sector",
    count: str = "count",
    top1: str | None = None,
    top2: str | None = None,
    top_n: str | None = None,
    total: str | None = None,
    min_count: int = 3,
    dominance_k: float = 0.85,
    p_percent: float | None = 0.10,
    row_groups: dict | None = None,
    col_groups: dict | None = None,
    round_to: int | None = None,
) -> tuple[pd.DataFrame, set[tuple[str, Any]]]:
    """A region × sector table as viewers may see it: primary, secondary, inheritance.

    Primary suppression uses the contributor count and, when the columns are given,
    the (n, k) dominance (``top_n`` / ``total``) and p% (``top1``, ``top2``, ``total``)
    rules; secondary suppression follows (:func:`secondary_suppression`), then every
    derived column (:data:`DERIVED_COLUMNS`: LQ, shares, sector mix, …) of a suppressed
    cell becomes null, and published counts are rounded.

    Returns
    -------
    table : DataFrame
        With ``disclosure`` = ``ok``, ``few_contributors``, ``dominance``,
        ``p_percent`` or ``secondary``.
    margins : set
        Line totals that must not be published (see :func:`secondary_suppression`).
    """
    counts = pd.to_numeric(table[count], errors="coerce").fillna(0)
    reason = pd.Series([None] * len(table), index=table.index, dtype=object)
    if top1 and top2 and total and {top1, top2, total} <= set(table.columns):
        t1 = pd.to_numeric(table[top1], errors="coerce").fillna(0)
        t2 = pd.to_numeric(table[top2], errors="coerce").fillna(0)
        tot = pd.to_numeric(table[total], errors="coerce").fillna(0)
        if p_percent is not None:
            reason[(t1 > 0) & (tot - t1 - t2 < p_percent * t1)] = "p_percent"
    if top_n and total and {top_n, total} <= set(table.columns):
        tn = pd.to_numeric(table[top_n], errors="coerce").fillna(0)
        tot = pd.to_numeric(table[total], errors="coerce").fillna(0)
        reason[(tot > 0) & (tn > dominance_k * tot)] = "dominance"
    # a structural zero (no firm) discloses nothing; 1..min_count-1 firms do
    reason[(counts > 0) & (counts < min_count)] = "few_contributors"
    primary = reason.notna()
    suppressed, margins = secondary_suppression(
        table,
        primary,
        row=row,
        col=col,
        value=count,
        row_groups=row_groups,
        col_groups=col_groups,
    )
    reasons = reason.where(primary, "secondary")
    out = inherit_suppression(table, suppressed, reason=reasons)
    out = out.drop(columns=[c for c in (top1, top2, top_n) if c and c in out.columns])
    if round_to:
        for c in (count, "employees"):
            if c in out.columns:
                out[c] = round_to_base(out[c], round_to)
    return out, margins


def bandwidth_floor(
    bandwidth_m: float | None, *, floor_m: float, sees_microdata: bool
) -> tuple[float | None, bool]:
    """The KDE bandwidth allowed: at least ``floor_m`` for anyone below editor.

    A tiny bandwidth turns a density surface into a map of the firms themselves.

    Returns
    -------
    bandwidth_m, raised : float or None, bool
        ``raised`` is True when the request was below the floor (the caller should say
        so); None (automatic bandwidth) is kept and the caller floors the chosen value.
    """
    if floor_m < 0:
        raise InvalidInput(f"expected a bandwidth floor >= 0 m, got {floor_m}")
    if bandwidth_m is None or sees_microdata:
        return bandwidth_m, False
    if not np.isfinite(bandwidth_m) or bandwidth_m <= 0:
        raise InvalidInput(f"expected a positive bandwidth in metres, got {bandwidth_m}")
    if bandwidth_m < floor_m:
        return float(floor_m), True
    return float(bandwidth_m), False


def safe_dominant_sector(
    table: pd.DataFrame,
    suppressed: pd.Series | np.ndarray,
    *,
    row: str = "region_id",
    col: str = "sector",
    value: str = "employees",
) -> pd.Series:
    """Dominant sector of each row (region), null where the dominant cell is suppressed.

    Naming the largest sector of a region tells that its cell is the largest, so it
    inherits that cell's suppression.
    """
    frame = table[[row, col, value]].copy()
    frame["_v"] = pd.to_numeric(frame[value], errors="coerce").fillna(-np.inf)
    frame["_s"] = np.asarray(suppressed, dtype=bool)
    top = frame.sort_values([row, "_v"], ascending=[True, False], kind="mergesort")
    top = top.groupby(row, sort=True).head(1).set_index(row)
    return top[col].astype(object).where(~top["_s"], None)
