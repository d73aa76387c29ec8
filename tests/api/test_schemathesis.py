"""Property-based tests of the whole HTTP API from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, in-process over
``create_app(Settings(workspace=...))`` on a small populated workspace, with all of
schemathesis' checks: no server error (5xx), every response conforming to its documented
schema, content type and headers, every status code documented, invalid requests rejected.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.settings import Settings
from tests.api.fixtures import build_demo_like_workspace

#: examples per operation: ~35 operations stay well under 90 s together on 2 cores
MAX_EXAMPLES = 12


# The OpenAPI document does not depend on the workspace (opened lazily, on first request):
# it is read once from an app that never opens one, then each test runs against its own.
_SCHEMA_APP = create_app(Settings(workspace=Path(tempfile.gettempdir()) / "geocluster-unused"))
schema = schemathesis.openapi.from_asgi("/openapi.json", _SCHEMA_APP)


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    ws_dir = tmp_path_factory.mktemp("schemathesis") / "ws"
    build_demo_like_workspace(ws_dir)
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
    case.call_and_validate(app=app)
