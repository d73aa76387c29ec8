"""The UNIDO-cycle layers of the web map in a real headless Chromium.

A workspace holding the demo's Mexican data as ``geocluster demo`` ingests it (the real
state boundaries, the synthetic register as baseline ``mexico_firms@1`` and its
synthetic follow-up ``@2``, the synthetic support institutions), with the demo's
manufacturing clusters on both versions, their ``change`` run, the ``sdg`` run and the
``institutions`` run, served by ``geocluster serve``. Debian's ``/usr/bin/chromium``
through Playwright, every non-loopback request aborted. The three layers are listed, their
legends name their runs and inputs, the SDG selector switches indicator, and the popups of
a region (its SDG proxy, against a value counted here from the CSV), of a changed
cluster and of an institution open. Also, without a browser: no run -> no layer, and
the disclosure policy reaches the change and SDG layers.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest

from tests.browser.test_map import (  # noqa: F401 - fixtures used by name
    DESKTOP,
    MAP_JS,
    REPO,
    Session,
    _free_port,
    _geocluster_cmd,
    _save,
    browser,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MEXICO = ("mexico_states", "mexico_firms", "mexico_institutions")


def build_unido_workspace(ws_dir: Path) -> dict:
    """The demo's Mexican part with the clusters, change, sdg and institutions runs."""
    from geocluster.analyses.clusters import run_clusters
    from geocluster.analyses.unido import run_change, run_institutions, run_sdg
    from geocluster.demo import DEMO_DATASETS, default_data_dir
    from geocluster.workspace import Workspace

    ws = Workspace(ws_dir)
    data = default_data_dir()
    follow_up_csv = None
    for spec in DEMO_DATASETS:
        if spec.name not in MEXICO:
            continue
        path = data / spec.path
        if spec.derive is not None:
            path = follow_up_csv = spec.derive(path, ws_dir.parent / "mexico_firms_v2.csv")
        ws.ingest(spec.kind, path, name=spec.name, options=spec.options)
    # the demo's manufacturing clusterings (geocluster.demo.DEMO_RUNS)
    kw = {"method": "dbscan", "eps_m": 1500.0, "min_samples": 15, "sectors": ["C"]}
    v1 = run_clusters(ws, firms="mexico_firms@1", **kw)["run_id"]
    v2 = run_clusters(ws, firms="mexico_firms@2", **kw)["run_id"]
    change = run_change(ws, before=v1, after=v2, score="overlap")["run_id"]
    sdg = run_sdg(ws, firms="mexico_firms@2", boundaries="mexico_states")["run_id"]
    inst = run_institutions(
        ws, clusters_run=v2, institutions="mexico_institutions", radius_m=10000.0
    )["run_id"]
    return {"ws": ws, "v1": v1, "v2": v2, "change": change, "sdg": sdg,
            "institutions": inst, "follow_up_csv": follow_up_csv}  # fmt: skip


@pytest.fixture(scope="module")
def unido(tmp_path_factory):
    return build_unido_workspace(tmp_path_factory.mktemp("unido") / "ws")


