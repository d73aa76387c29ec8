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
from typing import TYPE_CHECKING

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
