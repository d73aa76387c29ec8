"""Tests for the synthetic firm generator and the demo workspace builder."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.demo import DEMO_DATASETS, DEMO_RUNS, build_demo
from geocluster.demo.firms import BACKGROUND_CITIES, CLUSTER_TOWNS, generate_firms
from geocluster.errors import InvalidInput, UnusableFile
from geocluster.sectors import normalize_codes

DATA = Path(__file__).resolve().parents[2] / "data"
STATES = DATA / "boundaries" / "mexico_states.gpkg"


@pytest.fixture(scope="module")
def mexico_land():
    states = gpd.read_file(STATES)
    return shapely.union_all(states.geometry.values)


@pytest.fixture(scope="module")
def firms():
    return generate_firms(4000, seed=11)


def _haversine_km(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


# ---------------------------------------------------------------- generator
def test_same_seed_same_firms_other_seed_other_firms():
    a = generate_firms(1500, seed=7)
    b = generate_firms(1500, seed=7)
    c = generate_firms(1500, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a[["lon", "lat"]].equals(c[["lon", "lat"]])


def test_columns_and_labels(firms):
    assert list(firms.columns) == [
        "firm_id", "name", "isic", "employees", "founded", "women_led", "informal",
        "lon", "lat", "synthetic", "origin",
    ]  # fmt: skip
    assert len(firms) == 4000
    assert firms["firm_id"].is_unique
    assert firms["synthetic"].all()
    assert firms["name"].str.fullmatch(r"Synthetic firm \d+").all()
    assert firms["employees"].min() >= 1
    assert firms["founded"].between(1960, 2025).all()
    assert firms["women_led"].dtype == bool and firms["informal"].dtype == bool


def test_isic_codes_are_valid_classes(firms):
    codes, unknown = normalize_codes(firms["isic"])
    assert not unknown.any()
    assert (codes.str.len() == 4).all()


@pytest.mark.parametrize("seed", [0, 1, 2024])
def test_shares_in_documented_ranges(seed):
    # ranges stated in geocluster/demo/firms.py's module docstring
    f = generate_firms(3000, seed=seed)
    assert 0.80 <= (f["employees"] <= 10).mean() <= 0.95
    assert 0.28 <= f["women_led"].mean() <= 0.45
    assert 0.25 <= f["informal"].mean() <= 0.60
    assert (f["founded"] >= 2000).mean() >= 0.6
    cluster_share = (~f["origin"].str.startswith("background")).mean()
    assert abs(cluster_share - sum(t.share for t in CLUSTER_TOWNS)) < 0.01


def test_informal_falls_with_size(firms):
    small = firms.loc[firms["employees"] <= 2, "informal"].mean()
    large = firms.loc[firms["employees"] >= 50, "informal"].mean()
    assert small > 0.3 and large < 0.05


@pytest.mark.parametrize("town", CLUSTER_TOWNS, ids=lambda t: t.name)
def test_cluster_towns_present(firms, town):
    here = firms[firms["origin"] == town.name]
    assert len(here) == round(4000 * town.share)
    assert set(here["isic"]) <= set(town.sectors)
    # an isotropic 2-D normal: the median distance is sigma * sqrt(2 ln 2) ~ 1.18 sigma
    d = _haversine_km(here["lon"], here["lat"], town.lon, town.lat)
    assert np.median(d) == pytest.approx(town.sigma_km * math.sqrt(2 * math.log(2)), rel=0.35)


def test_known_cluster_sectors(firms):
    def divisions(name):
        return set(firms.loc[firms["origin"] == name, "isic"].str[:2])

    assert divisions("León") == {"15"}
    assert divisions("Guadalajara") == {"26"}
    assert divisions("Santiago Matatlán") <= {"11", "56"}
    assert divisions("Monterrey") <= {"24", "25"}
    assert divisions("Cancún") <= {"55", "56", "79"}


def test_background_covers_every_state():
    states = {c.state for c in BACKGROUND_CITIES}
    assert len(states) == 32


def test_within_keeps_firms_on_land(mexico_land):
    f = generate_firms(2000, seed=3, within=mexico_land)
    assert shapely.contains_xy(mexico_land, f["lon"], f["lat"]).all()


@pytest.mark.parametrize("n", [0, 99, -5, 1.5, "100"])
def test_bad_n(n):
    with pytest.raises(InvalidInput, match="n >= 100"):
        generate_firms(n)


# ---------------------------------------------------------------- bundled data
def test_bundled_firm_file_is_the_generator_output(mexico_land):
    # data/build_data.py: generate_firms(20_000, seed=20240601, within=<states>)
    expected = generate_firms(20_000, seed=20240601, within=mexico_land).drop(columns="origin")
    got = pd.read_csv(DATA / "firms" / "mexico_demo_firms_SYNTHETIC.csv", dtype={"isic": str})
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_mexico_states_file():
    import libpysal

    states = gpd.read_file(STATES)
    assert len(states) == 32 and states["region_id"].is_unique
    assert states.crs.to_epsg() == 4326
    assert (states["level"] == 1).all() and (states["parent_id"] == "MEX").all()
    assert states["region_id"].str.fullmatch(r"MX-[A-Z]{3}").all()
    for col in ["hanson03", "hanson98", "esquivel99", "inegi", "inegi2"]:
        assert col in states.columns
    assert states.geometry.is_valid.all()
    # the partitions equal libpysal's mexico.csv (matched on the pcgdp1940 values)
    ref = pd.read_csv(libpysal.examples.get_path("mexico.csv"))
    pcgdp = pd.read_csv(DATA / "indicators" / "mexico_pcgdp.csv")
    y40 = pcgdp[pcgdp["year"] == 1940].set_index("region_id")["value"]
    merged = states.assign(pcgdp1940=states["region_id"].map(y40)).merge(
        ref, on="pcgdp1940", suffixes=("", "_ref")
    )
    assert len(merged) == 32
    for col in ["hanson03", "hanson98", "esquivel99", "inegi", "inegi2"]:
        assert (merged[col] == merged[f"{col}_ref"]).all(), col


def test_pcgdp_file_matches_libpysal():
    import libpysal

    ref = pd.read_csv(libpysal.examples.get_path("mexico.csv"))
    got = pd.read_csv(DATA / "indicators" / "mexico_pcgdp.csv")
    assert list(got.columns) == ["region_id", "year", "indicator", "value"]
    assert len(got) == 32 * 7 and set(got["year"]) == set(range(1940, 2001, 10))
    assert (got["indicator"] == "pcgdp").all()
    wide = got.pivot(index="region_id", columns="year", values="value")
    # as multisets per year: libpysal's csv names states differently, values are equal
    for year in range(1940, 2001, 10):
        np.testing.assert_allclose(np.sort(wide[year]), np.sort(ref[f"pcgdp{year}"]))
    jal = got[(got["region_id"] == "MX-JAL")].set_index("year")["value"]
    np.testing.assert_allclose(
        jal.to_numpy(),
        ref.loc[ref["State"] == "Jalisco", [f"pcgdp{y}" for y in range(1940, 2001, 10)]].to_numpy()[
            0
        ],
    )


def test_countries_file():
    c = gpd.read_file(DATA / "boundaries" / "natural_earth_countries.gpkg")
    assert c.crs.to_epsg() == 4326
    assert c["region_id"].is_unique and not (c["region_id"] == "-99").any()
    assert (c["level"] == 0).all()
    assert {"MEX", "FIN", "FRA", "NOR"} <= set(c["region_id"])
    mex = c[c["region_id"] == "MEX"].geometry.iloc[0]
    assert mex.contains(shapely.Point(-99.13, 19.43))  # Mexico City
    assert c.geometry.is_valid.all()


def test_assets_file():
    a = pd.read_csv(DATA / "assets" / "mexico_assets.csv")
    assert a["asset_id"].is_unique
    assert set(a["category"]) <= {"cultural", "natural", "agro_food", "tourism", "infrastructure"}
    assert set(a["designation"]) <= {"unesco", "gi"}
    names = set(a["name"])
    for site in [
        "Historic Centre of Oaxaca",
        "Agave Landscape and Ancient Industrial Facilities of Tequila",
        "Historic Centre of Puebla",
        "Historic Town of Guanajuato and Adjacent Mines",
        "Sian Ka'an",
        "Pre-Hispanic City of Chichen-Itza",
        "Pre-Hispanic City of Teotihuacan",
        "Archaeological Site of Monte Albán",
        "Pre-Hispanic City and National Park of Palenque",
    ]:
        assert site in names
    states = gpd.read_file(STATES)
    pts = gpd.GeoDataFrame(a, geometry=gpd.points_from_xy(a["lon"], a["lat"]), crs=4326)
    joined = gpd.sjoin(pts, states[["region_id", "geometry"]], predicate="within")
    assert len(joined) == len(a)
    where = joined.set_index("name")["region_id"]
    assert where["Sian Ka'an"] == "MX-ROO"
    assert where["Pre-Hispanic City of Chichen-Itza"] == "MX-YUC"
    assert where["Historic Centre of Oaxaca"] == "MX-OAX"


def test_data_small_and_documented():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file() and p.suffix != ".pbf")
    assert total < 5_000_000
    for folder in ["boundaries", "indicators", "osm", "firms", "assets", "institutions"]:
        text = (DATA / folder / "README.md").read_text(encoding="utf-8")
        for word in ["Source", "Licence", "Date", "CRS"]:
            assert word in text, (folder, word)
    assert "SYNTHETIC" in (DATA / "firms" / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in (DATA / "institutions" / "README.md").read_text(encoding="utf-8")
    inst = pd.read_csv(DATA / "institutions" / "mexico_institutions_SYNTHETIC.csv")
    assert inst["synthetic"].all() and inst["name"].str.startswith("Synthetic").all()


# ---------------------------------------------------------------- follow-up register
def test_follow_up_is_deterministic_and_changes_the_register(tmp_path):
    from geocluster.demo.followup import follow_up, write_follow_up

    src = DATA / "firms" / "mexico_demo_firms_SYNTHETIC.csv"
    a = write_follow_up(src, tmp_path / "a.csv").read_bytes()
    b = write_follow_up(src, tmp_path / "b.csv").read_bytes()
    assert a == b  # the demo's checksum test relies on a reproducible file
    base = pd.read_csv(src, dtype={"isic": str})
    new = follow_up(base)
    assert set(new.columns) == set(base.columns) | {"youth_led"} and new["synthetic"].all()
    assert 0.15 < new["youth_led"].mean() < 0.45
    assert new["firm_id"].is_unique
    survivors = new[new["firm_id"].isin(base["firm_id"])]
    closed = 1 - len(survivors) / len(base)
    assert 0.05 < closed < 0.15
    births = new[~new["firm_id"].isin(base["firm_id"])]
    assert set(births["founded"]) <= {2025, 2026}
    # the tequila cluster (ISIC 1101) loses more firms than the register as a whole
    tequila = base["isic"] == "1101"
    lost = 1 - base.loc[tequila, "firm_id"].isin(survivors["firm_id"]).mean()
    assert lost > closed + 0.15
    assert (births["isic"] == "3030").sum() >= 160  # the new Querétaro cluster


# ---------------------------------------------------------------- build_demo
def test_build_demo_missing_data(tmp_path):
    with pytest.raises(UnusableFile, match="missing"):
        build_demo(tmp_path / "ws", data_dir=tmp_path / "nowhere", runs=False)


@pytest.mark.slow
def test_build_demo_end_to_end(tmp_path):
    from geocluster.workspace import Workspace

    seen: list[float] = []
    result = build_demo(tmp_path / "ws", progress=lambda f, m: seen.append(f))
    datasets = result[: len(DEMO_DATASETS)]
    runs = result[len(DEMO_DATASETS) :]
    assert [d.id for d in datasets] == [s.name for s in DEMO_DATASETS]
    rows = {d.id: d.rows for d in datasets}
    refs = {d.ref: d for d in datasets}
    # the SYNTHETIC follow-up register is version 2 of mexico_firms
    assert 18_000 < refs["mexico_firms@2"].rows < 20_000
    assert refs["mexico_firms@2"].rejected_count == 0
    assert rows["mexico_institutions"] == 30 and rows["helsinki_institutions"] > 5
    rows["mexico_firms"] = refs["mexico_firms@1"].rows
    assert rows["mexico_states"] == 32
    assert rows["countries"] == 250
    assert rows["mexico_pcgdp"] == 224
    assert rows["mexico_firms"] == 20_000
    assert rows["mexico_assets"] == 45
    assert rows["helsinki_firms"] > 500 and rows["helsinki_assets"] > 50
    assert all(d.rejected_count == 0 for d in datasets[:5])
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    # every default analysis ran (a skip means a renamed or missing analysis function)
    assert [r["status"] for r in runs] == ["ok"] * len(DEMO_RUNS), runs
    ok = {r["label"]: r for r in runs}
    ws = Workspace(tmp_path / "ws")
    clusters = ws.read_run(ok["mexico_tourism_clusters"]["id"], "clusters")
    centres = shapely.points(clusters["centroid_lon"], clusters["centroid_lat"])
    # the synthetic tourism clusters are found at Cancún and Oaxaca
    for lon, lat in [(-86.851, 21.161), (-96.727, 17.073)]:
        assert shapely.distance(centres, shapely.Point(lon, lat)).min() < 0.05

    ranking = ws.run(ok["mexico_cluster_ranking"]["id"])
    assert ok["mexico_tourism_clusters"]["id"] in ranking.inputs
    assert {r.kind for r in ws.runs()} >= {"clusters", "specialization", "hotspots", "inequality"}
    # every analysis of the UNIDO cycle ran
    assert {r.kind for r in ws.runs()} >= {
        "change", "shiftshare", "relatedness", "dynamics", "sdg", "institutions", "ranking"
    }  # fmt: skip
    change = ws.run(ok["mexico_cluster_change"]["id"])
    assert change.summary["counts"]["appeared"] >= 1  # the Querétaro aerospace cluster
    assert set(change.inputs) >= {"mexico_firms@1", "mexico_firms@2"}
    shift = ws.read_run(ok["mexico_shiftshare"]["id"], "regions")
    parts = shift["national_share"] + shift["industry_mix"] + shift["regional_shift"]
    assert np.allclose(parts, shift["final"] - shift["base"], atol=1e-6)
    ranked = ws.run(ok["mexico_manuf_ranking"]["id"])
    assert "growth" not in ranked.summary["left_out"]  # growth from the change run
    assert "institutions" not in ranked.summary["left_out"]
    reach = ws.read_run(ok["mexico_institutions"]["id"], "reach")
    assert reach["gap"].any() and (reach["n_institutions"] > 0).any()

    # building again is a no-op: same versions, no new runs
    n_runs = len(ws.runs())
    again = build_demo(tmp_path / "ws")
    assert [d.ref for d in again[: len(DEMO_DATASETS)]] == [d.ref for d in datasets]
    assert len(ws.runs()) == n_runs
