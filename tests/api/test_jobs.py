"""Jobs live in the catalog: any worker answers, a killed server's jobs read "failed"."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.jobs import JobManager, TooManyJobs
from api.settings import Settings
from geocluster.workspace import Workspace
from tests.api.fixtures import synthetic_firms

REPO = Path(__file__).resolve().parents[2]


def _wait_done(client, url, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_async_job_is_readable_from_another_app_on_the_same_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(), name="firms")
    body = {"firms": "firms", "eps_m": 400, "min_samples": 5, "async": True}
    with TestClient(create_app(Settings(workspace=ws.path))) as a:
        accepted = a.post("/analyses/clusters", json=body)
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        done = _wait_done(a, f"/jobs/{job_id}")
    assert done["state"] == "done" and done["progress"] == 1.0
    assert done["result"]["inputs"] == ["firms@1"]
    # A second app (another worker process, or after a restart) reads the same job.
    with TestClient(create_app(Settings(workspace=ws.path))) as b:
        again = b.get(f"/jobs/{job_id}").json()
    assert again["state"] == "done" and again["result"]["run_id"] == done["result"]["run_id"]


def test_queue_cap_refuses_with_429(tmp_path):
    ws = Workspace(tmp_path / "ws")
    gate = threading.Event()
    jobs = JobManager(lambda: ws, max_workers=1, max_queued=1)
    try:
        jobs.submit("slow", lambda progress: gate.wait(10))
        jobs.submit("slow", lambda progress: gate.wait(10))
        try:
            jobs.submit("slow", lambda progress: None)
        except TooManyJobs as exc:
            assert "queue is full" in str(exc)
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError("a third job past the cap was accepted")
    finally:
        gate.set()
        jobs.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVER = """
