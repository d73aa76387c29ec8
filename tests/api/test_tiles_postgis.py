"""Vector tiles cut by PostGIS (``ST_AsMVT``) equal the embedded path's, per audience.

One demo-like workspace is built embedded and copied into a real, throw-away
PostgreSQL + PostGIS (:mod:`tests.pgserver`; ``copy_workspace``). The same tile is asked
of an app on each, for editors (open) and for viewers (disclosure-safe), and both are
decoded with ``mapbox_vector_tile`` (an independent decoder): same layer names, same
field names, same features and values; point coordinates equal to the unit, polygons
equal up to the tile grid. The reference is the embedded path (:mod:`api.tiling`),
which tests/api/test_tiles.py checks against brute-force counts of the firms.
"""

from __future__ import annotations

import uuid
from collections import Counter

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import DisclosureSettings, SecuritySettings, Settings, TileSettings
from api.tiling import lonlat_to_unit
from geocluster.auth import create_key
from geocluster.store.migrate_pg import copy_workspace
from geocluster.workspace import Workspace
from tests.api.fixtures import CENTRES, build_demo_like_workspace
from tests.pgserver import pg_cluster, postgres_url  # noqa: F401 - session fixtures

TILE = "/collections/{}/tiles/WebMercatorQuad/{}/{}/{}"


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    u, v = lonlat_to_unit(np.array([lon]), np.array([lat]))
    return int(u[0] * (1 << z)), int(v[0] * (1 << z))


def _settings(ws_dir, store=None, mode="always") -> Settings:
    return Settings(
        workspace=ws_dir,
        store=store,
        tiles=TileSettings(tile_postgis=mode, tile_debug_headers=True),
        security=SecuritySettings(rate_limit_per_minute=100_000, rate_limit_burst=100_000),
        # a threshold of 10 firms and rounding to 5, so that cells get dropped and rounded
        disclosure=DisclosureSettings(min_contributors=10, round_to=5),
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory, postgres_url):  # noqa: F811 - the imported fixture
    """Clients on the embedded workspace and on its PostGIS copy, with viewer/admin keys."""
    root = tmp_path_factory.mktemp("pgtiles")
    built = build_demo_like_workspace(root / "emb")
    emb = Workspace(root / "emb")
    url = f"{postgres_url}?schema=t_tiles_{uuid.uuid4().hex[:6]}"
    pg = Workspace(root / "pg", store_url=url)
    copy_workspace(emb, pg)
    keys = {}
    for name, ws in (("emb", emb), ("pg", pg)):
        keys[name] = {
            "viewer": {"X-API-Key": create_key(ws.catalog, "viewer", "v")[1]},
            "admin": {"X-API-Key": create_key(ws.catalog, "admin", "a")[1]},
        }
    apps = {
        "emb": create_app(_settings(root / "emb")),
        "pg": create_app(_settings(root / "pg", url)),
        "auto": create_app(_settings(root / "pg", url, mode="auto")),
    }
    with (
        TestClient(apps["emb"], raise_server_exceptions=False) as e,
        TestClient(apps["pg"], raise_server_exceptions=False) as p,
        TestClient(apps["auto"], raise_server_exceptions=False) as a,
    ):
        for c, k in ((e, keys["emb"]), (p, keys["pg"])):  # viewers may see public firms
            r = c.patch("/datasets/firms", json={"visibility": "public"}, headers=k["admin"])
            assert r.status_code == 200, r.text
        yield {"emb": e, "pg": p, "auto": a, "keys": keys, "built": built, "pg_ws": pg}


def _features(content: bytes) -> dict[str, list[dict]]:
    if not content:
        return {}
    decoded = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return {name: layer["features"] for name, layer in decoded.items()}


def _point_key(f: dict) -> tuple:
    x, y = f["geometry"]["coordinates"]
    props = tuple(
        sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in f["properties"].items())
    )
    return (x, y, props)


def _get_both(pair, path: str, audience: str):
    out = []
    for side in ("emb", "pg"):
        headers = pair["keys"][side][audience]
        r = pair[side].get(path, headers=headers)
        assert r.status_code == 200, (side, path, r.text)
        out.append(r)
    return out


