"""The UNIDO-cycle analyses through their specs: CLI, HTTP and disclosure for a viewer.

Each statistic is checked against an independent reference named at the test: a hand
computation on a toy register, the shift-share identity, the Growth Lab's ``ecomplexity``
package, a simulated register whose dynamics are known by construction.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geocluster.analyses import spec
from geocluster.cli import main
from geocluster.disclosure import PERMISSIVE, Principal, apply
from geocluster.errors import InvalidInput
from geocluster.workspace import Workspace

VIEWER = Principal("anonymous", "viewer")
KM = 1 / 111.32  # degrees of latitude per km

# two regions side by side (lon/lat), 1 degree wide
BOXES = {"A": shapely.box(-100.0, 20.0, -99.0, 21.0), "B": shapely.box(-99.0, 20.0, -98.0, 21.0)}
CENTRE = {"A": (-99.5, 20.5), "B": (-98.5, 20.5)}


def _firms(rows: list[tuple], start: int = 0, jitter_km: float = 0.2, seed: int = 0):
    """Firms from ``(region, sector, employees, founded, informal, women_led)`` rows."""
    rng = np.random.default_rng(seed)
    recs = []
    for i, (region, sector, emp, founded, informal, women) in enumerate(rows):
        cx, cy = CENTRE[region]
        recs.append(
            {
                "firm_id": f"F{start + i:05d}",
                "name": f"Firm {start + i}",
                "sector_code": sector,
                "sector_scheme": "isic4",
                "isic_division": sector[:2],
                "employees": float(emp),
                "founded": founded,
                "informal": informal,
                "women_led": women,
                "geometry": shapely.Point(
                    cx + rng.normal(0, jitter_km * KM), cy + rng.normal(0, jitter_km * KM)
                ),
            }
        )
    return gpd.GeoDataFrame(recs, crs="EPSG:4326")


def _regions():
    return gpd.GeoDataFrame(
        {"region_id": list(BOXES), "name": list(BOXES), "level": 1},
        geometry=list(BOXES.values()),
        crs="EPSG:4326",
    )


# toy base and final registers (region, sector, employees): the hand-computation tables
BASE = [("A", "10", 10)] * 3 + [("A", "15", 20)] * 3 + [("B", "10", 10)] * 3 + [("B", "26", 5)]
FINAL = (
    [("A", "10", 20)] * 3
    + [("A", "15", 20)] * 3
    + [("B", "10", 5)] * 3
    + [("B", "15", 10)] * 3
    + [("B", "26", 5)]
)


def _rows(table, founded=2010):
    return [(r, s, e, founded, False, False) for r, s, e in table]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("unido") / "ws")
    ws.add_dataset("boundaries", _regions(), name="regions")
    ws.add_dataset("firms", _firms(_rows(BASE)), name="reg")
    final = _firms(_rows(FINAL), start=100)
    # survivors keep their ids (the first nine firms and the sector-26 firm)
    final.loc[[0, 1, 2, 3, 4, 5, 6, 7, 8, 12], "firm_id"] = _firms(_rows(BASE))["firm_id"].to_list()
    ws.add_dataset("firms", final, name="reg")
    return ws


@pytest.fixture
def client(toy):
    with TestClient(create_app(Settings(workspace=toy.path)), raise_server_exceptions=False) as c:
        yield c


def _cli_json(capsys, name: str, ws: Workspace, **flags) -> dict:
    argv = [name, "--workspace", str(ws.path), "--json"]
    for k, v in flags.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _cli_text(capsys, name: str, ws: Workspace, **flags) -> str:
    argv = [name, "--workspace", str(ws.path)]
    for k, v in flags.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    assert main(argv) == 0
    return capsys.readouterr().out


def _suppressed_for_viewer(result, key: str, count_col: str) -> pd.DataFrame:
    frame = apply(result, VIEWER, PERMISSIVE).layers[key].frame
    counts = pd.to_numeric(result.layers[key].frame[count_col], errors="coerce")
    small = (counts > 0) & (counts < 3)  # an empty cell (0 firms) discloses nobody
    assert small.any(), "the toy must have a small cell to suppress"
    assert (frame.loc[small.to_numpy(), "disclosure"] == "few_contributors").all()
    assert frame.loc[small.to_numpy(), count_col].isna().all()
    return frame


# -- shift-share ---------------------------------------------------------------------------
def _dunn_by_hand(base, final):
    """Dunn (1960) shift-share written out cell by cell (the reference)."""
    e0, e1 = {}, {}
    for table, out in ((base, e0), (final, e1)):
        for r, s, e in table:
            out[(r, s)] = out.get((r, s), 0.0) + e
    cells = sorted(set(e0) | set(e1))
    E0, E1 = sum(e0.values()), sum(e1.values())
    G = E1 / E0 - 1
    sectors = {s for _, s in cells}
    g = {}
    for s in sectors:
        a = sum(v for (_, t), v in e0.items() if t == s)
        b = sum(v for (_, t), v in e1.items() if t == s)
        g[s] = b / a - 1 if a else 0.0
    out = {}
    for r, s in cells:
        b, f = e0.get((r, s), 0.0), e1.get((r, s), 0.0)
        out[(r, s)] = (b * G, b * (g[s] - G), f - b * (1 + g[s]))
    return out


def test_shiftshare_cli_matches_hand_computation_and_identity(toy, capsys):
    body = _cli_json(
        capsys, "shiftshare", toy, firms="reg@1", firms_to="reg@2", boundaries="regions"
    )
    assert body["inputs"] == ["reg@1", "reg@2", "regions@1"]
    want = _dunn_by_hand(BASE, FINAL)
    got = {(r["region_id"], r["sector"]): r for r in body["rows"]}
    assert set(got) == set(want)
    for key, (ns, im, rs) in want.items():
        row = got[key]
        assert row["national_share"] == pytest.approx(ns, abs=1e-9)
        assert row["industry_mix"] == pytest.approx(im, abs=1e-9)
        assert row["regional_shift"] == pytest.approx(rs, abs=1e-9)
        # the identity of the components
        parts = row["national_share"] + row["industry_mix"] + row["regional_shift"]
        assert abs(parts - (row["final"] - row["base"])) < 1e-9
    # hand check of one cell: A x 10, 30 -> 60 jobs, G = 0.36, g10 = 0.25
    assert got[("A", "10")]["national_share"] == pytest.approx(30 * 0.36)
    text = _cli_text(
        capsys, "shiftshare", toy, firms="reg@1", firms_to="reg@2", boundaries="regions"
    )
    assert "national growth 36.00%" in text


def test_shiftshare_http_viewer_and_esteban_marquillas(toy, client):
    r = client.post(
        "/analyses/shiftshare",
        json={"firms": "reg@1", "firms_to": "reg@2", "boundaries": "regions", "measure": "firms"},
    )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert {x["region_id"] for x in rows} == {"A", "B"}
    for x in rows:
        assert x["national_share"] + x["industry_mix"] + x["regional_shift"] == pytest.approx(
            x["final"] - x["base"], abs=1e-9
        )
    result = spec.get("shiftshare")(
        toy, firms="reg@1", firms_to="reg@2", boundaries="regions", esteban_marquillas=True
    )
    rows = result.layers["rows"].frame
    defined = rows["competitive"].notna()
    # Esteban-Marquillas (1972): competitive + allocation = regional shift
    assert np.allclose(
        rows.loc[defined, "competitive"] + rows.loc[defined, "allocation"],
        rows.loc[defined, "regional_shift"],
        atol=1e-9,
    )
    # the B x 26 cell is one firm: a viewer sees no figure of it
    frame = _suppressed_for_viewer(result, "rows", "n_firms")
    b26 = frame[(frame["region_id"] == "B") & (frame["sector"] == "26")].iloc[0]
    assert np.isnan(b26["base"]) and np.isnan(b26["final"])


def test_shiftshare_refuses_the_same_version_twice(toy):
    with pytest.raises(InvalidInput, match="two different"):
        spec.get("shiftshare")(toy, firms="reg@2", firms_to="reg", boundaries="regions")


# -- relatedness ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def economy(tmp_path_factory):
    """Eight regions x ten sectors with nested specialisation (a complexity gradient)."""
    rng = np.random.default_rng(4)
    regions, rows = [], []
    sectors = [f"{d:02d}" for d in (10, 13, 15, 20, 22, 24, 26, 28, 29, 30)]
    for k in range(8):
        box = shapely.box(-100 + k, 20, -99 + k, 21)
        regions.append({"region_id": f"R{k}", "level": 1, "geometry": box})
        for j, s in enumerate(sectors):
            # region k is diverse in proportion to k; ubiquitous sectors come first
            n = int(rng.integers(3, 8)) if j <= k + 1 else int(rng.integers(0, 2))
            for _ in range(n):
                rows.append(
                    {
                        "firm_id": f"E{len(rows):05d}",
                        "sector_code": s,
                        "isic_division": s,
                        "employees": float(rng.integers(1, 50)),
                        "geometry": shapely.Point(-99.5 + k + rng.uniform(-0.4, 0.4), 20.5),
                    }
                )
    ws = Workspace(tmp_path_factory.mktemp("economy") / "ws")
    ws.add_dataset("boundaries", gpd.GeoDataFrame(regions, crs="EPSG:4326"), name="regions")
    firms = gpd.GeoDataFrame(rows, crs="EPSG:4326")
    ws.add_dataset("firms", firms, name="firms")
    return ws, firms


def test_relatedness_matches_ecomplexity(economy, capsys):
    from ecomplexity import ecomplexity

    ws, firms = economy
    body = _cli_json(capsys, "relatedness", ws, firms="firms", boundaries="regions")
    assert body["inputs"] == ["firms@1", "regions@1"]
    # the reference: the Growth Lab's ecomplexity on the same region x sector matrix,
    # built here by geopandas' own spatial join
    joined = gpd.sjoin(firms, ws.read("regions"), predicate="within")
    data = (
        joined.groupby(["region_id", "sector_code"])["employees"].sum().reset_index()
        .rename(columns={"region_id": "loc", "sector_code": "prod", "employees": "val"})
        .assign(time=2020)
    )  # fmt: skip
    ref = ecomplexity(
        data, {"time": "time", "loc": "loc", "prod": "prod", "val": "val"}, verbose=False
    )
    eci = ref.groupby("loc")["eci"].first()
    pci = ref.groupby("prod")["pci"].first()
    for region, v in eci.items():
        assert body["eci"][region] == pytest.approx(v, abs=1e-6)
    for sector, v in pci.items():
        assert body["pci"][sector] == pytest.approx(v, abs=1e-6)
    dens = {(d["region_id"], d["sector"]): d for d in body["density"]}
    for _, row in ref.iterrows():
        d = dens[(row["loc"], row["prod"])]
        assert d["density"] == pytest.approx(row["density"], abs=1e-6)
        assert d["rca"] == pytest.approx(row["rca"], abs=1e-6)
    # nearby opportunities: sectors the region lacks (RCA < 1), densest first
    for o in body["opportunities"]:
        assert o["rca"] < 1
    assert all(len(t) == 3 and 0 < t[2] <= 1 for t in body["proximity"])
    text = _cli_text(capsys, "relatedness", ws, firms="firms", boundaries="regions")
    assert "ECI" in text and "nearby" in text


def test_relatedness_http_and_viewer(economy):
    ws, _ = economy
    with TestClient(create_app(Settings(workspace=ws.path)), raise_server_exceptions=False) as c:
        r = c.post("/analyses/relatedness", json={"firms": "firms", "boundaries": "regions"})
    assert r.status_code == 200, r.text
    assert set(r.json()) >= {"eci", "pci", "density", "proximity", "opportunities", "inputs"}
    result = spec.get("relatedness")(ws, firms="firms", boundaries="regions")
    assert result.layers["density"].kind == "region_table"
    _suppressed_for_viewer(result, "density", "n_firms")


# -- change --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Baseline: blobs A (40 firms) and B (30); follow-up: A with 10 more, B closed, C new."""
    ws = Workspace(tmp_path_factory.mktemp("change") / "ws")
    a = _firms([("A", "15", 5, 2000, False, False)] * 40, start=0, seed=1)
    b = _firms([("B", "15", 5, 2000, False, False)] * 30, start=100, seed=2)
    ws.add_dataset("firms", pd.concat([a, b], ignore_index=True), name="reg")
    a_more = _firms([("A", "15", 5, 2024, False, False)] * 10, start=200, seed=3)
    c = _firms([("B", "26", 8, 2024, False, False)] * 25, start=300, seed=4)
    c["geometry"] = c.geometry.translate(0, 0.3)  # 33 km north of B
    ws.add_dataset("firms", pd.concat([a, a_more, c], ignore_index=True), name="reg")
    run = spec.get("clusters")
    before = run(ws, firms="reg@1", eps_m=500, min_samples=5).run_id
    after = run(ws, firms="reg@2", eps_m=500, min_samples=5).run_id
    return ws, before, after


