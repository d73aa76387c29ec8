"""``/analyses/*`` through HTTP: CONTRACT shapes, library parity, jobs, bad input."""

from __future__ import annotations

import numpy as np
import pytest

PNG = b"\x89PNG\r\n\x1a\n"


def test_clusters_contract_shape(demo_client, demo):
    r = demo_client.post(
        "/analyses/clusters", json={"firms": "firms", "eps_m": 3000, "min_samples": 10}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"run_id", "n_clusters", "noise", "clusters"} <= set(body)
    assert body["clusters"]["type"] == "FeatureCollection"
    assert body["n_clusters"] == len(body["clusters"]["features"]) >= 2
    props = body["clusters"]["features"][0]["properties"]
    assert {"cluster_id", "n_firms", "employees", "dominant_sector", "area_km2"} <= set(props)
    assert "disclosure" in props  # went through the disclosure policy
    # per-firm labels are a collection, and agree with the summary
    fc = demo_client.get(f"/collections/{body['run_id']}/items?limit=10000").json()
    labels = np.array([f["properties"]["cluster_id"] for f in fc["features"]])
    assert int((labels == -1).sum()) == body["noise"]
    sizes = {
        f["properties"]["cluster_id"]: f["properties"]["n_firms"]
        for f in body["clusters"]["features"]
    }
    for cid, n in sizes.items():
        assert int((labels == cid).sum()) == n
    assert demo_client.get(f"/runs/{body['run_id']}").json()["kind"] == "clusters"


def test_clusters_match_the_library_call(demo_client, demo):
    from geocluster.analyses.clusters import run_clusters

    params = {"firms": "firms", "method": "dbscan", "eps_m": 2500.0, "min_samples": 8}
    direct = run_clusters(demo["ws"], **params)
    via_http = demo_client.post("/analyses/clusters", json=params).json()
    assert via_http["n_clusters"] == direct["n_clusters"]
    assert via_http["noise"] == direct["noise"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"firms": "nope"}, 404, "nope"),
        ({"firms": "regions"}, 422, "firms"),
        ({"firms": "firms", "method": "kmeans"}, 422, "method"),
        ({"firms": "firms", "eps_m": 0}, 422, "eps_m"),
        ({"firms": "firms", "min_samples": "many"}, 422, "min_samples"),
        ({"eps_m": 100}, 422, "firms"),
        ({"firms": "firms", "sector_group": "spaceships"}, 422, "spaceships"),
    ],
)
def test_clusters_bad_input(demo_client, body, status, fragment):
    r = demo_client.post("/analyses/clusters", json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]


def test_kdistance(demo_client):
    body = demo_client.post("/analyses/kdistance", json={"firms": "firms", "k": 5}).json()
    assert body["k"] == 5 and body["suggested_eps_m"] > 0
    assert len(body["curve"]["rank"]) == len(body["curve"]["distance_m"])
    assert (
        demo_client.post("/analyses/kdistance", json={"firms": "firms", "k": 0}).status_code == 422
    )


def test_kde_creates_a_raster_with_tiles(demo_client):
    body = demo_client.post(
        "/analyses/kde", json={"firms": "firms", "bandwidth": 3000, "cell_m": 2000}
    ).json()
    rid = body["raster_id"]
    tj = demo_client.get(f"/rasters/{rid}/tilejson.json").json()
    assert tj["rescale"][1] > 0
    assert demo_client.get(f"/rasters/{rid}").json()["kind"] == "kde"
    assert (
        demo_client.post("/analyses/kde", json={"firms": "firms", "bandwidth": "wide"}).status_code
        == 422
    )
    assert (
        demo_client.post("/analyses/kde", json={"firms": "firms", "bandwidth": -1}).status_code
        == 422
    )


def test_inequality_inline_matches_pysal(demo_client):
    from inequality.gini import Gini
    from inequality.theil import Theil

    values = [1.0, 2.0, 3.0, 4.0, 10.0, 7.5]
    body = demo_client.post("/analyses/inequality", json={"values": values}).json()
    # reference: PySAL inequality on the same input
    flat = str(body)
    assert "gini" in flat
    result = body.get("result", body)
    assert result["gini"] == pytest.approx(Gini(np.array(values)).g)
    assert result["theil_t"] == pytest.approx(Theil(np.array(values)).T)


