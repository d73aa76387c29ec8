"""Specialisation measures on a small table computed by hand, and the region join vs sjoin."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geocluster.errors import InvalidInput
from geocluster.specialization import (
    assign_regions,
    assign_regions_xy,
    bootstrap_lq,
    choose_measure,
    cluster_stars,
    ellison_glaeser,
    herfindahl,
    krugman,
    location_quotient,
    long_table,
    maurel_sedillot,
    sector_table,
    strong_clusters,
)

# The hand table: firms as (region, sector, employees)
#   R0: A 10, A 20, B 10   -> x[R0] = (A 30, B 10), X[R0] = 40
#   R1: A 10, B 30         -> x[R1] = (A 10, B 30), X[R1] = 40
#   R2: B 20               -> x[R2] = (A  0, B 20), X[R2] = 20
#   national: X[A] = 40, X[B] = 60, X = 100
FIRMS = [
    (0, "A", 10.0),
    (0, "A", 20.0),
    (0, "B", 10.0),
    (1, "A", 10.0),
    (1, "B", 30.0),
    (2, "B", 20.0),
]


@pytest.fixture
def table():
    reg, sec, emp = zip(*FIRMS)
    return sector_table(np.array(reg), ["R0", "R1", "R2"], list(sec), np.array(emp))


def test_location_quotient_by_hand(table):
    x, tot = table.matrices("employees")
    # LQ[r,s] = (x[r,s]/X[r]) / (X[s]/X)   (Florence 1939; US Cluster Mapping)
    expected = np.array(
        [
            [(30 / 40) / (40 / 100), (10 / 40) / (60 / 100)],
            [(10 / 40) / (40 / 100), (30 / 40) / (60 / 100)],
            [(0 / 20) / (40 / 100), (20 / 20) / (60 / 100)],
        ]
    )
    np.testing.assert_allclose(location_quotient(x, tot), expected)
    # on firm counts: R0 has 3 of 6 firms, 2 of them A (3 of 6 firms are A nationally)
    c, ctot = table.matrices("firms")
    np.testing.assert_allclose(
        location_quotient(c, ctot)[0], [(2 / 3) / (3 / 6), (1 / 3) / (3 / 6)]
    )


def test_herfindahl_and_krugman_by_hand(table):
    x, tot = table.matrices("employees")
    # HHI[r] = sum_s share^2
    np.testing.assert_allclose(
        herfindahl(x, tot), [0.75**2 + 0.25**2, 0.25**2 + 0.75**2, 0**2 + 1**2]
    )
    # Krugman (1991, Geography and Trade, app. D): K[r] = sum_s |x[r,s]/X[r] - rest share|
    # R0 vs R1+R2 (A 10, B 50 of 60); R1 vs R0+R2 (A 30, B 30); R2 vs R0+R1 (A 40, B 40)
    expected_rest = [
        abs(0.75 - 10 / 60) + abs(0.25 - 50 / 60),
        abs(0.25 - 0.5) + abs(0.75 - 0.5),
        abs(0.0 - 0.5) + abs(1.0 - 0.5),
    ]
    np.testing.assert_allclose(krugman(x, tot), expected_rest)
    # vs the whole country (A 0.4, B 0.6)
    expected_total = [0.35 + 0.35, 0.15 + 0.15, 0.4 + 0.4]
    np.testing.assert_allclose(krugman(x, tot, reference="total"), expected_total)
    with pytest.raises(InvalidInput, match="reference"):
        krugman(x, tot, reference="world")


def test_ellison_glaeser_and_maurel_sedillot_by_hand(table):
    # region shares of all employment x_r = (0.4, 0.4, 0.2); sum x_r^2 = 0.36
    sx2 = 0.4**2 + 0.4**2 + 0.2**2
    # sector A: s_r = (30, 10, 0)/40, plant Herfindahl H = (10^2+20^2+10^2)/40^2
    sA = np.array([0.75, 0.25, 0.0])
    hA = (10**2 + 20**2 + 10**2) / 40**2
    # sector B: s_r = (10, 30, 20)/60, H = (10^2+30^2+20^2)/60^2
    sB = np.array([10, 30, 20]) / 60
    hB = (10**2 + 30**2 + 20**2) / 60**2
    xr = np.array([0.4, 0.4, 0.2])

    def eg(s, h):  # Ellison & Glaeser 1997, JPE 105(5), eq. 5
        g = np.sum((s - xr) ** 2)
        return (g - (1 - sx2) * h) / ((1 - sx2) * (1 - h))

    def ms(s, h):  # Maurel & Sedillot 1999, Reg. Sci. Urban Econ. 29(5)
        return (np.sum(s**2) - sx2 - h * (1 - sx2)) / ((1 - sx2) * (1 - h))

    # the arithmetic for A: G = .35^2+.15^2+.2^2 = .185; H = .375; (.185-.64*.375)/(.64*.625)
    assert eg(sA, hA) == pytest.approx(-0.1375)
    assert ms(sA, hA) == pytest.approx(0.0625)
    np.testing.assert_allclose(ellison_glaeser(table), [eg(sA, hA), eg(sB, hB)])
    np.testing.assert_allclose(maurel_sedillot(table), [ms(sA, hA), ms(sB, hB)])
    # on firm counts H = 1/n and shares are of firms
    cx = np.array([3, 2, 1]) / 6
    csx2 = np.sum(cx**2)
    sA_c = np.array([2, 1, 0]) / 3
    expected = (np.sum((sA_c - cx) ** 2) - (1 - csx2) / 3) / ((1 - csx2) * (1 - 1 / 3))
    assert ellison_glaeser(table, "firms")[0] == pytest.approx(expected)


def test_strong_cluster_rule_crafted():
    # sector 0: LQ sorted .5 .8 .9 1 1.2 1.7 2 3 -> P75 (linear) = 1.7 + .25*.3 = 1.775
    #   P90 = 2 + .3*1 = 2.3; employment P25 = 20 + .75*5 = 23.75; establishments P25 = 5
    # sector 1: every LQ < 1, so nothing is strong even though the top quarter passes P75
    lq = np.array(
        [
            [0.5, 0.1],
            [0.8, 0.2],
            [1.0, 0.3],
            [1.2, 0.4],
            [1.7, 0.5],
            [2.0, 0.6],
            [3.0, 0.7],
            [0.9, 0.9],
        ]
    )
    emp = np.array(
        [[100, 100], [50, 100], [10, 100], [40, 100], [30, 100], [25, 100], [60, 100], [20, 100]]
    )
    est = np.array([[10, 9], [10, 9], [1, 9], [10, 9], [10, 9], [6, 9], [7, 9], [2, 9]])
    strong = strong_clusters(lq, emp, est)
    assert strong[:, 0].tolist() == [False] * 5 + [True, True, False]
    assert not strong[:, 1].any()
    strong90 = strong_clusters(lq, emp, est, percentile=90)
    assert np.flatnonzero(strong90[:, 0]).tolist() == [6]
    # region 5 falls out when its employment is at the 25th percentile (needs to be above)
    emp2 = emp.copy()
    emp2[5, 0] = 10
    assert not strong_clusters(lq, emp2, est)[5, 0]


def test_stars_crafted():
    # employment P90 over 10 regions: sorted 10 x8, 50, 100 -> 50 + .1*50 = 55 -> region 0
    # focus emp/total = .1, .5, .1 ... .1, .5 -> P90 = .5 -> regions 1 and 9
    # specialisation LQ >= 2 -> regions 1 and 9
    emp = np.array([[100], [10], [10], [10], [10], [10], [10], [10], [10], [50]], float)
    totals = np.array([1000, 20, 100, 100, 100, 100, 100, 100, 100, 100], float)
    lq = np.array([[0.5], [2.5], [1], [1], [1], [1], [1], [1], [1], [2.0]])
    s = cluster_stars(lq, emp, totals)
    assert np.flatnonzero(s["star_size"][:, 0]).tolist() == [0]
    assert np.flatnonzero(s["star_focus"][:, 0]).tolist() == [1, 9]
    assert np.flatnonzero(s["star_specialisation"][:, 0]).tolist() == [1, 9]
    assert s["stars"][:, 0].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]


def test_long_table_shapes_and_small_counts(table):
    rows, regions, sectors, used = long_table(table, "employees", bootstrap=50, random_state=1)
    assert used == "employees"
    assert len(rows) == 6 and set(rows.columns) >= {"region_id", "sector", "count", "lq", "strong"}
    assert rows["small_count"].all()  # every cell has < 3 firms
    assert rows.loc[(rows.region_id == "R0") & (rows.sector == "A"), "count"].item() == 2
    # the two largest firms of each cell: R0/A 20+10, R0/B 10, R1/A 10, R1/B 30, R2/A 0, R2/B 20
    assert rows["top2_employees"].tolist() == [30, 10, 10, 30, 0, 20]
    np.testing.assert_allclose(regions["hhi"], [0.625, 0.625, 1.0])
    assert list(sectors["sector"]) == ["A", "B"]
    ok = rows["lq"].notna() & rows["lq_low"].notna()
    assert (rows.loc[ok, "lq_low"] <= rows.loc[ok, "lq_high"]).all()


def test_top_k_employees_by_hand():
    from geocluster.specialization.measures import top_k_employees

    reg = np.array([0, 0, 0, 0, 1])
    t = sector_table(reg, ["a", "b"], ["A", "A", "A", "B", "A"], [5.0, 9.0, np.nan, 4.0, 2.0])
    np.testing.assert_array_equal(top_k_employees(t, 2), [[14.0, 4.0], [2.0, 0.0]])
    np.testing.assert_array_equal(top_k_employees(t, 1), [[9.0, 4.0], [2.0, 0.0]])


def test_measure_fallback_when_employment_missing():
    t = sector_table(np.array([0, 0, 1]), ["a", "b"], ["A", "B", "A"], np.full(3, np.nan))
    assert choose_measure(t, "employees") == "firms"
    assert choose_measure(t, "auto") == "firms"
    t2 = sector_table(np.array([0, 0, 1]), ["a", "b"], ["A", "B", "A"], [1.0, np.nan, 3.0])
    assert choose_measure(t2, "employees") == "employees"
    assert choose_measure(t2, "auto") == "firms"  # only 2/3 report employees
    with pytest.raises(InvalidInput, match="measure"):
        choose_measure(t2, "sales")


def test_group_table_counts_overlapping_groups_and_keeps_totals():
    groups = {"g1": frozenset({"10", "11"}), "g2": frozenset({"11", "55"})}
    t = sector_table(np.array([0, 0, 1, -1]), ["a", "b"], ["10", "11", "47", "55"], groups=groups)
    c, tot = t.matrices("firms")
    assert t.dropped_outside == 1
    np.testing.assert_array_equal(tot, [2, 1])  # the "47" firm counts in region b's total
    np.testing.assert_array_equal(c, [[2, 1], [0, 0]])


def test_bootstrap_is_seeded_and_brackets_point_estimate():
    rng = np.random.default_rng(3)
    n = 400
    reg = rng.integers(0, 4, n)
    sec = np.where(rng.random(n) < 0.3 + 0.1 * reg, "A", "B")
    t = sector_table(reg, list("wxyz"), sec, rng.integers(1, 50, n).astype(float))
    lo1, hi1 = bootstrap_lq(t, "employees", n_boot=100, random_state=7)
    lo2, hi2 = bootstrap_lq(t, "employees", n_boot=100, random_state=7)
    np.testing.assert_array_equal(lo1, lo2)
    x, tot = t.matrices("employees")
    lq = location_quotient(x, tot)
    assert np.all(lo1 <= lq + 1e-9) and np.all(lq <= hi1 + 1e-9)


# ---------------------------------------------------------------- region join vs sjoin


def _grid_regions(k=8, size=1000.0):
    boxes = [
        shapely.box(i * size, j * size, (i + 1) * size, (j + 1) * size)
        for j in range(k)
        for i in range(k)
    ]
    # one region with a hole, one multipolygon, to exercise rings
    boxes[9] = boxes[9].difference(shapely.box(1200, 1200, 1500, 1500))
    boxes[20] = shapely.MultiPolygon([boxes[20], shapely.box(9000, 9000, 9500, 9500)])
    return gpd.GeoDataFrame(
        {"region_id": [f"r{i}" for i in range(k * k)]}, geometry=boxes, crs="EPSG:32633"
    )


def _sjoin_reference(xy, regions, predicate):
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=regions.crs)
    j = gpd.sjoin(pts, regions.reset_index(drop=True), predicate=predicate, how="inner")
    ref = np.full(len(xy), -1)
    first = j.groupby(level=0)["index_right"].min()
    ref[first.index.to_numpy()] = first.to_numpy()
    return ref


@pytest.mark.parametrize("predicate", ["within", "intersects"])
@pytest.mark.parametrize("n", [500, 20_000])
def test_assign_regions_equals_sjoin(predicate, n):
    rng = np.random.default_rng(n)
    regions = _grid_regions()
    xy = rng.uniform(-500, 10_000, (n, 2))
    # a fifth of the points exactly on grid lines, vertices or the hole's edge
    k = n // 5
    xy[:k:2, 0] = rng.integers(0, 9, k // 2 + k % 2) * 1000.0
    xy[1:k:2, 1] = rng.integers(0, 9, k // 2) * 1000.0
    xy[k : k + 20] = rng.integers(0, 9, (20, 2)) * 1000.0
    xy[k + 20 : k + 30, 0] = 1200.0
    xy[k + 30, :] = np.nan
    got = assign_regions(xy, regions, predicate=predicate)
    ref = _sjoin_reference(xy, regions, predicate)
    np.testing.assert_array_equal(got, ref)
    assert (got == -1).any() and (got >= 0).any()


def test_assign_regions_voronoi_random():
    rng = np.random.default_rng(5)
    box = shapely.box(0, 0, 50_000, 50_000)
    vor = shapely.voronoi_polygons(
        shapely.multipoints(rng.uniform(0, 50_000, (200, 2))), extend_to=box
    )
    polys = shapely.intersection(shapely.get_parts(vor), box)
    regions = gpd.GeoDataFrame(geometry=polys, crs="EPSG:32633")
    xy = rng.uniform(-100, 50_100, (30_000, 2))
    np.testing.assert_array_equal(
        assign_regions(xy, regions), _sjoin_reference(xy, regions, "within")
    )


def test_assign_regions_bad_input():
    regions = _grid_regions()
    with pytest.raises(InvalidInput, match=r"\(n, 2\)"):
        assign_regions(np.zeros((3, 3)), regions)
    with pytest.raises(InvalidInput, match="predicate"):
        assign_regions(np.zeros((3, 2)), regions, predicate="touches")
    lines = gpd.GeoSeries([shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(InvalidInput, match="polygon"):
        assign_regions(np.zeros((3, 2)), lines)
    assert assign_regions(np.zeros((0, 2)), regions).shape == (0,)


def test_vectorised_nanquantile_equals_numpy():
    from geocluster.specialization.measures import _nanquantile0

    rng = np.random.default_rng(8)
    a = rng.normal(size=(37, 6, 5))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:, 0, 0] = np.nan  # an all-NaN cell
    a[:-1, 1, 1] = np.nan  # a single value
    for q in (0.025, 0.5, 0.975):
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            ref = np.nanquantile(a, q, axis=0)
        np.testing.assert_allclose(_nanquantile0(a, q), ref, equal_nan=True)


@pytest.mark.parametrize("seed", range(8))
def test_assign_regions_equals_sjoin_on_aligned_and_random_layouts(seed):
    # grids whose edges fall on raster grid lines, Voronoi cells, points on edges/vertices,
    # several raster resolutions: the raster fast path must never disagree with sjoin
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    size = float(rng.choice([0.1, 7.0, 1000.0]))
    if seed % 2:
        side = shapely.box(0, 0, k * size, k * size)
        pts = shapely.multipoints(rng.uniform(0, k * size, (k * k, 2)))
        geoms = list(
            shapely.intersection(
                shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=side)), side
            )
        )
    else:
        geoms = [
            shapely.box(i * size, j * size, (i + 1) * size, (j + 1) * size)
            for j in range(k)
            for i in range(k)
        ]
    regions = gpd.GeoDataFrame(geometry=geoms, crs="EPSG:32633")
    n = 6000
    xy = rng.uniform(-size, (k + 1) * size, (n, 2))
    xy[:2000, 0] = rng.integers(0, k + 1, 2000) * size
    xy[2000:3000, 1] = rng.integers(0, k + 1, 1000) * size
    verts = shapely.get_coordinates(regions.geometry.values)[:1000]
    xy[3000 : 3000 + len(verts)] = verts
    for predicate in ("within", "intersects"):
        ref = _sjoin_reference(xy, regions, predicate)
        for cells in (None, 20_000, 1_000_000):
            got = assign_regions(xy, regions, predicate=predicate, cells=cells)
            np.testing.assert_array_equal(got, ref)


@given(
    st.integers(2, 6),
    st.integers(2, 5),
    st.integers(0, 2**31 - 1),
)
@settings(max_examples=60, deadline=None)
def test_measure_identities_hold_on_random_tables(n_regions, n_sectors, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(n_sectors, 80))
    reg = rng.integers(0, n_regions, n)
    sec = np.array([f"S{i}" for i in rng.integers(0, n_sectors, n)])
    emp = rng.integers(1, 200, n).astype(float)
    t = sector_table(reg, [f"R{i}" for i in range(n_regions)], sec, emp)
    x, tot = t.matrices("employees")
    lq = location_quotient(x, tot)
    ok = tot > 0
    # sum_r X[r] * LQ[r, s] = X for every sector (weights of the LQ average out to 1)
    np.testing.assert_allclose(np.nansum(tot[ok, None] * lq[ok], axis=0), tot.sum())
    h = herfindahl(x, tot)[ok]
    assert np.all(h <= 1 + 1e-12) and np.all(h >= 1 / x.shape[1] - 1e-12)
    k = krugman(x, tot, reference="total")[ok]
    assert np.all(k >= -1e-12) and np.all(k <= 2 + 1e-12)
    # MS - EG = 2 sum_r x_r (s_r - x_r) / ((1 - sum x_r^2)(1 - H)): the two indices differ
    # only in G (EG: sum (s-x)^2; MS: sum s^2 - sum x^2), same denominator
    xr = tot / tot.sum()
    s = x / x.sum(axis=0)
    present = np.array([np.any(sec == f"S{j}") for j in range(n_sectors)])
    h = np.array([np.sum((e / e.sum()) ** 2) for e in (emp[sec == lab] for lab in t.sectors)])
    denom = (1 - np.sum(xr**2)) * (1 - h)
    diff = 2 * np.sum(xr[:, None] * (s - xr[:, None]), axis=0) / denom
    eg, ms = ellison_glaeser(t), maurel_sedillot(t)
    fin = np.isfinite(eg)
    np.testing.assert_allclose((ms - eg)[fin], diff[fin], atol=1e-9)
    assert present.sum() == len(t.sectors)


def _grid_lines(regions, n_cells):
    """Raster grid lines the region join uses for ``cells=n_cells`` (same formula)."""
    minx, miny, maxx, maxy = shapely.total_bounds(regions.geometry.values)
    w, h = maxx - minx, maxy - miny
    size = np.sqrt(w * h / n_cells)
    nx, ny = int(np.ceil(w / size)), int(np.ceil(h / size))
    sx, sy = w / nx, h / ny
    return minx + sx * np.arange(-1, nx + 2), maxy - sy * np.arange(-1, ny + 2)


@pytest.mark.parametrize("seed", range(4))
def test_assign_regions_xy_equals_sjoin_on_edges_vertices_and_grid_lines(seed):
    # irregular regions sharing edges (Voronoi cells with a hole and a gap), points on
    # their vertices and edges, exactly on the raster's grid lines and grid corners,
    # non-finite and far-away ones: every point gets what geopandas' sjoin gives
    rng = np.random.default_rng(100 + seed)
    side = shapely.box(0, 0, 30_000, 20_000)
    vor = shapely.voronoi_polygons(
        shapely.multipoints(rng.uniform([0, 0], [30_000, 20_000], (25, 2))), extend_to=side
    )
    polys = list(shapely.intersection(shapely.get_parts(vor), side))
    polys[0] = polys[0].difference(shapely.centroid(polys[0]).buffer(500))  # a hole
    polys = polys[:-1]  # a gap where the last cell was
    regions = gpd.GeoDataFrame(geometry=polys, crs="EPSG:32614")
    cells = int(rng.choice([5_000, 40_000, 300_000]))
    gx, gy = _grid_lines(regions, cells)
    n = 12_000
    xy = rng.uniform([-1_000, -1_000], [31_000, 21_000], (n, 2))
    xy[:2000, 0] = rng.choice(gx, 2000)
    xy[2000:4000, 1] = rng.choice(gy, 2000)
    xy[4000:4500] = np.column_stack([rng.choice(gx, 500), rng.choice(gy, 500)])
    verts = shapely.get_coordinates(regions.geometry.values)
    k = min(1500, len(verts))
    xy[4500 : 4500 + k] = verts[rng.choice(len(verts), k, replace=False)]
    # edge midpoints (on the edge up to rounding: the exact test decides, as sjoin does)
    ring = shapely.get_coordinates(shapely.get_exterior_ring(regions.geometry.values[1]))
    mids = (ring[:-1] + ring[1:]) / 2
    xy[6000 : 6000 + len(mids)] = mids
    xy[7000] = [np.nan, 5_000]
    xy[7001] = [5_000, np.inf]
    xy[7002] = [-np.inf, -np.inf]
    xy[7003] = [1e300, 5_000]
    xy[7004] = [-1e12, 1e12]
    finite = np.isfinite(xy).all(axis=1)
    for predicate in ("within", "intersects"):
        ref = np.full(n, -1)
        ref[finite] = _sjoin_reference(xy[finite], regions, predicate)
        got_view = assign_regions_xy(xy[:, 0], xy[:, 1], regions, predicate=predicate, cells=cells)
        got_cols = assign_regions_xy(
            xy[:, 0].copy(), xy[:, 1].copy(), regions, predicate=predicate, cells=cells
        )
        np.testing.assert_array_equal(got_view, ref)
        np.testing.assert_array_equal(got_cols, ref)
        np.testing.assert_array_equal(assign_regions(xy, regions, predicate=predicate), ref)
        assert (ref[4000:4500] >= 0).any() and (ref == -1).any()


def test_assign_regions_xy_bad_input():
    regions = _grid_regions()
    with pytest.raises(InvalidInput, match="one length"):
        assign_regions_xy(np.zeros(3), np.zeros(4), regions)
    with pytest.raises(InvalidInput, match="one length"):
        assign_regions_xy(np.array(["a"]), np.array(["b"]), regions)
    with pytest.raises(InvalidInput, match="predicate"):
        assign_regions_xy(np.zeros(3), np.zeros(3), regions, predicate="touches")
    assert assign_regions_xy(np.zeros(0), np.zeros(0), regions).shape == (0,)


@pytest.mark.parametrize("seed", range(6))
def test_top_k_employees_equals_sorting_each_cell(seed):
    from geocluster.specialization.measures import top_k_employees

    # reference: per cell, Python's sorted() and sum() of the k largest (NaN counted as
    # 0, as the dominance rule reads unknown employment); ties, single firms, empty cells
    rng = np.random.default_rng(seed)
    n, R, S = int(rng.integers(1, 3000)), int(rng.integers(1, 7)), int(rng.integers(1, 6))
    reg = rng.integers(-1, R, n)
    sec = np.array([f"S{i}" for i in rng.integers(0, S, n)], dtype=object)
    sec[rng.random(n) < 0.05] = None
    emp = rng.choice([0.0, 1.0, 2.0, 2.0, 7.5, np.nan], n)
    if seed % 2:
        emp = np.round(rng.lognormal(1, 2, n), 1)
    t = sector_table(reg, [f"R{i}" for i in range(R)], sec, emp)
    cell_values: dict = {}
    for f, s in zip(t.pair_firm, t.pair_sector, strict=True):
        e = t.firm_employees[f]
        cell_values.setdefault((t.firm_region[f], s), []).append(0.0 if np.isnan(e) else e)
    for k in (1, 2, 3):
        ref = np.zeros((len(t.regions), len(t.sectors)))
        for (r, s), vals in cell_values.items():
            ref[r, s] = sum(sorted(vals, reverse=True)[:k])
        np.testing.assert_array_equal(top_k_employees(t, k), ref)


def test_top_k_employees_of_a_table_without_sector_pairs():
    from geocluster.specialization.measures import top_k_employees

    t = sector_table(np.array([-1, -1]), ["a", "b"], ["A", "B"], [1.0, 2.0])
    assert top_k_employees(t, 2).shape == (2, 0)


@pytest.mark.parametrize("measure", ["employees", "firms"])
def test_long_table_agglomeration_equals_the_public_functions(measure):
    from geocluster.specialization.measures import _plant_herfindahl

    # long_table computes each matrix once and shares it: the same numbers, bit for bit,
    # as the stand-alone functions that recompute everything
    rng = np.random.default_rng(3)
    n = 5000
    reg = rng.integers(-1, 6, n)
    sec = np.array([f"{d:02d}" for d in rng.integers(10, 20, n)])
    emp = rng.integers(1, 300, n).astype(float)
    emp[rng.random(n) < 0.1] = np.nan
    t = sector_table(reg, [f"R{i}" for i in range(6)], sec, emp)
    rows, regions, sectors, used = long_table(t, measure)
    assert used == measure
    np.testing.assert_array_equal(sectors["ellison_glaeser"], ellison_glaeser(t, used))
    np.testing.assert_array_equal(sectors["maurel_sedillot"], maurel_sedillot(t, used))
    np.testing.assert_array_equal(sectors["plant_herfindahl"], _plant_herfindahl(t, used))
    x, tot = t.matrices(used)
    np.testing.assert_array_equal(rows["lq"].to_numpy(), location_quotient(x, tot).ravel())


def test_sector_table_same_for_every_kind_of_input_array():
    import pandas as pd

    reg = np.array([0, 1, -1, 1, 0, 2])
    labels = ["10", "47", "10", None, "47", "10"]
    emp = [3.0, np.nan, 5.0, 2.0, -np.inf, 1.0]  # -inf passes the check, as before
    ref = sector_table(reg, ["a", "b", "c"], np.array(labels, dtype=object), np.array(emp))
    kinds = [
        (pd.Series(labels, dtype="string"), pd.Series(emp)),
        (pd.Series(labels, dtype="large_string[pyarrow]"), pd.Series(emp, dtype="float64")),
        (pd.Series(labels, dtype="category"), pd.Series(emp, dtype="double[pyarrow]")),
        (labels, [str(v) for v in emp]),
    ]
    for sectors, employees in kinds:
        t = sector_table(reg, ["a", "b", "c"], sectors, employees)
        assert list(t.sectors) == list(ref.sectors) == ["10", "47"]
        for f in ("firm_region", "pair_firm", "pair_sector", "pair_cell"):
            np.testing.assert_array_equal(getattr(t, f), getattr(ref, f))
        np.testing.assert_array_equal(t.firm_employees, ref.firm_employees)
        assert t.dropped_outside == 1
    with pytest.raises(InvalidInput, match="non-negative"):
        sector_table(reg, ["a", "b", "c"], labels, [3.0, -1.0, 5.0, 2.0, 0.0, 1.0])
