"""``GET /map``: the page renders from the workspace and loads nothing from a CDN."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings

TAG_URLS = re.compile(r"<(script|link)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)


def _unescaped(page: str) -> str:
    """The page with JSON ``\\uXXXX`` escapes (embedded GeoJSON and legends) decoded."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


def _feature_collections(page: str) -> list[dict]:
    """The GeoJSON feature collections embedded in the page."""
    import json

    out, decoder = [], json.JSONDecoder()
    for m in re.finditer(r'\{"features": \[', page):
        out.append(decoder.raw_decode(page, m.start())[0])
    return out


def _external_assets(page: str) -> list[str]:
    bad = []
    for _tag, url in TAG_URLS.findall(page):
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https") or url.startswith("//"):
            if parsed.hostname not in ("127.0.0.1", "localhost"):
                bad.append(url)
    return bad


def test_map_has_every_layer_and_only_local_assets(demo_client, demo):
    r = demo_client.get("/map")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert _external_assets(page) == []
    assets = [url for _tag, url in TAG_URLS.findall(page)]
    assert assets and all(url.startswith("/static/") for url in assets)
    for url in assets:  # and every one of them is served
        assert demo_client.get(url).status_code == 200, url
    assert "/collections/firms/tiles/WebMercatorQuad/{z}/{x}/{y}" in page
    assert f"/rasters/{demo['kde']}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png" in page
    assert "Point clusters" in page and "gc-cluster" in page
    assert "Choropleth" in page and "mapclassify" in page
    assert "Territorial assets" in page and "Hotspots" in page
    for legend in ("gc-legend-control", "gc-kde-legend", "gc-hotspots-legend", "gc-assets-legend"):
        assert legend in page, legend
    assert "L.Control.FullScreen" in page and "polylineMeasure" in page
    assert "/collections/firms/items?f=csv" in page and "f=gpkg" in page


def test_osm_basemap_is_offered_but_off_by_default(demo_client):
    page = demo_client.get("/map").text
    assert "tile.openstreetmap.org" in page
    name = re.search(
        r"var (tile_layer_\w+) = L\.tileLayer\(\s*\"https://tile\.openstreetmap", page
    ).group(1)
    assert f"{name}.addTo(" not in page
    page_on = demo_client.get("/map?basemap=true").text
    name = re.search(
        r"var (tile_layer_\w+) = L\.tileLayer\(\s*\"https://tile\.openstreetmap", page_on
    ).group(1)
    assert f"{name}.addTo(" in page_on


def test_indicator_choropleth_legend(demo_client):
    page = demo_client.get("/map?indicator=population&year=2000").text
    assert "population, 2000" in page
    assert "source: indicators dataset" in page


def test_map_parameters_are_checked(demo_client):
    assert demo_client.get("/map?firms=nope").status_code == 404
    assert demo_client.get("/map?firms=regions").status_code == 422
    assert demo_client.get("/map?clusters=nope").status_code == 404
    assert demo_client.get("/map?kde=nope").status_code == 404


def test_map_of_an_empty_workspace(tmp_path):
    with TestClient(create_app(Settings(workspace=tmp_path / "ws"))) as c:
        r = c.get("/map")
    assert r.status_code == 200
    assert _external_assets(r.text) == []


def test_defaults_follow_the_explicit_input_rule_across_territories(tmp_path):
    """A second territory (as the demo's Helsinki) makes the firms layer a choice.

    With two firms datasets and none named, the map draws no firms or clusters and
    lists the candidates (issue 9 item 5: never the newest silently); naming the firms
    narrows every other layer to its only candidate.
    """
    import geopandas as gpd
    import numpy as np

    from geocluster.analyses.clusters import run_clusters
    from maps import build_map
    from maps.build import resolve_context
    from tests.api.fixtures import build_demo_like_workspace

    info = build_demo_like_workspace(tmp_path / "ws")
    ws = info["ws"]
    alone = resolve_context(ws)  # one candidate of each: all drawn
    assert alone.firms.id == "firms" and alone.clusters_run.id == info["clusters_run"]
    assert alone.choices == {}

    rng = np.random.default_rng(3)
    far = gpd.GeoDataFrame(
        {"firm_id": [f"H{i}" for i in range(200)], "sector_code": "56", "employees": 3.0},
        geometry=gpd.points_from_xy(rng.normal(24.94, 0.01, 200), rng.normal(60.17, 0.01, 200)),
        crs="EPSG:4326",
    )
    ws.add_dataset("firms", far, name="helsinki")
    helsinki_run = run_clusters(ws, firms="helsinki", eps_m=500, min_samples=5)["run_id"]

    ctx = resolve_context(ws)
    assert ctx.firms is None and ctx.clusters_run is None
    assert sorted(ctx.choices["firms"]) == ["firms", "helsinki"]
    assert sorted(ctx.choices["clusters"]) == sorted([info["clusters_run"], helsinki_run])
    page = build_map(ws)
    assert "/collections/firms/tiles/" not in page and "gc-cluster" not in page
    assert "choose one in the Layers panel" in page

    named = resolve_context(ws, firms="firms")
    assert named.clusters_run.id == info["clusters_run"]  # the only one of these firms
    assert named.ranking_run.id == info["ranking_run"]
    assert named.kde_raster.id == info["kde"]
    assert named.boundaries.id == "regions"
    assert named.hotspots_run.id == info["hotspots_run"]
    assert named.assets.id == "assets"
    assert named.choices == {}

    chosen = resolve_context(ws, clusters_run=helsinki_run)
    assert chosen.firms.id == "helsinki" and chosen.ranking_run is None
    assert chosen.assets is None and chosen.boundaries is None  # both are in Mexico

    second = run_clusters(ws, firms="firms", eps_m=2000, min_samples=10)["run_id"]
    two = resolve_context(ws, firms="firms")
    assert two.clusters_run is None
    assert sorted(two.choices["clusters"]) == sorted([info["clusters_run"], second])
    assert resolve_context(ws, firms="firms", clusters_run=second).clusters_run.id == second