def test_inequality_from_indicators_and_png(demo_client):
    req = {
        "indicators": "indicators",
        "indicator": "gdp_pc",
        "boundaries": "regions",
        "group_by": "parent_id",
    }
    body = demo_client.post("/analyses/inequality", json=req).json()
    assert set(map(str, body["years"])) == {"2000", "2010"}
    r = demo_client.post("/analyses/inequality?format=png", json=req)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(PNG)
    r = demo_client.post("/analyses/inequality?format=png&chart=lorenz", json={"values": [1, 2, 3]})
    assert r.content.startswith(PNG)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"values": []}, 422),
        ({"values": [1, 2, "x"]}, 422),
        ({"values": [1, 2, 3], "population": [1, 2]}, 422),
        ({"indicators": "nope", "indicator": "gdp_pc"}, 404),
        ({"indicators": "indicators", "indicator": "nothing"}, 422),
        ({"indicators": "firms", "indicator": "x"}, 422),
    ],
)
def test_inequality_bad_input(demo_client, body, status):
    r = demo_client.post("/analyses/inequality", json=body)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str)


def test_assets_and_zonal(demo_client, demo):
    r = demo_client.post(
        "/analyses/assets",
        json={"assets": "assets", "boundaries": "regions", "analysis": "density"},
    )
    assert r.status_code == 200, r.text
    assert "run_id" in r.json()
    r = demo_client.post("/analyses/assets", json={"assets": "assets", "analysis": "teleport"})
    assert r.status_code == 422
    r = demo_client.post(
        "/analyses/zonal",
        json={"raster": demo["kde"], "boundaries": "regions", "stats": ["sum", "mean"]},
    )
    assert r.status_code == 200, r.text
    r = demo_client.post("/analyses/zonal", json={"raster": demo["kde"]})
    assert r.status_code == 422
    r = demo_client.post("/analyses/zonal", json={"raster": "nope", "boundaries": "regions"})
    assert r.status_code == 404
    r = demo_client.post(
        "/analyses/zonal", json={"raster": demo["kde"], "boundaries": "regions", "stats": ["mode"]}
    )
    assert r.status_code == 422 and "mode" in r.json()["detail"]


def test_specialization_contract_shape(demo_client, demo):
    from geocluster.analyses.specialization import run_specialization

    req = {
        "firms": "firms",
        "boundaries": "regions",
        "measure": "employees",
        "sector_level": "division",
    }
    r = demo_client.post("/analyses/specialization", json=req)
    assert r.status_code == 200, r.text
    body = r.json()
    row = body["rows"][0]
    assert {"region_id", "sector", "count", "employees", "lq", "strong"} <= set(row)
    assert {"region_id", "hhi", "krugman"} <= set(body["regions"][0])
    assert {"sector", "ellison_glaeser"} <= set(body["sectors"][0])
    assert "disclosure" in row  # the region x sector table went through the policy
    direct = run_specialization(demo["ws"], **req)
    lq_http = {(x["region_id"], x["sector"]): x["lq"] for x in body["rows"]}
    lq_lib = {(x["region_id"], x["sector"]): x["lq"] for x in direct["rows"]}
    assert lq_http.keys() == lq_lib.keys()
    for key, value in lq_lib.items():
        assert lq_http[key] == pytest.approx(value, nan_ok=True)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"firms": "firms", "boundaries": "firms"}, 422),
        ({"firms": "firms", "boundaries": "nope"}, 404),
        ({"firms": "firms", "boundaries": "regions", "measure": "sales"}, 422),
        ({"firms": "firms", "boundaries": "regions", "sector_level": "class"}, 422),
    ],
)
def test_specialization_bad_input(demo_client, body, status):
    assert demo_client.post("/analyses/specialization", json=body).status_code == status


