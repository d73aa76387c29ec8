"""Property-based tests of the whole HTTP API from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, in-process over
``create_app(Settings(workspace=...))`` on a small populated workspace, with all of
schemathesis' checks: no server error (5xx), every response conforming to its documented
schema, content type and headers, every status code documented, invalid requests rejected.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.settings import Settings

REPO = Path(__file__).resolve().parents[2]

#: examples per operation: ~35 operations stay well under 90 s together on 2 cores
MAX_EXAMPLES = 12


# The OpenAPI document does not depend on the workspace (opened lazily, on first request):
# it is read once from an app that never opens one, then each test runs against its own.
_SCHEMA_APP = create_app(Settings(workspace=Path(tempfile.gettempdir()) / "geocluster-unused"))
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            # Rules between fields ("exactly one of values or indicators", a bbox's order,
            # known weight keys) are beyond JSON Schema: a schema-valid request may still
            # be invalid, and the answer to it is a documented 422 with the reason
            # (and an empty or unreadable file is a schema-valid upload: 400)
            "positive_data_acceptance": {
                "expected-statuses": ["2XX", "3XX", "400", "401", "403", "404", "409", "422"]
            },
        },
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _SCHEMA_APP, config=CONFIG)


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    # built in its own process, which closes every SQLite connection on exit: copying files
    # a live connection holds (WAL, shared memory) would copy a torn database
    ws_dir = tmp_path_factory.mktemp("schemathesis") / "ws"
    code = (
        "import sys; from tests.api.fixtures import build_demo_like_workspace as b; b(sys.argv[1])"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(ws_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
        capture_output=True,
        timeout=300,
    )
    return ws_dir


@pytest.fixture
def app(_template, tmp_path):
    # a fresh copy per operation: a generated DELETE or upload changes only its own copy
    ws_dir = tmp_path / "ws"
    shutil.copytree(_template, ws_dir)
    return create_app(Settings(workspace=ws_dir))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api(case, app):
    # a first HDBSCAN or LISA call in a worker compiles its numba kernels: a generous
    # read timeout, so a slow CI machine is not mistaken for a hung server
    response = case.call_and_validate(app=app, timeout=180)
    if response.status_code == 202:
        _wait_for_job(app, response.json()["job_id"])


def _wait_for_job(app, job_id: str, timeout_s: float = 60.0) -> None:
    # one request at a time: the contract is tested here, concurrency elsewhere (the v1
    # GeoPackage store does not survive a background job writing while requests read)
    client = TestClient(app)  # not as a context manager: its exit would end the lifespan
    deadline = time.monotonic() + timeout_s
    while client.get(f"/jobs/{job_id}").json()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job_id} still running"
        time.sleep(0.05)


# --- the causes schemathesis found, one by one -------------------------------------------


@pytest.fixture
def client(app):
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/collections/firms/items?f=html", 422),  # was 500: "html" in the enum, no renderer
        ("/collections/firms/items?offset=1000000000000", 422),  # was OverflowError 500
        ("/collections/firms/items?limit=3689348814741910323", 422),
        ("/collections/firms/items?offset=2147483647", 200),  # the bound itself: empty page
        (f"/collections/firms/items/{10**30}", 404),
        (f"/collections/hotspots-run/items/{10**30}", 404),  # position ids: was OverflowError
        ("/collections/hotspots-run/items/²", 404),  # a digit to str.isdigit, not to int()
        ("/collections/clusters-run.clusters/items/-" + "9" * 30, 404),
    ],
)
def test_bounded_queries(client, _template, url, status):
    ids = {c["id"] for c in client.get("/collections?include_runs=true").json()["collections"]}
    hotspots = next(i for i in sorted(ids) if i.startswith("hotspots-"))
    clusters = next(i for i in sorted(ids) if i.startswith("clusters-") and "." not in i)
    url = url.replace("hotspots-run", hotspots).replace("clusters-run", clusters)
    r = client.get(url)
    assert r.status_code == status, r.text
    if status >= 400:
        assert set(r.json()) == {"detail"} and isinstance(r.json()["detail"], str)


def test_kde_refuses_an_infinite_grid(client):
    r = client.post("/analyses/kde", json={"firms": "firms", "cell_m": 5e-324})
    assert r.status_code == 422, r.text
    assert "grid cells" in r.json()["detail"]


def test_405_lists_every_method_of_the_path(client):
    r = client.request("OPTIONS", "/datasets")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"
    assert client.request("PUT", "/datasets/firms").headers["allow"] == "DELETE, GET, PATCH"


def test_errors_are_documented_with_their_body(client):
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["Error"]["required"] == ["detail"]
    item = spec["paths"]["/collections/{collection_id}/items/{feature_id}"]["get"]
    assert {"404", "422"} <= set(item["responses"])
    upload = spec["paths"]["/datasets"]["post"]["responses"]
    assert {"400", "413", "415", "422"} <= set(upload)
    assert upload["413"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert set(spec["paths"]["/health"]["get"]["responses"]) == {"200"}  # nothing to reject


def test_keep_alive_survives_a_server_error(app):
    # over a real uvicorn: Starlette's catch-all re-raised after its 500 and uvicorn then
    # closed the connection; the client's next request on it failed
    import http.client
    import socket
    import threading

    import uvicorn

    def boom():
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom, include_in_schema=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/boom")
        r1 = conn.getresponse()
        assert r1.status == 500
        assert json.loads(r1.read()) == {"detail": "internal error"}
        assert not r1.will_close
        sock = conn.sock
        conn.request("GET", "/health")
        r2 = conn.getresponse()
        assert r2.status == 200 and json.loads(r2.read()) == {"status": "ok", "auth": "open"}
        assert conn.sock is sock  # the same connection, not a silent reconnect
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
