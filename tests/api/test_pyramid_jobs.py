"""Tile pyramids built on ingest and run completion, as background jobs with progress.

An upload (``POST /datasets``) or a completed analysis run queues the PMTiles build of
its layer per audience (:func:`api.pyramid.schedule_pyramids`); ``GET /jobs/{id}``
follows it; tiles are encoded on demand until the archive lands and come from it
afterwards (``X-Tile-Source``), decoding equal to the dynamic tile; one job per
archive across workers (the catalog), one build per archive (the file lock).
"""

from __future__ import annotations

import threading
import time

import mapbox_vector_tile
import numpy as np
from fastapi.testclient import TestClient

from api.app import create_app
from api.pyramid import archive_path, pyramid_audiences, schedule_pyramid
from api.routers.tiles import audience_policy, load_index, render_tile, tile_options, tiling_token
from api.settings import Settings, TileSettings
from api.tiling import lonlat_to_unit
from tests.api.fixtures import synthetic_firms

TILES = {
    "tile_pyramids": True,
    "tile_pyramid_max_zoom": 6,
    "points_min_zoom": 5,  # the archive holds grid-count and point tiles
    "tile_debug_headers": True,
}


def _settings(path, **extra) -> Settings:
    return Settings(workspace=path, tiles=TileSettings(**{**TILES, **extra}))


def _csv(n_per_centre: int = 200, seed: int = 0) -> bytes:
    firms = synthetic_firms(n_per_centre=n_per_centre, n_background=150, seed=seed)
    out = firms.drop(columns="geometry").assign(lon=firms.geometry.x, lat=firms.geometry.y)
    return out.to_csv(index=False).encode()