def test_hotspots_contract_shape(demo_client):
    req = {
        "boundaries": "regions",
        "indicators": "indicators",
        "indicator": "gdp_pc",
        "year": 2010,
        "method": "lisa",
        "weights": "queen",
        "permutations": 99,
        "seed": 1,
    }
    body = demo_client.post("/analyses/hotspots", json=req).json()
    assert len(body["regions"]) == 6
    reg = body["regions"][0]
    assert {"region_id", "statistic", "p_value", "label", "significant"} <= set(reg)
    assert {r["label"] for r in body["regions"]} <= {"HH", "LL", "HL", "LH"}
    assert "global" in body
    values = {f"R{i}{j}": float(i * 10 + j) for i in range(3) for j in range(2)}
    body = demo_client.post(
        "/analyses/hotspots",
        json={"boundaries": "regions", "values": values, "method": "gi_star", "permutations": 0},
    ).json()
    labels = {r["region_id"]: r["label"] for r in body["regions"]}
    # Gi*: the sign of the standardised statistic; the high corner (R2x) is hot
    assert set(labels.values()) <= {"hot", "cold"}
    assert labels["R21"] == "hot" and labels["R00"] == "cold"


@pytest.mark.parametrize(
    "body",
    [
        {"boundaries": "regions", "values": {"R00": 1.0}, "weights": "hexagons"},
        {"boundaries": "regions", "values": {"R00": 1.0}, "method": "moran"},
        {"boundaries": "regions", "values": {"R00": 1.0}, "alpha": 1.5},
        {"boundaries": "regions"},
        {"boundaries": "regions", "indicators": "indicators", "indicator": "nothing", "year": 2010},
    ],
)
def test_hotspots_bad_input(demo_client, body):
    r = demo_client.post("/analyses/hotspots", json=body)
    assert r.status_code == 422, r.text


def test_pointpattern(demo_client):
    r = demo_client.post(
        "/analyses/pointpattern",
        json={
            "firms": "firms",
            "sectors": ["15"],
            "method": "ripley",
            "n_simulations": 9,
            "max_distance_m": 5000,
        },
    )
    assert r.status_code == 200, r.text
    assert "run_id" in r.json()
    r = demo_client.post("/analyses/pointpattern", json={"firms": "firms", "method": "voronoi"})
    assert r.status_code == 422


