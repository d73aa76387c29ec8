"""The web map as a viewer, in a real headless Chromium against a keyed ``geocluster serve``.

A server with API keys (not the open mode) over a workspace with firms (private by
default, then made public by an admin with ``PATCH /datasets/{id}``). The viewer (a
viewer key, and an anonymous caller) opens ``/map``:

- firms **private**: the page neither draws nor requests the firms, their clusters or
  anything derived from them, and no firm name or id is in the page;
- firms **public**: firms are safe grid cells at zooms 6, 10, 14 and 16 (and deeper): the
  MVT tiles the page fetched are decoded, are not empty, carry only ``count`` (>= 3) and
  ``aggregated``, never ``firm_id``, ``name`` or ``employees``; a click on a cell opens
  the cell's count, a click on a firm's own location never a popup with a firm name.

On the same server an editor (public firms) and the admin (private firms) see firm points
and popups with the firm's name. Requests beyond the loopback are aborted, and the page
logs no console errors or HTTP errors (no 403/404 layer).

Helpers (``Session``, the Chromium launch) come from ``tests/browser/test_map.py``.
"""

from __future__ import annotations

import math
import os
import subprocess
import time

import httpx
import mapbox_vector_tile
import pytest

from geocluster.auth import create_key
from tests.api.fixtures import CENTRES, build_demo_like_workspace, synthetic_firms
from tests.browser.test_map import (
    CHROMIUM,
    DESKTOP,
    MAP_JS,
    REPO,
    Session,
    _free_port,
    _geocluster_cmd,
    browser,  # noqa: F401 - the module-scoped Chromium fixture
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ZOOMS = (6, 10, 14, 16, 18)
SAFE_PROPERTIES = {"count", "aggregated"}


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """``geocluster serve`` on loopback over a workspace with keys: the API-keys mode."""
    assert os.path.exists(CHROMIUM), "Debian chromium is missing: .ci/run installs it"
    ws_dir = tmp_path_factory.mktemp("viewer") / "ws"
    info = build_demo_like_workspace(ws_dir)
    catalog = info["ws"].catalog
    keys = {
        role: create_key(catalog, role, f"browser {role}")[1]
        for role in ("viewer", "editor", "admin")
    }
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        # a map view fetches ~100 tiles at once; the limiter is tested in tests/api
        "GEOCLUSTER_RATE_LIMIT_PER_MINUTE": "100000",
        "GEOCLUSTER_RATE_LIMIT_BURST": "100000",
    }
    proc = subprocess.Popen(
        [
            *_geocluster_cmd(),
            "serve",
            "--workspace",
            str(ws_dir),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        cwd=REPO,
        env=env,
        stdout=open(ws_dir.parent / "serve.log", "wb"),  # noqa: SIM115 - closed with proc
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = (ws_dir.parent / "serve.log").read_text(errors="replace")
            pytest.fail(f"geocluster serve exited with {proc.returncode}:\n{out}")
        try:
            r = httpx.get(f"{base}/health", timeout=1)
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("geocluster serve did not answer /health within 60 s")
    assert r.json()["auth"] == "keys", r.json()
    firms = synthetic_firms()  # the same seeded firms build_demo_like_workspace stored
    secrets = set(firms["name"]) | set(firms["firm_id"])
    yield {"base": base, "keys": keys, "info": info, "firms": firms, "secrets": secrets}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _set_visibility(server, visibility: str) -> None:
    r = httpx.patch(
        f"{server['base']}/datasets/firms",
        json={"visibility": visibility},
        headers={"X-API-Key": server["keys"]["admin"]},
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["visibility"] == visibility, r.text
    time.sleep(2.1)  # the collection resolver re-reads the catalogue after 2 s


class _Keyed:
    """A browser whose contexts send an API key with every request (as a proxy would)."""

    def __init__(self, chromium, key: str | None):
        self.browser = chromium
        self.headers = {"X-API-Key": key} if key else {}

    def new_context(self, **kwargs):
        return self.browser.new_context(extra_http_headers=self.headers, **kwargs)


class MapPage:
    """A :class:`Session` on ``/map`` that also keeps the firm tiles the page fetched."""

    def __init__(self, chromium, base: str, key: str | None):
        self.s = Session(_Keyed(chromium, key), base, DESKTOP, 1)
        self.tiles: dict[tuple[int, int, int], bytes] = {}
        self.statuses = []
        self.s.page.on("response", self._tile)
        response = self.s.page.goto(f"{base}/map", wait_until="networkidle")
        assert response is not None and response.status == 200
        self.html = response.text()
        self.s.settle()

    def _tile(self, resp) -> None:
        marker = "/collections/firms/tiles/WebMercatorQuad/"
        if marker in resp.url:
            self.statuses.append((resp.url.split(marker)[1].split("?")[0], resp.status))
        if marker in resp.url and resp.status == 200:
            z, x, y = (int(v) for v in resp.url.split(marker)[1].split("?")[0].split("/"))
            self.tiles[(z, x, y)] = resp.body()

    def wait_tiles(self, z: int, timeout_s: float = 20.0) -> None:
        """Wait until every firm tile the page requested at zoom ``z`` has answered."""
        marker = "/collections/firms/tiles/WebMercatorQuad/"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            asked = {u.split(marker)[1].split("?")[0] for u in self.s.requested if marker in u}
            asked = {a for a in asked if a.startswith(f"{z}/")}
            done = {u for u, _ in self.statuses}
            if asked and asked <= done:
                break
            self.s.page.wait_for_timeout(200)
        self.s.page.wait_for_timeout(500)  # painted

    def popup_at(self, lat: float, lon: float) -> str | None:
        """Click the map at a position; the popup's text, or None if none opens."""
        page = self.s.page
        page.evaluate(f"{MAP_JS}.closePopup()")
        page.wait_for_function(
            "() => document.querySelectorAll('.leaflet-popup-content').length === 0",
            timeout=5000,
        )
        pt = page.evaluate(
            f"""([lat, lon]) => {{
                const map = {MAP_JS};
                const p = map.latLngToContainerPoint([lat, lon]);
                const r = map.getContainer().getBoundingClientRect();
                return [r.left + p.x, r.top + p.y];
            }}""",
            [lat, lon],
        )
        page.mouse.click(pt[0], pt[1])
        try:
            page.wait_for_function(
                "() => document.querySelectorAll('.leaflet-popup-content').length === 1",
                timeout=2500,
            )
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: no popup opened
            return None
        return page.locator(".leaflet-popup-content").inner_text()

    def close(self) -> None:
        self.s.close()


def _features(body: bytes) -> list[dict]:
    if not body:
        return []
    return mapbox_vector_tile.decode(body).get("default", {}).get("features", [])


def _tile_lonlat(z: int, x: int, y: int, px: float, py: float, extent: int = 4096):
    """Lon/lat of tile coordinates (mapbox_vector_tile decodes with y up)."""
    n = 1 << z
    lon = (x + px / extent) / n * 360.0 - 180.0
    yy = y + (extent - py) / extent
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * yy / n))))
    return lon, lat