def test_lq_choropleth_for_a_sector(demo_client, demo):
    page = demo_client.get("/map?sector=15").text
    assert "Location quotient, sector 15" in page
    assert f"source: specialization run {demo['specialization_run']}" in page
    # the choropleth values are the LQs of the specialization run
    from geocluster.workspace import Workspace

    ws = Workspace(demo["ws"].path)
    rows = ws.read_run(demo["specialization_run"], "rows")
    lq = rows[rows["sector"].astype(str) == "15"]
    assert len(lq) > 0
    for value in lq["lq"].dropna().round(6).head(3):
        assert str(value)[:5] in page


def test_cluster_hulls_hide_firm_locations_when_points_are_confidential(demo):
    """A convex hull's corners are firm locations; a strict policy smooths them away."""
    from geocluster.disclosure import DisclosurePolicy
    from maps import build_map

    firms = demo["ws"].read("firms")
    exact = {(round(x, 6), round(y, 6)) for x, y in zip(firms.geometry.x, firms.geometry.y)}
    pair = re.compile(r"\[(-?\d+\.\d+), (-?\d+\.\d+)\]")

    def corners(page: str) -> set[tuple[float, float]]:
        return {(round(float(a), 6), round(float(b), 6)) for a, b in pair.findall(page)}

    open_page = build_map(demo["ws"], clusters_run=demo["clusters_run"])
    assert corners(open_page) & exact  # permissive: hull corners are firms
    strict = build_map(
        demo["ws"], clusters_run=demo["clusters_run"], policy=DisclosurePolicy(firm_points=False)
    )
    assert "gc-cluster" in strict
    assert not corners(strict) & exact


def test_vector_layers_use_protomaps_and_the_offline_basemap_is_on(demo_client):
    page = demo_client.get("/map").text
    assert "/static/protomaps-leaflet/protomaps-leaflet.js" in page
    assert "/static/geocluster/gcmap.js" in page
    assert "vectorgrid" not in page.lower()
    assert "gc.pointLayer('firms'" in page and "gc.pointLayer('assets'" in page
    assert '"/basemap/tiles/{z}/{x}/{y}"' in page
    assert "GeoNames (CC BY 4.0)" in page  # the attribution CC BY asks for
    on = re.search(r"var (js_layer_\w+) = gc\.basemapLayer", page).group(1)
    assert f"{on}.addTo(" in page
    off = demo_client.get("/map?offline_basemap=false").text
    name = re.search(r"var (js_layer_\w+) = gc\.basemapLayer", off).group(1)
    assert f"{name}.addTo(" not in off  # still offered in the layer control
    # popups name sectors by their ISIC Rev.4 titles (UN ISIC Rev.4, division 15)
    assert '"15": "Manufacture of leather and related products"' in page


def test_cluster_popups_have_units_titles_and_shares(demo_client):
    page = _unescaped(demo_client.get("/map").text)
    assert "15 – Manufacture of leather and related products" in page
    assert " persons" in page and "km²" in page and "firms per km²" in page
    assert "Women-led firms" in page and "Micro firms (&lt; 10 employees)" in page


