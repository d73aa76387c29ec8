"""The edge as an attacker sees it: an OWASP API Security Top-10 style suite over HTTP.

API1 broken object level authorisation (dataset and run ids across keys), API2 broken
authentication (missing, wrong, revoked key; expired or foreign JWT), API3 mass
assignment (``extra="forbid"``), API4 resource consumption (body cap, rate limit),
API5 function level authorisation (roles), API8 misconfiguration (CORS, Host header,
cross-site form posts, docs switch), and "an anonymous client of a server with keys
gets no microdata by any route" (items, downloads, tiles at z14 decoded, listings).
"""

from __future__ import annotations

import io
import json
import time

import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import SecuritySettings, Settings
from geocluster.auth import create_key, revoke_key
from geocluster.workspace import Workspace
from tests.api.fixtures import CENTRES, synthetic_firms, synthetic_regions

WMQ = morecantile.tms.get("WebMercatorQuad")


def _firms_csv(seed: int = 0) -> bytes:
    firms = synthetic_firms(n_per_centre=120, n_background=60, seed=seed)
    frame = pd.DataFrame(firms.drop(columns="geometry"))
    frame["lon"] = firms.geometry.x
    frame["lat"] = firms.geometry.y
    return frame.to_csv(index=False).encode()


def _upload(client, key, content, *, kind="firms", name="firms", filename="firms.csv"):
    headers = {"X-API-Key": key} if key else {}
    return client.post(
        "/datasets",
        data={"kind": kind, "name": name},
        files={"file": (filename, content, "application/octet-stream")},
        headers=headers,
    )