def _firm_tiles():
    tiles = []
    for z in (3, 6, 8, 10, 12, 14, 16):
        for lon, lat, _ in CENTRES:
            tiles.append((z, *_tile_of(lon, lat, z)))
        tiles.append((z, *_tile_of(-100.7, 19.7, z)))  # background firms only
    return list(dict.fromkeys(tiles))  # each once: a second request is a cached tile


@pytest.mark.parametrize("audience", ["admin", "viewer"])
def test_firm_tiles_from_postgis_equal_the_embedded_tiles(pair, audience):
    seen = Counter()
    for z, x, y in _firm_tiles():
        emb, pg = _get_both(pair, TILE.format("firms", z, x, y), audience)
        assert pg.headers["X-Tile-Source"] == "postgis"
        assert emb.headers["X-Tile-Source"] in ("encoded", "archive")
        a, b = _features(emb.content), _features(pg.content)
        assert set(a) == set(b)
        if not a:
            assert pg.content == b""
            continue
        assert set(a) == {"default"}
        fa, fb = a["default"], b["default"]
        assert {k for f in fa for k in f["properties"]} == {k for f in fb for k in f["properties"]}
        # every feature, coordinates to the unit and every value, the same
        assert Counter(map(_point_key, fa)) == Counter(map(_point_key, fb)), (z, x, y)
        kind = "cells" if fa[0]["properties"].get("aggregated") else "points"
        seen[kind] += 1
        if audience == "viewer":  # the safe tiles: counts only, under the rule
            for f in fb:
                props = f["properties"]
                assert set(props) == {"count", "aggregated"}  # no employment below editor
                assert props["count"] >= 10 and props["count"] % 5 == 0
    assert seen["cells"] >= 5
    if audience == "admin":
        assert seen["points"] >= 2  # z14 and z16 at the concentrations: individual points
        decoded = _features(
            pair["pg"]
            .get(
                TILE.format("firms", 16, *_tile_of(*CENTRES[0][:2], 16)),
                headers=pair["keys"]["pg"]["admin"],
            )
            .content
        )
        assert "firm_id" in decoded["default"][0]["properties"]
    else:
        assert seen["points"] == 0  # never a firm point for a viewer


@pytest.mark.parametrize("audience", ["admin", "viewer"])
def test_polygon_and_asset_tiles_from_postgis_equal_the_embedded_tiles(pair, audience):
    compared = 0
    for coll, zooms in (("regions", (4, 7, 9, 11)), ("assets", (5, 8, 11))):
        places = ((-103.0, 21.0), (-101.6, 20.2), (-104.3, 19.6))
        tiles = dict.fromkeys((z, *_tile_of(lon, lat, z)) for z in zooms for lon, lat in places)
        for z, x, y in tiles:
            if True:
                emb, pg = _get_both(pair, TILE.format(coll, z, x, y), audience)
                assert pg.headers["X-Tile-Source"] == "postgis"
                a, b = _features(emb.content), _features(pg.content)
                assert set(a) == set(b)
                if not a:
                    continue
                fa, fb = a["default"], b["default"]
                assert len(fa) == len(fb)
                if coll == "assets":
                    assert Counter(map(_point_key, fa)) == Counter(map(_point_key, fb))
                else:
                    by_id = {f["properties"]["region_id"]: f for f in fb}
                    for f in fa:
                        g = by_id[f["properties"]["region_id"]]
                        assert g["properties"] == f["properties"]
                        ga = shapely.geometry.shape(f["geometry"])
                        gb = shapely.geometry.shape(g["geometry"])
                        # same clipped shape up to the tile grid (a few units per side)
                        assert ga.symmetric_difference(gb).area <= 0.01 * ga.area + 4096 * 8
                compared += 1
    assert compared >= 8


