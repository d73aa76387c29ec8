"""The web map in a real headless Chromium against a live ``geocluster serve``.

Uses Debian's ``/usr/bin/chromium`` through Playwright's ``executable_path`` (never a
downloaded browser). Checks: no console errors, no request to a non-local host, layers
toggle, a cluster hull's popup can be opened and read; saves ``artifacts/map.png``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
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
    """A workspace with firms, regions, indicators, assets, a KDE raster and a clusters
    run, served by ``geocluster serve`` in a subprocess."""
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: .ci/run installs it"
    ws_dir = tmp_path_factory.mktemp("browser") / "ws"
    info = build_demo_like_workspace(ws_dir)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
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


def test_map_in_chromium(live_server):
    from playwright.sync_api import sync_playwright

    base, info = live_server
    errors: list[str] = []
    foreign: list[str] = []
    requested: list[str] = []

    def on_request(req):
        url = urlparse(req.url)
        if url.scheme in ("http", "https", "ws", "wss"):
            requested.append(req.url)
            if url.hostname not in LOCAL_HOSTS:
                foreign.append(req.url)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("request", on_request)
            page.on(
                "response",
                lambda resp: (
                    errors.append(f"HTTP {resp.status} {resp.url}") if resp.status >= 400 else None
                ),
            )
            response = page.goto(f"{base}/map", wait_until="networkidle")
            assert response is not None and response.status == 200

            # every script and stylesheet came from our /static
            assert any("/static/leaflet/leaflet.js" in u for u in requested)
            # the firm vector tiles and the KDE raster tiles were requested from our API
            assert any("/collections/firms/tiles/WebMercatorQuad/" in u for u in requested), (
                requested
            )
            assert any(f"/rasters/{info['kde']}/tiles/WebMercatorQuad/" in u for u in requested), (
                requested
            )

            # map tools: fullscreen, measure, scale bar, download links
            assert page.locator(".leaflet-control-zoom-fullscreen").count() == 1
            assert page.locator(".polyline-measure-unicode-icon").count() >= 1
            assert page.locator(".leaflet-control-scale").count() == 1
            assert page.locator(".gc-downloads a").count() >= 3

            # layer control lists every layer; toggling one changes what the map holds
            overlays = page.locator(".leaflet-control-layers-overlays label")
            names = [t.strip() for t in overlays.all_inner_texts()]
            for expected in (
                "Firms",
                "Firm density",
                "Point clusters",
                "Choropleth",
                "Territorial assets",
                "Hotspots",
            ):
                assert any(expected in n for n in names), (expected, names)

            firms_box = overlays.filter(has_text="Firms (").locator("input")
            assert firms_box.is_checked()
            canvases_before = page.locator(
                ".leaflet-overlay-pane canvas, .leaflet-pane canvas"
            ).count()
            firms_box.uncheck()
            assert not firms_box.is_checked()
            page.wait_for_timeout(300)
            canvases_after = page.locator(
                ".leaflet-overlay-pane canvas, .leaflet-pane canvas"
            ).count()
            assert canvases_after < canvases_before, (canvases_before, canvases_after)
            downloads = page.locator(".gc-downloads").inner_text()
            assert "Firms" not in downloads  # download links follow the visible layers
            firms_box.check()
            page.wait_for_load_state("networkidle")
            assert "Firms" in page.locator(".gc-downloads").inner_text()

            assets_box = overlays.filter(has_text="Territorial assets").locator("input")
            legend = page.locator(".gc-assets-legend")
            assert not legend.is_visible()  # legends follow their layer
            assets_box.check()
            page.wait_for_load_state("networkidle")
            assert any("/collections/assets/tiles/" in u for u in requested)
            assert legend.is_visible() and "cultural" in legend.inner_text()
            assets_box.uncheck()
            assert not legend.is_visible()

            hot_box = overlays.filter(has_text="Hotspots").locator("input")
            hot_legend = page.locator(".gc-hotspots-legend")
            assert not hot_legend.is_visible()
            hot_box.check()
            assert hot_legend.is_visible() and "significance" in hot_legend.inner_text()
            hot_box.uncheck()

            # every region of the choropleth is painted (sampled at a point inside each)
            unpainted = page.evaluate(
                """() => {
                const map = window[Object.keys(window).find(k => k.startsWith('map_'))];
                const canvas = document.querySelector('.leaflet-gcRegions-pane canvas');
                const ctx = canvas.getContext('2d');
                const origin = L.DomUtil.getPosition(canvas);
                const scale = canvas.width / canvas.clientWidth;
                const missing = [];
                let checked = 0;
                map.eachLayer(l => {
                    if (!l.feature || l.options.pane !== 'gcRegions') return;
                    checked += 1;
                    const pt = map.latLngToLayerPoint(l.getCenter()).subtract(origin);
                    const px = ctx.getImageData(pt.x * scale, pt.y * scale, 1, 1).data;
                    if (px[3] === 0) missing.push(l.feature.properties.region_id);
                });
                return {checked, missing};
            }"""
            )
            assert unpainted["checked"] >= 4 and unpainted["missing"] == [], unpainted

            # click a cluster hull and read its popup
            hull = page.locator("path.gc-cluster").first
            hull.click()
            popup = page.locator(".leaflet-popup-content")
            popup.wait_for(timeout=5000)
            text = popup.inner_text()
            assert "Cluster" in text and "n_firms" in text, text
            assert "Ranking components" in text and "score" in text, text
            assert "(weight" in text, text
            page.wait_for_timeout(600)  # let the popup finish fading in

            out = REPO / "artifacts"
            out.mkdir(exist_ok=True)
            page.screenshot(path=str(out / "map.png"), full_page=False)
        finally:
            browser.close()

    assert not foreign, f"requests to non-local hosts: {foreign}"
    assert not errors, f"console errors: {errors}"
