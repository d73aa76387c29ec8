"""Region profiles, comparison and peers on a small synthetic workspace.

Layout (lon/lat, EPSG:4326): country "X" (level 0) over four 1°x1° squares (level 1):
A = [0,1]x[0,1], B = [1,2]x[0,1], C = [0,1]x[1,2], D = [1,2]x[1,2].
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from geocluster.analyses.territories import compare_regions, peer_regions, region_profile
from geocluster.errors import InvalidInput, RegionNotFound
from geocluster.inequality import theil_contributions
from geocluster.territories import area_km2, nearest_peers

SQUARES = {"A": box(0, 0, 1, 1), "B": box(1, 0, 2, 1), "C": box(0, 1, 1, 2), "D": box(1, 1, 2, 2)}

# (region, sector division, employees) for each firm; placed inside its square
FIRMS = [
    ("A", "10", 10), ("A", "10", 20), ("A", "10", 5), ("A", "62", 10),
    ("B", "62", 50), ("B", "62", 30), ("B", "10", 5),
    ("C", "55", 8), ("C", "55", 2), ("C", "10", 4),
    ("D", "62", 12),
]  # fmt: skip


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("terr") / "ws")
    bounds = gpd.GeoDataFrame(
        {
            "region_id": ["X", *SQUARES],
            "name": ["Country", "Alpha", "Beta", "Gamma", "Delta"],
            "level": [0, 1, 1, 1, 1],
            "parent_id": [None, "X", "X", "X", "X"],
        },
        geometry=[box(0, 0, 2, 2), *SQUARES.values()],
        crs="EPSG:4326",
    )
    ws.add_dataset("boundaries", bounds, name="grid")
    rng = np.random.default_rng(0)
    rows = []
    for k, (reg, div, emp) in enumerate(FIRMS):
        x0, y0, _, _ = SQUARES[reg].bounds
        pt = Point(x0 + 0.1 + 0.8 * rng.random(), y0 + 0.1 + 0.8 * rng.random())
        rows.append({"firm_id": f"f{k}", "name": f"firm {k}", "sector_code": div,
                     "isic_division": div, "employees": float(emp), "geometry": pt})  # fmt: skip
    ws.add_dataset("firms", gpd.GeoDataFrame(rows, crs="EPSG:4326"), name="firms")
    assets = gpd.GeoDataFrame(
        {
            "asset_id": ["a1", "a2", "a3", "a4"],
            "name": ["museum", "park", "cheese", "castle"],
            "category": ["cultural", "natural", "agro_food", "cultural"],
        },
        geometry=[Point(0.5, 0.5), Point(0.2, 0.7), Point(1.5, 0.5), Point(0.6, 0.3)],
        crs="EPSG:4326",
    )
    ws.add_dataset("assets", assets, name="assets")
    ind = []
    data = {
        "population": {"A": 1000, "B": 4000, "C": 500, "D": 2500},
        "gdp_pc": {"A": 10.0, "B": 30.0, "C": 8.0, "D": 20.0},
        "schooling": {"A": 9.0, "B": 12.0, "C": 8.5, "D": 10.0},
    }
    for name, vals in data.items():
        for reg, v in vals.items():
            ind.append((reg, 2020, name, float(v)))
            ind.append((reg, 2010, name, float(v) * 0.8))
    ind.append(("X", 2020, "gdp_pc", 18.0))  # the country row must not count among level-1 peers
    ws.add_dataset(
        "indicators",
        pd.DataFrame(ind, columns=["region_id", "year", "indicator", "value"]),
        name="ind",
    )
    clusters = gpd.GeoDataFrame(
        {"cluster_id": [0, 1], "n_firms": [3, 2], "dominant_sector": ["10", "62"]},
        geometry=[box(0.5, 0.5, 1.5, 0.9), box(1.2, 1.2, 1.4, 1.4)],
        crs="EPSG:4326",
    )
    ws.save_run("clusters", params={}, inputs=["firms"], layers={"clusters": clusters}, summary={})
    # newer datasets about somewhere else must not shadow the grid's in the defaults
    far = gpd.GeoDataFrame(
        {"region_id": ["Z1"], "name": ["Far"], "level": [1], "parent_id": [None]},
        geometry=[box(50, 50, 51, 51)], crs="EPSG:4326",
    )  # fmt: skip
    ws.add_dataset("boundaries", far, name="elsewhere")
    far_firms = gpd.GeoDataFrame(
        {"firm_id": ["z"], "sector_code": ["10"], "isic_division": ["10"], "employees": [1.0]},
        geometry=[Point(50.5, 50.5)], crs="EPSG:4326",
    )  # fmt: skip
    ws.add_dataset("firms", far_firms, name="far_firms")
    far_ind = pd.DataFrame(
        {"region_id": ["Z1"], "year": [2020], "indicator": ["gdp_pc"], "value": [1.0]}
    )
    ws.add_dataset("indicators", far_ind, name="far_ind")
    return ws


def test_area_is_geodesic():
    # a 1x1 degree cell at the equator; reference: equal-area projection EPSG:6933
    cell = gpd.GeoSeries([box(0, 0, 1, 1)], crs="EPSG:4326")
    ref = cell.to_crs("EPSG:6933").area.iloc[0] / 1e6
    np.testing.assert_allclose(area_km2(cell)[0], ref, rtol=2e-3)
    # the same cell at 60 degrees north is about half as large (cos 60)
    north = gpd.GeoSeries([box(0, 60, 1, 61)], crs="EPSG:4326")
    assert 0.45 < area_km2(north)[0] / area_km2(cell)[0] < 0.5


def test_nearest_peers_vs_sklearn():
    rng = np.random.default_rng(1)
    m = pd.DataFrame(rng.normal(size=(12, 3)) * [1, 10, 100], index=[f"r{i}" for i in range(12)])
    got = nearest_peers(m, "r3", 4)
    z = StandardScaler().fit_transform(m.to_numpy())
    nn = NearestNeighbors(n_neighbors=5).fit(z)
    dist, idx = nn.kneighbors(z[[3]])
    assert got["region_id"].tolist() == [m.index[i] for i in idx[0][1:]]
    np.testing.assert_allclose(got["distance"], dist[0][1:], rtol=1e-10)
    with pytest.raises(InvalidInput, match="do not vary"):
        nearest_peers(pd.DataFrame({"a": [1.0, 1.0]}, index=["x", "y"]), "x", 1)


def test_region_profile(ws):
    p = region_profile(ws, "A", boundaries="grid", year=2020)
    assert p["name"] == "Alpha" and p["level"] == 1 and p["parent_id"] == "X"
    np.testing.assert_allclose(p["area_km2"], area_km2(gpd.GeoSeries([SQUARES["A"]], crs=4326))[0])
    assert p["population"] == {"indicator": "population", "year": 2020, "value": 1000.0}
    f = p["firms"]
    assert f["count"] == 4 and f["employees"] == 45.0 and f["employees_known"] == 4
    np.testing.assert_allclose(f["density_per_km2"], 4 / p["area_km2"])
    assert f["per_1000_inhabitants"] == pytest.approx(4.0)
    assert f["rank"] == 1 and f["of"] == 4  # A has the most firms among level-1 regions
    # LQ by hand on employment: A has 35 of its 45 employees in 10; level total in 10 is
    # 35 + 5 + 4 = 44 of 156
    top = {r["sector"]: r for r in p["sectors"]["top"]}
    assert p["sectors"]["measure"] == "employees"
    np.testing.assert_allclose(top["10"]["lq"], (35 / 45) / (44 / 156))
    np.testing.assert_allclose(top["62"]["lq"], (10 / 45) / (102 / 156))
    assert p["sectors"]["top"][0]["sector"] == "10"
    # US Cluster Mapping rule by hand for division 10 across A, B, C, D:
    # LQ (2.757, 0.209, 1.013, 0) -> P75 = 1.449, A passes (and LQ >= 1);
    # employment (35, 5, 4, 0) -> P25 = 3 < 35; firms (3, 1, 1, 0) -> P25 = 0.75 < 3.
    # Division 62 in A has LQ 0.34 < 1.
    assert p["sectors"]["strong"] == ["10"]
    assert top["10"]["strong"] and not top["62"]["strong"]
    assert top["10"]["title"]
    assert p["assets"]["by_category"] == {"cultural": 2, "natural": 1} and p["assets"]["total"] == 3
    clusters = p["clusters"]["items"]
    assert [c["cluster_id"] for c in clusters] == [0]
    assert 0.4 < clusters[0]["overlap_share"] < 0.6  # half of cluster 0 lies in A
    vals = {v["indicator"]: v for v in p["indicators"]["values"]}
    gdp = vals["gdp_pc"]
    assert gdp["rank"] == 3 and gdp["of"] == 4  # 30, 20, 10, 8 (country row not a peer)
    contrib = theil_contributions([10.0, 30.0, 8.0, 20.0])
    np.testing.assert_allclose(gdp["theil_contribution"], contrib[0])
    np.testing.assert_allclose(gdp["theil_share"], contrib[0] / contrib.sum())


def test_profile_defaults_to_newest_datasets_and_latest_year(ws):
    p = region_profile(ws, "B")
    assert p["boundaries"] == "grid" and p["firms"]["dataset"] == "firms"
    assert p["indicators"]["dataset"] == "ind" and p["assets"]["dataset"] == "assets"
    far = region_profile(ws, "Z1")
    assert far["boundaries"] == "elsewhere" and far["firms"]["dataset"] == "far_firms"
    assert far["firms"]["count"] == 1 and far["assets"] is None
    assert {v["year"] for v in p["indicators"]["values"]} == {2020}
    assert p["population"]["value"] == 4000.0


def test_unknown_region_and_bad_ids(ws):
    with pytest.raises(RegionNotFound, match="no region 'Z'"):
        region_profile(ws, "Z", boundaries="grid")
    with pytest.raises(InvalidInput, match="between 2 and 10"):
        compare_regions(ws, ["A"], boundaries="grid")
    with pytest.raises(InvalidInput, match="between 2 and 10"):
        compare_regions(ws, ["A", "A"], boundaries="grid")
    with pytest.raises(InvalidInput, match="between 2 and 10"):
        compare_regions(ws, [f"r{i}" for i in range(11)], boundaries="grid")
    with pytest.raises(RegionNotFound):
        compare_regions(ws, ["A", "nope"], boundaries="grid")


def test_compare_regions(ws):
    res = compare_regions(ws, ["A", "B", "D"], boundaries="grid", year=2020)
    assert res["ids"] == ["A", "B", "D"] and len(res["regions"]) == 3
    table = {row["metric"]: row["values"] for row in res["table"]}
    assert table["firms.count"] == {"A": 4, "B": 3, "D": 1}
    assert table["gdp_pc"] == {"A": 10.0, "B": 30.0, "D": 20.0}
    assert table["gdp_pc.rank"] == {"A": 3, "B": 1, "D": 2}
    assert table["assets.cultural"] == {"A": 2, "B": None, "D": None}


def test_peer_regions_vs_sklearn(ws):
    res = peer_regions(ws, "A", boundaries="grid", indicators="ind", k=2, year=2020)
    assert [u["indicator"] for u in res["indicators"]] == ["gdp_pc", "population", "schooling"]
    m = np.array([[10.0, 1000, 9.0], [30.0, 4000, 12.0], [8.0, 500, 8.5], [20.0, 2500, 10.0]])
    z = StandardScaler().fit_transform(m)
    dist, idx = NearestNeighbors(n_neighbors=3).fit(z).kneighbors(z[[0]])
    assert [p["region_id"] for p in res["peers"]] == [list("ABCD")[i] for i in idx[0][1:]]
    np.testing.assert_allclose([p["distance"] for p in res["peers"]], dist[0][1:])
    with pytest.raises(RegionNotFound):
        peer_regions(ws, "Q", boundaries="grid")
    with pytest.raises(InvalidInput, match="k >= 1"):
        peer_regions(ws, "A", boundaries="grid", k=0)
