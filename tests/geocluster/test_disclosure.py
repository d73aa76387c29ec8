"""Disclosure policy: minimum contributors, dominance, rounding, firm points, hulls."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.disclosure import PERMISSIVE, DisclosurePolicy
from geocluster.errors import DisclosureError, InvalidInput


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region_id": ["a", "a", "b", "b"],
            "sector": ["15", "26", "15", "26"],
            "count": [2, 10, 5, 40],
            "employees": [30.0, 100.0, 50.0, 400.0],
            "top2": [30.0, 20.0, 48.0, 50.0],
        }
    )


def test_permissive_flags_but_keeps_values():
    out = PERMISSIVE.apply(_table(), kind="table", top_k_col="top2", total_col="employees")
    assert list(out.disclosure) == ["few_contributors", "ok", "dominance", "ok"]
    pd.testing.assert_series_equal(out.employees, _table().employees)


def test_enforced_policy_suppresses_flagged_cells():
    policy = DisclosurePolicy(enforce=True)
    out = policy.apply(_table(), kind="table", top_k_col="top2", total_col="employees")
    assert np.isnan(out.loc[0, "employees"]) and np.isnan(out.loc[2, "employees"])
    assert out.loc[1, "employees"] == 100.0 and out.loc[3, "count"] == 40
    assert list(out.region_id) == ["a", "a", "b", "b"]  # keys are never suppressed


def test_rounding_of_counts():
    out = DisclosurePolicy(round_to=5).apply(_table(), kind="table")
    assert list(out["count"]) == [0, 10, 5, 40]


def test_firm_points_can_be_forbidden():
    firms = gpd.GeoDataFrame({"firm_id": ["1"]}, geometry=[shapely.Point(0, 0)], crs=4326)
    assert PERMISSIVE.apply(firms, kind="firms") is firms
    with pytest.raises(DisclosureError, match="confidential"):
        DisclosurePolicy(firm_points=False).apply(firms, kind="firms")


def test_hulls_are_moved_off_firm_locations():
    corners = [(-99.0, 19.0), (-98.99, 19.0), (-98.99, 19.01), (-99.0, 19.01)]
    hull = shapely.Polygon(corners)
    clusters = gpd.GeoDataFrame({"cluster_id": [0], "n_firms": [12]}, geometry=[hull], crs=4326)
    out = DisclosurePolicy(firm_points=False).apply(clusters, kind="clusters")
    smoothed = out.geometry.iloc[0]
    assert smoothed.contains(hull)
    for corner in corners:  # no published vertex is a firm location
        assert not any(np.allclose(corner, v, atol=1e-7) for v in shapely.get_coordinates(smoothed))


def test_bad_policy_and_kind():
    with pytest.raises(InvalidInput):
        DisclosurePolicy(min_contributors=0)
    with pytest.raises(InvalidInput, match="output kind"):
        PERMISSIVE.apply(_table(), kind="nope")
