"""The map's analysis panel in a real headless Chromium against a live ``geocluster serve``.

Debian's ``/usr/bin/chromium`` through Playwright (never a downloaded browser), every
non-loopback request aborted. On a desktop (1280 x 860) and a phone (390 x 844): open
/map, open the panel, choose the demo firms (listed as name@version) and ISIC division
15, read the suggested eps (the k-distance knee the API computes), run DBSCAN as a job,
watch the progress bar reach 100 %, and see the run's cluster outlines drawn (SVG paths
and their orange pixels in a screenshot) with a legend naming the run, its date and the
firms version. Also: with two clusterings of the firms and none named, the map draws
none and the layer chooser asks for one (the explicit-input rule); choosing one draws it.
A viewer (``/me`` answering role viewer) sees no run button. Screenshots go to
``artifacts/map-panel-*.png``; with ``GEOCLUSTER_UPDATE_DOCS=1`` the desktop one is also
copied to ``docs/map-panel.png`` (a test run never rewrites a tracked file otherwise).
"""

from __future__ import annotations

import io
import os
import shutil

import httpx
import pytest

from tests.browser.test_map import (  # noqa: F401 - fixtures used by name
    DESKTOP,
    PHONE,
    REPO,
    Session,
    _save,
    browser,
    live_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: the outline colour of a run drawn by the panel (gcpanel.js, ColorBrewer Oranges)
RUN_STROKE = (0xD9, 0x48, 0x01)


def _orange_pixels(png: bytes) -> int:
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    near = (np.abs(rgb[..., 0] - RUN_STROKE[0]) <= 30) & (np.abs(rgb[..., 1] - RUN_STROKE[1]) <= 30)
    return int((near & (rgb[..., 2] <= 50)).sum())


def _open_panel(s: Session) -> None:
    page = s.page
    if page.locator("#gc-panel").get_attribute("open") is None:
        page.locator("#gc-panel > summary").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#gc-firms option').length > 1", timeout=15000
    )


def _run_from_panel(s: Session, base: str, division: str, shot: str) -> dict:
    """Choose the firms and ``division``, check the eps hint, run DBSCAN; the job body."""
    page = s.page
    _open_panel(s)
    labels = page.locator("#gc-firms option").all_inner_texts()
    assert any(t.startswith("firms@1") for t in labels), labels
    page.select_option("#gc-firms", "firms")
    sector_labels = page.locator("#gc-sector option").all_inner_texts()
    assert (
        "15 – Manufacture of leather and related products" in sector_labels
    )  # divisions listed with their ISIC titles
    assert any(t.startswith("C – Manufacturing") for t in sector_labels)
    page.select_option("#gc-sector", f"division:{division}")
    # HDBSCAN has no eps: its minimum cluster size replaces the eps field
    page.select_option("#gc-method", "hdbscan")
    assert page.locator("#gc-eps").is_hidden() and page.locator("#gc-min-cluster-size").is_visible()
    page.select_option("#gc-method", "dbscan")
    assert page.locator("#gc-eps").is_visible() and page.locator("#gc-min-cluster-size").is_hidden()

    # the suggestion shown is the knee the API computes for the same selection
    want = httpx.post(
        f"{base}/analyses/kdistance", json={"firms": "firms", "k": 10, "sectors": [division]}
    ).json()
    eps = round(want["suggested_eps_m"])
    page.wait_for_function(
        "(want) => { const b = document.querySelector('#gc-eps-suggested');"
        " return b && b.textContent.replace(/[^0-9]/g, '') === String(want); }",
        arg=eps,
        timeout=15000,
    )
    hint = page.locator("#gc-eps-hint").inner_text()
    assert "suggested eps" in hint and "10-distance" in hint, hint
    assert float(page.input_value("#gc-eps")) == eps  # filled in, still editable

    page.locator("#gc-run").click()
    page.wait_for_selector("#gc-job:not([hidden])")
    page.wait_for_function(
        "() => ['done', 'failed'].includes(document.querySelector('#gc-panel').dataset.job)",
        timeout=90000,
    )
    status = page.locator("#gc-status").inner_text()
    assert page.locator("#gc-panel").get_attribute("data-job") == "done", status
    assert page.evaluate("document.querySelector('#gc-progress').value") == 1
    assert page.locator("#gc-job-pct").inner_text() == "100 %"

    runs = [
        r
        for r in httpx.get(f"{base}/runs", params={"kind": "clusters"}).json()["runs"]
        if r["kind"] == "clusters"
        and r["params"].get("sectors") == [division]
        and r["params"].get("eps_m") == eps
    ]
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["id"] in status and "clusters" in status, status
    n_clusters = run["summary"]["n_clusters"]
    assert n_clusters >= 1

    page.wait_for_selector(".gc-run-legend", timeout=15000)
    s.settle(600)
    legend = page.locator(".gc-run-legend").text_content()  # folded on a phone
    assert f"clusters run {run['id']}" in legend, legend
    assert run["created"][:10] in legend and "firms@1" in legend, legend
    title = next(
        d["title"]
        for d in httpx.get(f"{base}/sectors").json()["divisions"]
        if d["code"] == division
    )
    assert f"eps {eps:,} m" in legend and f"{division} – {title}" in legend, legend
    assert any(f"/collections/{run['id']}.clusters/items" in u for u in s.requested)
    paths = page.locator("path.gc-run-cluster")
    assert paths.count() == n_clusters
    box = paths.first.bounding_box()
    assert box is not None and box["width"] > 2 and box["height"] > 2, box
    # the layer control lists it by run id and date
    control = page.locator(".leaflet-control-layers").text_content()  # folded on a phone
    assert f"Clusters {run['id']}" in control, control

    _save(page, shot)  # the panel open on its finished job, the new layer beside it
    # the outlines are painted: fold the panel, then count their colour in a screenshot
    page.locator("#gc-panel > summary").click()
    s.settle(300)
    assert _orange_pixels(page.screenshot()) > 50
    return run