def _h(key):
    return {"X-API-Key": key}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A keyed server: editor A's private firms and clusters run, admin's public regions."""
    ws_dir = tmp_path_factory.mktemp("secure") / "ws"
    ws = Workspace(ws_dir)
    keys = {}
    for who, role in (("admin", "admin"), ("a", "editor"), ("b", "editor"), ("viewer", "viewer")):
        keys[who] = create_key(ws.catalog, role, who)
    keys["revoked"] = create_key(ws.catalog, "admin", "gone")
    revoke_key(ws.catalog, keys["revoked"][0])
    settings = Settings(
        workspace=ws_dir,
        security=SecuritySettings(rate_limit_per_minute=100_000, rate_limit_burst=100_000),
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = _upload(client, keys["a"][1], _firms_csv(), name="firms_a")
        assert r.status_code == 201, r.text
        buf = io.BytesIO(synthetic_regions().to_json().encode())
        r = _upload(
            client,
            keys["admin"][1],
            buf.getvalue(),
            kind="boundaries",
            name="regions",
            filename="regions.geojson",
        )
        assert r.status_code == 201, r.text
        r = client.post(
            "/analyses/clusters",
            json={"firms": "firms_a", "method": "dbscan", "eps_m": 1500, "min_samples": 10},
            headers=_h(keys["a"][1]),
        )
        assert r.status_code == 200, r.text
        run_id = r.json()["run_id"]
        yield {"client": client, "keys": {k: v[1] for k, v in keys.items()}, "run": run_id}


def test_health_says_keys(world):
    assert world["client"].get("/health").json() == {"status": "ok", "auth": "keys"}


# -- API2: broken authentication ---------------------------------------------------------
def test_missing_wrong_and_revoked_keys_are_401(world):
    c, k = world["client"], world["keys"]
    content = _firms_csv(1)
    assert _upload(c, None, content, name="x").status_code == 401
    wrong = k["a"][:-2] + ("zz" if not k["a"].endswith("zz") else "yy")
    for bad in (wrong, "gk_00000000_" + "x" * 43, "nonsense", k["revoked"]):
        r = c.get("/datasets", headers=_h(bad))
        assert r.status_code == 401, bad
        assert r.headers["www-authenticate"] == "Bearer"
        r = c.get("/datasets", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401
    # the same key as a bearer token works
    assert c.get("/datasets", headers={"Authorization": f"Bearer {k['a']}"}).status_code == 200
    # a JSON analysis request without a key is 401, not run
    r = c.post("/analyses/clusters", json={"firms": "firms_a"})
    assert r.status_code == 401


# -- API5: function level authorisation --------------------------------------------------
def test_roles(world):
    c, k = world["client"], world["keys"]
    assert _upload(c, k["viewer"], _firms_csv(2), name="v").status_code == 403
    r = c.post(
        "/analyses/clusters",
        json={"firms": "firms_a", "eps_m": 1500, "min_samples": 10},
        headers=_h(k["viewer"]),
    )
    assert r.status_code == 403
    assert c.get("/audit", headers=_h(k["a"])).status_code == 403
    assert c.get("/audit").status_code == 401
    r = c.get("/audit", headers=_h(k["admin"]))
    assert r.status_code == 200
    actions = {(e["action"], e["principal"]) for e in r.json()["entries"]}
    key_a = "key:" + k["a"].split("_")[1]
    assert ("dataset.upload", key_a) in actions
    assert ("analysis.run", key_a) in actions
    assert ("key.create", "cli") in actions and ("key.revoke", "cli") in actions


# -- API1: broken object level authorisation ---------------------------------------------
def test_bola_datasets_and_runs(world):
    c, k, run = world["client"], world["keys"], world["run"]
    routes = [
        "/datasets/firms_a",
        "/datasets/firms_a@1",
        "/collections/firms_a",
        "/collections/firms_a/items",
        "/collections/firms_a/items?f=csv",
        "/collections/firms_a/items/F00001",
        "/collections/firms_a/tiles/WebMercatorQuad/tilejson.json",
        "/collections/firms_a/tiles/WebMercatorQuad/0/0/0",
        f"/runs/{run}",
        f"/collections/{run}",
        f"/collections/{run}/items",
        f"/collections/{run}/tiles/WebMercatorQuad/0/0/0",
    ]
    for who in ("b", "viewer", None):
        headers = _h(k[who]) if who else {}
        for route in routes:
            r = c.get(route, headers=headers)
            assert r.status_code == 404, (who, route, r.status_code)
            # indistinguishable from an id that does not exist
            assert "permission" not in r.text and "private" not in r.text
        # writes: the same answer as for an id that does not exist (role first, then 404)
        for method, kw in (("DELETE", {}), ("PATCH", {"json": {"visibility": "public"}})):
            hidden = c.request(method, "/datasets/firms_a", headers=headers, **kw)
            missing = c.request(method, "/datasets/nope", headers=headers, **kw)
            assert hidden.status_code == missing.status_code != 204, (who, method)
            assert hidden.status_code in (401, 403, 404)
        listed = c.get("/datasets", headers=headers).json()["datasets"]
        assert [d["id"] for d in listed] == ["regions"]
        colls = [x["id"] for x in c.get("/collections", headers=headers).json()["collections"]]
        assert colls == ["regions"]
        assert run not in [x["id"] for x in c.get("/runs", headers=headers).json()["runs"]]
    unknown = c.get("/datasets/nope", headers=_h(k["b"]))
    assert unknown.status_code == 404
    # the owner and the admin see them
    for who in ("a", "admin"):
        for route in routes:
            assert c.get(route, headers=_h(k[who])).status_code in (200, 204), (who, route)
    # B may not add a version to A's private dataset under its name
    assert _upload(c, k["b"], _firms_csv(3), name="firms_a").status_code == 409
    assert Workspace(c.app.state.settings.workspace).dataset("firms_a").version == 1


# -- API3: mass assignment -----------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"visibility": "public", "owner": "key:deadbeef"},
        {"visibility": "public", "kind": "boundaries"},
        {"visibility": "secret"},
        {},
    ],
)
def test_patch_forbids_extra_fields(world, body):
    r = world["client"].patch("/datasets/regions", json=body, headers=_h(world["keys"]["admin"]))
    assert r.status_code == 422, r.text


def test_visibility_patch_rules(world):
    c, k = world["client"], world["keys"]
    # an editor may not change someone else's public dataset
    r = c.patch("/datasets/regions", json={"visibility": "private"}, headers=_h(k["b"]))
    assert r.status_code == 403
    r = c.patch("/datasets/regions", json={"visibility": "private"}, headers=_h(k["viewer"]))
    assert r.status_code == 403
    assert c.delete("/datasets/regions", headers=_h(k["viewer"])).status_code == 403
    assert c.delete("/datasets/regions", headers=_h(k["b"])).status_code == 403


# -- microdata: anonymous and viewers ----------------------------------------------------
def _decode_tile(body: bytes) -> list[dict]:
    if not body:
        return []
    return mapbox_vector_tile.decode(body)["default"]["features"]


def test_no_microdata_for_anonymous_or_viewer_even_when_public(world):
    c, k = world["client"], world["keys"]
    r = c.patch("/datasets/firms_a", json={"visibility": "public"}, headers=_h(k["a"]))
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    firms = synthetic_firms(n_per_centre=120, n_background=60, seed=0)
    firm_xy = set(zip(firms.geometry.x.round(9), firms.geometry.y.round(9), strict=True))
    names = set(firms["name"]) | set(firms["firm_id"])
    try:
        for headers in ({}, _h(k["viewer"])):
            listed = [d["id"] for d in c.get("/datasets", headers=headers).json()["datasets"]]
            assert "firms_a" in listed
            for route in (
                "/collections/firms_a/items",
                "/collections/firms_a/items?f=csv",
                "/collections/firms_a/items?f=parquet",
                "/collections/firms_a/items/F00001",
                f"/collections/{world['run']}/items",  # per-firm cluster labels
                f"/collections/{world['run']}/items?f=csv",
            ):
                r = c.get(route, headers=headers)
                assert r.status_code == 403, (route, r.status_code)
                assert not any(n in r.text for n in ("Firm 1", "F0000"))
            # tiles at every zoom up to z14 around the dense centre: counts in grid cells
            lon, lat, _ = CENTRES[0]
            for z in (6, 10, 14):
                t = WMQ.tile(lon, lat, z)
                r = c.get(
                    f"/collections/firms_a/tiles/WebMercatorQuad/{z}/{t.x}/{t.y}", headers=headers
                )
                assert r.status_code == 200
                features = _decode_tile(r.content)
                assert features, z  # the map still shows where firms are
                for f in features:
                    props = f["properties"]
                    assert set(props) <= {"count", "employees", "aggregated"}
                    assert props["count"] >= 3
                    assert not names & {str(v) for v in props.values()}
                    # a cell centre of the public grid (at most zoom 16: 2^(16-z) cells)
                    step = 4096 // min(32, 1 << max(0, 16 - z))
                    x, y = f["geometry"]["coordinates"]
                    assert x % step == step // 2 and y % step == step // 2
                # and no exact firm location: decoded positions are cell centres, far
                # coarser than the points
                b = WMQ.bounds(t)
                for f in features:
                    x, y = f["geometry"]["coordinates"]
                    px = b.left + (b.right - b.left) * x / 4096
                    assert round(px, 9) not in {p[0] for p in firm_xy}
            # the run's layers (cluster outlines, per-firm labels) in tiles: no firm
            run = c.get(f"/runs/{world['run']}", headers=headers).json()
            for coll in run["collections"]:
                t = WMQ.tile(CENTRES[0][0], CENTRES[0][1], 10)
                url = f"/collections/{coll}/tiles/WebMercatorQuad/10/{t.x}/{t.y}"
                r = c.get(url, headers=headers)
                assert r.status_code == 200, (coll, r.text)
                for f in _decode_tile(r.content):
                    props = f["properties"]
                    assert "firm_id" not in props and "name" not in props
                    for col in ("n_firms", "count"):
                        if col in props:
                            assert props[col] >= 3
        # the editor who owns it still sees individual firms at z14
        t = WMQ.tile(CENTRES[0][0], CENTRES[0][1], 14)
        r = c.get(f"/collections/firms_a/tiles/WebMercatorQuad/14/{t.x}/{t.y}", headers=_h(k["a"]))
        props = [f["properties"] for f in _decode_tile(r.content)]
        assert any("firm_id" in p for p in props)
        assert "private" in r.headers["cache-control"]
        r = c.get("/collections/firms_a/items?limit=2", headers=_h(k["a"]))
        assert r.status_code == 200 and len(r.json()["features"]) == 2
    finally:
        c.patch("/datasets/firms_a", json={"visibility": "private"}, headers=_h(k["a"]))


def test_anonymous_cross_site_form_post_refused(world):
    c = world["client"]
    r = c.post(
        "/datasets",
        data={"kind": "firms"},
        files={"file": ("f.csv", b"a,b\n1,2\n", "text/csv")},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 401
    r = c.delete("/datasets/regions", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 401
    assert "regions" in [d["id"] for d in c.get("/datasets").json()["datasets"]]


# -- API4, API8: limits, CORS, hosts, docs -----------------------------------------------
def _app(tmp_path, **security):
    settings = Settings(workspace=tmp_path / "ws", security=SecuritySettings(**security))
    return create_app(settings)


def test_json_body_cap(tmp_path):
    with TestClient(_app(tmp_path, max_json_mb=0.01), raise_server_exceptions=False) as c:
        values = list(np.arange(5000, dtype=float))
        r = c.post("/analyses/inequality", json={"values": values})
        assert r.status_code == 413
        assert "GEOCLUSTER_MAX_JSON_MB" in r.json()["detail"]

        def chunks():  # no Content-Length: counted while streaming
            yield b'{"values": ['
            for _ in range(2000):
                yield b"1.0, 2.0, 3.0, "
            yield b"1.0]}"

        r = c.post(
            "/analyses/inequality", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        r = c.post("/analyses/inequality", json={"values": [1.0, 2.0, 3.0, 4.0]})
        assert r.status_code == 200, r.text


def test_rate_limit_per_key(tmp_path):
    app = _app(tmp_path, rate_limit_per_minute=60, rate_limit_burst=3)
    ws = Workspace(tmp_path / "ws")
    _, key1 = create_key(ws.catalog, "viewer")
    _, key2 = create_key(ws.catalog, "viewer")
    with TestClient(app, raise_server_exceptions=False) as c:
        codes = [c.get("/datasets", headers=_h(key1)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/datasets", headers=_h(key1))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert c.get("/datasets", headers=_h(key2)).status_code == 200  # its own bucket
        assert [c.get("/datasets").status_code for _ in range(4)][-1] == 429  # by client IP
        # wrong keys spend the client's bucket too (no unlimited guessing)
        with TestClient(app, raise_server_exceptions=False, client=("10.0.0.9", 5000)) as other:
            bad = [other.get("/datasets", headers=_h("gk_00000000_" + "x" * 43)) for _ in range(4)]
            assert [r.status_code for r in bad] == [401, 401, 401, 429]
        time.sleep(1.1)  # one token a second at 60/min
        assert c.get("/datasets", headers=_h(key1)).status_code == 200


def test_cors_from_settings(tmp_path):
    settings = Settings(workspace=tmp_path / "ws", cors_origins=["https://ok.example"])
    with TestClient(create_app(settings)) as c:
        r = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        r = c.options(
            "/datasets",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/health", headers={"Origin": "https://ok.example"})
        assert r.headers["access-control-allow-origin"] == "https://ok.example"
    with TestClient(create_app(Settings(workspace=tmp_path / "ws2"))) as c:  # default: none
        r = c.get("/health", headers={"Origin": "https://ok.example"})
        assert "access-control-allow-origin" not in r.headers


def test_host_header_checked(tmp_path):
    with TestClient(_app(tmp_path)) as c:
        assert c.get("/health", headers={"Host": "evil.example"}).status_code == 400
        assert c.get("/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert c.get("/health", headers={"Host": "localhost"}).status_code == 200
    with TestClient(_app(tmp_path, trusted_hosts=["geo.example.org"])) as c:
        assert c.get("/health").status_code == 400  # testserver no longer trusted
        assert c.get("/health", headers={"Host": "geo.example.org"}).status_code == 200


def test_docs_switch(tmp_path):
    with TestClient(_app(tmp_path, docs_enabled=False)) as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/openapi.json").status_code == 404
    with TestClient(_app(tmp_path)) as c:
        assert c.get("/docs").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_open_mode_accepts_same_origin_forms_only(tmp_path):
    csv = b"firm_id,name,lon,lat,isic,employees\na1,Alpha,-103.35,20.67,15,4\n"
    with TestClient(_app(tmp_path), raise_server_exceptions=False) as c:
        assert c.get("/health").json()["auth"] == "open"
        files = {"file": ("f.csv", csv, "text/csv")}
        for headers in (
            {"Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},
        ):
            r = c.post("/datasets", data={"kind": "firms"}, files=files, headers=headers)
            assert r.status_code == 403, headers
        assert c.get("/datasets").json()["datasets"] == []
        # the map's own page (same origin), and scripts without Origin (curl, make demo)
        r = c.post(
            "/datasets",
            data={"kind": "firms"},
            files=files,
            headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 201, r.text
        assert c.post("/datasets", data={"kind": "firms"}, files=files).status_code == 201
        # open mode sees everything, including private firms
        assert c.get("/collections/f/items").status_code == 200


def test_key_created_while_running_closes_open_mode(tmp_path):
    with TestClient(_app(tmp_path), raise_server_exceptions=False) as c:
        assert c.get("/health").json()["auth"] == "open"
        _, key = create_key(Workspace(tmp_path / "ws").catalog, "admin")
        assert c.get("/health").json()["auth"] == "keys"
        assert c.post("/analyses/inequality", json={"values": [1, 2, 3]}).status_code == 401
        r = c.post("/analyses/inequality", json={"values": [1, 2, 3]}, headers=_h(key))
        assert r.status_code == 200


# -- OIDC ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oidc_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_oidc_tokens(tmp_path, oidc_key):
    import jwt

    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(oidc_key.public_key()))
    jwk["kid"] = "k1"
    settings = Settings(
        workspace=tmp_path / "ws",
        security=SecuritySettings(oidc_issuer="https://idp.test", oidc_audience="geocluster"),
    )
    create_key(Workspace(tmp_path / "ws").catalog, "admin")  # keys mode
    app = create_app(settings)
    app.state.jwks = {"keys": [jwk]}  # offline: the JWKS document given, not fetched

    def token(**claims):
        now = int(time.time())
        body = {"iss": "https://idp.test", "aud": "geocluster", "sub": "ana", "exp": now + 60}
        body.update(claims)
        return jwt.encode(body, oidc_key, algorithm="RS256", headers={"kid": "k1"})

    csv = b"firm_id,name,lon,lat,isic,employees\na1,Alpha,-103.35,20.67,15,4\n"
    with TestClient(app, raise_server_exceptions=False) as c:

        def up(tok):
            return c.post(
                "/datasets",
                data={"kind": "firms", "name": "oidc_firms"},
                files={"file": ("f.csv", csv, "text/csv")},
                headers={"Authorization": f"Bearer {tok}"},
            )

        assert up(token(role="viewer")).status_code == 403
        assert up(token(role="editor", exp=int(time.time()) - 120)).status_code == 401
        assert up(token(role="editor", aud="someone-else")).status_code == 401
        assert up(token(role="editor", iss="https://evil.test")).status_code == 401
        assert up(token(role="editor")).status_code == 201
        ws = Workspace(tmp_path / "ws")
        assert ws.dataset("oidc_firms").owner == "oidc:ana"
        r = c.get(
            "/datasets/oidc_firms", headers={"Authorization": f"Bearer {token(role='editor')}"}
        )
        assert r.status_code == 200
        r = c.get(
            "/datasets/oidc_firms",
            headers={"Authorization": f"Bearer {token(role='editor', sub='bob')}"},
        )
        assert r.status_code == 404


def test_bola_on_inputs_rasters_and_jobs(world):
    """Routes that take inputs by name: a hidden name is a 404, and so is what it made."""
    c, k = world["client"], world["keys"]
    body = {"firms": "firms_a", "method": "dbscan", "eps_m": 1500, "min_samples": 10}
    r = c.post("/analyses/clusters", json=body, headers=_h(k["b"]))
    assert r.status_code == 404 and "firms_a" in r.json()["detail"]
    r = c.post("/analyses/kde", json={"firms": "firms_a", "grid_size": 64}, headers=_h(k["b"]))
    assert r.status_code == 404
    r = c.get("/regions/R00/profile?boundaries=regions&firms=firms_a", headers=_h(k["viewer"]))
    assert r.status_code == 404
    # the owner's KDE surface of her private firms is hers alone
    r = c.post("/analyses/kde", json={"firms": "firms_a", "grid_size": 64}, headers=_h(k["a"]))
    assert r.status_code == 200, r.text
    raster = r.json()["raster_id"]
    for who in ("b", "viewer", None):
        headers = _h(k[who]) if who else {}
        ids = [x["id"] for x in c.get("/rasters", headers=headers).json()["rasters"]]
        assert raster not in ids
        for route in (
            f"/rasters/{raster}",
            f"/rasters/{raster}/tilejson.json",
            f"/rasters/{raster}/tiles/WebMercatorQuad/0/0/0.png",
        ):
            assert c.get(route, headers=headers).status_code == 404, (who, route)
    assert c.get(f"/rasters/{raster}", headers=_h(k["a"])).status_code == 200
    assert c.get(f"/rasters/{raster}", headers=_h(k["admin"])).status_code == 200
    # a background job is its starter's
    r = c.post(
        "/analyses/kde",
        json={**{"firms": "firms_a", "grid_size": 32}, "async": True},
        headers=_h(k["a"]),
    )
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    assert c.get(f"/jobs/{job}", headers=_h(k["b"])).status_code == 404
    assert c.get(f"/jobs/{job}").status_code == 404
    assert c.get(f"/jobs/{job}", headers=_h(k["a"])).status_code == 200


def test_rejection_report_capped_in_response(tmp_path):
    from api.settings import UploadSettings

    settings = Settings(workspace=tmp_path / "ws", upload=UploadSettings(rejected_in_response=5))
    lines = ["firm_id,name,lon,lat,isic,employees", "ok1,Good,-103.35,20.67,15,4"]
    lines += [f"b{i},Bad,-103.35,,15,4" for i in range(250)]  # latitude missing
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.post(
            "/datasets",
            data={"kind": "firms", "name": "many_bad"},
            files={"file": ("bad.csv", "\n".join(lines).encode(), "text/csv")},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["rows"] == 1 and body["rejected_count"] == 250
        assert len(body["rejected"]) == 5 and body["rejected_truncated"] is True
        assert body["rejected_href"] == "/datasets/many_bad@1/rejected"
        assert len(c.get("/datasets/many_bad").json()["rejected"]) == 5
        full = c.get(body["rejected_href"]).json()
        assert full["rejected_count"] == 250 and len(full["rejected"]) == 250
        assert {x["row"] for x in full["rejected"]} == set(range(2, 252))  # 1-based data rows
        csv = c.get(body["rejected_href"] + "?f=csv").text.strip().splitlines()
        assert csv[0] == "row,column,reason" and len(csv) == 251
        page = c.get(body["rejected_href"] + "?limit=10&offset=245").json()
        assert page["numberReturned"] == 5
