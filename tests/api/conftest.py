"""Fixtures of the API tests: an app per workspace, through ``create_app(Settings(...))``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.fixtures import build_demo_like_workspace


@pytest.fixture
def client(tmp_path):
    """A client on an empty workspace."""
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A populated workspace (firms, regions, indicators, assets, KDE, clusters, hotspots)."""
    ws_dir = tmp_path_factory.mktemp("demo") / "ws"
    return build_demo_like_workspace(ws_dir)


@pytest.fixture
def demo_client(demo):
    app = create_app(Settings(workspace=demo["ws"].path))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
