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
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geocluster.errors import DisclosureError, InvalidInput

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
                if c not in ("disclosure", "region_id", "sector", "cluster_id", "geometry")
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
        projected = out.to_crs(out.estimate_utm_crs()) if crs and crs.is_geographic else out
        geoms = shapely.buffer(projected.geometry.values, self.hull_smoothing_m)
        geoms = shapely.simplify(geoms, self.hull_smoothing_m / 2)
        projected = projected.set_geometry(geoms)
        return projected.to_crs(crs) if crs is not None else projected


#: The permissive default: flags cells, suppresses nothing.
PERMISSIVE = DisclosurePolicy()
