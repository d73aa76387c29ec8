"""Disclosure policy settings: every knob from ``GEOCLUSTER_*``, validated at start-up.

A changed setting changes what a viewer gets (tiles decoded, a KDE surface), and a bad
value stops ``geocluster serve`` with one line and exit 2 before anything is served.
"""

from __future__ import annotations

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.settings import DisclosureSettings, Settings
from geocluster.auth import create_key
from geocluster.cli import main
from geocluster.disclosure import DisclosurePolicy
from geocluster.errors import InvalidInput
from geocluster.workspace import Workspace
from tests.api.fixtures import CENTRES, synthetic_firms, write_kde_raster

WMQ = morecantile.tms.get("WebMercatorQuad")

ENV = {
    "GEOCLUSTER_MIN_CONTRIBUTORS": ("5", "min_contributors", 5),
    "GEOCLUSTER_DOMINANCE_N": ("3", "dominance_k", 3),
    "GEOCLUSTER_DOMINANCE_K": ("0.7", "dominance_p", 0.7),
    "GEOCLUSTER_P_PERCENT": ("0.2", "p_percent", 0.2),
    "GEOCLUSTER_ROUND_TO": ("5", "round_to", 5),
    "GEOCLUSTER_ENFORCE": ("true", "enforce", True),
    "GEOCLUSTER_PUBLIC_FIRM_POINTS": ("false", "firm_points", False),
    "GEOCLUSTER_PUBLIC_ZOOM": ("11", "public_zoom", 11),
    "GEOCLUSTER_BANDWIDTH_FLOOR_M": ("2500", "bandwidth_floor_m", 2500.0),
    "GEOCLUSTER_HULL_SMOOTHING_M": ("400", "hull_smoothing_m", 400.0),
}


def test_every_policy_knob_comes_from_the_environment(tmp_path, monkeypatch):
    for var, (text, _, _) in ENV.items():
        monkeypatch.setenv(var, text)
    monkeypatch.setenv("GEOCLUSTER_PUBLIC_GRID_MAX_ZOOM", "14")
    settings = Settings(workspace=tmp_path / "ws")
    assert settings.disclosure.public_grid_max_zoom == 14
    policy = create_app(settings).state.policy
    for var, (_, field, value) in ENV.items():
        assert getattr(policy, field) == value, var
    # the defaults are the library's defaults (same tile tokens and archives as before)
    monkeypatch.undo()
    assert DisclosureSettings().policy() == DisclosurePolicy()
    # p_percent 0 turns the p% rule off
    assert DisclosureSettings(p_percent=0).policy().p_percent is None