def _dense_centre(server) -> tuple[float, float]:
    """The firm nearest the first synthetic centre (the densest place)."""
    firms = server["firms"]
    lon0, lat0, _ = CENTRES[0]
    d = (firms.geometry.x - lon0) ** 2 + (firms.geometry.y - lat0) ** 2
    p = firms.geometry.iloc[int(d.to_numpy().argmin())]
    return p.x, p.y


def _assert_no_secret(server, text: str, where: str) -> None:
    leaked = [s for s in server["secrets"] if s in text]
    assert not leaked, (where, leaked[:5])


def _check_grid_outlines(m: MapPage) -> None:
    """Cluster outlines drawn for a viewer are unions of public-grid cells: every
    vertex is a corner of the zoom-13 grid, none a firm location."""
    from geocluster.disclosure import PUBLIC_ZOOM

    rings = m.s.page.evaluate(
        f"""() => {{
            const out = [];
            {MAP_JS}.eachLayer(l => {{
                if (!l.feature || !l.getLatLngs || !l.options.className ||
                    l.options.className.indexOf('gc-cluster') < 0) return;
                out.push(l.getLatLngs().flat(3).map(p => [p.lng, p.lat]));
            }});
            return out;
        }}"""
    )
    assert rings, "no cluster outline on the viewer's map"
    n = 1 << PUBLIC_ZOOM
    for ring in rings:
        for lon, lat in ring:
            gx = (lon + 180.0) / 360.0 * n
            rad = math.radians(lat)
            gy = (1 - math.log(math.tan(rad) + 1 / math.cos(rad)) / math.pi) / 2 * n
            assert abs(gx - round(gx)) < 1e-3 and abs(gy - round(gy)) < 1e-3, (lon, lat)