def test_cluster_outlines_keep_the_embedded_path_and_labels_do_not(pair):
    """Cluster outlines are rewritten by the policy in Python: never cut by the database.

    The run's primary layer, the firms' cluster labels (points), is: equal both ways.
    """
    run = pair["built"]["clusters_run"]
    nonempty = Counter()
    for z in (8, 10, 13):
        x, y = _tile_of(*CENTRES[0][:2], z)
        for audience in ("admin", "viewer"):
            emb, pg = _get_both(pair, TILE.format(f"{run}.clusters", z, x, y), audience)
            assert pg.headers["X-Tile-Source"] in ("encoded", "archive")
            assert emb.content == pg.content
            emb, pg = _get_both(pair, TILE.format(run, z, x, y), audience)
            assert pg.headers["X-Tile-Source"] == "postgis"
            a, b = _features(emb.content), _features(pg.content)
            assert set(a) == set(b)
            if a:
                nonempty[audience] += 1
                assert Counter(map(_point_key, a["default"])) == Counter(
                    map(_point_key, b["default"])
                )
    assert nonempty["admin"] == 3 and nonempty["viewer"] >= 1, nonempty


def test_postgis_tiles_have_their_etag_and_are_cached(pair):
    c, admin = pair["pg"], pair["keys"]["pg"]["admin"]
    path = TILE.format("regions", 8, *_tile_of(-103.0, 21.0, 8))
    first = c.get(path, headers=admin)
    again = c.get(path, headers=admin)
    assert (
        first.headers["X-Tile-Source"] == "postgis" and again.headers["X-Tile-Source"] == "memory"
    )
    assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
    r = c.get(path, headers={**admin, "If-None-Match": first.headers["ETag"]})
    assert r.status_code == 304 and r.headers["ETag"] == first.headers["ETag"]
    # the embedded path's tile of the same layer and zxy has another ETag (other bytes)
    auto = pair["auto"]  # the same store and keys, GEOCLUSTER_TILE_POSTGIS=auto
    emb = pair["emb"].get(path, headers=pair["keys"]["emb"]["admin"])
    assert emb.headers["ETag"] != first.headers["ETag"]
    assert (
        auto.get(path, headers=admin).headers["ETag"] == first.headers["ETag"]
    )  # auto: polygons from the DB
    # the microdata of an editor is private to caches on both paths
    firms = TILE.format("firms", 14, *_tile_of(*CENTRES[0][:2], 14))
    assert c.get(firms, headers=admin).headers["Cache-Control"].startswith("private")


def test_auto_mode_serves_points_from_memory_and_polygons_from_the_database(pair):
    a, admin = pair["auto"], pair["keys"]["pg"]["admin"]
    firms = a.get(TILE.format("firms", 10, *_tile_of(*CENTRES[0][:2], 10)), headers=admin)
    regions = a.get(TILE.format("regions", 8, *_tile_of(-103.0, 21.0, 8)), headers=admin)
    assert firms.status_code == regions.status_code == 200
    assert firms.headers["X-Tile-Source"] == "encoded"
    assert regions.headers["X-Tile-Source"] in ("postgis", "memory")


def test_a_layer_dropped_under_a_tile_is_not_found_and_the_connection_survives(pair):
    from api import pgtiles
    from api.routers.tiles import LAYER_NAME
    from api.tiling import TileOptions
    from geocluster.disclosure import DisclosurePolicy
    from geocluster.errors import NotFound
    from tests.api.fixtures import synthetic_regions

    ws = pair["pg_ws"]
    ws.add_dataset("boundaries", synthetic_regions(), name="scratch")
    coll = ws.collection("scratch")
    policy = DisclosurePolicy()
    found = pgtiles.PlanCache().get(ws, coll, policy, "open")
    assert found is not None and not found.points and found.kind == "boundaries"
    z, (x, y) = 7, _tile_of(-103.0, 21.0, 7)
    assert pgtiles.render(ws, found, z, x, y, TileOptions(), policy, LAYER_NAME)
    ws.store._con().execute(f"DROP TABLE {ws.store._table(coll.layer)}")  # as GC would
    with pytest.raises(NotFound, match="deleted"):
        pgtiles.render(ws, found, z, x, y, TileOptions(), policy, LAYER_NAME)
    regions = pgtiles.PlanCache().get(ws, ws.collection("regions"), policy, "open")
    assert pgtiles.render(ws, regions, z, x, y, TileOptions(), policy, LAYER_NAME)
    ws.delete("scratch")