@pytest.mark.parametrize(
    "var, value",
    [
        ("GEOCLUSTER_MIN_CONTRIBUTORS", "0"),
        ("GEOCLUSTER_DOMINANCE_N", "0"),
        ("GEOCLUSTER_DOMINANCE_K", "1.5"),
        ("GEOCLUSTER_P_PERCENT", "-0.1"),
        ("GEOCLUSTER_ROUND_TO", "0"),
        ("GEOCLUSTER_PUBLIC_ZOOM", "25"),
        ("GEOCLUSTER_PUBLIC_GRID_MAX_ZOOM", "abc"),
        ("GEOCLUSTER_BANDWIDTH_FLOOR_M", "-1"),
        ("GEOCLUSTER_HULL_SMOOTHING_M", "nan"),
        ("GEOCLUSTER_ENFORCE", "maybe"),
    ],
)
def test_bad_values_stop_serve_with_one_line_and_exit_2(tmp_path, monkeypatch, capsys, var, value):
    Workspace(tmp_path / "ws")
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError):
        DisclosureSettings()
    code = main(["serve", "--workspace", str(tmp_path / "ws"), "--port", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("geocluster: error: bad setting ") and "\n" not in err, err
    assert var in err, err
    assert "Traceback" not in err


def test_the_policy_checks_its_own_values():
    for bad in (
        {"dominance_k": 0},
        {"p_percent": 2.0},
        {"round_to": 0},
        {"public_zoom": 31},
        {"bandwidth_floor_m": -5.0},
        {"hull_smoothing_m": float("inf")},
    ):
        with pytest.raises(InvalidInput):
            DisclosurePolicy(**bad)


# -- a changed setting changes what a viewer gets ----------------------------------------
@pytest.fixture(scope="module")
def keyed_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("settings")
    ws = Workspace(root / "ws")
    firms = synthetic_firms()
    ws.add_dataset("firms", firms, name="firms")
    tif = write_kde_raster(root / "kde.tif")
    ws.add_raster(tif, name="kde", kind="kde", meta={"bandwidth_m": 1500.0, "n_firms": 800})
    viewer = create_key(ws.catalog, "viewer", "v")[1]
    admin = create_key(ws.catalog, "admin", "a")[1]
    return root / "ws", viewer, admin


def _viewer_client(ws_dir, admin, **disclosure):
    settings = Settings(workspace=ws_dir, disclosure=DisclosureSettings(**disclosure))
    client = TestClient(create_app(settings))
    r = client.patch("/datasets/firms", json={"visibility": "public"}, headers={"X-API-Key": admin})
    assert r.status_code == 200, r.text
    return client


def _tile_counts(client, key, z: int) -> list[int]:
    t = WMQ.tile(CENTRES[0][0], CENTRES[0][1], z)
    r = client.get(
        f"/collections/firms/tiles/WebMercatorQuad/{z}/{t.x}/{t.y}", headers={"X-API-Key": key}
    )
    assert r.status_code == 200, r.text
    if not r.content:
        return []
    return [
        f["properties"]["count"]
        for f in mapbox_vector_tile.decode(r.content)["default"]["features"]
    ]


def test_threshold_setting_changes_the_viewers_tiles(keyed_ws):
    ws_dir, viewer, admin = keyed_ws
    with _viewer_client(ws_dir, admin) as c:
        default = _tile_counts(c, viewer, 8)
    with _viewer_client(ws_dir, admin, min_contributors=20) as c:
        strict = _tile_counts(c, viewer, 8)
    assert min(default) >= 3 and any(n < 20 for n in default), default
    assert strict and min(strict) >= 20, strict  # the small cells are gone
    assert len(strict) < len(default)


def test_public_grid_setting_changes_the_viewers_cells(keyed_ws):
    ws_dir, viewer, admin = keyed_ws
    # at zoom 10 the tile has 32 x 32 cells of zoom 15 by default; with the public grid
    # at zoom 12 it has 4 x 4 cells, each holding the firms of 64 finer ones
    with _viewer_client(ws_dir, admin) as c:
        fine = _tile_counts(c, viewer, 10)
    with _viewer_client(ws_dir, admin, public_grid_max_zoom=12) as c:
        coarse = _tile_counts(c, viewer, 10)
    assert len(coarse) <= 16 < len(fine)
    assert max(coarse) > max(fine)


def test_bandwidth_floor_setting_changes_the_viewers_surface(keyed_ws):
    ws_dir, viewer, admin = keyed_ws
    t = WMQ.tile(CENTRES[0][0], CENTRES[0][1], 9)
    url = f"/rasters/kde/tiles/WebMercatorQuad/9/{t.x}/{t.y}.png"
    with _viewer_client(ws_dir, admin) as c:  # floor 1000 m < bandwidth 1500 m
        assert c.get(url, headers={"X-API-Key": viewer}).status_code == 200
    with _viewer_client(ws_dir, admin, bandwidth_floor_m=2000.0) as c:
        r = c.get(url, headers={"X-API-Key": viewer})
        assert r.status_code == 403 and "2000 m" in r.json()["detail"], r.text
        assert c.get(url, headers={"X-API-Key": admin}).status_code == 200  # editors+ see it
