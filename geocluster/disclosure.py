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
#: Web-Mercator zoom of the fixed grid firm points and cluster outlines are published in
#: below editor: zoom 13 cells are 4.9 km wide at the equator (cos(lat) times that
#: elsewhere: 4.6 km at 20 deg N), the scale of the 0.05 deg cells used before and of a
#: municipality's urban area, so a cell of 3 firms does not point at a building.
PUBLIC_ZOOM = 13
#: Smallest KDE bandwidth a viewer may see a surface of (metres): a quarter of a
#: public grid cell, so a surface shows no more than the cell counts do.
BANDWIDTH_FLOOR_M = 1000.0


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
        Buffer (metres, roughly) applied to cluster hulls when ``firm_points`` is off
        (the old :meth:`apply` on frames; :func:`apply` publishes grid outlines instead).
    p_percent : float or None
        p% rule on employment below editor (None: off).
    public_zoom : int
        Web-Mercator zoom of the grid firm points and cluster outlines are published
        in below editor (:data:`PUBLIC_ZOOM`).
    bandwidth_floor_m : float
        Smallest KDE bandwidth whose surface a viewer may see (:data:`BANDWIDTH_FLOOR_M`).
    """

    min_contributors: int = 3
    dominance_k: int = 2
    dominance_p: float = 0.85
    round_to: int | None = None
    firm_points: bool = True
    enforce: bool = False
    hull_smoothing_m: float = 250.0
    p_percent: float | None = 0.10
    public_zoom: int = PUBLIC_ZOOM
    bandwidth_floor_m: float = BANDWIDTH_FLOOR_M

    def __post_init__(self) -> None:
        if self.min_contributors < 1:
            raise InvalidInput(f"expected min_contributors >= 1, got {self.min_contributors}")
        if self.dominance_k < 1:
            raise InvalidInput(f"expected dominance_k (firms) >= 1, got {self.dominance_k}")
        if not 0 < self.dominance_p <= 1:
            raise InvalidInput(f"expected dominance_p in (0, 1], got {self.dominance_p}")
        if self.p_percent is not None and not 0 <= self.p_percent <= 1:
            raise InvalidInput(f"expected p_percent in [0, 1] or None, got {self.p_percent}")
        if self.round_to is not None and self.round_to < 1:
            raise InvalidInput(f"expected round_to >= 1 or None, got {self.round_to}")
        if not 0 <= self.public_zoom <= 30:
            raise InvalidInput(f"expected public_zoom in 0..30, got {self.public_zoom}")
        for name in ("bandwidth_floor_m", "hull_smoothing_m"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise InvalidInput(f"expected {name} >= 0 (metres), got {value}")

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


def apply(
    result: Result,
    principal: Principal | None,
    policy: DisclosurePolicy,
    *,
    firms: gpd.GeoDataFrame | None = None,
) -> Result:
    """``result`` as ``principal`` may see it, layer by layer according to its kind.

    Editors, admins and the open single-user mode (``principal`` None) get the
    workspace policy as it is (permissive by default: cells flagged, not suppressed).
    Anyone below ``editor`` gets the disclosure algorithms below, whatever the policy's
    ``enforce`` and ``firm_points`` say:

    - ``firm_points``: counts in the fixed Web-Mercator grid of ``policy.public_zoom``
      (:func:`grid_counts`: threshold, (n, k) dominance and p% on employment, one more
      cell suppressed when a single one is, so the total does not give it away); no
      firm id, name or coordinate, only cell polygons;
    - ``region_table``: :func:`suppress_region_sector_table` (primary and secondary
      suppression, derived values inherit it); a one-way table (regions or sectors
      only) is one line; rows with no count (not firm-derived) are left alone; line
      totals that :func:`secondary_suppression` reports are suppressed in the one-way
      tables of the same result; ``dominant_sector`` and ``sector_mix`` inherit the
      suppression of their (region, sector) cell;
    - ``cluster_summary``: clusters under the threshold or dominated are nulled; the
      outline is :func:`safe_cluster_outlines` of the cluster's firms (a
      ``firm_points`` layer with ``cluster_id`` in the result, or ``firms``), never a
      hull; without firms the geometry is null; centroid, area and density follow the
      outline; ``sector_mix`` / ``dominant_sector`` inherit the suppression of the
      (cluster, sector) cells;
    - ``surface``: withheld (figures null, ``raster_id`` null, ``disclosure`` saying
      why) when made with a bandwidth below ``policy.bandwidth_floor_m`` or from fewer
      than ``min_contributors`` firms. Withholding, not recomputing: the stored raster
      an editor made stays as it is and raster tiles refuse it to viewers by the same
      rule (:func:`surface_withheld`);
    - ``cell_counts``: threshold and dominance, flagged rows nulled with their geometry.

    Parameters
    ----------
    result : Result
        An analysis result whose layers declare their disclosure kind.
    principal : Principal or None
        The caller (anything with ``sees_microdata``); None for the open mode.
    policy : DisclosurePolicy
        The workspace's rules.
    firms : GeoDataFrame, optional
        Firm points with ``cluster_id`` (a clusters run's ``labels``), for the outlines
        of ``cluster_summary`` layers when the result carries no ``firm_points`` layer.

    Returns
    -------
    Result
        The same body with every layer passed through the rules of its kind.
    """
    if principal is None or principal.sees_microdata:
        return result.with_layers(
            {key: _layer(layer, policy) for key, layer in result.layers.items()}
        )
    return _viewer(result, policy_for(principal, policy), firms)


def _layer(layer: Layer, rules: DisclosurePolicy) -> Layer:
    """Editors: the workspace policy as it is (flags; suppresses if it enforces).

    A workspace whose policy forbids firm points (``firm_points=False``) gets them as
    grid cells and smoothed hulls even for editors, as before.
    """
    frame = layer.frame
    if layer.kind == "public" or frame is None or len(frame) == 0:
        return layer
    if layer.kind == "firm_points":
        return layer if rules.firm_points else layer.with_frame(_firm_cells(frame, rules))
    if layer.kind == "surface" and layer.count_col is None:
        return layer
    _check_count_col(layer)
    out = rules._cells(frame, layer.count_col, layer.top_k_col, layer.total_col)
    if rules.enforce and isinstance(out, gpd.GeoDataFrame):
        if layer.kind in ("cluster_summary", "cell_counts"):
            # the outline of a suppressed cluster or cell is itself a few firm locations
            flagged = (out["disclosure"] != "ok").to_numpy()
            if flagged.any():
                geoms = out.geometry.to_numpy().copy()
                geoms[flagged] = None
                out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))
    if layer.kind == "cluster_summary" and not rules.firm_points:
        if isinstance(out, gpd.GeoDataFrame):
            out = rules._smooth_hulls(out)
    return layer.with_frame(out)


def _check_count_col(layer: Layer) -> None:
    if layer.count_col not in layer.frame.columns:
        raise DisclosureError(
            f"a {layer.kind} layer declares count column {layer.count_col!r} but has "
            f"{[c for c in layer.frame.columns if c != 'geometry']}"
        )


# -- below editor -------------------------------------------------------------------------
#: Key and label columns a suppression never nulls.
_KEYS = frozenset(
    {
        "region_id", "sector", "metric", "cluster_id", "cell", "cell_id", "asset_id", "name",
        "title", "region_name", "sector_title", "level", "year", "zoom", "ix", "iy",
        "disclosure", "geometry", "category", "label", "hull_type",
    }
)  # fmt: skip


def _value_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """Columns a suppressed row loses: numbers, flags, and the named derived columns."""
    cols = []
    for c in frame.columns:
        if c in _KEYS or c == getattr(frame, "_geometry_column_name", None):
            continue
        dtype = frame[c].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        if numeric or c in DERIVED_COLUMNS or c.endswith("_share") or c.startswith("lq"):
            cols.append(c)
    return tuple(cols)


def _viewer(result: Result, rules: DisclosurePolicy, firms: gpd.GeoDataFrame | None) -> Result:
    layers = dict(result.layers)
    body = result.body
    if firms is None:
        for layer in layers.values():
            f = layer.frame
            if layer.kind == "firm_points" and isinstance(f, gpd.GeoDataFrame):
                if "cluster_id" in f.columns:
                    firms = f
                    break
    # two-way region x sector tables first: their suppression and margins reach the rest
    cells: dict[tuple[str, str], bool] = {}  # (region, sector) -> suppressed
    margins: set[tuple[str, Any]] = set()
    out: dict[str, Layer] = {}
    for key, layer in layers.items():
        if layer.kind == "region_table" and _is_two_way(layer.frame):
            frame, lines = _region_table(layer, rules)
            margins |= lines
            rows = frame[frame[layer.count_col].notna() | (frame["disclosure"] != "ok")]
            for r, s, d in zip(
                rows["region_id"].astype(str),
                rows["sector"].astype(str),
                rows["disclosure"],
                strict=True,
            ):
                cells[(r, s)] = d != "ok"
            out[key] = layer.with_frame(frame)
    for key, layer in layers.items():
        if key in out:
            continue
        frame = layer.frame
        if layer.kind == "public" or frame is None:
            out[key] = layer
        elif len(frame) == 0:  # column names only: nothing to disclose
            out[key] = layer
        elif layer.kind == "firm_points":
            out[key] = layer.with_frame(_firm_cells(frame, rules))
        elif layer.kind == "region_table":
            table, _ = _region_table(layer, rules, margins=margins)
            out[key] = layer.with_frame(_inherit_sectors(table, cells))
        elif layer.kind == "cluster_summary":
            _check_count_col(layer)
            out[key] = layer.with_frame(_clusters(layer, rules, firms))
        elif layer.kind == "surface":
            frame, reason = _surface(layer, result.body, rules)
            if reason is not None:
                body = {
                    **body,
                    "raster_id": None,
                    "disclosure": reason,
                    "disclosure_detail": (
                        f"the surface is withheld below editor: bandwidth floor "
                        f"{rules.bandwidth_floor_m:g} m, at least {rules.min_contributors} firms"
                    ),
                }
                if "max_density" in body:
                    body["max_density"] = None
            out[key] = layer.with_frame(frame)
        else:  # cell_counts
            _check_count_col(layer)
            out[key] = layer.with_frame(_cell_counts(layer, rules))
    ordered = {key: out[key] for key in layers}
    from dataclasses import replace as _replace

    return _replace(result.with_layers(ordered), body=body)


def _is_two_way(frame: Any) -> bool:
    return frame is not None and len(frame) > 0 and {"region_id", "sector"} <= set(frame.columns)


def _region_table(
    layer: Layer, rules: DisclosurePolicy, *, margins: set | None = None
) -> tuple[pd.DataFrame, set]:
    """Primary and secondary suppression of a region table; inherited derived values."""
    _check_count_col(layer)
    frame = layer.frame
    count = layer.count_col
    is_geo = isinstance(frame, gpd.GeoDataFrame)
    work = pd.DataFrame(frame).reset_index(drop=True).copy()
    if "disclosure" not in work.columns:
        work["disclosure"] = "ok"
    firm_rows = pd.to_numeric(work[count], errors="coerce").notna().to_numpy()
    row = "region_id" if "region_id" in work.columns else "_row"
    col = (
        "sector" if "sector" in work.columns else ("metric" if "metric" in work.columns else "_col")
    )
    work["_row"] = "all"
    work["_col"] = "all"
    sub = work[firm_rows]
    lines: set = set()
    if len(sub):
        values = _value_columns(sub)
        safe, lines = suppress_region_sector_table(
            sub[[c for c in sub.columns if c not in ("disclosure",)]],
            row=row,
            col=col,
            count=count,
            top_n=layer.top_k_col,
            total=layer.total_col,
            min_count=rules.min_contributors,
            dominance_k=rules.dominance_p,
            p_percent=rules.p_percent,
            round_to=rules.round_to,
        )
        suppressed = (safe["disclosure"] != "ok").to_numpy()
        hit = np.zeros(len(sub), dtype=bool)
        if margins and row == "region_id" and col != "sector":  # a table of region totals
            hit = np.array([("row", r) in margins for r in sub[row]], dtype=bool)
        elif margins and row == "_row" and col == "sector":  # a table of sector totals
            hit = np.array([("col", c) in margins for c in sub[col]], dtype=bool)
        if (hit & ~suppressed).any():
            # a line total a two-way table could not protect by a cell is suppressed
            # here; the lines of this table are then completed again
            again, _ = secondary_suppression(sub, suppressed | hit, row=row, col=col, value=count)
            suppressed = again.to_numpy()
        safe = inherit_suppression(safe, suppressed, columns=values, reason="secondary")
        for c in safe.columns:
            if c not in work.columns:
                continue
            if safe[c].dtype != work[c].dtype:
                work[c] = work[c].astype(object if safe[c].dtype == object else safe[c].dtype)
            work.loc[firm_rows, c] = safe[c].to_numpy()
        # columns the algorithm dropped (top-k employment) go for everyone below editor
        work = work.drop(
            columns=[
                c
                for c in work.columns
                if c in sub.columns and c not in safe.columns and c not in ("_row", "_col")
            ]
        )
        work.loc[firm_rows, "disclosure"] = safe["disclosure"].to_numpy()
        if is_geo:
            pass  # region polygons are public boundaries: kept
    work = work.drop(columns=["_row", "_col"])
    if is_geo:
        work = gpd.GeoDataFrame(work, geometry=frame.geometry.name, crs=frame.crs)
    return work, lines


def _inherit_sectors(table: pd.DataFrame, cells: dict[tuple[str, str], bool]) -> pd.DataFrame:
    """``dominant_sector`` / ``sector_mix`` of a region go with their (region, sector) cell.

    With no two-way table in the result to check the cell against, they are withheld.
    """
    if "dominant_sector" not in table.columns and "sector_mix" not in table.columns:
        return table
    out = table.copy()
    regions = out["region_id"].astype(str) if "region_id" in out.columns else None
    for c in ("dominant_sector", "sector_mix"):
        if c not in out.columns:
            continue
        values = out[c].astype(object).to_list()
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            rid = regions.iloc[i] if regions is not None else None
            if c == "dominant_sector":
                ok = rid is not None and cells.get((rid, str(v))) is False
                values[i] = v if ok else None
            else:
                values[i] = _filter_mix(
                    v, lambda s, rid=rid: rid is not None and cells.get((rid, s)) is False
                )
        out[c] = pd.Series(values, index=out.index, dtype=object)
    if "dominant_share" in out.columns and "dominant_sector" in out.columns:
        out["dominant_share"] = out["dominant_share"].where(out["dominant_sector"].notna())
    return out


def _filter_mix(value: Any, keep: Any) -> Any:
    """A sector mix (JSON text or dict of sector -> share) with only the safe sectors."""
    import json

    text = isinstance(value, str)
    try:
        mix = json.loads(value) if text else dict(value)
    except (TypeError, ValueError):
        return None
    kept = {k: v for k, v in mix.items() if keep(str(k))}
    return json.dumps(kept) if text else kept


def _lonlat(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lon/lat of the points of ``frame`` and the mask of rows with a geometry."""
    pts = frame.to_crs("EPSG:4326") if frame.crs is not None else frame
    geom = pts.geometry
    has = (~geom.isna() & ~geom.is_empty).to_numpy()
    xy = np.full((len(pts), 2), np.nan)
    if has.any():
        xy[has] = shapely.get_coordinates(geom[has].representative_point().to_numpy())
    return xy[:, 0], xy[:, 1], has


def _employees(frame: pd.DataFrame) -> np.ndarray | None:
    if "employees" not in frame.columns:
        return None
    return pd.to_numeric(frame["employees"], errors="coerce").to_numpy(dtype=float)


def _firm_cells(frame: Any, rules: DisclosurePolicy) -> gpd.GeoDataFrame:
    """Firm points as safe counts in the fixed grid of ``rules.public_zoom``."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise DisclosureError("a firm_points layer needs geometries to aggregate")
    lon, lat, has = _lonlat(frame)
    emp = _employees(frame)
    cells = grid_counts(
        lon[has],
        lat[has],
        rules.public_zoom,
        employees=None if emp is None else emp[has],
        min_count=rules.min_contributors,
        dominance_n=rules.dominance_k,
        dominance_k=rules.dominance_p,
        p_percent=rules.p_percent,
        round_to=rules.round_to,
    )
    flagged = (cells["disclosure"] != "ok").to_numpy()
    if flagged.sum() == 1 and (~flagged).any():
        # the layer's total minus the published cells would give the one suppressed cell:
        # suppress the smallest published one too
        published = pd.to_numeric(cells["count"], errors="coerce").to_numpy(dtype=float)
        j = int(np.where(flagged, np.inf, published).argmin())
        for c in ("count", "employees"):
            if c in cells.columns:
                cells.loc[j, c] = np.nan
        cells.loc[j, "disclosure"] = "secondary"
    return cells.rename(columns={"count": "n_firms"})


def _primary(
    frame: pd.DataFrame, count: str, rules: DisclosurePolicy, top: str | None, total: str | None
) -> np.ndarray:
    """Reason of primary suppression of each row (None: publishable)."""
    counts = pd.to_numeric(frame[count], errors="coerce")
    reason = np.full(len(frame), None, dtype=object)
    if top and total and {top, total} <= set(frame.columns):
        t = pd.to_numeric(frame[top], errors="coerce").to_numpy(dtype=float)
        tot = pd.to_numeric(frame[total], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            dominated = (tot > 0) & (t > rules.dominance_p * tot)
        reason[dominated] = "dominance"
    reason[(counts < rules.min_contributors).to_numpy() | counts.isna().to_numpy()] = (
        "few_contributors"
    )
    return reason


def _cell_counts(layer: Layer, rules: DisclosurePolicy) -> pd.DataFrame:
    frame = layer.frame
    reason = _primary(frame, layer.count_col, rules, layer.top_k_col, layer.total_col)
    flagged = np.array([r is not None for r in reason])
    out = inherit_suppression(
        frame.reset_index(drop=True),
        flagged,
        columns=_value_columns(frame),
        reason=pd.Series(reason).fillna("ok"),
    )
    if rules.round_to:
        out[layer.count_col] = round_to_base(out[layer.count_col], rules.round_to)
    if isinstance(frame, gpd.GeoDataFrame):
        # the outline of a suppressed cell is itself a few firm locations
        geoms = frame.geometry.to_numpy().copy()
        geoms[flagged] = None
        out = gpd.GeoDataFrame(out.drop(columns=frame.geometry.name), geometry=geoms, crs=frame.crs)
    return out


def _clusters(
    layer: Layer, rules: DisclosurePolicy, firms: gpd.GeoDataFrame | None
) -> pd.DataFrame:
    """Cluster summaries below editor: suppression, safe outlines, safe sector mix."""
    frame = layer.frame.reset_index(drop=True)
    top = layer.top_k_col or ("top2_employees" if "top2_employees" in frame.columns else None)
    total = layer.total_col or ("employees" if top == "top2_employees" else None)
    reason = _primary(frame, layer.count_col, rules, top, total)
    flagged = np.array([r is not None for r in reason])
    out = inherit_suppression(
        frame, flagged, columns=_value_columns(frame), reason=pd.Series(reason).fillna("ok")
    )
    out = out.drop(columns=[c for c in ("top2_employees", "top_employees") if c in out.columns])
    if rules.round_to:
        out[layer.count_col] = round_to_base(out[layer.count_col], rules.round_to)
    # outlines: unions of safe grid cells of the cluster's firms, never hulls
    geoms = np.full(len(out), None, dtype=object)
    if firms is not None and len(firms) and "cluster_id" in out.columns:
        lon, lat, has = _lonlat(firms)
        labels = pd.to_numeric(firms["cluster_id"], errors="coerce").fillna(-1).to_numpy()
        outlines = safe_cluster_outlines(
            lon[has], lat[has], labels[has], rules.public_zoom, min_count=rules.min_contributors
        ).set_index("cluster_id")
        for i, cid in enumerate(out["cluster_id"]):
            if not flagged[i] and cid in outlines.index:
                geoms[i] = outlines.geometry.loc[cid]
    out = outline_measures(out, geoms, layer.count_col)
    out = _safe_cluster_sectors(out, flagged, layer.count_col, rules)
    if isinstance(layer.frame, gpd.GeoDataFrame):
        name = layer.frame.geometry.name
        out = gpd.GeoDataFrame(out.drop(columns=[name]), geometry=list(geoms), crs="EPSG:4326")
    return out


def outline_measures(out: pd.DataFrame, geoms: np.ndarray, count_col: str) -> pd.DataFrame:
    """Centroid, area and density of published cluster outlines (EPSG:4326 ``geoms``).

    The centre of the published cells, not the mean of firm positions; area in an
    equal-area CRS; rows without an outline get none of the three.
    """
    for c in ("centroid_lon", "centroid_lat", "area_km2", "density_per_km2"):
        if c in out.columns:
            out[c] = np.nan
    has_geom = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
    if has_geom.any():
        shapes = gpd.GeoSeries(list(np.asarray(geoms, dtype=object)[has_geom]), crs="EPSG:4326")
        if "centroid_lon" in out.columns:
            cen = shapes.to_crs("EPSG:3857").centroid.to_crs("EPSG:4326")
            out.loc[has_geom, "centroid_lon"] = cen.x.to_numpy()
            out.loc[has_geom, "centroid_lat"] = cen.y.to_numpy()
        if "area_km2" in out.columns:
            area = shapes.to_crs("EPSG:6933").area.to_numpy() / 1e6  # equal-area CRS
            out.loc[has_geom, "area_km2"] = area
            if "density_per_km2" in out.columns and count_col in out.columns:
                n = pd.to_numeric(out.loc[has_geom, count_col], errors="coerce")
                out.loc[has_geom, "density_per_km2"] = n.to_numpy() / area
    return out


def _safe_cluster_sectors(
    out: pd.DataFrame, flagged: np.ndarray, count: str, rules: DisclosurePolicy
) -> pd.DataFrame:
    """``sector_mix`` and ``dominant_sector`` of clusters through the (cluster, sector) table.

    The (cluster, sector) counts are the published shares times the cluster's firms;
    the table gets primary and secondary suppression, and only safe sectors remain.
    """
    import json

    if "sector_mix" not in out.columns and "dominant_sector" not in out.columns:
        return out
    rows = []
    n_firms = pd.to_numeric(out[count], errors="coerce")
    if "sector_mix" in out.columns:
        for i, (cid, mix) in enumerate(zip(out["cluster_id"], out["sector_mix"], strict=True)):
            if flagged[i] or mix is None or not isinstance(mix, str | dict):
                continue
            try:
                parts = json.loads(mix) if isinstance(mix, str) else mix
            except ValueError:
                continue
            for sector, share in parts.items():
                rows.append((cid, str(sector), round(float(share) * float(n_firms.iloc[i]))))
    cells: dict[tuple, bool] = {}
    if rows:
        table = pd.DataFrame(rows, columns=["cluster_id", "sector", "count"])
        safe, _ = suppress_region_sector_table(
            table, row="cluster_id", col="sector", min_count=rules.min_contributors, p_percent=None
        )
        for cid, s, d in zip(table["cluster_id"], table["sector"], safe["disclosure"], strict=True):
            cells[(cid, s)] = d != "ok"
    out = out.copy()
    if "sector_mix" in out.columns:
        out["sector_mix"] = [
            None
            if flagged[i] or m is None
            else _filter_mix(m, lambda s, c=c: cells.get((c, s)) is False)
            for i, (c, m) in enumerate(zip(out["cluster_id"], out["sector_mix"], strict=True))
        ]
    if "dominant_sector" in out.columns:
        out["dominant_sector"] = [
            d if not flagged[i] and d is not None and cells.get((c, str(d))) is False else None
            for i, (c, d) in enumerate(zip(out["cluster_id"], out["dominant_sector"], strict=True))
        ]
        if "dominant_share" in out.columns:
            out["dominant_share"] = out["dominant_share"].where(out["dominant_sector"].notna())
    return out


def surface_withheld(
    bandwidth_m: float | None, n_firms: float | None, rules: DisclosurePolicy
) -> str | None:
    """Why a KDE surface may not be shown below editor (None: it may).

    ``few_contributors`` (fewer firms than the threshold), ``bandwidth_unknown`` or
    ``bandwidth_below_floor`` (a narrow kernel maps the firms themselves).

    The same rule for a result's figures and for the raster tiles of the surface.
    """
    if n_firms is not None and np.isfinite(float(n_firms)) and n_firms < rules.min_contributors:
        return "few_contributors"
    if bandwidth_m is None or not np.isfinite(float(bandwidth_m)) or float(bandwidth_m) <= 0:
        return "bandwidth_unknown"
    _, raised = bandwidth_floor(
        float(bandwidth_m), floor_m=rules.bandwidth_floor_m, sees_microdata=False
    )
    if raised:
        return "bandwidth_below_floor"
    return None


def _surface(layer: Layer, body: Any, rules: DisclosurePolicy) -> tuple[pd.DataFrame, str | None]:
    """A surface's figures below editor; the reason when the whole surface is withheld.

    The bandwidth rule applies when the result records ``bandwidth_m`` (a KDE); the
    threshold applies to each row's firm count.
    """
    frame = layer.frame.reset_index(drop=True)
    body = body or {}
    reason = None
    if "bandwidth_m" in body:
        reason = surface_withheld(body.get("bandwidth_m"), None, rules)
    rows = np.full(len(frame), reason, dtype=object)
    if layer.count_col and layer.count_col in frame.columns:
        counts = pd.to_numeric(frame[layer.count_col], errors="coerce").to_numpy(dtype=float)
        few = ~(counts >= rules.min_contributors)
        rows[few & (rows == None)] = "few_contributors"  # noqa: E711 - elementwise
    flagged = np.array([r is not None for r in rows], dtype=bool)
    out = inherit_suppression(
        frame, flagged, columns=_value_columns(frame), reason=pd.Series(rows).fillna("ok")
    )
    if reason is None and flagged.all() and len(frame):
        reason = "few_contributors"
    if layer.count_col in out.columns and rules.round_to:
        out[layer.count_col] = round_to_base(out[layer.count_col], rules.round_to)
    return out, reason


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
