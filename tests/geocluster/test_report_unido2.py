"""The region report's dynamics, shift-share and economic-complexity sections.

A toy workspace whose answers are known by construction: four 1-degree regions A-D side
by side, four ISIC divisions, a baseline and a follow-up register of firms of 2
employees each, every (region, sector) cell a 5-column grid of firms 0.001 deg apart.
The follow-up's firms of each cell were founded two a year, 2010-2014. Every figure the
sections show is recomputed here by hand (pandas / numpy on the construction's tables),
not by geocluster. Then the demo's Oaxaca report on the real states, with the demo's
``dynamics``, ``shiftshare`` and ``relatedness`` runs.
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
SECTORS = ["10", "13", "26", "62"]
REGIONS = ["A", "B", "C", "D"]
EMPLOYEES = 2.0
#: firms per (region, sector): baseline and follow-up (rows REGIONS, columns SECTORS)
BASE = np.array([[10, 10, 5, 5], [10, 10, 10, 0], [5, 10, 0, 0], [10, 0, 0, 0]])
FINAL = np.array([[10, 10, 10, 10], [10, 10, 10, 0], [10, 10, 0, 0], [10, 0, 0, 0]])


def _register(counts: np.ndarray, founded: bool) -> gpd.GeoDataFrame:
    rows = []
    for r, region in enumerate(REGIONS):
        for s, sector in enumerate(SECTORS):
            # the cell's grid: region r spans lon -100+r .. -99+r; sectors 0.2 deg apart
            x0, y0 = -99.9 + r + 0.2 * s, 20.5
            for i in range(int(counts[r, s])):
                rows.append({
                    "firm_id": f"{region}{sector}-{i:02d}",
                    "sector_code": sector, "sector_scheme": "isic4", "isic_division": sector,
                    "employees": EMPLOYEES,
                    "founded": 2010 + i // 2 if founded else None,
                    "lon": x0 + SPACING_DEG * (i % 5), "lat": y0 + SPACING_DEG * (i // 5),
                })  # fmt: skip
    frame = pd.DataFrame(rows)
    if not founded:
        frame = frame.drop(columns="founded")
    return gpd.GeoDataFrame(
        frame.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(frame.lon, frame.lat),
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from geocluster.analyses.clusters import run_clusters
    from geocluster.analyses.unido import run_dynamics, run_relatedness, run_shiftshare
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("toy2") / "ws")
    regions = gpd.GeoDataFrame(
        {"region_id": REGIONS, "name": [f"Region {r}" for r in REGIONS], "level": 1},
        geometry=[shapely.box(-100 + i, 20, -99 + i, 21) for i in range(4)],
        crs="EPSG:4326",
    )
    ws.add_dataset("boundaries", regions, name="toy_regions")
    ws.add_dataset("firms", _register(BASE, founded=False), name="toy_firms")
    ws.add_dataset("firms", _register(FINAL, founded=True), name="toy_firms")
    clusters = run_clusters(ws, firms="toy_firms@2", method="dbscan", eps_m=500.0,
                            min_samples=5)["run_id"]  # fmt: skip
    dyn = run_dynamics(ws, firms="toy_firms@2", boundaries="toy_regions", clusters=clusters,
                       growth_years=2)["run_id"]  # fmt: skip
    shift = run_shiftshare(ws, firms="toy_firms@1", firms_to="toy_firms@2",
                           boundaries="toy_regions", measure="employees")["run_id"]  # fmt: skip
    rel = run_relatedness(ws, firms="toy_firms@2", boundaries="toy_regions",
                          measure="employees", top_n=3)["run_id"]  # fmt: skip
    return {"ws": ws, "clusters": clusters, "dynamics": dyn, "shiftshare": shift,
            "relatedness": rel}  # fmt: skip


def _report(toy, region: str, **kw) -> str:
    return build_report(toy["ws"], region, boundaries="toy_regions",
                        clusters_run=toy["clusters"], **kw).decode()  # fmt: skip


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}")
    return html[start : html.index("</section>", start)]


def _table(section: str, css: str) -> str:
    start = section.index(f'class="{css}"')
    return section[start : section.index("</table>", start)]


def _rows(section: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr>.*?</tr>", section, flags=re.S)]  # fmt: skip


# -- hand computations --------------------------------------------------------------------
def _shift_share_by_hand() -> pd.DataFrame:
    """Dunn (1960) per region x sector from the construction's tables, with pandas."""
    e0 = pd.DataFrame(BASE * EMPLOYEES, index=REGIONS, columns=SECTORS)
    e1 = pd.DataFrame(FINAL * EMPLOYEES, index=REGIONS, columns=SECTORS)
    big_g = e1.to_numpy().sum() / e0.to_numpy().sum() - 1
    g = e1.sum() / e0.sum() - 1
    ns = e0 * big_g
    im = e0 * (g - big_g)
    rs = e1 - e0 * (1 + g)
    return pd.DataFrame({
        "base": e0.stack(), "final": e1.stack(), "national_share": ns.stack(),
        "industry_mix": im.stack(), "regional_shift": rs.stack(),
    })  # fmt: skip