def test_change_cli_by_construction(two_runs, capsys):
    ws, before, after = two_runs
    body = _cli_json(capsys, "change", ws, before=before, after=after)
    # known by construction: A matched (40 -> 50 firms), B disappeared, C appeared
    assert body["match"] == "firms"
    assert body["counts"]["matched"] == 1
    assert body["counts"]["disappeared"] == 1 and body["counts"]["appeared"] == 1
    by_status = {r["status"]: r for r in body["rows"]}
    assert (by_status["matched"]["n_firms_before"], by_status["matched"]["n_firms_after"]) == (
        40,
        50,
    )
    assert by_status["matched"]["n_firms_change"] == 10
    assert by_status["disappeared"]["n_firms_before"] == 30
    assert by_status["disappeared"]["after_id"] is None
    assert by_status["appeared"]["n_firms_after"] == 25
    assert by_status["appeared"]["before_id"] is None
    assert set(body["inputs"]) == {before, after, "reg@1", "reg@2"}
    assert "matched" in _cli_text(capsys, "change", ws, before=before, after=after)


def test_change_http_and_viewer(two_runs):
    ws, before, after = two_runs
    with TestClient(create_app(Settings(workspace=ws.path)), raise_server_exceptions=False) as c:
        r = c.post("/analyses/change", json={"before": before, "after": after, "match": "area"})
        assert r.status_code == 200, r.text
        assert r.json()["match"] == "area"
        bad = c.post("/analyses/change", json={"before": before, "after": before})
        assert bad.status_code == 422 and "twice" in bad.json()["detail"]
    result = spec.get("change")(ws, before=before, after=after)
    assert result.layers["rows"].kind == "cluster_summary"
    # a viewer sees every cluster here (all have >= 3 firms): nothing flagged
    rows = apply(result, VIEWER, PERMISSIVE).layers["rows"].frame
    assert (rows["disclosure"] == "ok").all()


