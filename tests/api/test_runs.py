"""``/runs`` and ``/jobs``: persisted runs and background jobs."""

from __future__ import annotations

import time


def _wait_job(client, status_url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    path = status_url.replace("http://testserver", "")
    while time.monotonic() < deadline:
        job = client.get(path).json()
        assert 0.0 <= job["progress"] <= 1.0
        assert job["state"] in ("queued", "running", "done", "failed")
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_clusters_as_a_job(demo_client):
    r = demo_client.post(
        "/analyses/clusters", json={"firms": "firms", "eps_m": 3000, "async": True}
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) >= {"job_id", "status_url"}
    job = _wait_job(demo_client, body["status_url"])
    assert job["state"] == "done", job
    assert job["progress"] == 1.0
    run_id = job["result"]["run_id"]
    # the result persisted as a run
    assert demo_client.get(f"/runs/{run_id}").status_code == 200


def test_failed_job_reports_the_error(demo_client):
    r = demo_client.post("/analyses/clusters", json={"firms": "nope", "async": True})
    assert r.status_code == 202
    job = _wait_job(demo_client, r.json()["status_url"])
    assert job["state"] == "failed" and "nope" in job["error"]
    assert "result" not in job


def test_unknown_job_is_404(demo_client):
    r = demo_client.get("/jobs/0123456789abcdef")
    assert r.status_code == 404 and "no job" in r.json()["detail"]


def test_runs_listing(demo_client, demo):
    runs = demo_client.get("/runs").json()["runs"]
    assert demo["clusters_run"] in {r["id"] for r in runs}
    only = demo_client.get("/runs?kind=clusters").json()["runs"]
    assert only and all(r["kind"] == "clusters" for r in only)
    one = demo_client.get(f"/runs/{demo['clusters_run']}").json()
    assert one["links"] and one["collections"][0] == demo["clusters_run"]
    assert demo_client.get("/runs/nope").status_code == 404


def test_a_job_result_passes_the_disclosure_seam(demo_client):
    r = demo_client.post(
        "/analyses/specialization",
        json={"firms": "firms", "boundaries": "regions", "async": True},
    )
    assert r.status_code == 202 and r.json()["state"] in ("queued", "running", "done")
    job = _wait_job(demo_client, r.json()["status_url"])
    assert job["state"] == "done", job
    assert all("disclosure" in row for row in job["result"]["rows"])
    assert job["result"]["inputs"] == ["firms@1", "regions@1"]


def test_delete_run_and_raster(client, tmp_path):
    import numpy as np
    import pandas as pd
    import rasterio
    from rasterio.transform import from_origin

    ws = client.app.state.get_workspace()
    run = ws.save_run(
        "toy", params={}, inputs=[], layers={"t": pd.DataFrame({"a": [1]})}, summary={}
    )
    assert client.delete(f"/runs/{run.id}").status_code == 204
    assert client.get(f"/runs/{run.id}").status_code == 404
    assert client.delete(f"/runs/{run.id}").status_code == 404
    path = tmp_path / "r.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32",
        crs="EPSG:32613", transform=from_origin(500000, 2300000, 100, 100),
    ) as dst:  # fmt: skip
        dst.write(np.ones((1, 4, 4), "float32"))
    info = ws.add_raster(path, name="ones")
    assert client.delete(f"/rasters/{info.id}").status_code == 204
    assert client.get(f"/rasters/{info.id}").status_code == 404
