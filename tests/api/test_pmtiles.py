"""Pre-built PMTiles pyramids: archive tiles equal the dynamic ones, fallback, lock, job."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pmtiles.reader import MmapSource, Reader, all_tiles

from api.app import create_app
from api.pyramid import Archive, archive_path, build_pyramid
from api.routers.tiles import tiling_token
from api.settings import Settings, TileSettings
from api.tiling import lonlat_to_unit
from tests.api.fixtures import synthetic_firms, synthetic_regions

# individual points from z6 on, so the archive holds both kinds of point tiles
TILES = {"points_min_zoom": 6, "tile_debug_headers": True}


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    u, v = lonlat_to_unit(np.array([lon]), np.array([lat]))
    return int(u[0] * (1 << z)), int(v[0] * (1 << z))


def _decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True}) if body else {}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("pyr") / "ws")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=300, n_background=200), name="firms")
    ws.add_dataset("boundaries", synthetic_regions(), name="regions")
    return ws


def _settings(ws, **extra) -> Settings:
    return Settings(workspace=ws.path, tiles=TileSettings(**{**TILES, **extra}))


def _archive_tiles(path) -> dict[tuple[int, int, int], bytes]:
    """Every tile of an archive, read by the pmtiles package's own reader."""
    with open(path, "rb") as f:
        return {zxy: bytes(body) for zxy, body in all_tiles(MmapSource(f))}


