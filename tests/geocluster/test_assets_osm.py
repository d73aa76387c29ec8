"""OSM heritage import from the Helsinki extract, and asset analyses on real data."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from geocluster.analyses.assets import run_assets
from geocluster.ingest import IngestOptions, prepare
from tests.conftest import DATA

PBF = DATA / "osm" / "Helsinki.osm.pbf"


def _independent_counts():
    """Count memorials, museums and artworks with pyosmium directly.

    Same element scope as the reader for these tags (nodes; ways with every node location
    in the extract, closed ones of at least four nodes as areas, open ones as lines; none
    of these subtypes is on a multipolygon relation in the extract) and the same precedence as the OSM asset table (``geocluster.sectors.osm.ASSET_TAGS``):
    tourism=museum|gallery|artwork win over historic=memorial.
    """
    import osmium

    counts: collections.Counter = collections.Counter()
    fp = osmium.FileProcessor(str(PBF), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for obj in fp:
        if obj.is_way():
            if not all(n.location.valid() for n in obj.nodes):
                continue
            if obj.is_closed() and len(obj.nodes) < 4:
                continue
        tourism = obj.tags.get("tourism")
        if tourism in ("museum", "artwork"):
            counts[tourism] += 1
        elif tourism == "gallery":
            continue
        elif obj.tags.get("historic") == "memorial":
            counts["memorial"] += 1
    return counts


@pytest.fixture(scope="module")
def expected():
    return _independent_counts()


def test_helsinki_heritage_counts(expected):
    prepared = prepare("assets", PBF, IngestOptions())
    frame = prepared.frame
    got = frame["subtype"].value_counts()
    for subtype in ("memorial", "museum", "artwork"):
        assert got.get(subtype, 0) == expected[subtype], subtype
    assert expected["artwork"] > 20 and expected["memorial"] > 10 and expected["museum"] > 2
    # every asset is canonical: a category of the catalogue, a subtype, a geometry in lon/lat
    assert frame["category"].isin(["cultural", "natural", "tourism"]).all()
    assert frame["subtype"].notna().all()
    assert frame.crs.to_epsg() == 4326
    b = frame.total_bounds
    assert 24.5 < b[0] < b[2] < 25.5 and 60.0 < b[1] < b[3] < 60.4
    assert (frame.loc[frame["subtype"] == "museum", "category"] == "cultural").all()


def test_helsinki_gaps_against_brute_force(workspace):
    workspace.ingest("assets", PBF, name="heritage")
    workspace.ingest("firms", PBF, name="osm_firms")
    res = run_assets(
        workspace,
        assets="heritage",
        firms="osm_firms",
        analysis="gaps",
        radius_m=50,
        category="cultural",
    )
    # independent reference: full distance matrix in the working CRS (shapely distances)
    info = workspace.dataset("heritage")
    assets = workspace.read("heritage", crs="working")
    assets = assets[assets["category"] == "cultural"]
    firms = workspace.read("osm_firms", crs=info.working_crs)
    tourism = firms[firms["isic_division"].isin(["55", "56", "79", "91", "93"])]
    d = np.array([[a.distance(f) for f in tourism.geometry] for a in assets.geometry])
    expected_gaps = set(assets["asset_id"][(d > 50).all(axis=1)])
    got = {f["properties"]["asset_id"] for f in res["assets"]["features"]}
    assert got == expected_gaps
    assert res["n_assets"] == len(assets)
    assert 0 < res["n_gaps"] < res["n_assets"]
    nearest = {
        f["properties"]["asset_id"]: f["properties"]["nearest_linked_firm_m"]
        for f in res["assets"]["features"]
    }
    ref = dict(zip(assets["asset_id"], d.min(axis=1), strict=True))
    for asset_id, dist in nearest.items():
        np.testing.assert_allclose(dist, ref[asset_id], rtol=1e-9)
    assert all(
        f["properties"]["category"] == "cultural" and f["properties"]["subtype"]
        for f in res["assets"]["features"]
    )
