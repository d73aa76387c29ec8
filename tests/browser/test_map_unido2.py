"""The dynamics, shift-share and complexity layers of the web map in a real Chromium.

The workspace of ``test_map_unido`` (the demo's Mexican data as ``geocluster demo``
ingests it, its manufacturing clusters on both register versions, change, SDG and
institutions runs) plus the demo's ``dynamics``, ``shiftshare`` and ``relatedness`` runs
with the demo's own parameters (``geocluster.demo.DEMO_RUNS``), served by ``geocluster
serve``; Debian's ``/usr/bin/chromium`` through Playwright, every non-loopback request
aborted. The demo's map link lists the new layers; each, switched on, shows its legend
(units, runs, inputs); Oaxaca's shift-share popup gives its change of employees counted
here from the two CSVs and the three components summing to it; its ECI popup its rank
among the states (ranked here from the run's stored values); a cluster's popup its
emergence year. Also, without a browser: no run -> no layer; disclosure reaches the
layers; the HTTP query parameters name the runs.
"""

from __future__ import annotations

import re
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
    _save,
    browser,
)
from tests.browser.test_map_unido import (  # noqa: F401 - unido_server used by name
    build_unido_workspace,
    unido_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_LAYERS = ("Cluster emergence", "Regional growth of firms", "Shift-share: regional shift",
              "Economic complexity")  # fmt: skip


def build_unido2_workspace(ws_dir: Path) -> dict:
    """:func:`build_unido_workspace` plus the demo's dynamics, shiftshare, relatedness runs."""
    from geocluster.analyses.spec import get as get_spec
    from geocluster.demo import DEMO_RUNS

    info = build_unido_workspace(ws_dir)
    labels = {"mexico_dynamics": "dynamics", "mexico_shiftshare": "shiftshare",
              "mexico_relatedness": "relatedness"}  # fmt: skip
    for spec in DEMO_RUNS:
        if spec.label not in labels:
            continue
        kwargs = dict(spec.kwargs)
        if spec.needs:  # the demo's dynamics reads its follow-up manufacturing clusters
            assert spec.needs == {"clusters": "mexico_manuf_clusters_v2"}
            kwargs["clusters"] = info["v2"]
        info[labels[spec.label]] = get_spec(spec.analysis)(info["ws"], **kwargs).run_id
    return info


@pytest.fixture(scope="module")
def unido(tmp_path_factory):
    # the name the imported unido_server fixture asks for: it serves this workspace
    return build_unido2_workspace(tmp_path_factory.mktemp("unido2") / "ws")


def _oaxaca():
    states = gpd.read_file(REPO / "data" / "boundaries" / "mexico_states.gpkg")
    return states[states["region_id"] == "MX-OAX"].to_crs("EPSG:4326").geometry.iloc[0]


def _employees_in_oaxaca(csv: Path) -> float:
    """Employees of a register CSV inside Oaxaca (geopandas point-in-polygon)."""
    firms = pd.read_csv(csv)
    pts = gpd.GeoDataFrame(firms, geometry=gpd.points_from_xy(firms.lon, firms.lat), crs=4326)
    return float(pd.to_numeric(pts[pts.within(_oaxaca())]["employees"]).sum())


def _only(page, keep: str) -> None:
    """Every overlay off but ``keep``."""
    labels = page.locator(".leaflet-control-layers-overlays label")
    for i in range(labels.count()):
        box = labels.nth(i).locator("input")
        text = labels.nth(i).inner_text()
        if box.is_checked() != (keep in text):
            box.check() if keep in text else box.uncheck()


def test_new_layers_render_with_legends_and_popups(unido, unido_server, browser):  # noqa: F811
    from geocluster.demo import DEMO_DATASETS, default_data_dir, demo_links

    base = unido_server
    s = Session(browser, base, DESKTOP, 1)
    page = s.page
    link = demo_links(unido["ws"])["map"]
    try:
        response = page.goto(base + link, wait_until="networkidle")
        assert response is not None and response.status == 200
        s.settle()
        names = [
            t.strip()
            for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        ]
        for expected in NEW_LAYERS:
            assert any(expected in n for n in names), (expected, names)

        # shift-share: diverging legend with its units and the two register versions
        _only(page, "Shift-share")
        s.settle(300)
        legend = page.locator(".gc-shiftshare-legend")
        assert legend.is_visible()
        text = legend.inner_text()
        assert "Regional shift (employees)" in text and "units: employees" in text, text
        assert "mexico_firms@1" in text and "mexico_firms@2" in text and unido["shiftshare"] in text
        pt = _oaxaca().representative_point()
        s.view(pt.y, pt.x, 7)
        text = s.click_at(pt.y, pt.x)
        assert "Oaxaca: shift-share of employees" in text, text
        (spec,) = [d for d in DEMO_DATASETS if d.name == "mexico_firms" and d.derive is None]
        want = _employees_in_oaxaca(unido["follow_up_csv"]) - _employees_in_oaxaca(
            default_data_dir() / spec.path
        )
        change = float(re.search(r"Change\s+([+-][\d,]+)", text).group(1).replace(",", ""))
        assert change == want, (change, want, text)
        comps = [float(re.search(rf"{k}\s+([+-][\d,.]+)", text).group(1).replace(",", ""))
                 for k in ("National share", "Industry mix", "Regional shift")]  # fmt: skip
        assert sum(comps) == pytest.approx(change, abs=0.15), comps  # NS + IM + RS = change
        assert "Largest regional shifts" in text
        _save(page, "map-shiftshare-desktop.png")

        # ECI: legend with units and classes; Oaxaca's popup gives its rank
        page.evaluate(f"{MAP_JS}.closePopup()")
        _only(page, "Economic complexity")
        s.settle(300)
        legend = page.locator(".gc-eci-legend")
        assert legend.is_visible()
        text = legend.inner_text()
        assert "standard deviations" in text and unido["relatedness"] in text, text
        text = s.click_at(pt.y, pt.x)
        eci = unido["ws"].read_run(unido["relatedness"], "regions")
        rank = int(
            eci["eci"].rank(ascending=False, method="min")[eci.region_id == "MX-OAX"].iloc[0]
        )
        assert "Oaxaca: complexity" in text and f"{rank} of 32" in text, text
        assert "Nearby opportunities" in text, text

        # regional growth: % a year
        page.evaluate(f"{MAP_JS}.closePopup()")
        _only(page, "Regional growth")
        s.settle(300)
        text = page.locator(".gc-growth-legend").inner_text()
        assert "% a year" in text and unido["dynamics"] in text, text

        # cluster emergence: by year, a cluster's popup with its emergence and growth
        _only(page, "Cluster emergence")
        s.settle(300)
        legend = page.locator(".gc-emergence-legend")
        assert legend.is_visible()
        text = legend.inner_text()
        assert "Cluster emergence year" in text and unido["v2"] in text, text
        clusters = unido["ws"].read_run(unido["dynamics"], "clusters")
        assert page.locator("path.gc-emergence").count() == len(clusters)
        # the largest cluster, clicked inside its outline
        big = clusters.sort_values("n_firms").iloc[-1:]
        inside = big.to_crs("EPSG:4326").geometry.iloc[0].representative_point()
        s.view(inside.y, inside.x, 13)
        text = s.click_at(inside.y, inside.x)
        assert "Emerged (first year past the threshold)" in text and "% a year" in text, text
        cid = int(re.search(r"Cluster (\d+): emergence", text).group(1))
        year = clusters.loc[clusters.cluster_id == cid, "emergence_year"].iloc[0]
        assert str(int(year)) in text, (year, text)
        _save(page, "map-emergence-desktop.png")
    finally:
        s.close()
    assert not s.blocked, f"requests to non-local hosts: {s.blocked}"
    assert not s.errors, f"console errors: {s.errors}"


def test_http_names_the_runs(unido, unido_server):  # noqa: F811
    base = unido_server
    q = f"firms=mexico_firms&clusters={unido['v2']}&boundaries=mexico_states"
    page = httpx.get(f"{base}/map?{q}&shiftshare={unido['shiftshare']}", timeout=60).text
    assert "Shift-share: regional shift" in page
    bad = httpx.get(f"{base}/map?{q}&relatedness={unido['shiftshare']}", timeout=60)
    assert bad.status_code >= 400 and "relatedness" in bad.text
    r = httpx.get(f"{base}/regions/MX-OAX/report", timeout=120, params={
        "boundaries": "mexico_states", "clusters_run": unido["v2"],
        "relatedness_run": unido["relatedness"], "shiftshare_run": unido["shiftshare"],
        "dynamics_run": unido["dynamics"]})  # fmt: skip
    assert r.status_code == 200
    for ref in ("dynamics", "shiftshare", "relatedness"):
        assert unido[ref] in r.text


def test_no_run_no_layer(tmp_path):
    from geocluster.demo import default_data_dir
    from geocluster.workspace import Workspace
    from maps import build_map

    ws = Workspace(tmp_path / "ws")
    ws.ingest("boundaries", default_data_dir() / "boundaries" / "mexico_states.gpkg",
              name="mexico_states", options={"level": 1})  # fmt: skip
    page = build_map(ws)
    for layer in NEW_LAYERS:
        assert layer not in page


def test_disclosure_reaches_the_new_layers(unido):
    from geocluster.disclosure import DisclosurePolicy
    from maps import build_map

    ws = unido["ws"]
    kw = {"firms": "mexico_firms", "clusters_run": unido["v2"], "boundaries": "mexico_states"}
    open_page = build_map(ws, **kw)
    strict = DisclosurePolicy(min_contributors=10_000, enforce=True, firm_points=False)
    page = build_map(ws, policy=strict, **kw)
    assert "gc-emergence" in open_page and "Cluster emergence (run" not in page
    assert f"dynamics run {unido['dynamics']}: no cluster may be shown" in page
    assert f"shiftshare run {unido['shiftshare']}: no region may be shown" in page
    assert "Shift-share: regional shift" in open_page
    assert "Shift-share: regional shift" not in page
    # ECI ranks regions by which sectors they have (public); its opportunities are cells
    # of the firm table: under the threshold none is listed
    assert "Economic complexity (ECI" in page and "Nearby opportunities" not in page
    assert "Nearby opportunities" in open_page


def test_demo_links_draw_the_new_layers(unido):
    from geocluster.demo import demo_links
    from maps import build_map

    links = demo_links(unido["ws"])
    page = build_map(unido["ws"], firms="mexico_firms", clusters_run=links["clusters_run"],
                     boundaries="mexico_states")  # fmt: skip
    for layer in NEW_LAYERS:
        assert layer in page
    assert "candidates for the" not in page