def _eci_by_hand() -> pd.Series:
    """Hidalgo & Hausmann (2009) ECI of the follow-up table, by the eigenvector method.

    M = RCA >= 1 (Balassa); M~ = D^-1 M U^-1 M^T; ECI = the eigenvector of the second
    largest eigenvalue, standardised, signed to correlate positively with diversity.
    """
    x = FINAL * EMPLOYEES
    rca = (x / x.sum(axis=1, keepdims=True)) / (x.sum(axis=0) / x.sum())
    m = (rca >= 1).astype(float)
    d, u = m.sum(axis=1), m.sum(axis=0)
    mt = (m / d[:, None]) @ (m / u).T
    vals, vecs = np.linalg.eig(mt)
    v = np.real(vecs[:, np.argsort(-np.real(vals))[1]])
    eci = (v - v.mean()) / v.std(ddof=0)
    if np.corrcoef(eci, d)[0, 1] < 0:
        eci = -eci
    return pd.Series(eci, index=REGIONS)


def test_shiftshare_section_sums_and_matches_the_hand_decomposition(toy):
    html = _report(toy, "A")
    sec = _section(html, "Shift-share")
    assert toy["shiftshare"] in sec and "toy_firms@1" in sec and "toy_firms@2" in sec
    want = _shift_share_by_hand()
    region = want.loc["A"].sum()
    (total,) = [r for r in _rows(sec) if r.startswith("Region A (employees)")]
    nums = [float(v.replace(",", "")) for v in total.split()[3:]]
    base, final, change, ns, im, rs = nums
    assert (base, final) == (region["base"], region["final"]) == (60.0, 80.0)
    assert change == pytest.approx(final - base)
    assert ns == pytest.approx(region["national_share"], abs=0.05)
    assert im == pytest.approx(region["industry_mix"], abs=0.05)
    assert rs == pytest.approx(region["regional_shift"], abs=0.05)
    assert ns + im + rs == pytest.approx(change, abs=0.15)  # the identity, to rounding
    # the sector rows: A's 26 grew 10 -> 20 employees while 26 grew 25 -> 40 nationally
    rows = {r.split()[0]: r for r in _rows(sec)[3:]}
    for sector in SECTORS:
        cells = [float(v.replace(",", "")) for v in rows[sector].split()[-6:]]
        w = want.loc[("A", sector)]
        assert cells[0] == w["base"] and cells[1] == w["final"]
        assert cells[3:] == pytest.approx(
            [w["national_share"], w["industry_mix"], w["regional_shift"]], abs=0.05
        )


def test_relatedness_section_against_the_hand_matrix(toy):
    want = _eci_by_hand()
    ranks = want.rank(ascending=False, method="min").astype(int)
    for region in REGIONS:
        sec = _section(_report(toy, region), "Economic complexity")
        assert toy["relatedness"] in sec
        m = re.search(r"index .*? of ([+-]\d+\.\d\d), rank (\d+) of 4 regions", sec, re.S)
        assert m, sec
        assert float(m.group(1)) == pytest.approx(want[region], abs=0.006), region
        assert int(m.group(2)) == ranks[region]
    # A alone holds 62 (ubiquity 1): the most complex; D holds only 10: the least
    assert ranks["A"] == 1 and ranks["D"] == 4 and want["D"] < 0 < want["A"]
    # D's RCA >= 1 sectors: only 10 (RCA = (20/20) / (80/200) = 2.5, by hand)
    sec = _section(_report(toy, "D"), "Economic complexity")
    # nearby opportunities: D's RCA < 1 sectors by density, by hand (Hidalgo et al.
    # 2007): phi[s, t] = co-occurrence / max(ubiquity) (phi[s, s] = 1), density[r, s] =
    # sum over t of M[r, t] phi[s, t] / sum over t of phi[s, t]
    x = FINAL * EMPLOYEES
    rca = (x / x.sum(axis=1, keepdims=True)) / (x.sum(axis=0) / x.sum())
    m = (rca >= 1).astype(float)
    u = m.sum(axis=0)
    phi = (m.T @ m) / np.maximum.outer(u, u)
    dens = (m @ phi) / phi.sum(axis=0)
    # the density of D's own 10: phi(10, 10) = 1, phi(10, 13) = 1 / 2 (C holds both):
    # 1 / 1.5 = 0.67
    adv = _rows(_table(sec, "gc-rca"))[1:]
    assert len(adv) == 1 and adv[0].startswith("10 "), adv
    assert adv[0].endswith(f"2.50 {dens[3, 0]:.2f}") and f"{dens[3, 0]:.2f}" == "0.67", adv
    opp = _rows(_table(sec, "gc-opportunities"))[1:]
    shown = {r.split()[1]: float(r.split()[-3]) for r in opp}
    want_d = {SECTORS[j]: dens[3, j] for j in range(4) if rca[3, j] < 1}
    assert set(shown) == set(want_d)  # top_n = 3: all three of D's missing sectors
    for sector, d in want_d.items():
        assert shown[sector] == pytest.approx(d, abs=0.006), sector
    densities = [float(r.split()[-3]) for r in opp]
    assert densities == sorted(densities, reverse=True)  # densest first