@pytest.mark.parametrize(("cid", "zooms"), [("firms", (0, 8)), ("regions", (0, 6))])
def test_archive_tiles_decode_as_the_dynamic_tiles(ws, tmp_path, cid, zooms):
    out = tmp_path / "pyramid.pmtiles"  # outside the workspace: the app still encodes
    settings = _settings(ws)
    result = build_pyramid(ws, cid, out, zooms, settings=settings)
    assert result["zooms"] == list(zooms) and result["tiles"] > 0
    stored = _archive_tiles(out)
    assert len(stored) == result["tiles"]
    assert {z for z, _, _ in stored} == set(range(zooms[0], zooms[1] + 1))
    with TestClient(create_app(settings)) as c:
        for (z, x, y), body in stored.items():
            r = c.get(f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{x}/{y}")
            assert r.status_code == 200 and r.headers["x-tile-source"] == "encoded"
            archived, dynamic = _decode(body), _decode(r.content)
            # same layer names, features, geometries and fields
            assert list(archived) == list(dynamic) == ["default"]
            assert archived == dynamic
            assert body == r.content
        # the archive is complete: the neighbours of its tiles are in it or empty
        for z, x, y in list(stored)[:40]:
            for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                nx, ny = x + dx, y + dy
                if not (0 <= nx < 1 << z and 0 <= ny < 1 << z) or (z, nx, ny) in stored:
                    continue
                r = c.get(f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{nx}/{ny}")
                assert r.status_code == 200 and r.content == b"", (z, nx, ny)


def test_both_kinds_of_point_tiles_are_prebuilt(ws, tmp_path):
    out = tmp_path / "p.pmtiles"
    build_pyramid(ws, "firms", out, (0, 8), settings=_settings(ws))
    stored = _archive_tiles(out)
    aggregated = [_decode(b) for (z, _, _), b in stored.items() if z < 6]
    individual = [_decode(b) for (z, _, _), b in stored.items() if z >= 6]
    assert all(
        f["properties"].get("aggregated") for t in aggregated for f in t["default"]["features"]
    )
    assert any("firm_id" in f["properties"] for t in individual for f in t["default"]["features"])
    # every firm is counted once in the archive's z0 tile (hand count: 2 x 300 + 200)
    z0 = _decode(stored[(0, 0, 0)])["default"]["features"]
    assert sum(f["properties"]["count"] for f in z0) == 800


def test_served_from_the_archive_and_encoded_beyond_it(ws):
    settings = _settings(ws, tile_pyramid_max_zoom=5)
    coll = ws.collection("firms")
    with TestClient(create_app(settings)) as c:
        from api.pyramid import schedule_pyramid

        submitted = schedule_pyramid(c.app, "firms")
        deadline = time.monotonic() + 60
        job = c.app.state.jobs.get(submitted.id)  # jobs live in the catalog
        while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = c.app.state.jobs.get(submitted.id)
        assert job["state"] == "done", job.get("error")
        assert job["progress"] == 1.0 and job["result"]["zooms"] == [0, 5]
        path = archive_path(ws.path, coll.layer, tiling_token(settings, c.app.state.policy, "open"))
        # the job page names the archive inside tiles/, never a server path
        assert job["result"]["archive"] == path.relative_to(ws.path / "tiles").as_posix()
        assert path.exists()
        assert path.parent.parent == ws.path / "tiles"
        # the job page shows it like any job
        assert c.get(f"/jobs/{submitted.id}").json()["state"] == "done"

        reader = Reader(MmapSource(open(path, "rb")))
        x, y = _tile_of(-103.35, 20.67, 4)
        r = c.get(f"/collections/firms/tiles/WebMercatorQuad/4/{x}/{y}")
        assert r.headers["x-tile-source"] == "archive"
        assert r.content == reader.get(4, x, y) and r.content
        # inside the archive's zooms but without data: empty, still from the archive
        r = c.get("/collections/firms/tiles/WebMercatorQuad/5/0/0")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["x-tile-source"] == "archive"
        # deeper than the archive: encoded on demand, then remembered
        x, y = _tile_of(-103.35, 20.67, 9)
        url = f"/collections/firms/tiles/WebMercatorQuad/9/{x}/{y}"
        first = c.get(url)
        assert first.headers["x-tile-source"] == "encoded" and first.content
        assert c.get(url).headers["x-tile-source"] == "memory"
        # another audience does not get this archive
        import api.routers.tiles as tiles_router

        tiles_router_audience = tiles_router.tile_audience
        try:
            tiles_router.tile_audience = lambda request, principal=None: "analyst"
            x, y = _tile_of(-103.35, 20.67, 4)
            r = c.get(f"/collections/firms/tiles/WebMercatorQuad/4/{x}/{y}")
            assert r.headers["x-tile-source"] == "encoded"
        finally:
            tiles_router.tile_audience = tiles_router_audience


def test_archive_reader_matches_the_pmtiles_reader(ws, tmp_path):
    out = tmp_path / "r.pmtiles"
    build_pyramid(ws, "regions", out, (0, 7), settings=_settings(ws))
    ours = Archive(out)
    with open(out, "rb") as f:
        theirs = Reader(MmapSource(f))
        for z in range(0, 8):
            for x, y in {_tile_of(-103.0, 21.0, z), _tile_of(-101.0, 20.0, z), (0, 0)}:
                assert ours.get(z, x, y) == (theirs.get(z, x, y) or b"")
    assert ours.get(8, 0, 0) is None  # not pre-built: the caller encodes it
    assert ours.metadata()["vector_layers"][0]["id"] == "default"
    ours.close()


def test_build_reports_progress_and_is_done_once(ws, tmp_path):
    out = tmp_path / "once.pmtiles"
    seen: list[float] = []
    result = build_pyramid(ws, "firms", out, (0, 6), lambda f, m="": seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    stamp = out.stat().st_mtime_ns
    again = build_pyramid(ws, "firms", out, (0, 6))
    assert again["tiles"] is None and again["zooms"] == result["zooms"]
    assert out.stat().st_mtime_ns == stamp  # immutable layer: never rebuilt


def test_a_build_in_progress_elsewhere_is_skipped(ws, tmp_path):
    out = tmp_path / "locked.pmtiles"
    with open(out.with_name(out.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # as another worker building it
        result = build_pyramid(ws, "firms", out, (0, 4))
    assert result["skipped"] is True and not out.exists()


def test_bad_zooms_are_invalid_input(ws, tmp_path):
    from geocluster.errors import InvalidInput

    with pytest.raises(InvalidInput, match="zooms"):
        build_pyramid(ws, "firms", tmp_path / "bad.pmtiles", (5, 2))


def test_archives_of_deleted_versions_are_swept(tmp_path):
    from api.pyramid import sweep_archives
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=20, n_background=10), name="firms")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=30, n_background=10), name="firms")
    first = build_pyramid(ws, "firms@1", None, (0, 3))
    second = build_pyramid(ws, "firms@2", None, (0, 3))
    assert first["path"] != second["path"]  # one archive per immutable version
    assert sweep_archives(ws) == 0
    ws.delete("firms@1")
    assert sweep_archives(ws) == 1
    assert not Path(first["path"]).exists() and Path(second["path"]).exists()
