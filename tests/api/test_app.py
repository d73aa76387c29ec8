"""App factory, settings, error mapping, health and OpenAPI."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from api import errors as api_errors
from api.app import create_app
from api.settings import FeaturesSettings, Settings
from geocluster import errors as ge


def test_health_and_docs(client):
    assert client.get("/health").json() == {"status": "ok", "auth": "open"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/collections/{collectionId}/items" in spec["paths"]
    assert "/analyses/clusters" in spec["paths"]
    # request models carry examples
    schemas = spec["components"]["schemas"]
    assert schemas["ClustersRequest"]["examples"][0]["firms"] == "firms"


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOCLUSTER_WORKSPACE", str(tmp_path / "envws"))
    monkeypatch.setenv("GEOCLUSTER_ITEMS_LIMIT_MAX", "7")
    monkeypatch.setenv("GEOCLUSTER_MAX_UPLOAD_MB", "3")
    s = Settings()
    assert s.workspace == tmp_path / "envws"
    assert s.features.items_limit_max == 7
    assert s.upload.max_upload_mb == 3
    app = create_app()  # built from the environment, at call time
    assert app.state.settings.workspace == tmp_path / "envws"


def test_settings_bounds():
    with pytest.raises(ValueError):
        FeaturesSettings(items_limit_max=0)
    with pytest.raises(ValueError):
        Settings(port=70000)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ge.InvalidInput("bad"), 422),
        (ge.UnusableFile("bad"), 400),
        (ge.UnsupportedFormat("bad"), 415),
        (ge.FileTooLarge("bad"), 413),
        (ge.MissingColumns("bad"), 422),
        (ge.UnsafeArchive("bad"), 400),
        (ge.CRSError("bad"), 422),
        (ge.WrongKind("bad"), 422),
        (ge.NotFound("bad"), 404),
        (ge.DatasetNotFound("bad"), 404),
        (ge.RunNotFound("bad"), 404),
        (ge.RasterNotFound("bad"), 404),
        (ge.RegionNotFound("bad"), 404),
        (ge.JobNotFound("bad"), 404),
        (ge.Conflict("bad"), 409),
        (ge.DisclosureError("bad"), 403),
        (api_errors.TileOutsideBounds("bad"), 404),
        (RuntimeError("secret traceback detail"), 500),
    ],
)
def test_every_error_maps_to_its_status(tmp_path, exc, status):
    app = create_app(Settings(workspace=tmp_path / "ws"))
    router = APIRouter()

    @router.get("/boom")
    def boom():
        raise exc

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == status
    body = r.json()
    assert set(body) == {"detail"}
    if status == 500:
        assert body["detail"] == "internal error"
        assert "secret" not in r.text and "Traceback" not in r.text
    else:
        assert body["detail"] == "bad"


def test_status_code_for_uses_nearest_class():
    class MyMissing(ge.MissingColumns):
        pass

    assert api_errors.status_code_for(MyMissing("x")) == 422
    assert api_errors.status_code_for(ValueError("x")) == 500


def test_validation_errors_are_422_with_a_readable_detail(client):
    r = client.get("/collections/x/items?limit=0")
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], str)
    assert "limit" in r.json()["detail"]
    r = client.post("/analyses/clusters", json={"firms": "f", "eps_m": -5})
    assert r.status_code == 422
    assert "eps_m" in r.json()["detail"]
    r = client.post("/analyses/clusters", json={"firms": "f", "nonsense": 1})
    assert r.status_code == 422 and "nonsense" in r.json()["detail"]


def test_docs_page_loads_nothing_from_a_cdn(client):
    import re

    page = client.get("/docs").text
    urls = re.findall(r"(?:src|href)=[\"']([^\"']+)[\"']", page)
    assert urls and all(u.startswith("/static/") or u == "/openapi.json" for u in urls), urls
    for u in urls:
        if u.startswith("/static/"):
            assert client.get(u).status_code == 200, u
    assert client.get("/redoc").status_code == 404


def test_static_assets_served(client):
    r = client.get("/static/leaflet/leaflet.js")
    assert r.status_code == 200
    assert "Leaflet" in r.text[:500]
    assert client.get("/static/protomaps-leaflet/protomaps-leaflet.js").status_code == 200
    assert client.get("/static/nope.js").status_code == 404


def test_landing_and_conformance(client):
    links = {link["rel"] for link in client.get("/").json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= links
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf


def test_unknown_route_is_404_json(client):
    r = client.get("/no/such/route")
    assert r.status_code == 404 and "detail" in r.json()


def test_warm_on_start_compiles_analysis_kernels_in_the_background(tmp_path, monkeypatch):
    import threading

    import geocluster.clustering
    import geocluster.spatialstats

    called = []
    done = threading.Event()
    monkeypatch.setattr(geocluster.clustering, "warm_up", lambda: called.append("clustering"))

    def spatial():
        called.append("spatialstats")
        done.set()
        return 0.0

    monkeypatch.setattr(geocluster.spatialstats, "warm_up", spatial)
    app = create_app(Settings(workspace=tmp_path / "ws", warm_on_start=True))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200  # never waits for the warm-up
        assert done.wait(30)
    assert called == ["clustering", "spatialstats"]
    assert Settings(workspace=tmp_path).warm_on_start is False  # tests and embedders opt in