def test_lq_is_diverging_with_the_break_at_1(demo_client, demo):
    """Each region's colour follows fixed breaks 0.5, 0.8, 1, 1.25, 2 (reds from 1 up)."""
    import json

    from maps.build import HOTSPOT_COLORS, LQ_COLORS

    page = _unescaped(demo_client.get("/map?sector=15").text)
    assert "fixed breaks at 0.5, 0.8, 1, 1.25, 2" in page and "1 – 1.25" in page
    rows = demo["ws"].read_run(demo["specialization_run"], "rows")
    lq = rows[rows["sector"].astype(str) == "15"].set_index("region_id")["lq"]

    def expected(v: float) -> str:  # hand-written classification
        if v < 0.5:
            return "#2166ac"
        if v < 0.8:
            return "#67a9cf"
        if v < 1.0:
            return "#d1e5f0"
        if v < 1.25:
            return "#fddbc7"
        if v < 2.0:
            return "#ef8a62"
        return "#b2182b"

    fills = {}
    for coll in _feature_collections(page):
        for f in coll["features"]:
            p = f["properties"]
            if "fill" in p and "value" in p and "region_id" in p:
                fills[p["region_id"]] = (p["value"], p["fill"])
    assert len(fills) >= 4, fills
    used = {fill for _, fill in fills.values()}
    assert used & set(LQ_COLORS[3:]) and used & set(LQ_COLORS[:3]), used  # both sides of 1
    for rid, (value, fill) in fills.items():
        if value is not None:
            # no row for the sector in a region with firms: none of them, LQ 0
            assert fill == expected(float(lq.get(rid, 0.0))), (rid, value, fill)
    # hotspots never reuse the LQ colours
    assert not set(HOTSPOT_COLORS.values()) & set(LQ_COLORS)
    assert json.dumps(LQ_COLORS[3])[1:-1] in page


def test_kde_fades_out_below_its_threshold(demo_client, demo):
    page = demo_client.get("/map").text
    assert "gc.kdeLayer(" in page and "?colormap=viridis" in page
    assert "is transparent" in page
    # the page's colour table is the one the PNG tiles are painted with (rio-tiler's)
    from rio_tiler.colormap import cmap

    first = cmap.get("viridis")[0]
    assert f"[[{first[0]}, {first[1]}, {first[2]}]" in page


def test_assets_are_individual_at_low_zoom(demo_client):
    """Assets are public: a zoom-3 tile carries each asset with its category, no counts."""
    import mapbox_vector_tile

    r = demo_client.get("/collections/assets/tiles/WebMercatorQuad/3/1/3")
    assert r.status_code == 200
    feats = mapbox_vector_tile.decode(r.content)["default"]["features"]
    # tile 3/1/3 spans 135-90 W, 0-41 N: all 25 synthetic assets (104-101 W, 20-22 N)
    assert len(feats) == 25
    assert all("category" in f["properties"] and "aggregated" not in f["properties"] for f in feats)


def test_asset_gaps_layer(tmp_path):
    from geocluster.analyses.assets import run_assets
    from maps import build_map
    from tests.api.fixtures import build_demo_like_workspace

    info = build_demo_like_workspace(tmp_path / "ws")
    gaps = run_assets(info["ws"], assets="assets", firms="firms", analysis="gaps", radius_m=2000.0)
    page = build_map(info["ws"])
    assert gaps["n_gaps"] > 0
    assert "Asset gaps (no linked firm within 2,000 m)" in page
    assert f"source: assets run {gaps['run_id']}" in page
    assert page.count("Gap: ") == gaps["n_gaps"]


def test_page_tells_the_layer_chooser_what_it_shows(demo_client, demo):
    """``gc.mapState``: each layer's input (one candidate each in the demo) and no choice."""
    import json

    page = demo_client.get("/map").text
    start = page.index("gc.mapState = ") + len("gc.mapState = ")
    state = json.JSONDecoder().raw_decode(page, start)[0]
    assert state["choices"] == {}
    assert state["shown"]["firms"] == "firms"
    assert state["shown"]["clusters"] == demo["clusters_run"]
    assert state["shown"]["kde"] == demo["kde"]
    assert state["sources"]["firms"].startswith("firms@1 (20")
    assert state["sources"]["clusters"].startswith(f"clusters run {demo['clusters_run']} (20")
    assert "/static/geocluster/gcpanel.js" in page
    # the layer list names the run and the dataset version
    assert f"Point clusters (run {demo['clusters_run']}, 20" in _unescaped(page)
    assert "Firms (firms@1)" in page


def test_every_layer_input_can_be_named(demo_client, demo):
    assert demo_client.get("/map?ranking=nope").status_code == 404
    assert demo_client.get(f"/map?gaps={demo['clusters_run']}").status_code == 422
    assert demo_client.get(f"/map?specialization={demo['clusters_run']}").status_code == 422
    page = demo_client.get(f"/map?ranking={demo['ranking_run']}").text
    assert f"ranked by run {demo['ranking_run']}" in _unescaped(page)