def test_dynamics_section_by_construction(toy):
    sec = _section(_report(toy, "A"), "Firm dynamics")
    assert toy["dynamics"] in sec and "toy_firms@2" in sec and "2010–2014" in sec
    rows = _rows(sec)
    # A: 4 cells x 2 firms founded a year: 8 a year 2010-2014, stock 8, 16 .. 40
    series = {r.split()[0]: r.split()[1:] for r in rows if r[:4].isdigit() and len(r.split()) == 5}
    assert sorted(series) == ["2010", "2011", "2012", "2013", "2014"]
    for k, year in enumerate(sorted(series)):
        assert series[year] == ["8", "16", str(8 * (k + 1)), f"{16 * (k + 1)}"]
    # growth over the last 2 years: stock 24 (2012) -> 40 (2014), CAGR (40/24)^(1/2) - 1
    firms = next(r for r in rows if r.startswith("Firms "))
    assert firms.split()[1:3] == ["24", "40"]
    assert f"{100 * ((40 / 24) ** 0.5 - 1):.1f} %" in firms
    # age structure in 2014: founded 2012-2014 -> 0-2 years (24 firms), 2010-2011 -> 3-5
    ages = {r.split()[0]: r.split()[1] for r in rows if r[:1].isdigit() and "-" in r.split()[0]}
    assert ages["0-2"] == "24" and ages["3-5"] == "16"
    assert "60.0 %" in next(r for r in rows if r.startswith("0-2"))
    # emergence: a cell's cluster has 2 firms by 2010, 4 by 2011, 6 by 2012 (>= 5)
    clusters = [r for r in rows if r.startswith("Cluster ") and r.split()[1].isdigit()]
    assert len(clusters) == 4  # A's four cells, each a cluster of 10 firms
    for r in clusters:
        assert r.split()[2:5] == ["2012", "6", "10"], r
    assert 'alt="Bar chart of the firms of Region A by founding year' in sec


def test_sections_are_disclosed_for_a_viewer(toy):
    # 15 firms: D (10 firms) and every cluster (10 firms) are under the threshold
    policy = DisclosurePolicy(min_contributors=15)
    viewer = Principal("r", "viewer")
    c = collect(toy["ws"], "D", boundaries="toy_regions", clusters_run=toy["clusters"],
                principal=viewer, policy=policy)  # fmt: skip
    assert c["shiftshare"]["total"]["suppressed"] and c["shiftshare"]["total"]["base"] is None
    assert c["dynamics"]["growth"]["suppressed"]
    assert all(s.get("new_firms") is None for s in c["dynamics"]["series"])
    assert all(cl["suppressed"] and cl.get("emergence_year") is None
               for cl in c["dynamics"]["clusters"])  # fmt: skip
    assert c["relatedness"]["eci"] is not None  # ECI ranks regions: a public aggregate
    html = build_report(toy["ws"], "D", boundaries="toy_regions", clusters_run=toy["clusters"],
                        principal=viewer, policy=policy).decode()  # fmt: skip
    assert "Region total: suppressed" in _section(html, "Shift-share")
    assert "Growth: suppressed" in _section(html, "Firm dynamics")
    editor = collect(toy["ws"], "D", boundaries="toy_regions", clusters_run=toy["clusters"],
                     policy=policy)  # fmt: skip
    assert editor["shiftshare"]["total"]["base"] == 20.0  # D: 10 firms x 2 employees
    assert not editor["dynamics"]["growth"]["suppressed"]


