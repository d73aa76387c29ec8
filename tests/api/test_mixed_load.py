"""The mix that destroyed v1 workspaces, on a real server, plus writers and kill -9.

v1 measured: 8 clients, 20 % analyses (clusters, kde, hotspots, specialization), the rest
items, tiles and dataset lists, for 60 s, corrupted the GeoPackage and then lost it. Here
the same mix runs against ``uvicorn`` with 2 worker processes on loopback while CLI
processes ingest new versions; afterwards every dataset version and run is listed and
readable, the catalog passes ``PRAGMA integrity_check`` and no request got a 5xx. Then
the server is killed with SIGKILL in the middle of an upload: the previous state is
intact and no upload temp file survives the next start.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from geocluster.workspace import Workspace
from tests.api.fixtures import build_demo_like_workspace

REPO = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("GEOCLUSTER_LOAD_SECONDS", "60"))
CLIENTS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(ws_dir: Path, port: int, workers: int) -> subprocess.Popen:
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from api.server import serve, settings_for_serve\n"
        f"serve(settings_for_serve({str(ws_dir)!r}, '127.0.0.1', {port}), workers={workers}, "
        "log_level='warning')\n"
    )
    env = {**os.environ, "GEOCLUSTER_TILE_PYRAMIDS": "false", "GEOCLUSTER_WARM_ON_START": "false"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the server did not start")


def _request(base: str, method: str, path: str, body: dict | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


ANALYSES = [
    ("/analyses/clusters", {"firms": "firms", "eps_m": 400, "min_samples": 5}),
    ("/analyses/kde", {"firms": "firms", "bandwidth": 2000, "cell_m": 2000}),
    ("/analyses/hotspots", {"boundaries": "regions", "indicators": "indicators",
                            "indicator": "gdp_pc", "year": 2010, "permutations": 99}),
    ("/analyses/specialization", {"firms": "firms", "boundaries": "regions"}),
]  # fmt: skip
READS = [
    "/collections/firms/items?limit=100",
    "/collections/firms/items?bbox=-103.5,20.5,-103.2,20.8&limit=50",
    "/collections/firms/tiles/WebMercatorQuad/8/{x}/{y}",
    "/collections/regions/tiles/WebMercatorQuad/6/12/28",
    "/datasets",
    "/collections",
    "/runs",
]


@pytest.mark.slow
def test_the_v1_destroying_mix_with_writers_leaves_everything_readable(tmp_path):
    demo = build_demo_like_workspace(tmp_path / "ws")
    ws_dir = demo["ws"].path
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(ws_dir, port, workers=2)
    statuses: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            if rng.random() < 0.2:
                path, body = rng.choice(ANALYSES)
                code = _request(base, "POST", path, body)
            else:
                path = rng.choice(READS).format(x=rng.randint(49, 50), y=rng.randint(113, 114))
                code = _request(base, "GET", path)
            with lock:
                statuses.append(code)
                if code >= 500:
                    failures.append(path)

    csv = tmp_path / "more.csv"
    rows = ["firm_id,lon,lat,isic,employees"] + [
        f"m{i},{-103.35 + (i % 50) * 0.001},{20.67 + (i // 50) * 0.001},15,3" for i in range(3000)
    ]
    csv.write_text("\n".join(rows) + "\n")

    def writer() -> None:
        while time.monotonic() < stop - 5:
            subprocess.run(
                [sys.executable, "-m", "geocluster", "ingest", "firms", str(csv), "--name",
                 "more", "--workspace", str(ws_dir)],
                env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    threads.append(threading.Thread(target=writer))
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert statuses and not failures, sorted(set(failures))
    assert sum(1 for s in statuses if s == 200) > 0.9 * len(statuses)
    ws = Workspace(ws_dir)
    assert ws.catalog.integrity_check() == "ok"
    for info in ws.datasets():
        for v in ws.versions(info.id):
            assert len(ws.read(v.ref)) == v.rows
    assert len(ws.versions("more")) >= 1
    for run in ws.runs():
        for layer in run.layers:
            ws.read_run(run.id, layer)
    print(f"mixed load: {len(statuses)} requests in {SECONDS:.0f} s, 0 server errors, "
          f"{len(ws.runs())} runs, {len(ws.versions('more'))} versions written meanwhile")  # fmt: skip


@pytest.mark.slow
def test_kill_9_of_the_server_during_an_upload(tmp_path):
    ws = Workspace(tmp_path / "ws")
    demo = build_demo_like_workspace(tmp_path / "ws")
    before = {d.id: d.version for d in demo["ws"].datasets()}
    port = _free_port()
    server = _serve(ws.path, port, workers=1)
    # A slow multipart upload: headers and half of a big body, then the server dies.
    boundary = "gcboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nfirms\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nfirm_id,lon,lat,isic,employees\n"
    ).encode()
    row = b"f,-103.35,20.67,15,3\n"
    total = len(head) + len(row) * 2_000_000
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST /datasets HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {total}\r\n\r\n".encode()
        + head
    )
    for _ in range(50):
        sock.sendall(row * 10_000)
    time.sleep(0.5)  # the server is receiving the upload
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)
    sock.close()
    # What a server killed while it processed an upload leaves: its staging directory,
    # named with its (now dead) pid. The next start removes it at once, whatever its age.
    stale = Path(tempfile.mkdtemp(prefix=f"geocluster-upload-{server.pid}-"))
    (stale / "big.csv").write_bytes(b"firm_id,lon,lat\n")
    server = _serve(ws.path, port, workers=1)  # start-up sweeps what the dead one left
    try:
        assert not stale.exists(), "an upload temp file survived the restart"
        after = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/datasets").read())
        listed = after["datasets"] if isinstance(after, dict) else after
        assert {d["id"]: d["version"] for d in listed} == before
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert Workspace(ws.path).catalog.integrity_check() == "ok"
