"""Firm-asset proximity functions: counts, masks, distances, CRS checks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from geocluster.assets.proximity import (
    asset_gaps,
    firms_near_assets,
    firms_within_any,
    nearest_distance,
)
from geocluster.errors import CRSError, InvalidInput

UTM = "EPSG:32614"


@pytest.fixture
def layout():
    assets = gpd.GeoDataFrame(
        {"asset_id": ["p", "poly", "line"], "category": ["cultural", "natural", "agro_food"]},
        geometry=[Point(0, 0), box(1000, 0, 2000, 1000), LineString([(0, 5000), (3000, 5000)])],
        crs=UTM,
    )
    firms = gpd.GeoDataFrame(
        {
            "firm_id": list("abcde"),
            "employees": [3.0, np.nan, 10.0, 1.0, 8.0],
        },
        # a: 300 m from p; b: inside poly; c: 400 m from the line; d: 100 m right of poly;
        # e: far from everything
        geometry=[
            Point(300, 0),
            Point(1500, 500),
            Point(1500, 5400),
            Point(2100, 500),
            Point(9000, 9000),
        ],
        crs=UTM,
    )
    return assets, firms


def test_counts_employees_and_nearest(layout):
    assets, firms = layout
    near = firms_near_assets(assets, firms, radius_m=500)
    # p: a (300 m); poly: b (inside, 0 m), d (100 m), and a? a is 700 m from the polygon -> no
    assert near["n_firms"].tolist() == [1, 2, 1]
    np.testing.assert_allclose(near["employees"], [3.0, 1.0, 10.0])  # b has unknown employees
    assert near["employees_known"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(near["nearest_firm_m"], [300.0, 0.0, 400.0])
    # reference: shapely distances for every pair
    d = np.array([[a.distance(f) for f in firms.geometry] for a in assets.geometry])
    np.testing.assert_array_equal(near["n_firms"], (d <= 500).sum(axis=1))
    np.testing.assert_array_equal(
        firms_within_any(firms, assets, radius_m=500), (d <= 500).any(axis=0)
    )
    np.testing.assert_allclose(nearest_distance(assets, firms), d.min(axis=1))
    # radius boundary is inclusive
    assert firms_near_assets(assets, firms, radius_m=300)["n_firms"].iloc[0] == 1
    assert firms_near_assets(assets, firms, radius_m=299.999)["n_firms"].iloc[0] == 0


def test_masks(layout):
    assets, firms = layout
    only_ce = np.array([False, False, True, False, True])
    near = firms_near_assets(assets, firms, radius_m=500, firm_mask=only_ce)
    assert near["n_firms"].tolist() == [0, 0, 1]
    assert asset_gaps(near).tolist() == [True, True, False]
    per_cat = pd.DataFrame(
        {"cultural": [True] * 5, "natural": [False, False, False, True, False]}, index=firms.index
    )
    near = firms_near_assets(assets, firms, radius_m=500, firm_mask=per_cat)
    # agro_food has no column: nothing counts for the line
    assert near["n_firms"].tolist() == [1, 1, 0]
    with pytest.raises(InvalidInput, match="shape"):
        firms_near_assets(assets, firms, radius_m=500, firm_mask=np.ones(3, bool))


def test_crs_checks(layout):
    assets, firms = layout
    with pytest.raises(CRSError, match="projected"):
        firms_near_assets(assets.to_crs(4326), firms.to_crs(4326), radius_m=500)
    with pytest.raises(CRSError, match="same CRS"):
        firms_near_assets(assets, firms.to_crs("EPSG:32613"), radius_m=500)
    with pytest.raises(InvalidInput, match="radius_m"):
        firms_near_assets(assets, firms, radius_m=-1)
    empty = firms.iloc[:0]
    assert firms_near_assets(assets, empty, radius_m=500)["n_firms"].tolist() == [0, 0, 0]
    assert np.isnan(nearest_distance(assets, empty)).all()
