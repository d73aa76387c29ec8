"""Candidate-cluster ranking: components, normalisation, weights, assets."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.errors import InvalidInput
from geocluster.ranking import COMPONENTS, DEFAULT_WEIGHTS, rank_clusters, validate_weights

CRS = "EPSG:32633"


@pytest.fixture
def clusters():
    return gpd.GeoDataFrame(
        {
            "cluster_id": [0, 1, 2],
            "n_firms": [10, 100, 1000],
            "employees": [50.0, 500.0, np.nan],
            "dominant_sector": ["10", "13", "10"],
            "density_per_km2": [5.0, 50.0, 20.0],
            "recent_share": [0.5, 0.1, 0.2],
            "women_led_share": [0.4, 0.2, np.nan],
            "micro_share": [0.8, 0.6, 0.5],
        },
        geometry=[
            shapely.box(0, 0, 1000, 1000),
            shapely.box(20_000, 0, 21_000, 1000),
            shapely.box(50_000, 0, 51_000, 1000),
        ],
        crs=CRS,
    )


def test_default_weights_are_documented_and_sum_to_one():
    assert set(DEFAULT_WEIGHTS) == set(COMPONENTS)
    assert sum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)


def test_components_by_hand(clusters):
    lq = pd.DataFrame(
        {
            "region_id": ["a", "a", "b", "b"],
            "sector": ["10", "13", "10", "13"],
            "lq": [2.0, 0.5, 1.0, 9.0],
        }
    )
    assets = gpd.GeoDataFrame(
        {"category": ["cultural"] * 3},
        geometry=[shapely.Point(500, 3000), shapely.Point(500, 9000), shapely.Point(21_500, 500)],
        crs=CRS,
    )
    ranked = rank_clusters(
        clusters.assign(
            youth_led_share=[0.2, 0.1, 0.0],
            informal_share=[0.5, 0.5, 0.5],
            n_institutions=[2, 0, 1],
        ),
        lq=lq,
        cluster_regions=["a", "a", "b"],
        assets=assets,
        radius_m=5000,
        growth=[0.1, 0.0, 0.2],
    )
    assert ranked["rank"].tolist() == [1, 2, 3]
    assert ranked["score"].is_monotonic_decreasing
    out = ranked.set_index("cluster_id").sort_index()
    # size_firms: log1p min-max over 10, 100, 1000
    lo, hi = np.log1p(10), np.log1p(1000)
    np.testing.assert_allclose(out["size_firms"], [0, (np.log1p(100) - lo) / (hi - lo), 1])
    # size_employment: cluster 2 has no employment -> 0; the others span the range
    np.testing.assert_allclose(out["size_employment"], [0, 1, 0])
    # specialisation: LQ of the dominant sector in its region: a/10 = 2, a/13 = .5, b/10 = 1
    np.testing.assert_allclose(out["lq"], [2.0, 0.5, 1.0])
    np.testing.assert_allclose(out["specialisation"], [1.0, 0.0, (1 - 0.5) / (2 - 0.5)])
    # dynamism is the recent share itself; inclusiveness the mean of known shares
    np.testing.assert_allclose(out["dynamism"], [0.5, 0.1, 0.2])
    np.testing.assert_allclose(out["inclusiveness"], [0.6, 0.4, 0.5])
    # assets within 5 km of the hull: cluster 0 has the point 2 km away, not the one 8 km
    # away; cluster 1 has one asset 500 m away; cluster 2 none
    np.testing.assert_allclose(out["n_assets"], [1, 1, 0])
    np.testing.assert_allclose(out["assets"], [1, 1, 0])
    w = ranked.attrs["weights"]
    assert w == pytest.approx(DEFAULT_WEIGHTS)  # every component available
    assert ranked.attrs["left_out"] == {}
    expected = sum(w[c] * out[c] for c in COMPONENTS)
    np.testing.assert_allclose(out["score"], expected)
    for c in COMPONENTS:
        assert out[c].between(0, 1).all()


def test_missing_components_are_left_out_and_weights_rescaled(clusters):
    out = rank_clusters(clusters)  # no LQ table, no assets, no youth/informal/growth/institutions
    left = out.attrs["left_out"]
    missing = {"specialisation", "assets", "youth", "informality", "growth", "institutions"}
    assert set(left) == missing
    # each is explained, not a silent 0 weight
    assert "LQ" in left["specialisation"] and "assets" in left["assets"]
    assert "youth_led" in left["youth"] and "informal" in left["informality"]
    assert "dynamics" in left["growth"] and "institutions" in left["institutions"]
    w = out.attrs["weights"]
    assert all(w[c] == 0 for c in missing)
    assert sum(w.values()) == pytest.approx(1.0)
    kept = sum(DEFAULT_WEIGHTS[c] for c in COMPONENTS if c not in missing)
    assert w["size_firms"] == pytest.approx(DEFAULT_WEIGHTS["size_firms"] / kept)
    assert out["specialisation"].isna().all()
    # a zero weight is reported too, with its own reason
    zero = rank_clusters(clusters, weights={"density": 0})
    assert zero.attrs["left_out"]["density"] == "weight set to 0"
    # a column present but all unknown says so
    empty = rank_clusters(clusters.assign(youth_led_share=np.nan), growth=[np.nan] * 3)
    assert "no cluster has a known growth rate" == empty.attrs["left_out"]["growth"]
    assert "youth" in empty.attrs["left_out"]


def test_inclusive_components_by_hand(clusters):
    # Reference: hand computation. youth and informality are the shares themselves;
    # institutions is min-max of log1p(count); growth min-max of the rate clipped to +-1.
    frame = clusters.assign(youth_led_share=[0.1, 0.3, np.nan], informal_share=[0.6, 0.2, 0.9])
    out = (
        rank_clusters(frame, institutions=[0, 3, 1], growth=[0.10, -0.05, 4.0])
        .set_index("cluster_id")
        .sort_index()
    )
    np.testing.assert_allclose(out["youth"], [0.1, 0.3, 0.0])
    np.testing.assert_allclose(out["informality"], [0.6, 0.2, 0.9])
    np.testing.assert_allclose(out["institutions"], [0, 1, np.log1p(1) / np.log1p(3)])
    # growth 4.0 is clipped to 1.0: (g - -0.05) / (1 - -0.05)
    np.testing.assert_allclose(out["growth"], [0.15 / 1.05, 0.0, 1.0])
    np.testing.assert_allclose(out["growth_rate"], [0.10, -0.05, 4.0])
    assert not {"youth", "informality", "growth", "institutions"} & set(out.attrs["left_out"])
    with pytest.raises(InvalidInput, match="one institutions value per cluster"):
        rank_clusters(frame, institutions=[1, 2])
    with pytest.raises(InvalidInput, match="non-negative institutions"):
        rank_clusters(frame, institutions=[1, -2, 0])


def test_custom_weights_change_the_order(clusters):
    only_dynamism = {c: 0.0 for c in COMPONENTS} | {"dynamism": 1.0}
    out = rank_clusters(clusters, weights=only_dynamism)
    assert out["cluster_id"].tolist() == [0, 2, 1]  # recent shares .5, .2, .1
    np.testing.assert_allclose(out["score"], [0.5, 0.2, 0.1])
    only_size = {c: 0.0 for c in COMPONENTS} | {"size_firms": 2.0}
    assert rank_clusters(clusters, weights=only_size)["cluster_id"].tolist() == [2, 1, 0]


@pytest.mark.parametrize(
    "weights, match",
    [
        ({"size": 1.0}, "unknown"),
        ({"density": -1}, "non-negative"),
        ({"density": float("nan")}, "non-negative"),
        ({"density": "high"}, "number"),
        ({c: 0 for c in COMPONENTS}, "all zero"),
        ([1, 2], "object"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(InvalidInput, match=match):
        validate_weights(weights)


def test_bad_inputs(clusters):
    with pytest.raises(InvalidInput, match="one region id per cluster"):
        rank_clusters(clusters, lq=pd.DataFrame({"region_id": [], "sector": [], "lq": []}))
    with pytest.raises(InvalidInput, match="missing"):
        rank_clusters(clusters, lq=pd.DataFrame({"region": []}), cluster_regions=["a"] * 3)
    with pytest.raises(InvalidInput, match="radius_m"):
        rank_clusters(clusters, radius_m=-1)
    with pytest.raises(InvalidInput, match="CRS"):
        rank_clusters(clusters, assets=clusters.to_crs("EPSG:3857"))
    with pytest.raises(InvalidInput, match="n_firms"):
        rank_clusters(clusters.drop(columns="n_firms"))


def test_single_and_empty():
    one = gpd.GeoDataFrame(
        {"cluster_id": [7], "n_firms": [20], "recent_share": [0.3]},
        geometry=[shapely.box(0, 0, 1, 1)],
        crs=CRS,
    )
    out = rank_clusters(one)
    assert out["size_firms"].item() == 1.0 and out["rank"].item() == 1
    empty = rank_clusters(one.iloc[:0])
    assert len(empty) == 0


def test_cluster_spanning_regions_gets_weighted_lq(clusters):
    lq = pd.DataFrame(
        {
            "region_id": ["a", "b", "a", "b"],
            "sector": ["10", "10", "13", "13"],
            "lq": [3.0, 1.0, 0.5, 2.0],
        }
    )
    # cluster 0 (sector 10): 3 firms in a, 1 in b -> (3*3 + 1*1)/4 = 2.5, main region a
    out = rank_clusters(clusters, lq=lq, cluster_regions=[{"a": 3, "b": 1}, "b", None]).set_index(
        "cluster_id"
    )
    assert out.loc[0, "lq"] == pytest.approx(2.5) and out.loc[0, "region_id"] == "a"
    assert out.loc[1, "lq"] == pytest.approx(2.0)
    assert np.isnan(out.loc[2, "lq"]) and out.loc[2, "specialisation"] == 0
    with pytest.raises(InvalidInput, match="non-negative region weights"):
        rank_clusters(clusters, lq=lq, cluster_regions=[{"a": -1}, "b", None])