# -- dynamics ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Known dynamics: A founds 4 firms a year 2000-2009; B none until 2005, then 12 a year."""
    rows = []
    for year in range(2000, 2010):
        rows += [("A", "15", 2, year, False, False)] * 4
        if year >= 2005:
            rows += [("B", "26", 3, year, False, False)] * 12
    ws = Workspace(tmp_path_factory.mktemp("dyn") / "ws")
    ws.add_dataset("boundaries", _regions(), name="regions")
    ws.add_dataset("firms", _firms(rows, jitter_km=0.05), name="reg")
    clusters = spec.get("clusters")(ws, firms="reg", eps_m=1000, min_samples=10).run_id
    return ws, clusters


def test_dynamics_cli_simulated_register(simulated, capsys):
    ws, clusters = simulated
    body = _cli_json(capsys, "dynamics", ws, firms="reg", clusters=clusters, boundaries="regions")
    assert body["years"] == [2000, 2009]
    series = pd.DataFrame(body["regions"]["series"]).set_index(["region_id", "year"])
    assert (series.loc["A", "new_firms"] == 4).all()
    assert series.loc[("A", 2009), "stock_firms"] == 40
    assert series.loc[("B", 2004), "stock_firms"] == 0
    assert series.loc[("B", 2009), "stock_firms"] == 60
    assert series.loc[("B", 2009), "stock_employees"] == 180
    growth = {g["region_id"]: g for g in body["regions"]["growth"]}
    # CAGR of A's stock 2004 -> 2009: (40 / 20) ** (1 / 5) - 1, by hand
    assert growth["A"]["cagr_firms"] == pytest.approx(2 ** (1 / 5) - 1)
    # emergence: A has 4 firms in 2000, 8 in 2001, 12 in 2002 >= min_samples 10
    em = {e["cluster_id"]: e for e in body["clusters"]["emergence"]}
    sizes = {e["n_firms"]: e["emergence_year"] for e in em.values()}
    assert sizes == {40: 2002, 60: 2005}
    assert "emerged" in _cli_text(capsys, "dynamics", ws, firms="reg", clusters=clusters)


