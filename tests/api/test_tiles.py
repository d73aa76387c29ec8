"""Vector (MVT) and raster (PNG) tiles: decoded and their content checked."""

from __future__ import annotations

import mapbox_vector_tile
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import DisclosureSettings, Settings, TileSettings
from api.tiling import lonlat_to_unit, tile_bounds_lonlat

MVT = "application/vnd.mapbox-vector-tile"


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    u, v = lonlat_to_unit(np.array([lon]), np.array([lat]))
    return int(u[0] * (1 << z)), int(v[0] * (1 << z))


def _in_tile(frame, z, x, y):
    """Brute-force membership, with the same half-open edges as the tile index."""
    u, v = lonlat_to_unit(frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
    n = 1 << z
    return (np.floor(u * n) == x) & (np.floor(v * n) == y)


def _decode(content: bytes) -> list[dict]:
    """Features of the ``default`` layer, tile coordinates with y down (as encoded)."""
    if not content:
        return []
    decoded = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return decoded["default"]["features"]


def _inner(feats: list[dict], extent: int = 4096) -> list[dict]:
    """Point features inside the tile proper (the rest is the buffer)."""
    out = []
    for f in feats:
        px, py = f["geometry"]["coordinates"]
        if 0 <= px < extent and 0 <= py < extent:
            out.append(f)
    return out


@pytest.mark.parametrize("z", [0, 4, 6, 8, 10])
def test_low_zoom_cells_count_every_firm_in_the_tile(demo_client, demo, z):
    firms = demo["ws"].read("firms")
    x, y = _tile_of(-103.35, 20.67, z)
    r = demo_client.get(f"/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    feats = _decode(r.content)
    assert feats and all(f["properties"]["aggregated"] for f in feats)
    feats = _inner(feats)
    inside = _in_tile(firms, z, x, y)
    assert sum(f["properties"]["count"] for f in feats) == int(inside.sum())
    assert sum(f["properties"]["employees"] for f in feats) == pytest.approx(
        firms["employees"][inside].sum(), rel=1e-6, abs=len(feats) * 0.05
    )
    assert len(feats) <= 32 * 32  # one feature per grid cell at most


def test_grid_cell_positions_hold_their_firms(demo_client, demo):
    """Each cell's point lies in the cell that holds the counted firms, buffer included."""
    firms = demo["ws"].read("firms")
    z = 9
    x, y = _tile_of(-103.35, 20.67, z)
    feats = _decode(
        demo_client.get(f"/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}").content
    )
    u, v = lonlat_to_unit(firms.geometry.x.to_numpy(), firms.geometry.y.to_numpy())
    tx = (u * (1 << z) - x) * 4096
    ty = (v * (1 << z) - y) * 4096
    cell = 4096 // 32
    ring = 3  # cells of buffer: ceil(384 / 128)
    lo, hi = -ring * cell, 4096 + ring * cell
    inside = (tx >= lo) & (tx < hi) & (ty >= lo) & (ty < hi)
    expected: dict[tuple[int, int], int] = {}
    for cx, cy in zip(
        np.floor(tx[inside] / cell).astype(int), np.floor(ty[inside] / cell).astype(int)
    ):
        expected[(cx, cy)] = expected.get((cx, cy), 0) + 1
    got = {}
    for f in feats:
        px, py = f["geometry"]["coordinates"]
        got[(int(px // cell), int(py // cell))] = f["properties"]["count"]
    assert got == expected
    assert any(not (0 <= cx < 32 and 0 <= cy < 32) for cx, cy in got)  # the buffer is there


def test_high_zoom_individual_firms(demo_client, demo):
    firms = demo["ws"].read("firms")
    z = 14
    x, y = _tile_of(-103.35, 20.67, z)
    r = demo_client.get(f"/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}")
    all_feats = _decode(r.content)
    feats = _inner(all_feats)
    inside = firms[_in_tile(firms, z, x, y)]
    assert len(inside) > 0
    assert len(feats) == len(inside)
    assert {f["properties"]["firm_id"] for f in feats} == set(inside["firm_id"])
    assert not any(f["properties"].get("aggregated") for f in feats)
    # positions: decoded tile coordinates map back to the firm's lon/lat within a pixel
    w, s, e, n = tile_bounds_lonlat(z, x, y)
    by_id = inside.set_index("firm_id")
    for f in feats[:20]:
        px, py = f["geometry"]["coordinates"]
        lon = w + (px + 0.5) / 4096 * (e - w)
        assert lon == pytest.approx(
            by_id.loc[f["properties"]["firm_id"]].geometry.x, abs=(e - w) / 4096
        )
        assert (
            f["properties"]["sector_code"] == by_id.loc[f["properties"]["firm_id"]]["sector_code"]
        )
    # the buffer holds exactly the neighbours' firms within 64 tile units of the edge
    u, v = lonlat_to_unit(firms.geometry.x.to_numpy(), firms.geometry.y.to_numpy())
    tx = (u * (1 << z) - x) * 4096
    ty = (v * (1 << z) - y) * 4096
    near = (tx >= -64) & (tx < 4096 + 64) & (ty >= -64) & (ty < 4096 + 64)
    assert {f["properties"]["firm_id"] for f in all_feats} == set(firms["firm_id"][near])


def test_feature_cap_switches_to_aggregation(demo):
    settings = Settings(
        workspace=demo["ws"].path, tiles=TileSettings(tile_max_features=5, points_min_zoom=10)
    )
    z = 12
    firms = demo["ws"].read("firms")
    x, y = _tile_of(-103.35, 20.67, z)
    assert _in_tile(firms, z, x, y).sum() > 5
    with TestClient(create_app(settings)) as c:
        feats = _decode(c.get(f"/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}").content)
    assert all(f["properties"]["aggregated"] for f in feats)
    assert sum(f["properties"]["count"] for f in _inner(feats)) == _in_tile(firms, z, x, y).sum()


def test_no_firm_points_when_the_policy_withholds_them(demo):
    settings = Settings(
        workspace=demo["ws"].path, disclosure=DisclosureSettings(public_firm_points=False)
    )
    z = 16
    x, y = _tile_of(-103.35, 20.67, z)
    with TestClient(create_app(settings)) as c:
        feats = _decode(c.get(f"/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}").content)
    assert feats and all(f["properties"]["aggregated"] for f in feats)
    assert not any("firm_id" in f["properties"] for f in feats)


def test_small_cells_suppressed_under_an_enforced_policy(demo):
    settings = Settings(
        workspace=demo["ws"].path, disclosure=DisclosureSettings(enforce=True, min_contributors=3)
    )
    z = 8
    x, y = _tile_of(-103.35, 20.67, z)
    with TestClient(create_app(settings)) as c:
        feats = _decode(c.get(f"/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}").content)
    assert feats and min(f["properties"]["count"] for f in feats) >= 3


def test_polygon_tiles_for_regions_and_clusters(demo_client, demo):
    z = 6
    x, y = _tile_of(-102.5, 21.0, z)
    feats = _decode(
        demo_client.get(f"/collections/regions/tiles/WebMercatorQuad/{z}/{x}/{y}").content
    )
    assert {f["properties"]["region_id"] for f in feats} == {
        f"R{i}{j}" for i in range(3) for j in range(2)
    }
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in feats)
    # a tile far away is empty
    x2, y2 = _tile_of(100.0, -30.0, z)
    r = demo_client.get(f"/collections/regions/tiles/WebMercatorQuad/{z}/{x2}/{y2}")
    assert r.status_code == 200 and _decode(r.content) == []
    run = demo["ws"].run(demo["clusters_run"])
    hull_cid = next(c for c in run.collection_ids() if c != run.id)
    feats = _decode(
        demo_client.get(f"/collections/{hull_cid}/tiles/WebMercatorQuad/{z}/{x}/{y}").content
    )
    assert feats and all("cluster_id" in f["properties"] for f in feats)


def test_polygons_are_clipped_to_the_tile_plus_buffer(demo_client):
    z = 10
    x, y = _tile_of(-103.0, 20.0, z)
    feats = _decode(
        demo_client.get(f"/collections/regions/tiles/WebMercatorQuad/{z}/{x}/{y}").content
    )
    assert feats
    for f in feats:
        coords = np.array([pt for ring in _rings(f["geometry"]) for pt in ring], dtype=float)
        assert coords.min() >= -64 - 1 and coords.max() <= 4096 + 64 + 1


def _rings(geom):
    if geom["type"] == "Polygon":
        return geom["coordinates"]
    return [ring for poly in geom["coordinates"] for ring in poly]


def test_tilejson(demo_client):
    tj = demo_client.get("/collections/firms/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"][0].endswith("/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert tj["vector_layers"][0]["id"] == "default"
    assert -105 < tj["bounds"][0] < tj["bounds"][2] < -100
    r = demo_client.get("/collections/indicators/tiles/WebMercatorQuad/tilejson.json")
    assert r.status_code == 422


@pytest.mark.parametrize("path", ["3/8/0", "3/0/8", "23/0/0"])
def test_tile_outside_the_matrix_is_404(demo_client, path):
    r = demo_client.get(f"/collections/firms/tiles/WebMercatorQuad/{path}")
    assert r.status_code == 404 and "detail" in r.json()


def test_unknown_collection_tile_is_404(demo_client):
    assert demo_client.get("/collections/nope/tiles/WebMercatorQuad/0/0/0").status_code == 404
    assert demo_client.get("/collections/firms/tiles/WebMercatorQuad/a/0/0").status_code == 422


def test_etag_and_304(demo_client):
    url = "/collections/firms/tiles/WebMercatorQuad/5/6/14"
    r = demo_client.get(url)
    etag = r.headers["etag"]
    assert "max-age" in r.headers["cache-control"]
    r2 = demo_client.get(url, headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""
    assert demo_client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert (
        demo_client.get("/collections/firms/tiles/WebMercatorQuad/5/6/13").headers["etag"] != etag
    )


def test_etag_changes_with_a_new_dataset_version(tmp_path):
    from geocluster.workspace import Workspace
    from tests.api.fixtures import synthetic_firms

    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=10, n_background=5), name="firms")
    with TestClient(create_app(Settings(workspace=ws.path))) as c:
        url = "/collections/firms/tiles/WebMercatorQuad/0/0/0"
        first = c.get(url)
        ws.add_dataset("firms", synthetic_firms(n_per_centre=20, n_background=5), name="firms")
        second = c.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert second.status_code == 200
        assert sum(f["properties"]["count"] for f in _decode(second.content)) == 45


def test_geometry_collections_are_tiled_as_their_polygons(tmp_path):
    import geopandas as gpd
    import shapely

    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    mixed = shapely.GeometryCollection(
        [
            shapely.box(-103.5, 20.5, -103.0, 21.0),
            shapely.LineString([(-103.5, 20.5), (-102.0, 22.0)]),
        ]
    )
    layer = gpd.GeoDataFrame({"zone_id": ["z1"], "score": [1.5]}, geometry=[mixed], crs="EPSG:4326")
    run = ws.save_run("zones", params={}, inputs=[], layers={"zones": layer}, summary={})
    with TestClient(create_app(Settings(workspace=ws.path))) as c:
        x, y = _tile_of(-103.25, 20.75, 8)
        r = c.get(f"/collections/{run.id}/tiles/WebMercatorQuad/8/{x}/{y}")
        assert r.status_code == 200, r.text
        feats = _decode(r.content)
    assert len(feats) == 1 and feats[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert feats[0]["properties"] == {"zone_id": "z1", "score": 1.5}


def test_indexes_warm_in_the_background(demo):
    import time

    settings = Settings(workspace=demo["ws"].path, tiles=TileSettings(tile_warm_on_start=True))
    app = create_app(settings)
    with TestClient(app):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not app.state.index_cache._entries:
            time.sleep(0.05)
        assert "firms" in app.state.index_cache._entries
