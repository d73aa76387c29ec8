"""Several uvicorn workers (``api.server.serve``): both answer, share one archive, stop cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from api.tiling import lonlat_to_unit
from tests.api.fixtures import synthetic_firms

REPO = Path(__file__).resolve().parents[2]

LAUNCH = """
import sys
from api.server import serve
from api.settings import Settings, TileSettings
serve(
    Settings(
        workspace=sys.argv[1],
        host="127.0.0.1",
        port=int(sys.argv[2]),
        tiles=TileSettings(
            tile_debug_headers=True,
            tile_warm_on_start=True,
            tile_pyramids=True,
            tile_pyramid_max_zoom=6,
        ),
    ),
    workers=2,
    log_level="warning",
)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return set()
    return {int(p) for p in text.split()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    u, v = lonlat_to_unit(np.array([lon]), np.array([lat]))
    return int(u[0] * (1 << z)), int(v[0] * (1 << z))


def test_two_workers_serve_tiles_and_stop_on_sigterm(tmp_path):
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(n_per_centre=200, n_background=100), name="firms")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GEOCLUSTER_SETTINGS_JSON", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(ws.path), str(port)],
        cwd=tmp_path,  # not the repository: the workspace path must travel absolute
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        started = _children(proc.pid)
        assert len(started) >= 2

        # the warmer queues the pyramid in both workers; one builds it under the lock
        deadline = time.monotonic() + 60
        while not list((ws.path / "tiles").rglob("*.pmtiles")):
            assert time.monotonic() < deadline, "no archive was built"
            time.sleep(0.2)
        x, y = _tile_of(-103.35, 20.67, 12)
        deep = f"/collections/firms/tiles/WebMercatorQuad/12/{x}/{y}"
        x0, y0 = _tile_of(-103.35, 20.67, 6)
        sources: dict[int, set[str]] = {}
        # a new connection per request, so the kernel hands them to either worker;
        # tiles not asked before (none in a worker's LRU), until both used the archive
        for i in range(200):
            r = httpx.get(f"{base}/collections/firms/tiles/WebMercatorQuad/6/{(x0 + i) % 64}/{y0}")
            assert r.status_code == 200
            pid = int(r.headers["x-tile-worker"])
            sources.setdefault(pid, set()).add(r.headers["x-tile-source"])
            if i == 0:
                assert r.content  # the tile of the cluster centre holds firms
            d = httpx.get(base + deep, timeout=30)
            assert d.status_code == 200 and d.content  # beyond the archive: encoded
            if len([p for p, s in sources.items() if "archive" in s]) >= 2:
                break
        workers = set(sources)
        assert len(workers) == 2, sources
        assert workers <= started  # the answers came from the parent's two workers
        assert len([p for p, s in sources.items() if "archive" in s]) == 2, sources
        # exactly one archive, built once (by whichever worker took the lock)
        archives = list((ws.path / "tiles").rglob("*.pmtiles"))
        assert len(archives) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert rc == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)
    # and the port is free again
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