def test_ranking_components(demo_client, demo):
    r = demo_client.post(
        "/analyses/ranking",
        json={"clusters_run": demo["clusters_run"], "boundaries": "regions", "assets": "assets"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["clusters"] and "cluster_id" in body["clusters"][0]
    assert body["clusters"][0]["disclosure"] in ("ok", "few_contributors", "dominance")
    assert demo_client.post("/analyses/ranking", json={"clusters_run": "nope"}).status_code == 404
    r = demo_client.post(
        "/analyses/ranking", json={"clusters_run": demo["clusters_run"], "weights": {"charm": 1}}
    )
    assert r.status_code == 422


def test_every_registered_analysis_has_a_documented_route(demo_client):
    from geocluster.analyses.spec import specs

    openapi = demo_client.get("/openapi.json").json()
    schemas = openapi["components"]["schemas"]
    for spec in specs():
        op = openapi["paths"][f"/analyses/{spec.name}"]["post"]
        assert op["summary"] == spec.summary and op["description"] == spec.description
        assert "202" in op["responses"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        model = schemas[ref.rsplit("/", 1)[1]]
        assert model["examples"] == [dict(e) for e in spec.examples]
        assert "async" in model["properties"]
        documented = {k for k, v in model["properties"].items() if v.get("description")}
        assert documented == set(model["properties"])
    # the PNG chart's option is a declared query parameter
    params = openapi["paths"]["/analyses/inequality"]["post"]["parameters"]
    assert {p["name"] for p in params} == {"format", "chart"}


def test_assets_clusters_exists_over_http_too(demo_client):
    # it existed on the CLI only; both edges come from one spec now
    r = demo_client.post(
        "/analyses/assets", json={"assets": "assets", "analysis": "clusters", "radius_m": 20000}
    )
    assert r.status_code == 200, r.text
    assert r.json()["zones"]["type"] == "FeatureCollection"
    assert r.json()["inputs"] == ["assets@1"]


def test_inequality_chart_option_is_validated(demo_client):
    r = demo_client.post("/analyses/inequality?format=png&chart=pie", json={"values": [1, 2, 3]})
    assert r.status_code == 422 and "chart" in r.json()["detail"]
    r = demo_client.post("/analyses/inequality?format=png", json={"values": [1, 2], "async": True})
    assert r.status_code == 422 and "async" in r.json()["detail"]


def test_results_name_the_exact_versions_used(demo_client):
    body = demo_client.post(
        "/analyses/clusters", json={"firms": "firms@1", "eps_m": 3000, "min_samples": 10}
    ).json()
    assert body["inputs"] == ["firms@1"]
    body = demo_client.post(
        "/analyses/hotspots",
        json={"boundaries": "regions", "indicators": "indicators", "indicator": "gdp_pc"},
    ).json()
    assert body["inputs"] == ["regions@1", "indicators@1"]


# -- a keyed server: what a viewer (and an anonymous caller) gets -------------------------
@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A demo-like workspace served with keys (not open mode): admin and viewer keys."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import DisclosureSettings, SecuritySettings, Settings
    from geocluster.auth import create_key
    from geocluster.workspace import Workspace
    from tests.api.fixtures import build_demo_like_workspace

    ws_dir = tmp_path_factory.mktemp("keyed") / "ws"
    built = build_demo_like_workspace(ws_dir)
    ws = Workspace(ws_dir)
    keys = {"viewer": create_key(ws.catalog, "viewer", "v")[1]}
    keys["admin"] = create_key(ws.catalog, "admin", "a")[1]
    settings = Settings(
        workspace=ws_dir,
        security=SecuritySettings(rate_limit_per_minute=100_000, rate_limit_burst=100_000),
        # a threshold of 10 firms, so that the synthetic regions have cells to suppress
        disclosure=DisclosureSettings(min_contributors=10),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        firms = Workspace(ws_dir).read("firms", crs=None)
        yield {"client": client, "keys": keys, "firms": firms, "built": built, "ws": ws}


def _firm_values(firms) -> tuple[set, set]:
    xy = {(round(p.x, 7), round(p.y, 7)) for p in firms.geometry}
    return xy, set(firms["firm_id"].astype(str)) | set(firms.get("name", []))


def _leaks(text: str, firms) -> list[str]:
    """Firm ids, names or coordinates (7 decimals) that appear in a response text."""
    import re

    xy, names = _firm_values(firms)
    found = [n for n in names if isinstance(n, str) and len(n) > 3 and f'"{n}"' in text]
    nums = {round(float(v), 7) for v in re.findall(r"-?\d+\.\d{5,}", text)}
    found += [f"{x},{y}" for x, y in xy if x in nums and y in nums]
    return found


def test_anonymous_and_viewer_get_no_microdata_from_analyses(keyed):
    c, k = keyed["client"], keyed["keys"]
    body = {"firms": "firms", "eps_m": 3000, "min_samples": 10}
    r = c.post("/analyses/clusters", json=body)
    assert r.status_code == 401 and not _leaks(r.text, keyed["firms"])
    r = c.post("/analyses/clusters", json=body, headers={"X-API-Key": k["viewer"]})
    assert r.status_code == 403 and not _leaks(r.text, keyed["firms"])
    # the admin runs it; the labels exist, with firm coordinates (the check has teeth)
    r = c.post("/analyses/clusters", json=body, headers={"X-API-Key": k["admin"]})
    assert r.status_code == 200, r.text
    items = c.get(
        f"/collections/{r.json()['run_id']}/items?limit=5", headers={"X-API-Key": k["admin"]}
    )
    assert _leaks(items.text, keyed["firms"])


def test_viewer_region_profiles_default_to_visible_firms_only(keyed):
    c, k = keyed["client"], keyed["keys"]
    h = {"X-API-Key": k["viewer"]}
    assert keyed["ws"].dataset("firms").visibility != "public"  # firms are private
    r = c.get("/regions/R00/profile?boundaries=regions", headers=h)
    assert r.status_code == 200, r.text
    prof = r.json()
    # the private firms register is not the default for a viewer: no firm profile at all
    assert prof["firms"] is None and "firms@1" not in prof["inputs"]
    assert not _leaks(r.text, keyed["firms"])
    # the admin's default is the register
    run = keyed["built"]["clusters_run"]
    admin = c.get(
        f"/regions/R00/profile?boundaries=regions&clusters_run={run}",
        headers={"X-API-Key": k["admin"]},
    )
    assert "firms@1" in admin.json()["inputs"], admin.text
    # naming it is the same 404 as an unknown dataset
    r = c.get("/regions/R00/profile?boundaries=regions&firms=firms", headers=h)
    assert r.status_code == 404
    r = c.get("/regions/compare?ids=R00,R10&boundaries=regions", headers=h)
    assert r.status_code == 200 and "firms@1" not in r.json()["inputs"]


def test_viewer_region_profiles_of_public_firms_are_disclosure_safe(keyed):
    c, k = keyed["client"], keyed["keys"]
    admin = {"X-API-Key": k["admin"]}
    run = keyed["built"]["clusters_run"]
    r = c.patch("/datasets/firms", json={"visibility": "public"}, headers=admin)
    assert r.status_code == 200, r.text
    suppressed = 0
    try:
        for rid in ("R00", "R10", "R21"):
            r = c.get(
                f"/regions/{rid}/profile?boundaries=regions&clusters_run={run}",
                headers={"X-API-Key": k["viewer"]},
            )
            assert r.status_code == 200, r.text
            prof = r.json()
            assert "firms@1" in prof["inputs"]
            assert prof["firms"]["count"] is None or prof["firms"]["count"] >= 10
            top = prof["sectors"]["top"] if prof.get("sectors") else []
            suppressed += sum(s["count"] is None for s in top)
            for s in top:
                assert s["count"] is None or s["count"] >= 10
                if s["count"] is None:
                    assert s["lq"] is None and s["disclosure"] != "ok"
            assert sum(s["disclosure"] != "ok" for s in top) != 1
            assert not _leaks(r.text, keyed["firms"])
        assert suppressed >= 2  # the rules did act (regions R10 and R21 have small sectors)
    finally:
        c.patch("/datasets/firms", json={"visibility": "private"}, headers=admin)


def test_viewer_kde_tiles_pass_the_bandwidth_floor(keyed):
    c, k = keyed["client"], keyed["keys"]
    admin = {"X-API-Key": k["admin"]}
    viewer = {"X-API-Key": k["viewer"]}
    assert (
        c.patch("/datasets/firms", json={"visibility": "public"}, headers=admin).status_code == 200
    )
    try:
        narrow = c.post("/analyses/kde", json={"firms": "firms", "bandwidth": 50}, headers=admin)
        wide = c.post("/analyses/kde", json={"firms": "firms", "bandwidth": 5000}, headers=admin)
        assert narrow.status_code == wide.status_code == 200, narrow.text
        tile = "/rasters/{}/tiles/WebMercatorQuad/8/54/112.png"  # a centre of the firms
        r = c.get(tile.format(narrow.json()["raster_id"]), headers=viewer)
        assert r.status_code == 403 and "bandwidth_below_floor" in r.json()["detail"]
        r = c.get(tile.format(narrow.json()["raster_id"]), headers=admin)
        assert r.status_code == 200  # an editor sees it
        # what a viewer may not see stays out of shared caches
        assert r.headers["Cache-Control"].startswith("private")
        assert c.get(tile.format(wide.json()["raster_id"]), headers=viewer).status_code == 200
        # the fixture's KDE raster records no bandwidth: withheld from viewers
        r = c.get(tile.format(keyed["built"]["kde"]), headers=viewer)
        assert r.status_code == 403 and "bandwidth_unknown" in r.json()["detail"]
    finally:
        c.patch("/datasets/firms", json={"visibility": "private"}, headers=admin)


def test_async_must_be_a_boolean(demo_client):
    # strict request models: schemathesis found "async": 0 accepted
    r = demo_client.post("/analyses/kdistance", json={"firms": "firms", "async": 0})
    assert r.status_code == 422
