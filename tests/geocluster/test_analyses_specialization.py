"""run_specialization / run_hotspots / run_pointpattern / run_ranking through a workspace."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.analyses.specialization import (
    run_hotspots,
    run_pointpattern,
    run_ranking,
    run_specialization,
)
from geocluster.errors import DatasetNotFound, InvalidInput, RunNotFound, WrongKind
from geocluster.specialization import assign_regions, location_quotient, sector_table

UTM = "EPSG:32614"
X0, Y0 = 200_000.0, 2_300_000.0
SIDE = 10_000.0  # 4 x 4 regions of 10 km


def _regions() -> gpd.GeoDataFrame:
    boxes, ids = [], []
    for j in range(4):
        for i in range(4):
            boxes.append(
                shapely.box(X0 + i * SIDE, Y0 + j * SIDE, X0 + (i + 1) * SIDE, Y0 + (j + 1) * SIDE)
            )
            ids.append(f"R{j}{i}")
    return gpd.GeoDataFrame(
        {"region_id": ids, "name": ids, "level": 1, "parent_id": "MX"}, geometry=boxes, crs=UTM
    )


def _firms(seed=0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    # a textile cluster (division 13) tight in region R11, food (10) and retail (47) everywhere
    cluster = np.array([X0 + 15_000, Y0 + 15_000]) + rng.normal(0, 300, (150, 2))
    spread = rng.uniform([X0, Y0], [X0 + 4 * SIDE, Y0 + 4 * SIDE], (450, 2))
    xy = np.vstack([cluster, spread])
    n = len(xy)
    codes = np.concatenate(
        [np.full(150, "1311"), rng.choice(["1071", "4711", "1311"], 450, p=[0.45, 0.5, 0.05])]
    )
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"F{i}" for i in range(n)],
            "sector_code": codes,
            "isic_section": np.where(pd.Series(codes).str[:2] == "47", "G", "C"),
            "isic_division": pd.Series(codes).str[:2].to_numpy(),
            "employees": rng.integers(1, 40, n).astype(float),
            "founded": pd.array(rng.integers(2000, 2025, n), dtype="Int64"),
            "women_led": rng.random(n) < 0.4,
            "informal": rng.random(n) < 0.2,
        },
        geometry=shapely.points(xy),
        crs=UTM,
    )


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from geocluster.workspace import Workspace

    w = Workspace(tmp_path_factory.mktemp("spec") / "ws")
    w.add_dataset("firms", _firms(), name="firms", working_crs=UTM)
    w.add_dataset("boundaries", _regions(), name="regions", working_crs=UTM)
    w.add_dataset(
        "assets",
        gpd.GeoDataFrame(
            {"asset_id": ["a1"], "name": ["mill"], "category": ["cultural"]},
            geometry=[shapely.Point(X0 + 16_000, Y0 + 15_000)],
            crs=UTM,
        ),
        name="assets",
        working_crs=UTM,
    )
    ind = pd.DataFrame(
        {
            "region_id": [f"R{j}{i}" for j in range(4) for i in range(4)] * 2,
            "year": [2010] * 16 + [2020] * 16,
            "indicator": "gdp",
            "value": [float(i + j) for j in range(4) for i in range(4)]
            + [float(10 * (i < 2) + j) for j in range(4) for i in range(4)],
        }
    )
    w.add_dataset("indicators", ind, name="ind")
    return w


def test_run_specialization_contract_shape_and_values(ws):
    out = run_specialization(ws, firms="firms", boundaries="regions", bootstrap=30, seed=1)
    json.dumps(out)  # JSON-ready
    assert out["measure_used"] == "employees"
    row = out["rows"][0]
    assert {"region_id", "sector", "count", "employees", "lq", "strong"} <= set(row)
    assert {"stars", "lq_ci", "small_count"} <= set(row)
    assert {"region_id", "hhi", "krugman"} <= set(out["regions"][0])
    assert {"sector", "ellison_glaeser", "maurel_sedillot"} <= set(out["sectors"][0])
    # reference: the same LQ from the pure functions on a geopandas sjoin of the firms
    firms = _firms()
    regions = _regions()
    j = gpd.sjoin(firms, regions, predicate="within", how="left")
    idx = regions.index.get_indexer(j["index_right"].fillna(-1).astype(int))
    t = sector_table(idx, regions["region_id"], firms["isic_division"], firms["employees"])
    x, tot = t.matrices("employees")
    lq = location_quotient(x, tot)
    got = {(r["region_id"], r["sector"]): r["lq"] for r in out["rows"]}
    r11 = list(t.regions).index("R11")
    assert got[("R11", "13")] == pytest.approx(lq[r11, list(t.sectors).index("13")])
    # the textile cluster is the strongest specialisation in the table and "strong"
    textile = next(r for r in out["rows"] if r["region_id"] == "R11" and r["sector"] == "13")
    assert textile["strong"] and textile["lq"] > 2 and textile["stars"] >= 2
    eg = {s["sector"]: s["ellison_glaeser"] for s in out["sectors"]}
    assert eg["13"] > eg["47"]
    # persisted: regions polygons + rows table
    layer = ws.read_run(out["run_id"])
    assert len(layer) == 16 and "hhi" in layer.columns and layer.crs.to_epsg() == 4326
    rows = ws.read_run(out["run_id"], "rows")
    assert len(rows) == len(out["rows"])


def test_run_specialization_firm_counts_and_sections(ws):
    out = run_specialization(
        ws, firms="firms", boundaries="regions", measure="firms", sector_level="section"
    )
    assert out["measure_used"] == "firms"
    assert {r["sector"] for r in out["rows"]} == {"C", "G"}
    assert sum(r["count"] for r in out["rows"]) == 600 - out["outside"]


def test_run_specialization_bad_params(ws):
    with pytest.raises(InvalidInput, match="measure"):
        run_specialization(ws, firms="firms", boundaries="regions", measure="sales")
    with pytest.raises(InvalidInput, match="sector_level"):
        run_specialization(ws, firms="firms", boundaries="regions", sector_level="class")
    with pytest.raises(InvalidInput, match="bootstrap"):
        run_specialization(ws, firms="firms", boundaries="regions", bootstrap=-1)
    with pytest.raises(InvalidInput, match="level"):
        run_specialization(ws, firms="firms", boundaries="regions", level=3)
    with pytest.raises(DatasetNotFound):
        run_specialization(ws, firms="nope", boundaries="regions")
    with pytest.raises(WrongKind):
        run_specialization(ws, firms="regions", boundaries="regions")


@pytest.mark.slow
def test_run_hotspots_lisa_and_gi(ws):
    out = run_hotspots(
        ws, boundaries="regions", indicators="ind", indicator="gdp", permutations=99, seed=3
    )
    json.dumps(out)
    assert out["year"] == 2020
    assert len(out["regions"]) == 16
    r = out["regions"][0]
    assert {"region_id", "statistic", "p_value", "label", "significant"} <= set(r)
    assert {x["label"] for x in out["regions"]} <= {"HH", "LL", "HL", "LH"}
    assert out["global"]["moran_i"] > 0.3  # west high, east low in 2020
    gi = run_hotspots(
        ws,
        boundaries="regions",
        values={f"R{j}{i}": float(i) for j in range(4) for i in range(4)},
        method="gi_star",
        weights="knn:4",
        permutations=99,
        fdr=True,
    )
    labels = {x["region_id"]: x["label"] for x in gi["regions"]}
    assert labels["R03"] == "hot" and labels["R00"] == "cold"
    assert len(ws.read_run(gi["run_id"])) == 16


def test_run_hotspots_bad_params(ws):
    with pytest.raises(InvalidInput, match="exactly one of values"):
        run_hotspots(ws, boundaries="regions")
    with pytest.raises(InvalidInput, match="weights"):
        run_hotspots(ws, boundaries="regions", values={"R00": 1.0}, weights="bishop")
    with pytest.raises(InvalidInput, match="unknown"):
        run_hotspots(ws, boundaries="regions", values={"XX": 1.0})
    with pytest.raises(InvalidInput, match="at least 3"):
        run_hotspots(ws, boundaries="regions", values={"R00": 1.0, "R01": 2.0})
    with pytest.raises(InvalidInput, match="year"):
        run_hotspots(ws, boundaries="regions", indicators="ind", indicator="gdp", year=1990)
    with pytest.raises(InvalidInput, match="indicator"):
        run_hotspots(ws, boundaries="regions", indicators="ind", indicator="pop")
    with pytest.raises(InvalidInput, match="method"):
        run_hotspots(ws, boundaries="regions", values={"R00": 1}, method="moran")


def test_run_pointpattern(ws):
    rip = run_pointpattern(ws, firms="firms", sectors=["13"], n_simulations=19, seed=0)
    json.dumps(rip)
    assert rip["method"] == "ripley" and any(rip["clustered"])
    kd = run_pointpattern(
        ws, firms="firms", sectors=["13"], method="kdensity", n_simulations=39, seed=0
    )
    json.dumps(kd)
    assert kd["localized"] and kd["localization_index"] > 0
    assert len(ws.read_run(kd["run_id"])) == len(kd["distance_m"])
    one = run_pointpattern(
        ws, firms="firms", boundaries="regions", region="R11", n_simulations=9, seed=0
    )
    assert one["n_points"] < 600
    with pytest.raises(InvalidInput, match="sectors or sector_group"):
        run_pointpattern(ws, firms="firms", method="kdensity")
    with pytest.raises(InvalidInput, match="method"):
        run_pointpattern(ws, firms="firms", method="ripleys")


def test_run_ranking_reads_a_clusters_run(ws):
    from geocluster.analyses.clusters import run_clusters

    clusters = run_clusters(ws, firms="firms", eps_m=1000, min_samples=8)
    assert clusters["n_clusters"] >= 1
    out = run_ranking(
        ws, clusters_run=clusters["run_id"], boundaries="regions", assets="assets", radius_m=3000
    )
    json.dumps(out)
    top = out["clusters"][0]
    assert top["rank"] == 1 and top["dominant_sector"] == "13" and top["region_id"] == "R11"
    assert top["n_assets"] == 1
    for c in ("size_firms", "specialisation", "density", "dynamism", "inclusiveness", "assets"):
        assert 0 <= top[c] <= 1
    assert sum(out["weights"].values()) == pytest.approx(1.0)
    assert len(ws.read_run(out["run_id"])) == clusters["n_clusters"]
    with pytest.raises(RunNotFound):
        run_ranking(ws, clusters_run="clusters-nothere")
    with pytest.raises(WrongKind):
        spec = run_specialization(ws, firms="firms", boundaries="regions")
        run_ranking(ws, clusters_run=spec["run_id"])
    with pytest.raises(InvalidInput, match="unknown"):
        run_ranking(ws, clusters_run=clusters["run_id"], weights={"beauty": 1})


def test_assign_regions_used_for_boundary_firms():
    # a firm exactly on the shared edge of two regions is counted once (lowest row)
    regions = _regions()
    xy = np.array([[X0 + SIDE, Y0 + 5000.0]])
    assert assign_regions(xy, regions, predicate="intersects").tolist() == [0]


def test_cli_commands(ws, capsys):
    from geocluster.cli import main

    root = str(ws.path)
    code = main(
        [
            "specialization",
            "--workspace",
            root,
            "--firms",
            "firms",
            "--boundaries",
            "regions",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["measure_used"] == "employees" and out["rows"]
    code = main(
        [
            "pointpattern",
            "--workspace",
            root,
            "--firms",
            "firms",
            "--sector",
            "13",
            "--simulations",
            "9",
        ]
    )
    assert code == 0 and "Ripley" in capsys.readouterr().out
    clusters = main(["clusters", "--workspace", root, "--firms", "firms", "--json"])
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert clusters == 0
    code = main(
        [
            "rank",
            "--workspace",
            root,
            "--clusters-run",
            run_id,
            "--weights",
            '{"assets": 0}',
            "--json",
        ]
    )
    ranked = json.loads(capsys.readouterr().out)
    assert code == 0 and ranked["weights"]["assets"] == 0
    # bad input: exit 2 with a one-line reason
    code = main(["rank", "--workspace", root, "--clusters-run", run_id, "--weights", "{bad"])
    assert code == 2 and "expected --weights as JSON" in capsys.readouterr().err
    code = main(["hotspots", "--workspace", root, "--boundaries", "regions", "--weights", "hex"])
    assert code == 2 and "error" in capsys.readouterr().err


@pytest.mark.slow
def test_run_hotspots_from_a_specialization_run(ws):
    spec = run_specialization(ws, firms="firms", boundaries="regions")
    out = run_hotspots(
        ws,
        boundaries="regions",
        specialization_run=spec["run_id"],
        sector="13",
        method="gi_star",
        permutations=99,
    )
    assert out["value"] == "lq:13"
    lq = {r["region_id"]: r["lq"] for r in spec["rows"] if r["sector"] == "13"}
    got = {r["region_id"]: r["value"] for r in out["regions"]}
    assert got["R11"] == pytest.approx(lq["R11"])
    assert all(got[k] == pytest.approx(lq.get(k, 0.0)) for k in got)
    top = max(out["regions"], key=lambda r: r["statistic"])
    # the hottest Gi* region is R11 or a queen neighbour (corner regions average fewer cells)
    near_r11 = {f"R{j}{i}" for j in range(3) for i in range(3)}
    assert top["label"] == "hot" and top["region_id"] in near_r11
    dens = run_hotspots(ws, boundaries="regions", specialization_run=spec["run_id"], permutations=9)
    assert dens["value"] == "firms_per_km2"
    r11 = next(r for r in dens["regions"] if r["region_id"] == "R11")
    n11 = next(r["n_firms"] for r in spec["regions"] if r["region_id"] == "R11")
    assert r11["value"] == pytest.approx(n11 / 100.0)  # 10 km x 10 km
    with pytest.raises(InvalidInput, match="exactly one"):
        run_hotspots(ws, boundaries="regions", values={"R00": 1}, specialization_run=spec["run_id"])
    with pytest.raises(InvalidInput, match="sector of run"):
        run_hotspots(ws, boundaries="regions", specialization_run=spec["run_id"], sector="99")


def test_run_specialization_groups(ws):
    out = run_specialization(
        ws, firms="firms", boundaries="regions", sector_groups=["agro_food", "creative_industries"]
    )
    levels = {r["sector_level"] for r in out["rows"]}
    assert levels == {"division", "group"}
    agro = [r for r in out["rows"] if r["sector"] == "agro_food"]
    div10 = {r["region_id"]: r for r in out["rows"] if r["sector"] == "10"}
    # agro_food holds division 10 (food products); no other test firm is agro-food
    from geocluster.sectors import group_divisions

    assert "10" in group_divisions("agro_food") and "13" not in group_divisions("agro_food")
    for r in agro:
        assert r["count"] == div10[r["region_id"]]["count"]
        assert r["lq"] == pytest.approx(div10[r["region_id"]]["lq"])
    only = run_specialization(
        ws, firms="firms", boundaries="regions", sector_level="group", sector_groups=["agro_food"]
    )
    assert {r["sector"] for r in only["rows"]} == {"agro_food"}
    with pytest.raises(InvalidInput, match="sector group"):
        run_specialization(ws, firms="firms", boundaries="regions", sector_groups=["nope"])
    with pytest.raises(InvalidInput, match="list of names"):
        run_specialization(ws, firms="firms", boundaries="regions", sector_groups="agro_food")


def test_country_boundaries_over_mexican_firms(tmp_path):
    """Issue 11: world countries projected into Mexico's working CRS raised a NaN error."""
    from pathlib import Path

    from geocluster.analyses.spec import get
    from geocluster.workspace import Workspace

    data = Path(__file__).resolve().parents[2] / "data"
    ws = Workspace(tmp_path / "ws")
    ws.ingest("firms", data / "firms" / "mexico_demo_firms_SYNTHETIC.csv", name="mx")
    ws.ingest(
        "boundaries", data / "boundaries" / "natural_earth_countries.gpkg", name="countries",
        options={"level": 0},
    )  # fmt: skip
    body = get("specialization")(ws, firms="mx", boundaries="countries").to_body()
    regions = {r["region_id"] for r in body["rows"]}
    assert "MEX" in regions and "ATA" not in regions  # no distorted far-away polygon
    assert sum(r["count"] for r in body["rows"] if r["region_id"] == "MEX") > 0.9 * 20_000


