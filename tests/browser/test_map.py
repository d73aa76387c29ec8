"""The web map in a real headless Chromium against a live ``geocluster serve``.

Uses Debian's ``/usr/bin/chromium`` through Playwright's ``executable_path`` (never a
downloaded browser), with every non-loopback request aborted (as offline). On a desktop
(1280 x 860) and a phone (390 x 844) viewport: no console errors; the offline basemap's
tiles come from ``/basemap`` and its place names are drawn; a firm (at zoom 16) and an
asset (at zoom 9: assets are individual at every zoom) open popups whose text is read; a
cluster hull's popup shows its ranking; on the phone, legends and the layer list start
folded. Screenshots go to ``artifacts/map-desktop.png`` and ``artifacts/map-phone.png``
(``docs/`` holds copies).
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import mapbox_vector_tile
import pytest

from tests.api.fixtures import build_demo_like_workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
#: ISIC Rev.4 title of division 15 (UN Statistics Division, ISIC Rev.4, 2008).
ASSET_COLORS = {  # as in maps.build (ColorBrewer Set1)
    "cultural": (0xE4, 0x1A, 0x1C),
    "natural": (0x4D, 0xAF, 0x4A),
    "agro_food": (0xFF, 0x7F, 0x00),
    "tourism": (0x98, 0x4E, 0xA3),
    "infrastructure": (0x37, 0x7E, 0xB8),
}
MAP_JS = "window[Object.keys(window).find(k => k.startsWith('map_'))]"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _geocluster_cmd() -> list[str]:
    exe = REPO / ".venv" / "bin" / "geocluster"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from geocluster.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A workspace with firms, regions, indicators, assets (and their gaps), a KDE raster
    and a ranked clusters run, served by ``geocluster serve`` in a subprocess."""
    from geocluster.analyses.assets import run_assets

    assert Path(CHROMIUM).exists(), "Debian chromium is missing: .ci/run installs it"
    ws_dir = tmp_path_factory.mktemp("browser") / "ws"
    info = build_demo_like_workspace(ws_dir)
    info["gaps_run"] = run_assets(
        info["ws"], assets="assets", firms="firms", analysis="gaps", radius_m=2000.0
    )["run_id"]
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = ws_dir.parent / "serve.log"
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
        # a file, not a pipe: a pipe nobody reads fills up and blocks the server
        stdout=open(log, "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace")
            pytest.fail(f"geocluster serve exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("geocluster serve did not answer /health within 60 s")
    yield base, info
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Session:
    """One browser page with offline routing and the logs the assertions read."""

    def __init__(self, browser, base: str, viewport: dict, scale: float):
        self.base = base
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.requested: list[str] = []
        self.basemap_bodies: list[bytes] = []
        self.context = browser.new_context(viewport=viewport, device_scale_factor=scale)
        self.context.route("**/*", self._route)
        page = self.page = self.context.new_page()
        page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("request", lambda req: self.requested.append(req.url))
        page.on("response", self._response)

    def _route(self, route):
        url = urlparse(route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
            self.blocked.append(route.request.url)
            route.abort()  # the network beyond this machine is off
        else:
            route.continue_()

    def _response(self, resp):
        if resp.status >= 400:
            self.errors.append(f"HTTP {resp.status} {resp.url}")
        elif "/basemap/tiles/" in resp.url and resp.status == 200:
            self.basemap_bodies.append(resp.body())

    def settle(self, ms: int = 700) -> None:
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_timeout(ms)  # protomaps-leaflet paints tiles after a short delay

    def view(self, lat: float, lon: float, zoom: int) -> None:
        self.page.evaluate(
            f"([lat, lon, z]) => {MAP_JS}.setView([lat, lon], z, {{animate: false}})",
            [lat, lon, zoom],
        )
        self.settle()

    def click_at(self, lat: float, lon: float) -> str:
        """Click the map at a position and return the text of the popup that opens."""
        pt = self.page.evaluate(
            f"""([lat, lon]) => {{
                const map = {MAP_JS};
                const p = map.latLngToContainerPoint([lat, lon]);
                const r = map.getContainer().getBoundingClientRect();
                return [r.left + p.x, r.top + p.y];
            }}""",
            [lat, lon],
        )
        self.page.evaluate(f"{MAP_JS}.closePopup()")
        # the closed popup fades out for 200 ms: wait until it is gone, or the wait
        # below would read its stale text
        self.page.wait_for_function(
            "() => document.querySelectorAll('.leaflet-popup-content').length === 0",
            timeout=5000,
        )
        self.page.mouse.click(pt[0], pt[1])
        # a popup replaced by another fades out for 200 ms: wait until one is left
        self.page.wait_for_function(
            "() => document.querySelectorAll('.leaflet-popup-content').length === 1",
            timeout=5000,
        )
        return self.page.locator(".leaflet-popup-content").inner_text()

    def pixel_of_layer(self, layer_name: str, lat: float, lon: float) -> list[int]:
        """RGBA of one vector layer's own canvas at a position (other layers ignored)."""
        return self.page.evaluate(
            f"""([name, lat, lon]) => {{
                const map = {MAP_JS};
                let layer = null;
                map.eachLayer(l => {{ if (l.gcKind === name) layer = l; }});
                const pt = map.latLngToContainerPoint([lat, lon]);
                const box = map.getContainer().getBoundingClientRect();
                for (const key in layer._tiles) {{
                    const el = layer._tiles[key].el;
                    const r = el.getBoundingClientRect();
                    const x = box.left + pt.x - r.left, y = box.top + pt.y - r.top;
                    if (x < 0 || y < 0 || x >= r.width || y >= r.height) continue;
                    const s = el.width / r.width;
                    return Array.from(el.getContext('2d').getImageData(
                        Math.floor(x * s), Math.floor(y * s), 1, 1).data);
                }}
                return null;
            }}""",
            [layer_name, lat, lon],
        )

    def painted_pixel(self, layer_name: str, lat: float, lon: float, wait_s: float = 8.0):
        """:meth:`pixel_of_layer` once the tile there is painted (tiles paint one by one)."""
        deadline = time.monotonic() + wait_s
        while True:
            rgba = self.pixel_of_layer(layer_name, lat, lon)
            if (rgba and rgba[3] > 0) or time.monotonic() > deadline:
                return rgba
            self.page.wait_for_timeout(200)

    def label_pixels(self) -> int:
        """Painted pixels on the place-name canvases."""
        return self.page.evaluate(
            """() => {
                let n = 0;
                document.querySelectorAll('.leaflet-gcLabels-pane canvas').forEach(c => {
                    if (!c.width || !c.height) return;
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                });
                return n;
            }"""
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _lonlat_3857(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 metres -> lon/lat (spherical Mercator inverse, R = 6378137 m)."""
    r = 6378137.0
    return math.degrees(x / r), math.degrees(2 * math.atan(math.exp(y / r)) - math.pi / 2)


def _first_item(base: str, collection: str, **params) -> dict:
    r = httpx.get(f"{base}/collections/{collection}/items", params={"limit": 1, **params})
    r.raise_for_status()
    return r.json()["features"][0]


def _save(page, name: str) -> None:
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    page.screenshot(path=str(out / name), full_page=False)


def _check_basemap(s: Session) -> None:
    # the offline basemap came from /basemap, with place labels, and they were drawn
    layers = set()
    for body in s.basemap_bodies:
        if body:
            layers |= set(mapbox_vector_tile.decode(body))
    assert any(s.basemap_bodies) and {"land", "places"} <= layers, layers
    deadline = time.monotonic() + 8
    while s.label_pixels() <= 200 and time.monotonic() < deadline:
        s.page.wait_for_timeout(200)  # labels are laid out, then painted tile by tile
    assert s.label_pixels() > 200


def _check_firm_and_asset_popups(s: Session, base: str) -> None:
    firm = _first_item(base, "firms")
    lon, lat = firm["geometry"]["coordinates"]
    s.view(lat, lon, 16)
    dot = s.painted_pixel("firms", lat, lon)  # its tile is loaded and drawn
    assert dot is not None and dot[3] > 0, dot
    text = s.click_at(lat, lon)
    props = firm["properties"]
    assert props["name"] in text, text
    # the firm's own sector with its ISIC Rev.4 title (the fixture's first firm is not
    # always of division 15), and units
    from geocluster.sectors import title_of

    code = str(props.get("sector_code") or props.get("isic_division"))
    assert f"{code} – {title_of(code)}" in text and "persons" in text, text
    assert "Women-led" in text and ("yes" in text or "no" in text), text

    asset = _first_item(base, "assets")
    alon, alat = asset["geometry"]["coordinates"]
    s.view(alat, alon, 9)  # below the firms' points zoom: assets are individual anyway
    rgba = s.painted_pixel("assets", alat, alon)
    want = ASSET_COLORS[asset["properties"]["category"]]
    assert rgba is not None and rgba[3] > 200, rgba
    assert all(abs(a - b) <= 25 for a, b in zip(rgba[:3], want)), (rgba, want)
    text = s.click_at(alat, alon)
    assert asset["properties"]["name"] in text and "Category" in text, text
    assert asset["properties"]["category"].replace("_", "-") in text.replace("_", "-") or (
        "heritage" in text or "tourism" in text or "infrastructure" in text
    ), text


def _overview(s: Session) -> None:
    s.page.evaluate(f"{MAP_JS}.closePopup()")
    bounds = s.page.evaluate(
        f"""() => {{
            const map = {MAP_JS};
            let b = null;
            map.eachLayer(l => {{ if (l.getBounds && l.options && l.options.pane === 'gcRegions'
                && l.feature) b = b ? b.extend(l.getBounds()) : L.latLngBounds(l.getBounds().getSouthWest(), l.getBounds().getNorthEast()); }});
            map.fitBounds(b, {{animate: false}});
            return map.getZoom();
        }}"""
    )
    assert bounds >= 5
    s.settle(900)


def test_map_on_a_desktop(live_server, browser):
    base, info = live_server
    s = Session(browser, base, DESKTOP, 1)
    page = s.page
    try:
        response = page.goto(f"{base}/map", wait_until="networkidle")
        assert response is not None and response.status == 200
        s.settle()

        assert any("/static/leaflet/leaflet.js" in u for u in s.requested)
        assert any("/static/protomaps-leaflet/protomaps-leaflet.js" in u for u in s.requested)
        assert any("/collections/firms/tiles/WebMercatorQuad/" in u for u in s.requested)
        assert any(f"/rasters/{info['kde']}/tiles/WebMercatorQuad/" in u for u in s.requested)
        assert any("/collections/assets/tiles/" in u for u in s.requested)
        _check_basemap(s)

        # map tools: fullscreen, measure, scale bar, download links
        assert page.locator(".leaflet-control-zoom-fullscreen").count() == 1
        assert page.locator(".polyline-measure-unicode-icon").count() >= 1
        assert page.locator(".leaflet-control-scale").count() == 1
        assert page.locator(".gc-downloads a").count() >= 3

        # layer control lists every layer; legends are open on a desktop
        overlays = page.locator(".leaflet-control-layers-overlays label")
        names = [t.strip() for t in overlays.all_inner_texts()]
        for expected in (
            "Offline basemap",
            "Place names",
            "OpenStreetMap",
            "Firms",
            "Firm density",
            "Point clusters",
            "Choropleth",
            "Territorial assets",
            "Asset gaps",
            "Hotspots",
        ):
            assert any(expected in n for n in names), (expected, names)
        assert page.locator(".leaflet-control-layers-expanded").count() == 1
        osm = overlays.filter(has_text="OpenStreetMap").locator("input")
        assert not osm.is_checked()  # the online layer stays off

        # legends follow their layer, with units and sources
        kde = page.locator(".gc-kde-legend")
        assert kde.is_visible() and "transparent" in kde.inner_text()
        assert "source" in kde.inner_text()
        assets_legend = page.locator(".gc-assets-legend")
        assert assets_legend.is_visible() and "cultural heritage" in assets_legend.inner_text()
        assets_box = overlays.filter(has_text="Territorial assets").locator("input")
        assets_box.uncheck()
        assert not assets_legend.is_visible()
        assert "Assets" not in page.locator(".gc-downloads").inner_text()
        assets_box.check()
        s.settle(200)
        assert assets_legend.is_visible()

        hot_box = overlays.filter(has_text="Hotspots").locator("input")
        hot_legend = page.locator(".gc-hotspots-legend")
        assert not hot_legend.is_visible()
        hot_box.check()
        assert hot_legend.is_visible() and "significance" in hot_legend.inner_text()
        hot_box.uncheck()
        gaps_legend = page.locator(".gc-gaps-legend")
        assert gaps_legend.is_visible() and "radius: 2,000 m" in gaps_legend.inner_text()

        # the choropleth: every region painted (sampled inside each)
        unpainted = page.evaluate(
            f"""() => {{
            const map = {MAP_JS};
            const canvas = document.querySelector('.leaflet-gcRegions-pane canvas');
            const ctx = canvas.getContext('2d');
            const origin = L.DomUtil.getPosition(canvas);
            const scale = canvas.width / canvas.clientWidth;
            const missing = [];
            let checked = 0;
            map.eachLayer(l => {{
                if (!l.feature || l.options.pane !== 'gcRegions') return;
                checked += 1;
                const pt = map.latLngToLayerPoint(l.getCenter()).subtract(origin);
                const px = ctx.getImageData(pt.x * scale, pt.y * scale, 1, 1).data;
                if (px[3] === 0) missing.push(l.feature.properties.region_id);
            }});
            return {{checked, missing}};
        }}"""
        )
        assert unpainted["checked"] >= 4 and unpainted["missing"] == [], unpainted

        # a cluster hull's popup: sizes with units, the sector's title, ranking weights
        page.locator("path.gc-cluster").first.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5000)
        text = popup.inner_text()
        assert "Cluster" in text and "firms" in text and "Dominant sector" in text, text
        assert "Women-led firms" in text and "%" in text, text
        assert "Ranking components" in text and "(weight" in text, text

        _check_firm_and_asset_popups(s, base)

        # overview with a cluster popup, for the docs
        _overview(s)
        # the KDE: opaque at its peak, transparent where density is low but not zero
        # (tests/api/fixtures.write_kde_raster: a Gaussian, sd 10 cells of 1 km, centred
        # on cell 32 of 64; 27 cells out it is exp(-27**2 / 200) = 2.6 % of the peak)
        peak = _lonlat_3857(-11_510_000 + 32_500, 2_360_000 - 32_500)
        flank = _lonlat_3857(-11_510_000 + 5_500, 2_360_000 - 32_500)
        assert s.painted_pixel("kde", peak[1], peak[0])[3] > 200
        assert s.pixel_of_layer("kde", flank[1], flank[0])[3] == 0
        page.locator("path.gc-cluster").first.click()
        page.locator(".leaflet-popup-content").wait_for(timeout=5000)
        page.wait_for_timeout(600)  # let the popup fade in
        _save(page, "map-desktop.png")
    finally:
        s.close()
    assert not s.blocked, f"requests to non-local hosts: {s.blocked}"
    assert not s.errors, f"console errors: {s.errors}"


def test_map_on_a_phone(live_server, browser):
    base, _info = live_server
    s = Session(browser, base, PHONE, 2)
    page = s.page
    try:
        response = page.goto(f"{base}/map", wait_until="networkidle")
        assert response is not None and response.status == 200
        s.settle()
        _check_basemap(s)

        # folded: the layer list behind its button, every legend to its title line
        assert page.locator(".leaflet-control-layers-expanded").count() == 0
        folds = page.locator("details.gc-fold")
        assert folds.count() >= 4
        assert page.evaluate(
            "() => [...document.querySelectorAll('details.gc-fold')].every(d => !d.open)"
        )
        covered = page.evaluate(
            """() => {
                let area = 0;
                document.querySelectorAll('.leaflet-control').forEach(c => {
                    const r = c.getBoundingClientRect();
                    if (c.offsetParent !== null) area += r.width * r.height;
                });
                return area / (window.innerWidth * window.innerHeight);
            }"""
        )
        assert covered < 0.2, f"controls cover {covered:.0%} of the phone screen"
        # a legend opens on a tap, the layer list from its button
        legend = page.locator(".gc-kde-legend details")
        legend.locator("summary").click()
        assert legend.evaluate("d => d.open") and "transparent" in legend.inner_text()
        page.locator(".leaflet-control-layers-toggle").click()
        assert page.locator(".leaflet-control-layers-expanded").count() == 1
        s.page.mouse.click(30, 500)  # a tap on the map (left of the list) folds it again
        page.wait_for_timeout(200)
        assert page.locator(".leaflet-control-layers-expanded").count() == 0

        _check_firm_and_asset_popups(s, base)
        _overview(s)
        page.wait_for_timeout(300)
        _save(page, "map-phone.png")
    finally:
        s.close()
    assert not s.blocked, f"requests to non-local hosts: {s.blocked}"
    assert not s.errors, f"console errors: {s.errors}"
