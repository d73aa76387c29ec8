"""Tile caching: ETag per layer + audience + tiling, 304, immutable versions, the LRU cap."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers import tiles as tiles_router
from api.routers.tiles import _BytesLRU
from api.settings import Settings, TileSettings
from api.tiling import lonlat_to_unit
from tests.api.fixtures import synthetic_firms, synthetic_regions

YEAR_S = 31_536_000  # one year: RFC 9111 practice for immutable responses


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    u, v = lonlat_to_unit(np.array([lon]), np.array([lat]))
    return int(u[0] * (1 << z)), int(v[0] * (1 << z))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("cache") / "ws")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=50, n_background=20), name="firms")
    ws.save_run("zones", params={}, inputs=[], layers={"zones": synthetic_regions()}, summary={})
    return ws


def _client(ws, **tiles) -> TestClient:
    settings = Settings(workspace=ws.path, tiles=TileSettings(tile_debug_headers=True, **tiles))
    return TestClient(create_app(settings))


def _url(cid: str, z: int = 8) -> str:
    x, y = _tile_of(-103.35, 20.67, z)
    return f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{x}/{y}"


def test_fixed_versions_are_immutable_and_names_revalidate(ws):
    run_id = ws.runs()[0].id
    with _client(ws) as c:
        fixed = c.get(_url("firms@1"))
        named = c.get(_url("firms"))
        run = c.get(_url(run_id))
    assert fixed.status_code == named.status_code == run.status_code == 200
    assert fixed.headers["cache-control"] == f"public, max-age={YEAR_S}, immutable"
    assert run.headers["cache-control"] == f"public, max-age={YEAR_S}, immutable"
    assert named.headers["cache-control"] == "public, max-age=60"
    # same immutable layer, same audience and tiling: one ETag whichever id names it
    assert fixed.headers["etag"] == named.headers["etag"]
    assert fixed.content == named.content and fixed.content


def test_304_on_if_none_match(ws):
    with _client(ws) as c:
        first = c.get(_url("firms@1"))
        etag = first.headers["etag"]
        again = c.get(_url("firms@1"), headers={"If-None-Match": etag})
        listed = c.get(_url("firms@1"), headers={"If-None-Match": f'"zzz", {etag}'})
        star = c.get(_url("firms@1"), headers={"If-None-Match": "*"})
        other = c.get(_url("firms@1"), headers={"If-None-Match": '"zzz"'})
    assert again.status_code == listed.status_code == star.status_code == 304
    assert again.content == b""
    # a 304 repeats the caching headers (RFC 9110 15.4.5)
    assert again.headers["etag"] == etag
    assert "immutable" in again.headers["cache-control"]
    assert other.status_code == 200 and other.content == first.content


def test_etag_depends_on_audience_and_tiling(ws, monkeypatch):
    with _client(ws) as c:
        open_tag = c.get(_url("firms@1")).headers["etag"]
    with _client(ws, points_min_zoom=5) as c:
        assert c.get(_url("firms@1")).headers["etag"] != open_tag
    monkeypatch.setattr(tiles_router, "tile_audience", lambda request, principal=None: "analyst")
    with _client(ws) as c:
        analyst = c.get(_url("firms@1"))
    assert analyst.headers["etag"] != open_tag
    assert analyst.headers["x-tile-source"] == "encoded"  # not another audience's cache


def test_new_version_moves_the_name_not_the_fixed_id(tmp_path):
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=10, n_background=5), name="firms")
    with _client(ws) as c:
        v1_named = c.get(_url("firms", 0)).headers["etag"]
        v1_fixed = c.get(_url("firms@1", 0)).headers["etag"]
        ws.add_dataset("firms", synthetic_firms(n_per_centre=20, n_background=5), name="firms")
        import time

        time.sleep(2.1)  # the collection resolver's memo expires
        assert c.get(_url("firms", 0)).headers["etag"] != v1_named
        assert c.get(_url("firms@1", 0)).headers["etag"] == v1_fixed
        assert c.get(_url("firms@2", 0)).headers["etag"] != v1_fixed


def test_second_request_comes_from_memory(ws):
    with _client(ws) as c:
        assert c.get(_url("firms@1")).headers["x-tile-source"] == "encoded"
        assert c.get(_url("firms@1")).headers["x-tile-source"] == "memory"


def test_lru_is_bounded_in_bytes_and_keeps_recent_tiles():
    lru = _BytesLRU(max_bytes=100)
    lru.put("a", b"x" * 40)
    lru.put("b", b"x" * 40)
    assert lru.get("a") is not None  # a is now the most recent
    lru.put("c", b"x" * 40)  # 120 > 100: the least recently used (b) goes
    assert lru.get("b") is None
    assert lru.get("a") == b"x" * 40 and lru.get("c") == b"x" * 40
    assert lru._size == 80
    lru.put("big", b"x" * 500)  # larger than the whole cache: kept nowhere
    assert lru._size <= 100


def test_lru_cap_comes_from_settings(ws):
    with _client(ws, tile_cache_mb=0.002) as c:  # 2,097 bytes
        for z in range(4, 12):
            assert c.get(_url("firms@1", z)).status_code == 200
        lru = c.app.state.tile_bytes
        assert lru.max_bytes == int(0.002 * 1024 * 1024)
        assert 0 < lru._size <= lru.max_bytes
        assert len(lru._data) < 8  # some tiles were evicted


def test_tilejson_of_a_fixed_version_points_at_its_immutable_tiles(ws):
    with _client(ws) as c:
        fixed = c.get("/collections/firms@1/tiles/WebMercatorQuad/tilejson.json").json()
        named = c.get("/collections/firms/tiles/WebMercatorQuad/tilejson.json").json()
        tile_url = fixed["tiles"][0].replace("http://testserver", "")
        r = c.get(tile_url.format(z=0, x=0, y=0))
    assert "/collections/firms@1/tiles/" in fixed["tiles"][0]
    assert "/collections/firms/tiles/" in named["tiles"][0]
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