@pytest.mark.parametrize(
    ("level", "groups", "read"),
    [
        ("division", None, ["isic_division"]),
        ("section", None, ["isic_section"]),
        ("group", ["agro_food"], ["isic_division"]),
        ("section", ["agro_food"], ["isic_section", "isic_division"]),
    ],
)
def test_run_specialization_reads_only_the_sector_column_it_uses(
    ws, monkeypatch, level, groups, read
):
    import geocluster.analyses.specialization as spec

    # a 5M register's text columns cost most of the read: only the level's column is
    # asked for; a dataset stored with just sector_code derives it (same table)
    asked = []
    real = spec.read_firm_points

    def spy(w, firms, *, columns):
        asked.append(list(columns))
        return real(w, firms, columns=columns)

    monkeypatch.setattr(spec, "read_firm_points", spy)
    kw = {"boundaries": "regions", "sector_level": level, "sector_groups": groups}
    out = run_specialization(ws, firms="firms", **kw)
    assert asked[-1] == ["employees", *read]
    if "codes" not in {d.id for d in ws.datasets()}:
        codes = _firms().drop(columns=["isic_section", "isic_division"])
        ws.add_dataset("firms", codes, name="codes", working_crs=UTM)
    derived = run_specialization(ws, firms="codes", **kw)
    assert asked[-1] == ["employees", *read, "sector_code"]
    for key in ("n_firms", "outside", "measure_used"):
        assert derived[key] == out[key]
    for key in ("rows", "regions", "sectors"):
        # the two datasets store their rows in different orders: sums may differ in the
        # last bit
        pd.testing.assert_frame_equal(
            pd.DataFrame(derived[key]), pd.DataFrame(out[key]), rtol=1e-12
        )