def test_dynamics_http_and_viewer(simulated, tmp_path):
    ws, clusters = simulated
    with TestClient(create_app(Settings(workspace=ws.path)), raise_server_exceptions=False) as c:
        r = c.post("/analyses/dynamics", json={"firms": "reg", "boundaries": "regions"})
        assert r.status_code == 200, r.text
        assert "clusters" not in r.json() and r.json()["regions"]["series"]
        bad = c.post("/analyses/dynamics", json={"firms": "reg"})
        assert bad.status_code == 422 and "neither" in bad.json()["detail"]
    result = spec.get("dynamics")(ws, firms="reg", boundaries="regions")
    # B founds no firm before 2005: those years are 0-firm cells, which disclose nobody
    # and stay published; no published cell of a viewer has 1-2 firms
    shown = apply(result, VIEWER, PERMISSIVE).layers["regions/series"].frame
    counts = pd.to_numeric(shown["new_firms"], errors="coerce")
    assert not ((counts > 0) & (counts < 3)).any()
    assert (counts == 0).any() and (shown.loc[counts == 0, "disclosure"] == "ok").all()


# -- SDG view ------------------------------------------------------------------------------
SDG_FIRMS = [
    ("A", "1010", 10, 2000, True, True),
    ("A", "1520", 30, 2000, False, False),
    ("A", "4711", 60, 2000, False, True),
    ("B", "4711", 5, 2000, True, False),
    ("B", "5610", 5, 2000, True, False),
]


