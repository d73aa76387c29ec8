"""Per-key rate limits (slowapi) over real HTTP: a uvicorn server on loopback.

Limits come from the settings (``GEOCLUSTER_RATE_LIMIT_BURST`` requests in any second,
``GEOCLUSTER_RATE_LIMIT_PER_MINUTE`` in any minute), are kept per API key (anonymous
callers and bad keys per client IP), and a refusal is a 429 with a one-line JSON reason
and ``Retry-After``. Moving windows (limits' ``moving-window`` strategy): a request is
allowed again once the oldest one in the full window is older than the window.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from pydantic import ValidationError

from api.app import create_app
from api.settings import SecuritySettings, Settings
from geocluster.auth import create_key
from geocluster.workspace import Workspace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``create_app(settings)`` under uvicorn in a thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        port = _free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base = f"http://127.0.0.1:{port}"

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        self.client = httpx.Client(base_url=self.base, timeout=30)
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _keyed(tmp_path, n_keys: int = 2, **security) -> tuple[Settings, list[str]]:
    ws = Workspace(tmp_path / "ws")
    keys = [create_key(ws.catalog, "viewer", f"k{i}")[1] for i in range(n_keys)]
    return Settings(workspace=tmp_path / "ws", security=SecuritySettings(**security)), keys


def _refused(r: httpx.Response, limit: str, who: str) -> int:
    """Check a 429 and return its Retry-After (seconds)."""
    assert r.status_code == 429, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail, detail
    assert f"rate limit of {limit} for {who}" in detail, detail
    retry = int(r.headers["retry-after"])
    assert f"retry after {retry} s" in detail
    return retry


def test_per_key_burst_and_minute_windows(tmp_path):
    settings, (k1, k2) = _keyed(tmp_path, rate_limit_burst=3, rate_limit_per_minute=5)
    with LiveServer(settings) as c:
        h1, h2 = {"X-API-Key": k1}, {"Authorization": f"Bearer {k2}"}
        codes = [c.get("/datasets", headers=h1).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        retry = _refused(c.get("/datasets", headers=h1), "3 per 1 second", "this API key")
        assert retry == 1  # the burst window is one second long
        # another key has its own windows, whichever header carries it
        assert c.get("/datasets", headers=h2).status_code == 200
        time.sleep(1.1)  # the second-long window has moved on
        assert [c.get("/datasets", headers=h1).status_code for _ in range(2)] == [200, 200]
        # 5 in the minute now: the minute window refuses, for most of a minute
        retry = _refused(c.get("/datasets", headers=h1), "5 per 1 minute", "this API key")
        assert 50 <= retry <= 60, retry
        assert c.get("/health").status_code == 200  # health checks are never limited


def test_anonymous_callers_and_bad_keys_by_client_ip(tmp_path):
    settings, (k1, _) = _keyed(tmp_path, rate_limit_burst=2, rate_limit_per_minute=1000)
    with LiveServer(settings) as c:
        assert [c.get("/datasets").status_code for _ in range(2)] == [200, 200]
        _refused(c.get("/datasets"), "2 per 1 second", "this client")
        # a key is not the client's IP: its own windows
        assert c.get("/datasets", headers={"X-API-Key": k1}).status_code == 200
        time.sleep(1.1)
        # guessing keys spends the client's windows: 401, 401, then 429
        bad = {"X-API-Key": "gk_00000000_" + "x" * 43}
        assert [c.get("/datasets", headers=bad).status_code for _ in range(2)] == [401, 401]
        _refused(c.get("/datasets", headers=bad), "2 per 1 second", "this client")


def test_limits_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOCLUSTER_RATE_LIMIT_BURST", "1")
    monkeypatch.setenv("GEOCLUSTER_RATE_LIMIT_PER_MINUTE", "100")
    ws = Workspace(tmp_path / "ws")
    key = create_key(ws.catalog, "editor", "e")[1]
    settings = Settings(workspace=tmp_path / "ws")
    assert settings.security.rate_limit_burst == 1
    with LiveServer(settings) as c:
        h = {"X-API-Key": key}
        assert c.get("/datasets", headers=h).status_code == 200
        _refused(c.get("/datasets", headers=h), "1 per 1 second", "this API key")


def test_open_single_user_mode_is_not_limited(tmp_path):
    # loopback and no keys: the one local user (the map fetches many tiles at once)
    settings = Settings(workspace=tmp_path / "ws", security=SecuritySettings(rate_limit_burst=1))
    with LiveServer(settings) as c:
        assert c.get("/health").json()["auth"] == "open"
        assert {c.get("/datasets").status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(
    "field, value",
    [
        ("rate_limit_burst", 0),
        ("rate_limit_per_minute", -5),
        ("rate_limit_storage_uri", "file:///etc/passwd"),
    ],
)
def test_bad_limit_settings_are_refused(field, value):
    with pytest.raises(ValidationError) as err:
        SecuritySettings(**{field: value})
    assert field in str(err.value)