def test_panel_runs_clusters_on_a_desktop(live_server, browser):  # noqa: F811 - the imported fixtures
    base, _info = live_server
    s = Session(browser, base, DESKTOP, 1)
    try:
        r = s.page.goto(f"{base}/map", wait_until="networkidle")
        assert r is not None and r.status == 200
        s.settle()
        _run_from_panel(s, base, "15", "map-panel-desktop.png")
        if os.environ.get("GEOCLUSTER_UPDATE_DOCS") == "1":
            shutil.copyfile(
                REPO / "artifacts" / "map-panel-desktop.png", REPO / "docs" / "map-panel.png"
            )
    finally:
        s.close()
    assert not s.blocked, f"requests to non-local hosts: {s.blocked}"
    assert not s.errors, f"console errors: {s.errors}"


def test_panel_runs_clusters_on_a_phone(live_server, browser):  # noqa: F811 - the imported fixtures
    base, _info = live_server
    s = Session(browser, base, PHONE, 2)
    try:
        s.page.goto(f"{base}/map", wait_until="networkidle")
        s.settle()
        # folded on a phone until asked for
        assert s.page.locator("#gc-panel").get_attribute("open") is None
        _run_from_panel(s, base, "26", "map-panel-phone.png")
        # the panel fits the phone's width
        s.page.locator("#gc-panel > summary").click()
        box = s.page.locator("#gc-panel").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    finally:
        s.close()
    assert not s.blocked, f"requests to non-local hosts: {s.blocked}"
    assert not s.errors, f"console errors: {s.errors}"


def test_several_clusterings_are_a_choice_not_the_newest(live_server, browser):  # noqa: F811 - the imported fixtures
    """Two clusterings of the same firms, none named: the map draws none and asks."""
    base, info = live_server
    for eps in (2500.0, 4000.0):  # two more clusterings of all the firms
        r = httpx.post(
            f"{base}/analyses/clusters",
            json={"firms": "firms", "method": "dbscan", "eps_m": eps, "min_samples": 10},
            timeout=120,
        )
        assert r.status_code == 200, r.text
    runs = [
        r["id"]
        for r in httpx.get(f"{base}/runs").json()["runs"]
        if r["kind"] == "clusters" and r["params"].get("firms") == "firms"
    ]
    assert len(runs) >= 3
    s = Session(browser, base, DESKTOP, 1)
    page = s.page
    try:
        page.goto(f"{base}/map", wait_until="networkidle")
        s.settle()
        assert page.locator("path.gc-cluster").count() == 0  # nothing drawn silently
        # with a choice to make the panel opens on a desktop, its layer list waiting
        assert page.locator("#gc-panel").get_attribute("open") is not None
        page.wait_for_selector("select[data-layer=clusters]")
        row = page.locator(".gc-layer-row.gc-pending", has=page.locator("[data-layer=clusters]"))
        assert f"choose one of {len(runs)}" in row.inner_text()
        options = page.locator("select[data-layer=clusters] option").all_inner_texts()
        for run_id in runs:  # listed by id and date, not as a URL to type
            assert any(t.lstrip("● ").startswith(run_id + " — 20") for t in options), options
        # the firms have one candidate: drawn, and selected in its chooser
        assert page.input_value("select[data-layer=firms]") == "firms"

        with page.expect_navigation():
            page.select_option("select[data-layer=clusters]", info["clusters_run"])
        s.settle()
        assert f"clusters={info['clusters_run']}" in page.url
        assert page.locator("path.gc-cluster").count() >= 1
        legend = page.locator(".gc-clusters-legend").inner_text()
        assert f"source: clusters run {info['clusters_run']}" in legend
        assert "firms: firms@1" in legend and " UTC" in legend, legend
        assert page.input_value("select[data-layer=clusters]") == info["clusters_run"]
    finally:
        s.close()
    assert not s.blocked, f"requests to non-local hosts: {s.blocked}"
    assert not s.errors, f"console errors: {s.errors}"


def test_viewers_get_no_run_button(live_server, browser):  # noqa: F811 - the imported fixtures
    """The panel follows ``GET /me``: a viewer may choose layers but not start a run.

    The server on this branch is in open mode (everyone is admin), so the role the
    security layer would answer is given to the page by answering ``/me`` for it.
    """
    base, _info = live_server
    assert httpx.get(f"{base}/me").json() == {"role": "admin", "auth": "open", "can_run": True}
    s = Session(browser, base, DESKTOP, 1)
    page = s.page
    page.route(
        "**/me",
        lambda route: route.fulfill(
            json={"role": "viewer", "auth": "keys", "can_run": False}, status=200
        ),
    )
    try:
        page.goto(f"{base}/map", wait_until="networkidle")
        s.settle()
        if page.locator("#gc-panel").get_attribute("open") is None:
            page.locator("#gc-panel > summary").click()
        page.wait_for_selector("select[data-layer=firms]")
        assert "viewer" in page.locator("#gc-role").inner_text()
        assert page.locator("#gc-run").is_hidden()
        assert page.locator("#gc-run-form").is_hidden()
    finally:
        s.close()
    assert not s.errors, f"console errors: {s.errors}"