def _check_viewer_public(server, chromium, key: str | None) -> None:
    m = MapPage(chromium, server["base"], key)
    try:
        _assert_no_secret(server, m.html, "map html")
        assert "firms per grid cell" in m.html and "one firm (from zoom 12)" not in m.html
        _check_grid_outlines(m)
        lon, lat = _dense_centre(server)
        clicked = 0
        for z in ZOOMS:
            m.s.view(lat, lon, z)
            m.wait_tiles(z)
            # every tile the page fetched at this zoom (the first view's may be cached)
            fetched = {k: v for k, v in m.tiles.items() if k[0] == z}
            assert fetched, f"no firm tile fetched at zoom {z}"
            cells = []
            for (tz, tx, ty), body in fetched.items():
                for f in _features(body):
                    props = f["properties"]
                    assert set(props) <= SAFE_PROPERTIES, (z, props)
                    assert props.get("aggregated") and props["count"] >= 3, (z, props)
                    # cells never finer than the public grid (zoom 16): no two features
                    # of the page's tiles at the same zoom in one zoom-16 cell
                    cx, cy = f["geometry"]["coordinates"]
                    cells.append(_tile_lonlat(tz, tx, ty, cx, cy) + (props["count"],))
            assert cells, f"the firm tiles at zoom {z} are empty: the viewer sees no firms"
            if z >= 16:
                # never finer than the public grid (zoom 16): one feature per zoom-16
                # cell (tiles repeat their neighbours' edge cells: distinct positions)
                import numpy as np

                from geocluster.disclosure import grid_cells

                spots = sorted({(round(c[0], 7), round(c[1], 7)) for c in cells})
                ix, iy = grid_cells(
                    np.array([c[0] for c in spots]), np.array([c[1] for c in spots]), 16
                )
                assert len(set(zip(ix, iy, strict=True))) == len(spots), (z, spots[:6])
            # a click on a cell: its count, no firm
            clon, clat, count = max(cells, key=lambda c: c[2])
            if z == 16:  # deeper: look at the busiest public cell (it spans many tiles)
                lon, lat = clon, clat
            assert m.s.painted_pixel("firms", clat, clon)[3] > 0, (z, clon, clat)
            text = m.popup_at(clat, clon)
            if text is not None:  # a cell's, or a region's or cluster's over it
                _assert_no_secret(server, text, f"popup at zoom {z}")
                clicked += 1
            # a click on a firm's own location: never that firm's popup
            text = m.popup_at(lat, lon)
            if text is not None:
                _assert_no_secret(server, text, f"popup on a firm at zoom {z}")
        assert clicked >= 3, "the map opened no popup where firms are"
    finally:
        m.close()
    assert not m.s.blocked, f"requests to non-local hosts: {m.s.blocked}"
    assert not m.s.errors, f"console or HTTP errors: {m.s.errors}"


def _check_sees_points(server, chromium, key: str) -> None:
    """An editor or admin: individual firms at zoom 16, a popup with the name."""
    m = MapPage(chromium, server["base"], key)
    try:
        assert "one firm (from zoom 12)" in m.html
        lon, lat = _dense_centre(server)
        m.s.view(lat, lon, 16)
        m.wait_tiles(16, timeout_s=60)  # on a loaded machine z16 tiles come after settle
        props = [
            f["properties"] for (z, _, _), b in m.tiles.items() if z == 16 for f in _features(b)
        ]
        assert any("firm_id" in p and "name" in p for p in props), props[:3]
        dot = m.s.painted_pixel("firms", lat, lon)
        assert dot is not None and dot[3] > 0, dot
        text = m.popup_at(lat, lon)
        firms = server["firms"]
        d = (firms.geometry.x - lon) ** 2 + (firms.geometry.y - lat) ** 2
        name = firms["name"].iloc[int(d.to_numpy().argmin())]
        assert text is not None and name in text, text
    finally:
        m.close()
    assert not m.s.errors, f"console or HTTP errors: {m.s.errors}"


def test_private_firms_are_not_on_a_viewers_map(keyed_server, browser):  # noqa: F811
    _set_visibility(keyed_server, "private")
    for key in (keyed_server["keys"]["viewer"], None):
        m = MapPage(browser, keyed_server["base"], key)
        try:
            _assert_no_secret(keyed_server, m.html, "map html")
            assert not any("/collections/firms/" in u for u in m.s.requested)
            # nor anything made of the firms: the clusters run, its hulls
            run = keyed_server["info"]["clusters_run"]
            assert run not in m.html
            assert m.s.page.locator("path.gc-cluster").count() == 0
            # what is public still shows: regions, assets
            assert any("/collections/assets/tiles/" in u for u in m.s.requested)
        finally:
            m.close()
        assert not m.s.errors, f"console or HTTP errors: {m.s.errors}"
        assert not m.s.blocked
    # naming the private firms is answered as an unknown dataset
    r = httpx.get(f"{keyed_server['base']}/map", params={"firms": "firms"}, timeout=60)
    assert r.status_code == 404, r.status_code
    # the admin sees the private firms one by one
    _check_sees_points(keyed_server, browser, keyed_server["keys"]["admin"])


def test_public_firms_are_safe_cells_for_a_viewer(keyed_server, browser):  # noqa: F811
    _set_visibility(keyed_server, "public")
    try:
        _check_viewer_public(keyed_server, browser, keyed_server["keys"]["viewer"])
        _check_viewer_public(keyed_server, browser, None)  # anonymous
        _check_sees_points(keyed_server, browser, keyed_server["keys"]["editor"])
    finally:
        _set_visibility(keyed_server, "private")
