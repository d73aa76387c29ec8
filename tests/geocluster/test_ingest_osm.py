"""OSM PBF ingestion checked against an independent plain pyosmium count of the same file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import osmium
import pytest
from osmium.osm import mutable

from geocluster.errors import InvalidInput, UnusableFile
from geocluster.ingest import prepare
from geocluster.sectors.osm import FIRM_TAGS, NON_FIRM_VALUES

REPO = Path(__file__).resolve().parents[2]
HELSINKI = REPO / "data" / "osm" / "Helsinki.osm.pbf"

# The selection rules written out from the issue text, independently of the mapping code:
# firms: shop/craft/office/industrial (except non-business values) or a commercial
# amenity/tourism value; assets: historic, heritage, tourism=attraction|museum|artwork|
# viewpoint|gallery, boundary=protected_area, leisure=nature_reserve.
_COMMERCIAL = {
    key: {row.value for row in FIRM_TAGS if row.key == key and row.value != "*"}
    for key in ("amenity", "tourism")
}
_ASSET_TOURISM = {"attraction", "museum", "artwork", "viewpoint", "gallery"}


def _first(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.split(";", 1)[0].strip()


def is_firm(tags: dict[str, str]) -> bool:
    for key in ("shop", "craft", "office", "industrial"):
        value = tags.get(key, "").strip()
        if value and value not in NON_FIRM_VALUES.get(key, ()):
            return True
    return any(_first(tags.get(k)) in _COMMERCIAL[k] for k in ("amenity", "tourism"))


def is_asset(tags: dict[str, str]) -> bool:
    def has(key: str) -> bool:
        v = _first(tags.get(key))
        return v is not None and v != "no"

    return (
        has("historic")
        or has("heritage")
        or _first(tags.get("tourism")) in _ASSET_TOURISM
        or _first(tags.get("boundary")) == "protected_area"
        or _first(tags.get("leisure")) == "nature_reserve"
    )


class Counter_(osmium.SimpleHandler):
    """Count matching nodes and closed ways (with every node location known)."""

    def __init__(self, rule) -> None:
        super().__init__()
        self.rule = rule
        self.counts: Counter[str] = Counter()
        self.lonlat: list[tuple[float, float]] = []

    def node(self, n) -> None:
        if self.rule(dict(n.tags)):
            self.counts["node"] += 1
            self.lonlat.append((n.location.lon, n.location.lat))

    def way(self, w) -> None:
        if len(w.nodes) < 4 or w.nodes[0].ref != w.nodes[-1].ref:
            return
        if not self.rule(dict(w.tags)):
            return
        if not all(n.location.valid() for n in w.nodes):
            self.counts["skipped"] += 1
            return
        self.counts["way"] += 1


def _count(path: Path, rule) -> Counter[str]:
    handler = Counter_(rule)
    handler.apply_file(str(path), locations=True)
    return handler.counts


def _write_synthetic(path: Path) -> None:
    nodes = [
        (1, (24.94, 60.17), {"amenity": "restaurant", "name": "Ravintola"}),
        (2, (24.95, 60.17), {"shop": "bakery"}),
        (3, (24.96, 60.17), {"shop": "vacant"}),  # not a firm
        (4, (24.97, 60.17), {"amenity": "bench"}),  # neither
        (5, (24.98, 60.17), {"historic": "memorial", "name": "Muistomerkki"}),
        (6, (24.99, 60.17), {"tourism": "museum", "craft": "bookbinder"}),  # both
        (7, (24.93, 60.17), {"tourism": "hotel"}),  # firm only
        (8, (24.92, 60.17), {"office": "government"}),  # not a firm
        # way corners
        (10, (24.90, 60.16), {}),
        (11, (24.91, 60.16), {}),
        (12, (24.91, 60.17), {}),
        (13, (24.90, 60.17), {}),
        (14, (24.80, 60.10), {}),
        (15, (24.85, 60.10), {}),
        (16, (24.85, 60.15), {}),
    ]
    with osmium.SimpleWriter(str(path)) as writer:
        for nid, loc, tags in nodes:
            writer.add_node(mutable.Node(id=nid, location=loc, tags=tags, version=1))
        # a closed way that is a firm (workshop) and an asset (historic building)
        writer.add_way(
            mutable.Way(
                id=100,
                nodes=[10, 11, 12, 13, 10],
                tags={"craft": "pottery", "historic": "building"},
                version=1,
            )
        )
        # a protected area polygon
        writer.add_way(
            mutable.Way(
                id=101, nodes=[14, 15, 16, 14], tags={"boundary": "protected_area"}, version=1
            )
        )
        # an open way: ignored
        writer.add_way(mutable.Way(id=102, nodes=[10, 11, 12], tags={"shop": "mall"}, version=1))
        # a closed way with a node missing from the extract: skipped and reported
        writer.add_way(
            mutable.Way(id=103, nodes=[10, 11, 999, 10], tags={"shop": "car"}, version=1)
        )


def test_synthetic_pbf_counts_and_geometries(tmp_path):
    path = tmp_path / "mini.osm.pbf"
    _write_synthetic(path)
    firms = prepare("firms", path)
    assets = prepare("assets", path)

    expected_firms = _count(path, is_firm)
    expected_assets = _count(path, is_asset)
    assert expected_firms == Counter({"node": 4, "way": 1, "skipped": 1})
    assert len(firms.frame) == expected_firms["node"] + expected_firms["way"]
    assert len(assets.frame) == expected_assets["node"] + expected_assets["way"]
    assert sorted(firms.frame["firm_id"]) == ["n1", "n2", "n6", "n7", "w100"]
    assert sorted(assets.frame["asset_id"]) == ["n5", "n6", "w100", "w101"]
    assert any("skipped" in w for w in firms.warnings)

    f = firms.frame.set_index("firm_id")
    assert f.loc["n1", "isic_division"] == "56" and f.loc["n7", "isic_division"] == "55"
    assert f.loc["w100", "isic_division"] == "23"
    assert (firms.frame["sector_scheme"] == "osm").all()
    assert (firms.frame.geometry.geom_type == "Point").all()  # ways -> centroid
    np.testing.assert_allclose(
        [f.loc["w100"].geometry.x, f.loc["w100"].geometry.y], [24.905, 60.165], atol=1e-4
    )

    a = assets.frame.set_index("asset_id")
    assert a.loc["w101"].geometry.geom_type == "Polygon"  # assets keep their polygon
    assert a.loc["w101", "category"] == "natural"
    assert a.loc["n5", ["category", "subtype"]].tolist() == ["cultural", "memorial"]


def test_osm_for_boundaries_is_refused(tmp_path):
    path = tmp_path / "mini.osm.pbf"
    _write_synthetic(path)
    with pytest.raises(InvalidInput, match="firms or assets"):
        prepare("boundaries", path)


def test_corrupt_pbf(tmp_path):
    path = tmp_path / "bad.osm.pbf"
    path.write_bytes(b"\x00\x00\x00\x0d\n\tOSMHeader" + b"garbage" * 100)
    with pytest.raises(UnusableFile):
        prepare("firms", path)


@pytest.mark.parametrize(("kind", "rule"), [("firms", is_firm), ("assets", is_asset)])
def test_helsinki_counts_match_an_independent_handler(kind, rule):
    prepared = prepare(kind, HELSINKI)
    expected = _count(HELSINKI, rule)
    assert len(prepared.frame) == expected["node"] + expected["way"]
    assert len(prepared.frame) > 50
    types = Counter(prepared.frame["osm_type"])
    assert types["node"] == expected["node"] and types.get("way", 0) == expected["way"]
    assert prepared.rejected == []
    assert prepared.working_crs == "EPSG:32635"