def test_sdg_cli_hand_computation(tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("boundaries", _regions(), name="regions")
    ws.add_dataset("firms", _firms(SDG_FIRMS), name="reg")
    body = _cli_json(capsys, "sdg", ws, firms="reg", boundaries="regions")
    regions = {r["region_id"]: r for r in body["regions"]}
    # by hand: A's manufacturing jobs (10 + 30) over all its jobs (100)
    assert regions["A"]["manufacturing_employment_share"] == pytest.approx(0.4)
    assert regions["B"]["manufacturing_employment_share"] == pytest.approx(0.0)
    assert regions["A"]["informal_firm_share"] == pytest.approx(1 / 3)
    assert regions["A"]["women_led_share"] == pytest.approx(2 / 3)
    # national: 3 informal of 5 firms; A's gap to it
    assert body["national"]["informal_firm_share"] == pytest.approx(0.6)
    assert regions["A"]["informal_firm_share_gap"] == pytest.approx(1 / 3 - 0.6)
    codes = {i["key"]: i for i in body["indicators"]}
    assert codes["manufacturing_employment_share"]["sdg_code"] == "9.2.2"
    assert all(i["source"] and i["proxy_definition"] for i in codes.values())
    assert "9.2.2" in _cli_text(capsys, "sdg", ws, firms="reg", boundaries="regions")
    with TestClient(create_app(Settings(workspace=ws.path)), raise_server_exceptions=False) as c:
        r = c.post("/analyses/sdg", json={"firms": "reg", "boundaries": "regions"})
    assert r.status_code == 200 and r.json()["inputs"] == ["reg@1", "regions@1"]
    result = spec.get("sdg")(ws, firms="reg", boundaries="regions")
    frame = _suppressed_for_viewer(result, "regions", "n_firms")
    b = frame.set_index("region_id").loc["B"]
    assert np.isnan(b["informal_firm_share"])  # two firms: their shares are withheld


# -- institutions and the ranking --------------------------------------------------------------
@pytest.fixture(scope="module")
def supported(tmp_path_factory):
    """Cluster A has a training centre and a chamber 2 km away; cluster B has nothing."""
    ws = Workspace(tmp_path_factory.mktemp("inst") / "ws")
    a = _firms([("A", "15", 5, 2010, False, False)] * 30, start=0, seed=1)
    b = _firms([("B", "26", 5, 2010, True, False)] * 18, start=100, seed=2)
    ws.add_dataset("firms", pd.concat([a, b], ignore_index=True), name="reg")
    ax, ay = CENTRE["A"]
    inst = gpd.GeoDataFrame(
        {
            "institution_id": ["I1", "I2", "I3"],
            "name": ["Training centre", "Chamber", "Far bank"],
            "type": ["training", "chamber", "finance"],
            "sectors": ["15", "", ""],
        },
        geometry=[
            shapely.Point(ax + 2 * KM, ay),
            shapely.Point(ax, ay + 2 * KM),
            shapely.Point(ax, ay + 2.0),
        ],
        crs="EPSG:4326",
    )
    ws.add_dataset("institutions", inst, name="inst")
    # another country's institutions: never the default for these clusters
    far = inst.assign(geometry=inst.geometry.translate(60, 40))
    ws.add_dataset("institutions", far, name="elsewhere")
    run = spec.get("clusters")(ws, firms="reg", eps_m=500, min_samples=5).run_id
    return ws, run


def test_institutions_reach_and_gaps(supported, capsys):
    ws, run = supported
    body = _cli_json(capsys, "institutions", ws, clusters_run=run, radius_m=5000)
    rows = {r["n_firms"]: r for r in body["clusters"]}
    # by construction: A (30 firms) reaches the training centre and the chamber only
    assert rows[30]["n_institutions"] == 2
    assert rows[30]["n_training"] == 1 and rows[30]["n_chamber"] == 1
    assert rows[30]["gap"] is False and rows[18]["gap"] is True
    assert rows[18]["n_institutions"] == 0
    assert [g["missing"] for g in body["gaps"]] == ["training, association"]
    assert body["inputs"][-1] == "inst@1"
    # no institutions named: the only dataset within reach of the clusters
    assert "lacks training" in _cli_text(capsys, "institutions", ws, clusters_run=run)
    with TestClient(create_app(Settings(workspace=ws.path)), raise_server_exceptions=False) as c:
        r = c.post("/analyses/institutions", json={"clusters_run": run, "radius_m": 5000})
    assert r.status_code == 200, r.text
    assert len(r.json()["institutions"]["features"]) == 2
    result = spec.get("institutions")(ws, clusters_run=run)
    assert result.layers["clusters"].kind == "cluster_summary"
    assert (apply(result, VIEWER, PERMISSIVE).layers["clusters"].frame["disclosure"] == "ok").all()


def test_ranking_institutions_component_preset_and_left_out(supported, capsys):
    ws, run = supported
    body = _cli_json(capsys, "ranking", ws, clusters_run=run, institutions="inst", radius_m=5000)
    by_size = {c["n_firms"]: c for c in body["clusters"]}
    assert by_size[30]["n_institutions"] == 2 and by_size[18]["n_institutions"] == 0
    assert by_size[30]["institutions"] == 1.0 and by_size[18]["institutions"] == 0.0
    assert "institutions" not in body["left_out"]
    assert "inst@1" in body["inputs"]
    # without assets or boundaries those components are left out, and the text says why
    text = _cli_text(capsys, "ranking", ws, clusters_run=run)
    assert "left out: assets" in text and "left out: specialisation" in text
    # the MSE-CDP preset ranks only clusters of at least 20 enterprises: B (18) is not
    preset = _cli_json(capsys, "ranking", ws, clusters_run=run, preset="india_mse_cdp")
    assert preset["min_firms"] == 20 and len(preset["below_min_firms"]) == 1
    assert [c["n_firms"] for c in preset["clusters"]] == [30]
    assert "left out: size_employment" not in _cli_text(
        capsys, "ranking", ws, clusters_run=run, preset="india_mse_cdp"
    )
    # UNIDO's diagnostic screening floor (15 firms) keeps both
    body = spec.get("ranking")(ws, clusters_run=run, preset="unido_diagnostic").to_body()
    assert body["below_min_firms"] == [] and body["min_firms"] == 15
    # no cluster reaches the Indian industrial-cluster count of 100: a one-line refusal
    with pytest.raises(InvalidInput, match="at least 100 firms"):
        spec.get("ranking")(ws, clusters_run=run, preset="india_industrial")


def test_presets_fill_clusters_params(supported):
    from geocluster.clustering.presets import PRESETS

    ws, _ = supported
    # the spec's preset names are the module's
    field = spec.get("clusters").params.model_fields["preset"]
    assert set(field.annotation.__args__[0].__args__) == set(PRESETS)
    body = spec.get("clusters")(ws, firms="reg", preset="india_mse_cdp").to_body()
    # MSE-CDP: 20 enterprises (cluster B, 18 firms, is named, not listed); its eps_m and
    # min_samples are filled in
    assert body["params"]["eps_m"] == PRESETS["india_mse_cdp"].eps_m
    assert body["params"]["min_samples"] == PRESETS["india_mse_cdp"].min_samples
    assert body["preset"]["source"].startswith("Ministry of MSME")
    assert [f["properties"]["n_firms"] for f in body["clusters"]["features"]] == [30]
    assert len(body["below_min_firms"]) == 1 and body["n_clusters"] == 1
    explicit = spec.get("clusters")(ws, firms="reg", preset="india_mse_cdp", eps_m=300.0)
    assert explicit.to_body()["params"]["eps_m"] == 300.0  # an explicit value wins


def test_ranking_growth_from_a_change_or_a_dynamics_run(two_runs, simulated, capsys):
    ws, before, after = two_runs
    change = spec.get("change")(ws, before=before, after=after).run_id
    body = _cli_json(capsys, "ranking", ws, clusters_run=after, growth_run=change)
    rate = {c["n_firms"]: c["growth_rate"] for c in body["clusters"]}
    # by construction: A grew from 40 to 50 firms (+25 %), C appeared (no rate)
    assert rate[50] == pytest.approx(0.25) and rate[25] is None
    assert "growth" not in body["left_out"] and change in body["inputs"]
    with pytest.raises(InvalidInput, match="follow-up"):
        spec.get("ranking")(ws, clusters_run=before, growth_run=change)
    ws, clusters = simulated
    dyn = spec.get("dynamics")(ws, firms="reg", clusters=clusters, skip_emergence=True).run_id
    body = spec.get("ranking")(ws, clusters_run=clusters, growth_run=dyn).to_body()
    rate = {c["n_firms"]: c["growth_rate"] for c in body["clusters"]}
    # CAGR 2004 -> 2009 by hand: A 20 -> 40 firms, B 0 -> 60 (undefined from 0)
    assert rate[40] == pytest.approx(2 ** (1 / 5) - 1) and rate[60] is None


def test_saved_runs_are_collections_with_their_disclosure_kind(simulated, client, toy):
    ws, clusters = simulated
    body = spec.get("dynamics")(ws, firms="reg", clusters=clusters, boundaries="regions").to_body()
    assert body["collections"] == {
        "regions": body["run_id"],
        "region_series": f"{body['run_id']}.region_series",
        "clusters": f"{body['run_id']}.clusters",
    }
    kinds = ws.run(body["run_id"]).summary["disclosure"]
    assert kinds["regions"] == {"kind": "region_table", "count_col": "firms_end"}
    assert kinds["clusters"] == {"kind": "cluster_summary", "count_col": "n_firms"}
    run = client.post(
        "/analyses/shiftshare",
        json={"firms": "reg@1", "firms_to": "reg@2", "boundaries": "regions"},
    ).json()
    for collection in run["collections"].values():
        r = client.get(f"/collections/{collection}/items")
        assert r.status_code == 200 and r.json()["features"]
