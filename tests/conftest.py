"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


@pytest.fixture
def workspace(tmp_path):
    """An empty workspace in a temporary directory."""
    from geocluster.workspace import Workspace

    return Workspace(tmp_path / "ws")
