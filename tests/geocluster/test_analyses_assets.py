"""run_assets / run_zonal on a crafted layout in a real workspace, and the CLI."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from rasterio.transform import from_origin
from shapely.geometry import Point, box
from sklearn.cluster import DBSCAN

from geocluster.analyses.assets import run_assets, run_zonal
from geocluster.errors import (
    DatasetNotFound,
    InvalidInput,
    RasterNotFound,
    UnusableFile,
    WrongKind,
)
from geocluster.io.raster import write_cog
from geocluster.workspace import slugify

UTM = "EPSG:32635"
OX, OY = 385_000.0, 6_660_000.0  # origin of the crafted layout (UTM 35N, near Helsinki)


def _gdf(rows, crs=UTM):
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in rows])
    return gpd.GeoDataFrame(frame, geometry=[r["geometry"] for r in rows], crs=crs)


def P(x, y):
    return Point(OX + x, OY + y)


# Assets (offsets in metres). a4 is a 2 km x 2 km park; a5 infrastructure has no linked sectors.
ASSETS = [
    dict(
        asset_id="a1",
        name="Museum",
        category="cultural",
        subtype="museum",
        designation="national",
        geometry=P(0, 0),
    ),
    dict(
        asset_id="a2",
        name="Monument",
        category="cultural",
        subtype="monument",
        designation="unesco",
        geometry=P(10_000, 0),
    ),
    dict(
        asset_id="a3",
        name="Market",
        category="agro_food",
        subtype="market",
        designation=None,
        geometry=P(0, 10_000),
    ),
    dict(
        asset_id="a4",
        name="Park",
        category="natural",
        subtype="park",
        designation="local",
        geometry=box(OX + 9_000, OY + 9_000, OX + 11_000, OY + 11_000),
    ),
    dict(
        asset_id="a5",
        name="Station",
        category="infrastructure",
        subtype="station",
        designation=None,
        geometry=P(20_000, 0),
    ),
    dict(
        asset_id="a6",
        name="Castle",
        category="tourism",
        subtype="attraction",
        designation=None,
        geometry=P(20_000, 10_000),
    ),
]
# Firms: ISIC divisions 55/56 are tourism, 10 is agro_food, 64 neither.
FIRMS = [
    dict(
        firm_id="f1",
        name="Hotel 1",
        sector_code="55",
        isic_section="I",
        isic_division="55",
        employees=5.0,
        geometry=P(1_000, 0),
    ),
    dict(
        firm_id="f2",
        name="Hotel 2",
        sector_code="55",
        isic_section="I",
        isic_division="55",
        employees=3.0,
        geometry=P(13_000, 0),
    ),
    dict(
        firm_id="f3",
        name="Dairy",
        sector_code="1050",
        isic_section="C",
        isic_division="10",
        employees=20.0,
        geometry=P(10_500, 0),
    ),
    dict(
        firm_id="f4",
        name="Bakery",
        sector_code="1071",
        isic_section="C",
        isic_division="10",
        employees=4.0,
        geometry=P(1_500, 10_000),
    ),
    dict(
        firm_id="f5",
        name="Cafe",
        sector_code="56",
        isic_section="I",
        isic_division="56",
        employees=2.0,
        geometry=P(0, 10_100),
    ),
    # 1.5 km from the park's edge, 2.5 km from its centre
    dict(
        firm_id="f6",
        name="Lodge",
        sector_code="55",
        isic_section="I",
        isic_division="55",
        employees=7.0,
        geometry=P(10_000, 12_500),
    ),
    dict(
        firm_id="f7",
        name="Inn",
        sector_code="5510",
        isic_section="I",
        isic_division="55",
        employees=10.0,
        geometry=P(20_100, 10_000),
    ),
    dict(
        firm_id="f8",
        name="B&B",
        sector_code="55",
        isic_section="I",
        isic_division="55",
        employees=np.nan,
        geometry=P(20_000, 10_100),
    ),
    dict(
        firm_id="f9",
        name="Bank",
        sector_code="64",
        isic_section="K",
        isic_division="64",
        employees=50.0,
        geometry=P(0, 50),
    ),
]
REGIONS = [
    dict(
        region_id="R1",
        name="South",
        level=1,
        parent_id=None,
        geometry=box(OX - 5_000, OY - 5_000, OX + 15_000, OY + 5_000),
    ),
    dict(
        region_id="R2",
        name="North",
        level=1,
        parent_id=None,
        geometry=box(OX - 5_000, OY + 5_000, OX + 25_000, OY + 15_000),
    ),
]


@pytest.fixture
def ws(workspace):
    workspace.add_dataset("assets", _gdf(ASSETS), name="assets", working_crs=UTM)
    workspace.add_dataset("firms", _gdf(FIRMS), name="firms", working_crs=UTM)
    workspace.add_dataset("boundaries", _gdf(REGIONS), name="regions", working_crs=UTM)
    workspace.add_dataset(
        "indicators",
        pd.DataFrame(
            {
                "region_id": ["R1", "R1", "R2"],
                "year": [2020, 2023, 2023],
                "indicator": ["population", "population", "population"],
                "value": [100_000.0, 120_000.0, 50_000.0],
            }
        ),
        name="stats",
    )
    return workspace


def _props(result):
    return {f["properties"]["asset_id"]: f["properties"] for f in result["assets"]["features"]}


def test_gaps_on_a_crafted_layout(ws):
    res = run_assets(ws, assets="assets", firms="firms", analysis="gaps", radius_m=2_000)
    # a2 (monument): nearest tourism firm 3 km away; the dairy 500 m away is not linked to
    # cultural assets. a4 is reached through its polygon edge (1.5 km), not its centre.
    # a5 (infrastructure) has no linked sectors, so it is never a gap.
    assert res["n_gaps"] == 1
    gaps = _props(res)
    assert list(gaps) == ["a2"]
    assert gaps["a2"]["category"] == "cultural" and gaps["a2"]["subtype"] == "monument"
    np.testing.assert_allclose(gaps["a2"]["nearest_linked_firm_m"], 3_000)
    assert res["by_category"]["cultural"] == {
        "n_assets": 2,
        "n_gaps": 1,
        "linked_sectors": "tourism",
    }
    # the run is a collection: the gaps layer first, every asset in "<run>.assets"
    coll = ws.read_collection(res["run_id"])
    assert coll["asset_id"].tolist() == ["a2"]
    every = ws.read_collection(f"{res['run_id']}.assets").set_index("asset_id")
    assert every["gap"].to_dict() == {
        "a1": False,
        "a2": True,
        "a3": False,
        "a4": False,
        "a5": False,
        "a6": False,
    }
    assert every.loc["a6", "n_firms"] == 2
    assert every.loc["a6", "employees"] == 10 and every.loc["a6", "employees_known"] == 1
    assert every.loc["a4", "n_firms"] == 1
    # the market counts the bakery (agro_food), not the cafe 100 m away
    assert every.loc["a3", "n_firms"] == 1 and every.loc["a3", "employees"] == 4
    assert every.loc["a5", "linked_sectors"] == "none"
    # per-asset firm counts are declared cell_counts: the edge's disclosure seam flags
    # them below 3 contributors (the stored run keeps the exact counts for editors)
    from geocluster.analyses.assets import assets_result
    from geocluster.disclosure import PERMISSIVE, apply

    result = assets_result(ws, assets="assets", firms="firms", analysis="linkage", radius_m=2_000)
    assert result.layers["assets"].kind == "cell_counts"
    flagged = apply(result, None, PERMISSIVE).layers["assets"].frame.set_index("asset_id")
    assert flagged.loc["a6", "disclosure"] == "few_contributors"


def test_gaps_ordering_and_override(ws):
    # With the agro_food group for every asset: a2 now has the dairy; a1, a4, a6 become gaps,
    # and so does a5 (an explicit selection applies to every category).
    res = run_assets(
        ws,
        assets="assets",
        firms="firms",
        analysis="gaps",
        radius_m=2_000,
        sector_group="agro_food",
    )
    ids = list(_props(res))
    # ordered by designation (national, local, then none), then farthest first
    assert ids[:2] == ["a1", "a4"]
    assert set(ids) == {"a1", "a4", "a5", "a6"}
    # sectors by code: divisions and classes
    res = run_assets(
        ws,
        assets="assets",
        firms="firms",
        analysis="gaps",
        radius_m=2_000,
        sectors=["5510"],
        category="tourism",
    )
    assert res["n_gaps"] == 0 and res["n_assets"] == 1
    res = run_assets(
        ws, assets="assets", firms="firms", analysis="gaps", radius_m=200, sectors=["I"]
    )
    assert set(_props(res)) == {"a1", "a2", "a4", "a5"}


def test_linkage(ws):
    res = run_assets(
        ws,
        assets="assets",
        firms="firms",
        analysis="linkage",
        radius_m=2_000,
        permutations=19,
        seed=3,
    )
    shares = {r["firms"]: r for r in res["shares"]}
    # tourism firms f1, f2, f5, f6, f7, f8: all but f2 within 2 km of an asset
    assert (shares["tourism"]["n_firms"], shares["tourism"]["n_within"]) == (6, 5)
    assert (shares["agro_food"]["n_firms"], shares["agro_food"]["n_within"]) == (2, 2)
    assert (shares["all"]["n_firms"], shares["all"]["n_within"]) == (9, 8)
    props = _props(res)
    assert props["a1"]["n_firms"] == 1 and props["a1"]["employees"] == 5
    assert all("category" in p and "subtype" in p for p in props.values())
    clq = {r["category"]: r for r in res["colocation"]}
    assert set(clq) == {"agro_food", "cultural", "infrastructure", "natural", "tourism"}
    assert clq["infrastructure"]["clq_firms_to_assets"] is None  # no linked sectors
    # cultural vs tourism firms: pooled 2 assets + 6 firms; hand check of CLQ assets->firms:
    # a1's nearest is f1 (firm), a2's nearest is f3? no: f3 is agro, not pooled; a2's
    # nearest pooled point is f2 (3 km) -> C = 2, CLQ = (2/2) / (6/7) = 7/6
    np.testing.assert_allclose(clq["cultural"]["clq_assets_to_firms"], 7 / 6)
    assert 0 < clq["cultural"]["p_assets_to_firms"] <= 1
    again = run_assets(
        ws,
        assets="assets",
        firms="firms",
        analysis="linkage",
        radius_m=2_000,
        permutations=19,
        seed=3,
    )
    assert again["colocation"] == res["colocation"]
    assert ws.read_collection(f"{res['run_id']}.colocation").shape[0] == 5


def test_density_with_indicator_population(ws):
    res = run_assets(
        ws, assets="assets", boundaries="regions", analysis="density", indicators="stats"
    )
    rows = {(r["region_id"], r["category"]): r for r in res["rows"]}
    assert rows[("R1", "all")]["n_assets"] == 2  # a1, a2 (a5 lies outside both regions)
    assert rows[("R2", "all")]["n_assets"] == 3  # a3, a4 (by its inside point), a6
    assert rows[("R1", "cultural")]["n_assets"] == 2 and rows[("R1", "natural")]["n_assets"] == 0
    assert res["n_outside"] == 1
    # area: R1 is 20 km x 10 km in UTM; the geodesic area must agree with an independent
    # equal-area projection (ETRS89-LAEA, EPSG:3035) to 1e-4, and with UTM's planar area to
    # within UTM's scale distortion here (k ~ 0.9998, so ~0.05 % on areas).
    laea = gpd.GeoSeries([REGIONS[0]["geometry"]], crs=UTM).to_crs("EPSG:3035").area.iloc[0] / 1e6
    np.testing.assert_allclose(rows[("R1", "all")]["area_km2"], laea, rtol=1e-4)
    np.testing.assert_allclose(rows[("R1", "all")]["area_km2"], 200.0, rtol=2e-3)
    np.testing.assert_allclose(
        rows[("R1", "all")]["assets_per_km2"], 2 / rows[("R1", "all")]["area_km2"]
    )
    # population: the latest year per region
    assert rows[("R1", "all")]["population"] == 120_000
    np.testing.assert_allclose(rows[("R1", "all")]["assets_per_10k"], 2 / 120_000 * 10_000)
    np.testing.assert_allclose(rows[("R2", "tourism")]["assets_per_10k"], 1 / 50_000 * 10_000)
    # by year
    res = run_assets(
        ws, assets="assets", boundaries="regions", analysis="density", indicators="stats", year=2020
    )
    rows = {(r["region_id"], r["category"]): r for r in res["rows"]}
    assert (
        rows[("R1", "all")]["population"] == 100_000 and rows[("R2", "all")]["population"] is None
    )
    wide = ws.read_collection(res["run_id"]).set_index("region_id")
    assert wide.loc["R2", "n_assets"] == 3 and wide.loc["R2", "n_natural"] == 1
    assert wide.geometry.iloc[0].geom_type == "Polygon"
    with pytest.raises(InvalidInput, match="gdp"):
        run_assets(
            ws,
            assets="assets",
            boundaries="regions",
            analysis="density",
            indicators="stats",
            population_indicator="gdp",
        )


def _population_raster(tmp_path):
    # 10 inhabitants per 100 m cell over [-6 km, 26 km] x [-6 km, 16 km] of the layout
    cols, rows = 320, 220
    arr = np.full((rows, cols), 10.0, dtype="float32")
    path = write_cog(
        tmp_path / "pop.tif",
        arr,
        transform=from_origin(OX - 6_000, OY + 16_000, 100.0, 100.0),
        crs=UTM,
        nodata=-1.0,
    )
    return path


def test_density_with_population_raster_and_zonal(ws, tmp_path):
    info = ws.add_raster(_population_raster(tmp_path), name="Population 100m")
    assert info.id == slugify("Population 100m")
    res = run_assets(
        ws, assets="assets", boundaries="regions", analysis="density", population_raster=info.id
    )
    rows = {(r["region_id"], r["category"]): r for r in res["rows"]}
    # R1 is exactly 200 x 100 cells of 10 people
    assert rows[("R1", "all")]["population"] == 200_000

    z = run_zonal(
        ws, raster=info.id, assets="assets", radius_m=1_000, stats=("sum", "count"), block_size=16
    )
    by_id = {r["asset_id"]: r for r in z["rows"]}
    assert by_id["a1"]["category"] == "cultural" and by_id["a1"]["subtype"] == "museum"
    # reference: pixel centres inside the same buffer polygon, counted with numpy/shapely
    xs = OX - 6_000 + (np.arange(320) + 0.5) * 100
    ys = OY + 16_000 - (np.arange(220) + 0.5) * 100
    gx, gy = np.meshgrid(xs, ys)
    buf = P(0, 0).buffer(1_000, quad_segs=16)
    n_in = int(shapely.contains_xy(buf, gx, gy).sum())
    assert by_id["a1"]["count"] == n_in
    np.testing.assert_allclose(by_id["a1"]["sum"], 10 * n_in)
    assert abs(n_in - np.pi * 100) < 10  # ~ pi km2 of 0.01 km2 cells
    # per region
    z = run_zonal(ws, raster=info.id, boundaries="regions", stats=["sum", "mean"])
    by_region = {r["region_id"]: r for r in z["rows"]}
    assert by_region["R1"]["sum"] == 200_000 and by_region["R1"]["mean"] == 10
    assert ws.read_collection(z["run_id"]).shape[0] == 2
    # a polygon asset without radius uses the polygon itself
    z = run_zonal(ws, raster=info.id, assets="assets", category="natural", stats=["count"])
    assert z["rows"][0]["count"] == 400  # 2 km x 2 km of 100 m cells


def test_clusters_match_sklearn(workspace):
    rng = np.random.default_rng(5)
    centres = [(0, 0), (5_000, 0), (0, 8_000)]
    pts = [c + rng.normal(0, 150, size=2) for c in centres for _ in range(5)]
    pts += [(20_000, 20_000), (-20_000, 3_000)]  # isolated
    cats = ["cultural", "cultural", "natural", "tourism", "agro_food"] * 3 + ["cultural", "natural"]
    rows = [
        dict(
            asset_id=f"x{i}",
            name=f"x{i}",
            category=c,
            subtype="other",
            designation=None,
            geometry=P(*p),
        )
        for i, (p, c) in enumerate(zip(pts, cats, strict=True))
    ]
    workspace.add_dataset("assets", _gdf(rows), name="heritage", working_crs=UTM)
    res = run_assets(workspace, assets="heritage", analysis="clusters", eps_m=800, min_samples=3)
    got = {
        f["properties"]["asset_id"]: f["properties"]["zone_id"] for f in res["assets"]["features"]
    }
    xy = np.array([[OX + x, OY + y] for x, y in pts])
    ref = DBSCAN(eps=800, min_samples=3).fit(xy).labels_
    # The same partition as scikit-learn's (cluster numbers follow the stored order).
    labels = np.array([got[f"x{i}"] for i in range(len(pts))])
    np.testing.assert_array_equal(labels == -1, ref == -1)
    pairs = {(a, b) for a, b in zip(labels, ref, strict=True) if b != -1}
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs}) == 3
    assert res["n_zones"] == 3 and res["noise"] == 2
    z0 = res["zones"]["features"][0]["properties"]
    assert z0["n_assets"] == 5 and z0["dominant_category"] == "cultural"
    assert z0["categories"] == "agro_food:1;cultural:2;natural:1;tourism:1"
    zones = workspace.read_collection(res["run_id"])
    assert len(zones) == 3 and zones.geometry.geom_type.eq("Polygon").all()


def test_errors(ws, tmp_path):
    with pytest.raises(InvalidInput, match="analysis"):
        run_assets(ws, assets="assets", analysis="magic")
    with pytest.raises(InvalidInput, match="boundaries"):
        run_assets(ws, assets="assets", analysis="density")
    with pytest.raises(InvalidInput, match="firms"):
        run_assets(ws, assets="assets", analysis="gaps")
    with pytest.raises(InvalidInput, match="radius_m"):
        run_assets(ws, assets="assets", firms="firms", analysis="gaps", radius_m=-5)
    with pytest.raises(InvalidInput, match="category"):
        run_assets(ws, assets="assets", firms="firms", analysis="gaps", category="lunar")
    with pytest.raises(WrongKind):
        run_assets(ws, assets="firms", firms="firms", analysis="gaps")
    with pytest.raises(DatasetNotFound):
        run_assets(ws, assets="nope", analysis="clusters")
    with pytest.raises(InvalidInput, match="sector group"):
        run_assets(ws, assets="assets", firms="firms", analysis="gaps", sector_group="spaceflight")
    with pytest.raises(InvalidInput, match="ISIC codes"):
        run_assets(ws, assets="assets", firms="firms", analysis="gaps", sectors=["5x"])
    with pytest.raises(RasterNotFound):
        run_zonal(ws, raster="nope", boundaries="regions")
    info = ws.add_raster(_population_raster(tmp_path), name="pop")
    with pytest.raises(InvalidInput, match="exactly one"):
        run_zonal(ws, raster=info.id)
    with pytest.raises(InvalidInput, match="radius_m"):
        run_zonal(ws, raster=info.id, assets="assets")
    with pytest.raises(InvalidInput, match="statistics"):
        run_zonal(ws, raster=info.id, boundaries="regions", stats=["mode"])
    bad = tmp_path / "notes.tif"
    bad.write_text("this is not a raster")
    with pytest.raises(UnusableFile, match="not a raster"):
        ws.add_raster(bad, name="notes")
    assert [r.id for r in ws.rasters()] == ["pop"]


def test_cli(ws, tmp_path, capsys):
    from geocluster.cli import main

    w = str(ws.path)
    assert (
        main(
            [
                "raster",
                "add",
                str(_population_raster(tmp_path)),
                "--name",
                "pop",
                "--workspace",
                w,
                "--json",
            ]
        )
        == 0
    )
    added = json.loads(capsys.readouterr().out)
    assert added["id"] == "pop" and "path" not in added
    assert main(["raster", "list", "--workspace", w]) == 0
    assert "pop" in capsys.readouterr().out
    assert (
        main(
            [
                "zonal",
                "--raster",
                "pop",
                "--boundaries",
                "regions",
                "--stats",
                "sum",
                "--workspace",
                w,
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert {r["region_id"]: r["sum"] for r in out["rows"]}["R1"] == 200_000
    assert (
        main(
            [
                "assets",
                "gaps",
                "--assets",
                "assets",
                "--firms",
                "firms",
                "--radius-m",
                "2000",
                "--workspace",
                w,
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "1 assets with no linked business" in text and "a2" in text
    assert (
        main(
            [
                "assets",
                "linkage",
                "--assets",
                "assets",
                "--firms",
                "firms",
                "--permutations",
                "9",
                "--workspace",
                w,
            ]
        )
        == 0
    )
    assert "co-location" in capsys.readouterr().out
    bad = tmp_path / "x.tif"
    bad.write_text("nope")
    assert main(["raster", "add", str(bad), "--name", "x", "--workspace", w]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geocluster: error: not a raster: x.tif")