import sys, uvicorn
sys.path.insert(0, {repo!r})
from api.app import create_app
from api.settings import Settings
uvicorn.run(create_app(Settings(workspace={ws!r})), host="127.0.0.1", port={port}, log_level="warning")
"""


def _start(ws: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER.format(repo=str(REPO), ws=str(ws), port=port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def test_kill_9_of_the_server_during_a_job_leaves_it_failed_with_its_reason(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=1500), name="firms")
    port = _free_port()
    proc = _start(ws.path, port)
    try:
        # Permutation-heavy point pattern analysis: long enough to be killed mid-run.
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/analyses/pointpattern",
            data=json.dumps({"firms": "firms", "n_simulations": 9999, "async": True}).encode(),
            headers={"content-type": "application/json"},
        )
        job_id = json.loads(urllib.request.urlopen(req, timeout=30).read())["job_id"]
        deadline = time.monotonic() + 30
        while ws.job(job_id)["state"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ws.job(job_id)["state"] == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert Workspace(ws.path).job(job_id)["state"] == "running"  # nobody has looked yet
    proc = _start(ws.path, port)
    try:
        body = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs/{job_id}", timeout=10).read()
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert body["state"] == "failed"
    assert "interrupted" in body["error"] and "submit it again" in body["error"]
    assert Workspace(ws.path).catalog.integrity_check() == "ok"


def _wait_state(jobs: JobManager, job_id: str, state: str, timeout_s: float = 20) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job["state"] == state:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {state}: {jobs.get(job_id)}")


def test_upkeep_waits_for_analyses_to_end(tmp_path):
    ws = Workspace(tmp_path / "ws")
    jobs = JobManager(lambda: ws, max_workers=1)
    started: list[float] = []
    steps: list[float] = []
    try:
        jobs.analysis_started()  # e.g. a synchronous /analyses request in flight
        job = jobs.submit("pyramid", lambda p: started.append(time.monotonic()), background=True)
        time.sleep(0.4)
        assert not started and jobs.get(job.id)["state"] == "queued"
        ended = time.monotonic()
        jobs.analysis_ended()
        _wait_state(jobs, job.id, "done")
        assert started[0] - ended >= jobs.QUIET_S * 0.95

        # between steps too: an analysis job that starts mid-build pauses the build
        gate = threading.Event()

        def analysis(progress):
            gate.wait(10)

        def build(progress):
            for i in range(40):
                progress(i / 40, "step")
                steps.append(time.monotonic())
                time.sleep(0.01)

        jobs.QUIET_S = 0.3
        b = jobs.submit("pyramid", build, background=True)
        while len(steps) < 3:
            time.sleep(0.005)
        a = jobs.submit("clusters", analysis)
        _wait_state(jobs, a.id, "running")
        paused_at = len(steps)
        time.sleep(0.5)
        assert len(steps) <= paused_at + 1  # at most the step already past its check
        released = time.monotonic()
        gate.set()
        _wait_state(jobs, b.id, "done")
        assert steps[-1] - released >= 0.3 * 0.95 and len(steps) == 40
    finally:
        jobs.shutdown()


def test_upkeep_is_not_starved_by_endless_analyses(tmp_path):
    ws = Workspace(tmp_path / "ws")
    jobs = JobManager(lambda: ws, max_workers=1)
    jobs.MAX_YIELD_S = 0.3
    try:
        jobs.analysis_started()  # never ends
        job = jobs.submit("pyramid", lambda p: p(0.5, "half") or "built", background=True)
        assert _wait_state(jobs, job.id, "done", timeout_s=5)["state"] == "done"
    finally:
        jobs.shutdown()


def test_analysis_requests_count_as_activity(tmp_path):
    app = create_app(Settings(workspace=tmp_path / "ws"))
    seen: list[int] = []
    with TestClient(app) as c:
        jobs = app.state.jobs
        original = jobs.analysis_started

        def spy():
            original()
            seen.append(jobs._analyses)

        jobs.analysis_started = spy
        c.post("/analyses/clusters", json={"firms": "none"})
        c.get("/health")
        c.get("/collections")
    assert seen == [1] and jobs._analyses == 0


def test_index_warm_up_yields_to_analyses_until_a_tile_request_waits(tmp_path):
    # the start-up tile-index build is upkeep: it pauses between its steps while an
    # analysis runs, and stops pausing once a tile request waits for that index
    from api.tiling import IndexCache, upkeep_pause, yielding_to

    ws = Workspace(tmp_path / "ws")
    jobs = JobManager(lambda: ws, max_workers=1)
    jobs.QUIET_S = 0.2
    cache = IndexCache()
    steps: list[float] = []
    built = object()

    def build():
        for _ in range(5):
            upkeep_pause()
            steps.append(time.monotonic())
        return built

    def warm():
        with yielding_to(lambda: jobs.yield_to_analyses(stop=cache.waiting)):
            cache.get("firms", "v1", build)

    try:
        jobs.analysis_started()
        warming = threading.Thread(target=warm)
        warming.start()
        time.sleep(0.5)
        assert steps == []  # paused before its first step
        got: list[object] = []
        tile = threading.Thread(target=lambda: got.append(cache.get("firms", "v1", build)))
        tile.start()  # a tile request now waits for the index: the build goes on
        tile.join(10)
        warming.join(10)
        assert got == [built] and len(steps) == 5 and jobs._analyses == 1
        # a build that a request runs itself never pauses
        steps.clear()
        assert cache.get("other", "v1", build) is built and len(steps) == 5
        # and once the analysis ends, a paused warm-up resumes after the quiet time
        steps.clear()

        def warm_alone():
            with yielding_to(jobs.yield_to_analyses):
                build()

        warming = threading.Thread(target=warm_alone)
        warming.start()
        time.sleep(0.3)
        assert steps == []
        ended = time.monotonic()
        jobs.analysis_ended()
        warming.join(10)
        assert len(steps) == 5 and steps[0] - ended >= 0.2 * 0.95
    finally:
        jobs.shutdown()


def test_server_warm_up_of_tile_indexes_waits_for_analyses(tmp_path):
    # api.routers.tiles.warm_indexes (what `serve` starts) with an analysis in flight
    from api.routers.tiles import warm_indexes

    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(), name="firms")
    app = create_app(Settings(workspace=tmp_path / "ws"))
    jobs = app.state.jobs
    jobs.QUIET_S = 0.2
    try:
        jobs.analysis_started()
        warming = threading.Thread(target=warm_indexes, args=(app,))
        warming.start()
        time.sleep(0.6)
        assert not app.state.index_cache._entries  # nothing built while it runs
        jobs.analysis_ended()
        warming.join(30)
        assert not warming.is_alive() and len(app.state.index_cache._entries) == 1
    finally:
        jobs.shutdown()
