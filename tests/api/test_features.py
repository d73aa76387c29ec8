"""OGC API Features: collections, items paging, bbox, properties, formats, disclosure."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import DisclosureSettings, FeaturesSettings, Settings


def test_collections_list_datasets_and_runs(demo_client, demo):
    body = demo_client.get("/collections").json()
    ids = {c["id"] for c in body["collections"]}
    assert {"firms", "regions", "indicators", "assets"} <= ids
    # run layers are collections, listed on request only (the landing list stays short)
    assert demo["clusters_run"] not in ids
    every = demo_client.get("/collections?include_runs=true").json()
    assert demo["clusters_run"] in {c["id"] for c in every["collections"]}
    firms = next(c for c in body["collections"] if c["id"] == "firms")
    assert firms["extent"]["spatial"]["crs"].endswith("CRS84")
    rels = {link["rel"] for link in firms["links"]}
    assert {"self", "items"} <= rels
    assert any(link["href"].endswith("tilejson.json") for link in firms["links"])
    one = demo_client.get("/collections/firms").json()
    assert one["rows"] == demo["n_firms"]
    assert demo_client.get("/collections/nope").status_code == 404


def test_items_paging_and_links(demo_client, demo):
    r = demo_client.get("/collections/firms/items?limit=100&offset=0")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert fc["numberReturned"] == 100 and fc["numberMatched"] == demo["n_firms"]
    rels = {link["rel"]: link["href"] for link in fc["links"]}
    assert "next" in rels and "prev" not in rels
    nxt = demo_client.get(rels["next"].replace("http://testserver", "")).json()
    assert {link["rel"] for link in nxt["links"]} >= {"next", "prev"}
    first_ids = {f["id"] for f in fc["features"]}
    second_ids = {f["id"] for f in nxt["features"]}
    assert not first_ids & second_ids
    last = demo_client.get(
        f"/collections/firms/items?limit=100&offset={demo['n_firms'] - 10}"
    ).json()
    assert last["numberReturned"] == 10
    assert "next" not in {link["rel"] for link in last["links"]}


def test_lon_lat_axis_order(demo_client, demo):
    firms = demo["ws"].read("firms")
    fc = demo_client.get("/collections/firms/items?limit=5").json()
    for feat in fc["features"]:
        row = firms[firms["firm_id"] == feat["id"]].iloc[0]
        lon, lat = feat["geometry"]["coordinates"]
        assert lon == pytest.approx(row.geometry.x) and lat == pytest.approx(row.geometry.y)
        assert -105 < lon < -100 and 19 < lat < 23  # Mexico, lon first


def test_bbox_filter_matches_a_brute_force_count(demo_client, demo):
    firms = demo["ws"].read("firms")
    bbox = (-103.4, 20.6, -103.3, 20.7)
    inside = firms.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    fc = demo_client.get(
        "/collections/firms/items", params={"bbox": ",".join(map(str, bbox)), "limit": 10000}
    ).json()
    assert fc["numberMatched"] == len(inside) == fc["numberReturned"]
    assert {f["id"] for f in fc["features"]} == set(inside["firm_id"])


@pytest.mark.parametrize(
    ("bbox", "fragment"),
    [
        ("1,2,3", "4 comma-separated"),
        ("a,b,c,d", "numbers"),
        ("0,0,200,10", "degrees"),
        ("10,0,5,10", "minimum"),
        ("0,0,nan,1", "finite"),
    ],
)
def test_invalid_bbox_is_422(demo_client, bbox, fragment):
    r = demo_client.get("/collections/firms/items", params={"bbox": bbox})
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_limit_is_capped_by_settings(demo):
    settings = Settings(
        workspace=demo["ws"].path,
        features=FeaturesSettings(items_limit_max=7, download_limit_max=500),
    )
    with TestClient(create_app(settings)) as c:
        fc = c.get("/collections/firms/items?limit=5000").json()
        assert fc["numberReturned"] == 7
        # file downloads are whole layers, up to their own cap
        r = c.get("/collections/firms/items?f=csv")
        assert len(pd.read_csv(io.StringIO(r.text))) == 500
        assert r.headers["OGC-NumberMatched"] == str(demo["n_firms"])
        assert r.headers["OGC-NumberReturned"] == "500"
        assert (
            len(pd.read_csv(io.StringIO(c.get("/collections/firms/items?f=csv&limit=20").text)))
            == 20
        )


def test_properties_selection(demo_client):
    fc = demo_client.get("/collections/firms/items?limit=3&properties=firm_id,employees").json()
    assert set(fc["features"][0]["properties"]) == {"firm_id", "employees"}
    r = demo_client.get("/collections/firms/items?properties=firm_id,salary")
    assert r.status_code == 422 and "salary" in r.json()["detail"]


def test_attribute_only_collection(demo_client):
    fc = demo_client.get("/collections/indicators/items?limit=5").json()
    assert fc["numberReturned"] == 5
    assert all(f["geometry"] is None for f in fc["features"])
    r = demo_client.get("/collections/indicators/items?bbox=0,0,1,1")
    assert r.status_code == 422


def test_csv_download(demo_client, demo):
    r = demo_client.get("/collections/firms/items?f=csv&limit=10000")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    frame = pd.read_csv(io.StringIO(r.text), dtype={"firm_id": str})
    assert len(frame) == demo["n_firms"]
    assert {"lon", "lat", "firm_id"} <= set(frame.columns)
    regions = pd.read_csv(io.StringIO(demo_client.get("/collections/regions/items?f=csv").text))
    assert regions["wkt"].str.startswith("POLYGON").all()


def test_gpkg_and_parquet_downloads_are_readable(demo_client, tmp_path):
    r = demo_client.get("/collections/regions/items?f=gpkg")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "r.gpkg"
    path.write_bytes(r.content)
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == 6 and frame.crs.to_epsg() == 4326
    r = demo_client.get("/collections/regions/items?f=parquet")
    path = tmp_path / "r.parquet"
    path.write_bytes(r.content)
    frame = gpd.read_parquet(path)
    assert sorted(frame["region_id"]) == sorted(f"R{i}{j}" for i in range(3) for j in range(2))


def test_accept_header_negotiation(demo_client):
    r = demo_client.get("/collections/regions/items", headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")
    r = demo_client.get("/collections/regions/items", headers={"Accept": "application/geo+json"})
    assert r.headers["content-type"].startswith("application/geo+json")
    # f= wins over Accept
    r = demo_client.get("/collections/regions/items?f=geojson", headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("application/geo+json")
    assert demo_client.get("/collections/regions/items?f=xml").status_code == 422


def test_run_labels_collection(demo_client, demo):
    fc = demo_client.get(f"/collections/{demo['clusters_run']}/items?limit=10000").json()
    assert fc["numberMatched"] == demo["n_firms"]
    labels = np.array([f["properties"]["cluster_id"] for f in fc["features"]])
    assert {"firm_id", "cluster_id"} <= set(fc["features"][0]["properties"])
    assert (labels == -1).any() and (labels >= 0).any()


def test_firm_points_withheld_when_policy_says_so(demo):
    settings = Settings(
        workspace=demo["ws"].path, disclosure=DisclosureSettings(public_firm_points=False)
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.get("/collections/firms/items?limit=5")
        assert r.status_code == 403
        assert "confidential" in r.json()["detail"]
        assert c.get("/collections/regions/items").status_code == 200


def test_single_feature_by_id(demo_client, demo):
    feat = demo_client.get("/collections/firms/items/F00007").json()
    assert feat["type"] == "Feature" and feat["id"] == "F00007"
    assert feat["properties"]["firm_id"] == "F00007"
    assert {link["rel"] for link in feat["links"]} == {"self", "collection"}
    assert demo_client.get("/collections/firms/items/NOPE").status_code == 404
    assert demo_client.get("/collections/firms/items/x' OR '1'='1").status_code == 404
    assert (
        demo_client.get("/collections/regions/items/R10").json()["properties"]["name"]
        == "Region 10"
    )
    ind = demo_client.get("/collections/indicators/items/3").json()
    assert ind["id"] == 3 and ind["geometry"] is None
    assert demo_client.get("/collections/indicators/items/abc").status_code == 404


def test_attribute_table_downloads(demo_client, tmp_path):
    r = demo_client.get("/collections/indicators/items?f=gpkg&limit=10000")
    assert r.status_code == 200, r.text
    path = tmp_path / "i.gpkg"
    path.write_bytes(r.content)
    table = pyogrio.read_dataframe(path)
    assert len(table) == 24 and {"region_id", "year", "indicator", "value"} <= set(table.columns)
    r = demo_client.get("/collections/indicators/items?f=parquet&limit=10000")
    path = tmp_path / "i.parquet"
    path.write_bytes(r.content)
    assert len(pd.read_parquet(path)) == 24
    csv = pd.read_csv(io.StringIO(demo_client.get("/collections/indicators/items?f=csv").text))
    assert "wkt" not in csv.columns and len(csv) == 24