def test_no_run_no_section_and_several_candidates(toy, tmp_path):
    from geocluster.analyses.unido import run_shiftshare
    from geocluster.errors import WrongKind
    from geocluster.workspace import Workspace

    bare = Workspace(tmp_path / "bare")
    bare.add_dataset("boundaries", toy["ws"].read("toy_regions"), name="toy_regions")
    bare.add_dataset("firms", _register(FINAL, founded=True), name="toy_firms")
    html = build_report(bare, "A", boundaries="toy_regions").decode()
    for title in ("Firm dynamics", "Shift-share", "Economic complexity"):
        assert f"<h2>{title}" not in html
    with pytest.raises(WrongKind):
        collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["clusters"],
                shiftshare_run=toy["relatedness"])  # fmt: skip
    # a second shift-share run (later tests on the toy name theirs): listed, none chosen
    other = run_shiftshare(toy["ws"], firms="toy_firms@1", firms_to="toy_firms@2",
                           boundaries="toy_regions", measure="firms")["run_id"]  # fmt: skip
    c = collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["clusters"])
    assert c["shiftshare"]["run_id"] is None
    assert set(c["shiftshare"]["choices"]) == {toy["shiftshare"], other}
    assert "Several shift-share runs apply" in _report(toy, "A")
    named = collect(toy["ws"], "A", boundaries="toy_regions", clusters_run=toy["clusters"],
                    shiftshare_run=other)  # fmt: skip
    # measured in firms: A's 30 -> 40 firms
    assert named["shiftshare"]["unit"] == "firms"
    assert (named["shiftshare"]["total"]["base"], named["shiftshare"]["total"]["final"]) == (
        30.0, 40.0,
    )  # fmt: skip


def test_cli_names_the_runs(toy, tmp_path):
    from geocluster.cli import main

    out = tmp_path / "a.html"
    code = main(["report", "A", "--boundaries", "toy_regions", "--clusters-run",
                 toy["clusters"], "--dynamics-run", toy["dynamics"], "--relatedness-run",
                 toy["relatedness"], "--shiftshare-run", toy["shiftshare"], "--out", str(out),
                 "--workspace", str(toy["ws"].path)])  # fmt: skip
    assert code == 0
    html = out.read_text(encoding="utf-8")
    for ref in ("dynamics", "shiftshare", "relatedness"):
        assert toy[ref] in _section(html, "Sources and exact inputs")
    assert "Region A (employees)" in _section(html, "Shift-share")


def _oaxaca_employees(csv) -> float:
    """Employees of a register's CSV inside Oaxaca (geopandas point-in-polygon)."""
    from geocluster.demo import default_data_dir

    states = gpd.read_file(default_data_dir() / "boundaries" / "mexico_states.gpkg")
    oax = states[states["region_id"] == "MX-OAX"].to_crs("EPSG:4326").geometry.iloc[0]
    firms = pd.read_csv(csv)
    pts = gpd.GeoDataFrame(firms, geometry=gpd.points_from_xy(firms.lon, firms.lat), crs=4326)
    return float(pd.to_numeric(pts[pts.within(oax)]["employees"], errors="coerce").sum())


def test_oaxaca_report_of_the_demo_shows_the_three_sections(tmp_path):
    from geocluster.demo import DEMO_DATASETS, default_data_dir
    from tests.browser.test_map_unido2 import build_unido2_workspace

    info = build_unido2_workspace(tmp_path / "ws")
    html = build_report(info["ws"], "MX-OAX", boundaries="mexico_states",
                        clusters_run=info["v2"]).decode()  # fmt: skip
    shift = _section(html, "Shift-share")
    assert info["shiftshare"] in shift and "mexico_firms@1" in shift and "mexico_firms@2" in shift
    (total,) = [r for r in _rows(shift) if r.startswith("Oaxaca (employees)")]
    base, final, change, ns, im, rs = (float(v.replace(",", "")) for v in total.split()[2:])
    # Oaxaca's employees in each register, counted here from the CSVs
    (spec,) = [s for s in DEMO_DATASETS if s.name == "mexico_firms" and s.derive is None]
    assert base == _oaxaca_employees(default_data_dir() / spec.path)
    assert final == _oaxaca_employees(info["follow_up_csv"])
    assert ns + im + rs == pytest.approx(change, abs=0.15) and change == final - base
    dyn = _section(html, "Firm dynamics")
    assert info["dynamics"] in dyn and "Emergence of the region" in dyn and "<img" in dyn
    rel = _section(html, "Economic complexity")
    assert info["relatedness"] in rel and "Nearby opportunities" in rel
    assert "rank" in rel and "of 32 regions" in rel
    sources = _section(html, "Sources and exact inputs")
    for ref in ("dynamics", "shiftshare", "relatedness"):
        assert info[ref] in sources
