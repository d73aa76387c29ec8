"""The region report's UNIDO-cycle sections: baseline -> follow-up change, institutions.

A toy workspace whose answer is known by construction (two 1-degree regions A and B, a
baseline and a follow-up register, three support institutions), then the demo's Oaxaca
report on the real state boundaries with the synthetic registers and institutions.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.disclosure import DisclosurePolicy, Principal
from geocluster.report import build_report
from geocluster.report.data import collect

SPACING_DEG = 0.001  # about 105 m at 20.5 N: grid neighbours are within eps


def _firms(rows: list[tuple[str, float, float, float, bool]]) -> gpd.GeoDataFrame:
    ids, lon, lat, emp, women = zip(*rows, strict=True)
    return gpd.GeoDataFrame(
        {
            "firm_id": list(ids),
            "name": [f"Toy firm {i}" for i in ids],
            "sector_code": "15",
            "sector_scheme": "isic4",
            "isic_division": "15",
            "employees": list(emp),
            "women_led": list(women),
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )


def _grid(prefix: str, n: int, x0: float, y0: float, cols: int) -> list[tuple[str, float, float]]:
    return [
        (f"{prefix}{i + 1:03d}", x0 + SPACING_DEG * (i % cols), y0 + SPACING_DEG * (i // cols))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """By construction (firm ids stable across the two versions):

    - cluster P in region A: 20 firms of 5 employees, 5 women-led (25 %) in the baseline;
      18 survive and 7 open next to them, all with 6 employees: 25 firms, 150 employees,
      7 women-led (5 survivors + 2 new: 28 %). 18 shared of 27: Jaccard 0.67 -> matched.
    - cluster Q in region B: 15 firms of 2 employees, 3 women-led (20 %); all close ->
      disappeared.
    - cluster R in region A, new: 12 firms of 3 employees, 6 women-led (50 %) -> appeared.
    - institutions: a training centre 1 km from P and a chamber 60 km away, both in A; a
      university in B. Within 5 km: P has training, no association; R has neither.
    """
    from geocluster.analyses.clusters import run_clusters
    from geocluster.analyses.unido import run_change, run_institutions
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("toy") / "ws")
    regions = gpd.GeoDataFrame(
        {"region_id": ["A", "B"], "name": ["Region A", "Region B"], "level": [1, 1]},
        geometry=[shapely.box(-100, 20, -99, 21), shapely.box(-99, 20, -98, 21)],
        crs="EPSG:4326",
    )
    ws.add_dataset("boundaries", regions, name="toy_regions")
    p = _grid("P", 20, -99.5, 20.5, cols=5)  # rows at 20.500 .. 20.503
    q = _grid("Q", 15, -98.5, 20.5, cols=5)
    base = [(i, x, y, 5.0, k < 5) for k, (i, x, y) in enumerate(p)]
    base += [(i, x, y, 2.0, k < 3) for k, (i, x, y) in enumerate(q)]
    ws.add_dataset("firms", _firms(base), name="toy_firms")
    new_p = [(f"N{k:03d}", -99.5 + SPACING_DEG * k, 20.504) for k in range(7)]
    r = _grid("R", 12, -99.2, 20.8, cols=4)
    follow = [(i, x, y, 6.0, k < 5) for k, (i, x, y) in enumerate(p[:18])]
    follow += [(i, x, y, 6.0, k < 2) for k, (i, x, y) in enumerate(new_p)]
    follow += [(i, x, y, 3.0, k < 6) for k, (i, x, y) in enumerate(r)]
    ws.add_dataset("firms", _firms(follow), name="toy_firms")
    inst = gpd.GeoDataFrame(
        {
            "institution_id": ["I1", "I2", "I3"],
            "name": ["Toy training centre", "Toy chamber", "Toy university"],
            "type": ["training", "chamber", "university"],
        },
        geometry=gpd.points_from_xy([-99.49, -99.9, -98.5], [20.5, 20.1, 20.2]),
        crs="EPSG:4326",
    )
    ws.add_dataset("institutions", inst, name="toy_inst")
    kw = {"method": "dbscan", "eps_m": 500.0, "min_samples": 5}
    v1 = run_clusters(ws, firms="toy_firms@1", **kw)["run_id"]
    v2 = run_clusters(ws, firms="toy_firms@2", **kw)["run_id"]
    change = run_change(ws, before=v1, after=v2)["run_id"]
    institutions = run_institutions(ws, clusters_run=v2, institutions="toy_inst", radius_m=5000.0)
    return {"ws": ws, "v1": v1, "v2": v2, "change": change,
            "institutions": institutions["run_id"]}  # fmt: skip


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}")
    return html[start : html.index("</section>", start)]


def _rows(section: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr>.*?</tr>", section, flags=re.S)]  # fmt: skip


def test_change_section_of_region_a(toy):
    html = build_report(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"]).decode()
    sec = _section(html, "Baseline → follow-up")
    # the exact runs and the two firm versions
    for ref in (toy["change"], toy["v1"], toy["v2"], "toy_firms@1", "toy_firms@2"):
        assert ref in sec, ref
    assert "shared firms" in sec
    # region A: P matched, R appeared; Q (region B) is not A's
    assert "matched 1, appeared 1" in sec and "disappeared" not in sec
    rows = _rows(sec)
    matched = next(r for r in rows if r.startswith("matched"))
    # firms 20 -> 25 (+5), employees 20 x 5 = 100 -> 25 x 6 = 150 (+50), women-led 5/20
    # -> 7/25 (hand counts of the construction above)
    assert "20 → 25 (+5)" in matched and "100 → 150 (+50)" in matched, matched
    assert "25.0 % → 28.0 %" in matched, matched
    appeared = next(r for r in rows if r.startswith("appeared"))
    # R: 12 firms, 12 x 3 = 36 employees, 6/12 women-led
    assert "- → 12" in appeared and "- → 36" in appeared and "→ 50.0 %" in appeared, appeared
    # the change and institutions runs are among the exact inputs
    sources = _section(html, "Sources and exact inputs")
    assert toy["change"] in sources and toy["institutions"] in sources


def test_change_section_of_region_b(toy):
    html = build_report(toy["ws"], "B", boundaries="toy_regions", clusters_run=toy["v2"]).decode()
    sec = _section(html, "Baseline → follow-up")
    assert "disappeared 1." in sec
    (row,) = [r for r in _rows(sec) if r.startswith("disappeared")]
    # Q: 15 firms of 2 employees, 3/15 women-led, none left
    assert "15 → -" in row and "30 → -" in row and "20.0 % → -" in row, row


def test_institutions_section(toy):
    html = build_report(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"]).decode()
    sec = _section(html, "Support institutions")
    assert "2 support institutions of <code>toy_inst@1</code> lie in Region A" in sec
    counts = {r.split(" ")[0]: r.split(" ")[-1] for r in _rows(sec) if "Cluster" not in r}
    assert counts["training"] == "1" and counts["chamber"] == "1"
    assert counts["university"] == "0"  # the university is in B
    assert toy["institutions"] in sec and "5,000 m" in sec
    # both of A's clusters lack support: P an association, R both
    assert "2 of 2" in sec
    gaps = [r for r in _rows(sec) if r.startswith("Cluster")]
    by_firms = {r.split(" ")[2]: r for r in gaps}
    assert by_firms["25"].endswith("association") and "training" not in by_firms["25"].split()[-2:]
    assert by_firms["12"].endswith("training, association")
    # the nearest training centre of P: I1 is 0.01 deg of longitude east of P's west
    # edge, P spans 0.004 deg: 0.006 deg x 111.32 km x cos(20.5 deg) = 626 m, +- the hull
    nearest = float(by_firms["25"].split()[4].replace(",", ""))
    assert abs(nearest - 0.006 * 111_320 * np.cos(np.radians(20.5))) < 25, nearest
    html_b = build_report(toy["ws"], "B", boundaries="toy_regions", clusters_run=toy["v2"])
    sec_b = _section(html_b.decode(), "Support institutions")
    assert "1 support institutions" in sec_b and "none of 0" in sec_b


def test_sections_are_disclosed_for_a_viewer(toy):
    # a threshold of 13 firms: R (12 firms) is suppressed for a viewer, P (20/25) is not
    policy = DisclosurePolicy(min_contributors=13)
    viewer = collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"],
                     principal=Principal("r", "viewer"), policy=policy)  # fmt: skip
    rows = {r["status"]: r for r in viewer["change"]["rows"]}
    assert rows["appeared"]["suppressed"] and not rows["matched"]["suppressed"]
    assert all(c["after"] is None for c in rows["appeared"]["cells"])
    clusters = viewer["institutions"]["clusters"]
    assert sorted(c["suppressed"] for c in clusters) == [False, True]
    html = build_report(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"],
                        principal=Principal("r", "viewer"), policy=policy).decode()  # fmt: skip
    sec = _section(html, "Baseline → follow-up")
    appeared = next(r for r in _rows(sec) if r.startswith("appeared"))
    assert "suppressed" in appeared and "12" not in appeared and "36" not in appeared
    editor = collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"],
                     policy=policy)  # fmt: skip
    assert not any(r["suppressed"] for r in editor["change"]["rows"])


def test_named_runs_and_several_candidates(toy):
    from geocluster.analyses.unido import run_change
    from geocluster.errors import WrongKind

    with pytest.raises(WrongKind):
        collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"],
                change_run=toy["institutions"])  # fmt: skip
    # a second change run on the same clusters (this test runs last on the toy
    # workspace): the section lists both and chooses none
    other = run_change(toy["ws"], before=toy["v1"], after=toy["v2"], score="overlap")["run_id"]
    c = collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"])
    assert c["change"]["run_id"] is None
    assert set(c["change"]["choices"]) == {toy["change"], other}
    html = build_report(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"])
    assert b"Several change runs apply" in html
    named = collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["v2"],
                    change_run=other)  # fmt: skip
    assert named["change"]["run_id"] == other and named["change"]["score"] == "overlap"


def test_oaxaca_report_of_the_demo_shows_change_and_institutions(tmp_path):
    from geocluster.demo import default_data_dir
    from tests.browser.test_map_unido import build_unido_workspace

    info = build_unido_workspace(tmp_path / "ws")
    html = build_report(info["ws"], "MX-OAX", boundaries="mexico_states",
                        clusters_run=info["v2"]).decode()  # fmt: skip
    change = _section(html, "Baseline → follow-up")
    for ref in (info["change"], info["v1"], info["v2"], "mexico_firms@1", "mexico_firms@2"):
        assert ref in change, ref
    assert len(_rows(change)) >= 2  # a header and at least one of Oaxaca's clusters
    inst = _section(html, "Support institutions")
    # institutions by type inside Oaxaca, counted from the bundled CSV with a geopandas
    # point-in-polygon test (not geocluster's reader)
    states = gpd.read_file(default_data_dir() / "boundaries" / "mexico_states.gpkg")
    oax = states[states["region_id"] == "MX-OAX"].to_crs("EPSG:4326").geometry.iloc[0]
    csv = pd.read_csv(default_data_dir() / "institutions" / "mexico_institutions_SYNTHETIC.csv")
    pts = gpd.GeoDataFrame(csv, geometry=gpd.points_from_xy(csv.lon, csv.lat), crs=4326)
    want = pts[pts.within(oax)]["type"].value_counts()
    assert f"{int(want.sum())} support institutions" in inst
    counts = {r.split(" ")[0]: int(r.split(" ")[-1]) for r in _rows(inst)[1:]
              if not r.startswith(("Cluster", "Type"))}  # fmt: skip
    for t, n in want.items():
        assert counts[t.split("_")[0]] == n, (t, counts)
    assert info["institutions"] in inst and "Clusters without support within reach" in inst