def _upload(c, content: bytes, name: str = "firms"):
    r = c.post(
        "/datasets",
        data={"kind": "firms", "name": name, "options": '{"sector_col": "isic_division"}'},
        files={"file": ("firms.csv", content, "text/csv")},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _wait(c, job_id: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = c.get(f"/jobs/{job_id}").json()
        if job["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    u, v = lonlat_to_unit(np.array([lon]), np.array([lat]))
    return int(u[0] * (1 << z)), int(v[0] * (1 << z))


def _decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True}) if body else {}


def _dynamic(app, ws, cid: str, z: int, x: int, y: int, audience: str = "open") -> bytes:
    """The tile the dynamic path encodes (index read afresh, no archive, no cache)."""
    settings = app.state.settings
    policy = audience_policy(app.state.policy, audience)
    coll = ws.collection(cid)
    index = load_index(ws, coll, policy)
    opts = tile_options(settings, policy, index.disclosure_kind, z)
    return render_tile(index, z, x, y, opts, policy)


class _Gate:
    """Holds the background lane with a job of its own, so a pyramid job stays queued."""

    def __init__(self, app) -> None:
        self.release = threading.Event()
        self.job = app.state.jobs.submit(
            "test-gate", lambda progress: self.release.wait(60), background=True
        )


def test_upload_queues_a_pyramid_job_and_tiles_move_to_the_archive(tmp_path):
    with TestClient(create_app(_settings(tmp_path / "ws"))) as c:
        gate = _Gate(c.app)
        jobs = c.app.state.jobs
        jobs.PROGRESS_EVERY_S = 0.0  # record every progress step of this test's jobs
        ws = c.app.state.get_workspace()
        seen: list[float] = []
        update = ws.update_job
        ws.update_job = lambda job_id, **v: (
            seen.append(v["progress"]) if "progress" in v else None,
            update(job_id, **v),
        )[1]
        body = _upload(c, _csv())
        (tile_job,) = body["tile_jobs"]  # open single-user mode: one audience
        assert tile_job["kind"] == "pyramid" and tile_job["audience"] == "open"
        assert tile_job["collection"] == "firms@1" and tile_job["href"] == f"/jobs/{tile_job['id']}"
        assert c.get(tile_job["href"]).json()["state"] == "queued"

        # until the archive lands, tiles are encoded on demand
        x, y = _tile_of(-103.35, 20.67, 3)
        r = c.get(f"/collections/firms/tiles/WebMercatorQuad/3/{x}/{y}")
        assert r.status_code == 200 and r.headers["x-tile-source"] == "encoded"
        dynamic_z3 = r.content

        gate.release.set()
        job = _wait(c, tile_job["id"])
        assert job["state"] == "done", job
        assert job["progress"] == 1.0 and "tiles in" in job["message"]
        result = job["result"]
        assert result["built"] is True and result["tiles"] > 0 and result["zooms"] == [0, 6]
        assert result["archive"].endswith(".pmtiles") and not result["archive"].startswith("/")
        # progress went up step by step while it ran, not only at the end
        steps = [p for p in seen if 0.0 < p < 1.0]
        assert len(steps) >= 3 and steps == sorted(steps)

        coll = ws.collection("firms")
        token = tiling_token(c.app.state.settings, c.app.state.policy, "open")
        assert archive_path(ws.path, coll.layer, token).name in result["archive"]

        for z in (3, 4, 6):
            x, y = _tile_of(-103.35, 20.67, z)
            r = c.get(f"/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}")
            want = _dynamic(c.app, ws, "firms", z, x, y)
            if z == 3:  # served from the in-process LRU, filled by the dynamic encode
                assert r.headers["x-tile-source"] == "memory"
                assert r.content == dynamic_z3
                continue
            assert r.headers["x-tile-source"] == "archive"
            assert r.content and _decode(r.content) == _decode(want)
        # deeper than the archive: still encoded on demand
        x, y = _tile_of(-103.35, 20.67, 9)
        r = c.get(f"/collections/firms/tiles/WebMercatorQuad/9/{x}/{y}")
        assert r.headers["x-tile-source"] == "encoded"

        # the archive exists: a new trigger queues nothing
        assert schedule_pyramid(c.app, "firms@1") is None
        # a new version gets its own job and archive; the first stays as it is
        second = _upload(c, _csv(seed=3))
        assert second["tile_jobs"][0]["collection"] == "firms@2"
        assert _wait(c, second["tile_jobs"][0]["id"])["state"] == "done"


def test_one_job_per_archive_across_workers(tmp_path):
    settings = _settings(tmp_path / "ws")
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        gate_a, gate_b = _Gate(a.app), _Gate(b.app)
        a.app.state.get_workspace().add_dataset("firms", synthetic_firms(), name="firms")
        first = schedule_pyramid(a.app, "firms")
        again = schedule_pyramid(a.app, "firms")
        other = schedule_pyramid(b.app, "firms")  # another worker, same workspace
        assert first.id == again.id == other.id
        # another audience is another archive, so another job
        assert schedule_pyramid(b.app, "firms", "safe").id != first.id
        gate_a.release.set()
        gate_b.release.set()
        assert _wait(a, first.id)["state"] == "done"
        assert _wait(b, first.id)["result"]["tiles"] > 0  # the job page of any worker
        # b never built it, yet serves it (its registry opens what another worker wrote)
        x, y = _tile_of(-103.35, 20.67, 4)
        r = b.get(f"/collections/firms/tiles/WebMercatorQuad/4/{x}/{y}")
        assert r.headers["x-tile-source"] == "archive"


def test_a_completed_run_queues_its_layers_pyramids(tmp_path):
    with TestClient(create_app(_settings(tmp_path / "ws"))) as c:
        c.app.state.get_workspace().add_dataset("firms", synthetic_firms(), name="firms")
        r = c.post("/analyses/clusters", json={"firms": "firms", "eps_m": 3000, "min_samples": 10})
        assert r.status_code == 200, r.text
        run_id = r.json()["run_id"]
        run = c.get(f"/runs/{run_id}").json()
        jobs = run["tile_jobs"]
        assert jobs and {j["collection"] for j in jobs} <= set(run["collections"])
        for j in jobs:
            done = _wait(c, j["id"])
            assert done["state"] == "done", done
        # the run's firm labels (its primary layer): archive tiles decode as the dynamic ones
        assert {j["collection"] for j in jobs} == {run_id, f"{run_id}.clusters"}
        labels = run_id
        x, y = _tile_of(-103.35, 20.67, 5)
        r = c.get(f"/collections/{labels}/tiles/WebMercatorQuad/5/{x}/{y}")
        assert r.headers["x-tile-source"] == "archive"
        ws = c.app.state.get_workspace()
        assert _decode(r.content) == _decode(_dynamic(c.app, ws, labels, 5, x, y))
        states = {j["state"] for j in c.get(f"/runs/{run_id}").json()["tile_jobs"]}
        assert states == {"done"}


def test_with_keys_the_disclosure_safe_archive_is_built_too(tmp_path):
    from geocluster.auth import create_key

    settings = _settings(tmp_path / "ws")
    with TestClient(create_app(settings)) as c:
        ws = c.app.state.get_workspace()
        assert pyramid_audiences(c.app) == ["open"]
        _, editor = create_key(ws.catalog, "editor", "ed")
        assert pyramid_audiences(c.app) == ["open", "safe"]
        body = c.post(
            "/datasets",
            data={"kind": "firms", "name": "firms"},
            files={"file": ("firms.csv", _csv(), "text/csv")},
            headers={"X-API-Key": editor},
        ).json()
        jobs = {j["audience"]: j for j in body["tile_jobs"]}
        assert set(jobs) == {"open", "safe"}
        for j in jobs.values():
            assert _wait(c, j["id"])["state"] == "done"
        # a viewer gets the safe archive: grid counts, no firm points
        _, viewer = create_key(ws.catalog, "viewer", "v")
        patch = c.patch(
            "/datasets/firms", json={"visibility": "public"}, headers={"X-API-Key": editor}
        )
        assert patch.status_code == 200, patch.text
        x, y = _tile_of(-103.35, 20.67, 6)
        r = c.get(
            f"/collections/firms/tiles/WebMercatorQuad/6/{x}/{y}", headers={"X-API-Key": viewer}
        )
        assert r.status_code == 200 and r.headers["x-tile-source"] == "archive"
        want = _dynamic(c.app, ws, "firms", 6, x, y, audience="safe")
        assert _decode(r.content) == _decode(want)
        features = _decode(r.content)["default"]["features"]
        assert features and all(f["properties"].get("aggregated") for f in features)


def test_pyramids_off_queue_nothing_and_shutdown_fails_queued_jobs(tmp_path):
    with TestClient(create_app(_settings(tmp_path / "off", tile_pyramids=False))) as c:
        assert "tile_jobs" not in _upload(c, _csv())
    with TestClient(create_app(_settings(tmp_path / "ws"))) as c:
        gate = _Gate(c.app)
        job = _upload(c, _csv())["tile_jobs"][0]
        ws = c.app.state.get_workspace()
    gate.release.set()
    row = ws.job(job["id"])  # the app stopped before the job started
    assert row["state"] == "failed" and "cancelled" in row["error"]
    # a new server queues it again: a failed job does not hold the archive's key
    with TestClient(create_app(_settings(tmp_path / "ws"))) as c:
        again = schedule_pyramid(c.app, "firms")
        assert again.id != job["id"] and _wait(c, again.id)["state"] == "done"


def test_unknown_collections_are_logged_not_raised(tmp_path, caplog):
    from api.pyramid import schedule_pyramids

    with TestClient(create_app(_settings(tmp_path / "ws"))) as c:
        assert schedule_pyramids(c.app, ["nope"]) == []
    assert "scheduling tile pyramids failed" in caplog.text