@pytest.fixture(scope="module")
def unido_server(unido):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = unido["ws"].path.parent / "serve.log"
    proc = subprocess.Popen(
        [*_geocluster_cmd(), "serve", "--workspace", str(unido["ws"].path), "--port",
         str(port), "--host", "127.0.0.1"],
        # a file, not a pipe: a pipe nobody reads fills up and blocks the server
        cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
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
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _oaxaca_women_led_share(follow_up_csv: Path) -> float:
    """Women-led firms / firms of the follow-up register inside Oaxaca's polygon.

    Counted here from the CSV and the GeoPackage with a geopandas point-in-polygon join,
    not by geocluster.sdg (SDG 5.5.2 proxy: women-led over firms with a known flag).
    """
    from geocluster.demo import default_data_dir

    states = gpd.read_file(default_data_dir() / "boundaries" / "mexico_states.gpkg")
    oax = states[states["region_id"] == "MX-OAX"].to_crs("EPSG:4326")
    firms = pd.read_csv(follow_up_csv)
    pts = gpd.GeoDataFrame(firms, geometry=gpd.points_from_xy(firms.lon, firms.lat), crs=4326)
    inside = pts[pts.within(oax.geometry.iloc[0])]
    flag = inside["women_led"].astype(str).str.lower()
    known = flag.isin(["true", "false"])
    return float((flag[known] == "true").sum() / known.sum())


def _overlay(page, text: str):
    return page.locator(".leaflet-control-layers-overlays label").filter(has_text=text)


def test_unido_layers_render_with_legends_and_popups(unido, unido_server, browser):  # noqa: F811
    base = unido_server
    s = Session(browser, base, DESKTOP, 1)
    page = s.page
    url = f"{base}/map?firms=mexico_firms&clusters={unido['v2']}&boundaries=mexico_states"
    try:
        response = page.goto(url, wait_until="networkidle")
        assert response is not None and response.status == 200
        s.settle()
        names = [
            t.strip()
            for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        ]
        for expected in ("SDG proxies", "Cluster change", "Support institutions", "Support gaps"):
            assert any(expected in n for n in names), (expected, names)

        # the change layer: drawn by status, its legend names the two runs and the inputs
        change_legend = page.locator(".gc-change-legend")
        assert change_legend.is_visible()
        text = change_legend.inner_text()
        assert unido["v1"] in text and unido["v2"] in text and unido["change"] in text
        assert "mexico_firms@1" in text and "mexico_firms@2" in text
        for status in ("matched", "split", "merged", "appeared", "disappeared"):
            assert status in text, text
        assert page.locator("path.gc-change-appeared").count() >= 1
        assert page.locator("path.gc-change-disappeared").count() >= 1

        # institutions: coloured by type, legend with the types present and the reach
        inst_legend = page.locator(".gc-institutions-legend")
        assert inst_legend.is_visible()
        text = inst_legend.inner_text()
        assert "training" in text and "chamber" in text and "10,000 m" in text, text
        assert page.locator("path.gc-institution").count() == 30  # every institution

        # the SDG layer starts off; switched on its legend appears with SDG code and unit
        sdg_legend = page.locator(".gc-sdg-legend")
        assert not sdg_legend.is_visible()
        _overlay(page, "SDG proxies").locator("input").check()
        s.settle(300)
        assert sdg_legend.is_visible()
        text = sdg_legend.inner_text()
        assert "SDG 9.2.2" in text and "% of employees" in text and unido["sdg"] in text
        select = sdg_legend.locator("select")
        assert select.locator("option").count() == 6
        select.select_option("women_led_share")
        text = sdg_legend.inner_text()
        assert "SDG 5.5.2" in text and "% of firms" in text and "SDG 9.2.2" not in text, text
        _save(page, "map-unido-desktop.png")

        # a region's popup: only the SDG layer left on, a click inside Oaxaca
        for other in ("Cluster change", "Support institutions", "Support gaps", "Firms",
                      "Regions", "Point clusters"):  # fmt: skip
            box = _overlay(page, other).locator("input")
            if box.count() and box.first.is_checked():
                box.first.uncheck()
        states = gpd.read_file(REPO / "data" / "boundaries" / "mexico_states.gpkg").to_crs(
            "EPSG:4326"
        )
        pt = states[states["region_id"] == "MX-OAX"].geometry.iloc[0].representative_point()
        s.view(pt.y, pt.x, 7)
        text = s.click_at(pt.y, pt.x)
        assert "Oaxaca" in text and "Women-led share of firms" in text, text
        want = _oaxaca_women_led_share(unido["follow_up_csv"])
        assert f"{100 * want:.1f} %" in text, (want, text)
        assert "Proxy:" in text and "Source:" in text and "ILO" in text, text

        # a changed cluster's popup: its indicators before -> after
        _overlay(page, "Cluster change").locator("input").check()
        _overlay(page, "SDG proxies").locator("input").uncheck()
        s.view(23.0, -102.0, 5)
        page.locator("path.gc-change-matched").first.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5000)
        text = popup.inner_text()
        assert "matched" in text and "Firms" in text and "→" in text, text
        assert "Women-led firms" in text and "points" in text, text

        # an institution's popup: its type and the clusters it serves
        page.evaluate(f"{MAP_JS}.closePopup()")
        _overlay(page, "Cluster change").locator("input").uncheck()
        _overlay(page, "Support institutions").locator("input").check()
        page.locator("path.gc-institution").first.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5000)
        text = popup.inner_text()
        assert "Type" in text and "Clusters within 10,000 m" in text, text
    finally:
        s.close()
    assert not s.blocked, f"requests to non-local hosts: {s.blocked}"
    assert not s.errors, f"console errors: {s.errors}"


def test_no_run_no_layer(tmp_path):
    from geocluster.demo import default_data_dir
    from geocluster.workspace import Workspace
    from maps import build_map

    ws = Workspace(tmp_path / "ws")
    ws.ingest("boundaries", default_data_dir() / "boundaries" / "mexico_states.gpkg",
              name="mexico_states", options={"level": 1})  # fmt: skip
    page = build_map(ws)
    for layer in ("SDG proxies", "Cluster change", "Support institutions"):
        assert layer not in page


def test_disclosure_reaches_the_unido_layers(unido):
    from geocluster.disclosure import DisclosurePolicy
    from maps import build_map

    ws = unido["ws"]
    kw = {"firms": "mexico_firms", "clusters_run": unido["v2"], "boundaries": "mexico_states"}
    open_page = build_map(ws, **kw)
    # 10,000 firms: more than any cluster or state holds, so an enforcing policy leaves
    # no change outline and suppresses every state's SDG proxies
    strict = DisclosurePolicy(min_contributors=10_000, enforce=True, firm_points=False)
    page = build_map(ws, policy=strict, **kw)
    assert "gc-change-matched" in open_page and "gc-change-matched" not in page
    assert "no cluster may be shown" in page
    assert "Women-led share of firms" in open_page
    assert "has no indicator with a value" in page
    # institutions are public: drawn either way
    assert page.count("gc-institution") == open_page.count("gc-institution") > 0


def test_demo_links_draw_every_unido_layer(unido):
    from geocluster.demo import demo_links
    from maps import build_map

    links = demo_links(unido["ws"])
    assert links["clusters_run"] == unido["v2"]
    assert links["map"] == (
        f"/map?firms=mexico_firms&clusters={unido['v2']}&boundaries=mexico_states"
    )
    page = build_map(unido["ws"], firms="mexico_firms", clusters_run=unido["v2"],
                     boundaries="mexico_states")  # fmt: skip
    for layer in ("SDG proxies", "Cluster change", "Support institutions"):
        assert layer in page
    assert "candidates for the" not in page  # nothing left to choose
