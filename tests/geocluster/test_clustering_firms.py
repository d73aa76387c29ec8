"""Firms -> clusters: sector selection, weights, labels and hand-checked cluster summaries."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.clustering import cluster_firms, firm_weights, select_firms, summarize_clusters
from geocluster.errors import CRSError, InvalidInput

X0, Y0 = 600_000.0, 2_300_000.0  # EPSG:32614 (central Mexico)


@pytest.fixture
def firms() -> gpd.GeoDataFrame:
    """A 100 m square with its centre (cluster A), three collinear firms (cluster B) and
    one isolated firm. Values chosen so every summary can be checked by hand."""
    xy = [
        (0, 0), (100, 0), (100, 100), (0, 100), (50, 50),   # A
        (10_000, 0), (10_050, 0), (10_100, 0),                # B (collinear)
        (50_000, 50_000),                                     # noise
    ]  # fmt: skip
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"f{i}" for i in range(9)],
            "sector_code": pd.Series(
                ["1520", "1520", "15", "2610", None, "5510", "5610", "5610", "0111"], dtype="str"
            ),
            "employees": [1, 5, 20, np.nan, 9, 2, 3, 250, 4],
            "founded": pd.array([2020, 2010, 2024, None, 2016, 1990, 2000, 2023, 2001], "Int64"),
            "women_led": pd.array([True, False, None, True, False, True, True, True, False], "boolean"),
            "informal": [True, False, False, False, False, True, True, False, True],
        },
        geometry=shapely.points(np.array(xy, float) + [X0, Y0]),
        crs="EPSG:32614",
    )  # fmt: skip


def test_cluster_firms_labels_and_summary_by_hand(firms):
    # hull_ratio=1 is the convex hull: the 100 m square (concave hulls: test below).
    res = cluster_firms(firms, eps_m=150, min_samples=3, hull_ratio=1.0)
    assert res.n_clusters == 2 and res.noise == 1
    np.testing.assert_array_equal(res.labels["cluster_id"], [0, 0, 0, 0, 0, 1, 1, 1, -1])
    np.testing.assert_array_equal(res.labels["firm_id"], firms["firm_id"])
    # In B only the middle firm has 3 firms within 150 m... all three are within 100 m:
    # every B firm is core (3 >= 3).
    assert res.labels["is_core"].sum() == 8
    a, b = res.clusters.iloc[0], res.clusters.iloc[1]
    assert (a.cluster_id, a.n_firms, a.n_core) == (0, 5, 5)
    assert a.employees == 35 and a.employees_known == 4
    assert a.top2_employees == 29  # 20 + 9, the two largest
    # Divisions 15, 15, 15, 26 (one firm without a code): 15 dominates with 3/4.
    assert a.dominant_sector == "15" and a.dominant_share == pytest.approx(0.75)
    assert json.loads(a.sector_mix) == {"15": 0.75, "26": 0.25}
    # Hull = the 100 m square: 0.01 km2, density 5 / 0.01 = 500 firms per km2.
    assert a.hull_type == "concave"
    assert a.area_km2 == pytest.approx(0.01)
    assert a.density_per_km2 == pytest.approx(500)
    assert res.clusters.geometry.iloc[0].equals(shapely.box(X0, Y0, X0 + 100, Y0 + 100))
    # Shares over known values: women-led 2 of 4, micro (<10) 3 of 4 known counts,
    # informal 1 of 5; founded in 2020..2024 (reference year = latest founding, 2024): 2 of 4.
    assert a.women_led_share == pytest.approx(0.5)
    assert a.micro_share == pytest.approx(0.75)
    assert a.informal_share == pytest.approx(0.2)
    assert a.recent_share == pytest.approx(0.5)
    assert res.params["reference_year"] == 2024
    # Centroid of the 5 firms is the square's centre.
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(32614, 4326, always_xy=True).transform(X0 + 50, Y0 + 50)
    assert (a.centroid_lon, a.centroid_lat) == pytest.approx((lon, lat))
    # B is collinear: its hull is the segment buffered by eps/2 = 75 m.
    assert b.hull_type == "buffer"
    seg = shapely.buffer(shapely.LineString([(X0 + 10_000, Y0), (X0 + 10_100, Y0)]), 75)
    assert b.area_km2 == pytest.approx(seg.area / 1e6)
    assert b.area_km2 == pytest.approx((100 * 150 + np.pi * 75**2) / 1e6, rel=0.01)
    assert b.dominant_sector == "56" and b.dominant_share == pytest.approx(2 / 3)
    assert b.top2_employees == 253
    assert b.micro_share == pytest.approx(2 / 3) and b.recent_share == pytest.approx(1 / 3)


def test_reference_year_parameter(firms):
    s = summarize_clusters(firms, np.array([0] * 5 + [1] * 3 + [-1]), reference_year=2030)
    assert s.recent_share.tolist() == [0.0, 0.0]
    s = summarize_clusters(firms, np.array([0] * 5 + [1] * 3 + [-1]), reference_year=2016)
    # A: founded 2020, 2010, 2024, 2016 -> 2012..2016 holds 2016 only: 1 of 4.
    assert s.recent_share.iloc[0] == pytest.approx(0.25)


def test_concave_hull_is_tighter_than_convex_and_holds_every_firm():
    # An L of firms 50 m apart: the concave hull hugs the L, the convex hull fills the
    # corner triangle.
    pts = [(x, 0) for x in range(0, 1001, 50)] + [(0, y) for y in range(50, 1001, 50)]
    pts += [(x, 50) for x in range(0, 1001, 50)] + [(50, y) for y in range(100, 1001, 50)]
    L = gpd.GeoDataFrame(
        {"firm_id": [str(i) for i in range(len(pts))]},
        geometry=shapely.points(np.array(pts, float) + [X0, Y0]),
        crs="EPSG:32614",
    )
    labels = np.zeros(len(L), int)
    concave = summarize_clusters(L, labels, hull_ratio=0.1)
    convex = summarize_clusters(L, labels, hull_ratio=1.0)
    assert concave.hull_type.iloc[0] == "concave"
    # The L itself is two 1000 x 50 m bars sharing a 50 x 50 m corner: 0.0975 km2; the
    # hull's edges may cut a few 50 m triangles at the inner corner.
    assert 0.0975 - 1e-9 <= concave.area_km2.iloc[0] < 0.11
    assert convex.area_km2.iloc[0] == pytest.approx(0.5 * 1.0 + 0.0475, rel=0.05)
    assert concave.geometry.iloc[0].buffer(1e-6).contains(shapely.multipoints(L.geometry.values))


def test_single_firm_cluster_gets_a_buffer(firms):
    s = summarize_clusters(firms.iloc[[8]], np.array([0]), buffer_m=100)
    assert s.hull_type.iloc[0] == "buffer"
    assert s.area_km2.iloc[0] == pytest.approx(np.pi * 0.01, rel=0.01)


def test_missing_optional_columns_give_nan(firms):
    slim = firms[["firm_id", "geometry"]]
    s = summarize_clusters(slim, np.array([0] * 5 + [1] * 3 + [-1]))
    assert s.women_led_share.isna().all() and s.recent_share.isna().all()
    assert s.employees.isna().all() and s.dominant_sector.isna().all()


def test_no_clusters_gives_empty_frame(firms):
    s = summarize_clusters(firms, np.full(len(firms), -1))
    assert len(s) == 0 and "cluster_id" in s.columns


def test_weighted_dbscan_uses_employees(firms):
    # Weighted: a firm is core when employees within eps reach min_samples. Only B's
    # firms reach 255 (2 + 3 + 250); A sums to 35 + 1 (unknown counts as 1) = 36.
    res = cluster_firms(firms, eps_m=150, min_samples=100, weight="employees")
    assert res.n_clusters == 1
    np.testing.assert_array_equal(res.labels["cluster_id"], [-1] * 5 + [0] * 3 + [-1])
    res = cluster_firms(firms, eps_m=150, min_samples=36, weight="employees")
    assert res.labels["cluster_id"].tolist()[:5] == [0] * 5


def test_hdbscan_method(firms):
    res = cluster_firms(firms, method="hdbscan", min_cluster_size=3, min_samples=2)
    assert res.n_clusters == 2
    assert set(res.labels["cluster_id"].iloc[:5]) == {0}
    assert set(res.labels["cluster_id"].iloc[5:8]) == {1}


def test_select_firms_by_codes_and_groups(firms):
    ids = lambda f: f["firm_id"].tolist()  # noqa: E731
    # Division 15 matches 1520 and 15; class 1520 only 1520.
    assert ids(select_firms(firms, sectors=["15"])) == ["f0", "f1", "f2"]
    assert ids(select_firms(firms, sectors=["1520"])) == ["f0", "f1"]
    assert ids(select_firms(firms, sectors=["15", "26"])) == ["f0", "f1", "f2", "f3"]
    assert ids(select_firms(firms, sectors="56")) == ["f6", "f7"]
    # NACE-style dotted class and a section letter (I = accommodation & food: 55, 56).
    assert ids(select_firms(firms, sectors=["15.20"])) == ["f0", "f1"]
    assert ids(select_firms(firms, sectors=["I"])) == ["f5", "f6", "f7"]
    # Tourism group: 55, 56, 79, 91, 93. Group or codes: union.
    assert ids(select_firms(firms, sector_group="tourism")) == ["f5", "f6", "f7"]
    assert ids(select_firms(firms, sectors=["01"], sector_group="tourism")) == [
        "f5", "f6", "f7", "f8",
    ]  # fmt: skip
    assert len(select_firms(firms)) == 9


def test_select_firms_errors(firms):
    with pytest.raises(InvalidInput, match="unknown"):
        select_firms(firms, sectors=["9999"])
    with pytest.raises(InvalidInput, match="empty list"):
        select_firms(firms, sectors=[])
    with pytest.raises(InvalidInput, match="sector group"):
        select_firms(firms, sector_group="steel")
    with pytest.raises(InvalidInput, match="sector_code"):
        select_firms(firms.drop(columns="sector_code"), sectors=["15"])


def test_firm_weights(firms):
    np.testing.assert_array_equal(firm_weights(firms, "employees")[:4], [1, 5, 20, 1])
    assert firm_weights(firms, None) is None
    with pytest.raises(InvalidInput, match="weight"):
        firm_weights(firms, "turnover")
    bad = firms.assign(employees=-firms["employees"])
    with pytest.raises(InvalidInput, match="employees >= 0"):
        firm_weights(bad, "employees")


def test_input_checks(firms):
    with pytest.raises(CRSError, match="projected"):
        cluster_firms(firms.to_crs(4326))
    with pytest.raises(InvalidInput, match="method"):
        cluster_firms(firms, method="kmeans")
    with pytest.raises(InvalidInput, match="none after filtering"):
        cluster_firms(firms.iloc[:0])
    lines = firms.copy()
    lines.loc[0, "geometry"] = shapely.LineString([(0, 0), (1, 1)])
    with pytest.raises(InvalidInput, match="point geometries"):
        cluster_firms(lines)
    with pytest.raises(InvalidInput, match="hull_ratio"):
        summarize_clusters(firms, np.zeros(9, int), hull_ratio=2)
    with pytest.raises(InvalidInput, match="9 labels"):
        summarize_clusters(firms, np.zeros(3, int))


def test_summary_feeds_the_disclosure_dominance_rule(firms):
    from geocluster.disclosure import DisclosurePolicy

    res = cluster_firms(firms, eps_m=150, min_samples=3)
    out = DisclosurePolicy().apply(
        res.clusters, kind="clusters", top_k_col="top2_employees", total_col="employees"
    )
    # A: the two largest hold 29 of 35 (83% <= 85%) -> ok; B: 253 of 255 -> dominance.
    assert out["disclosure"].tolist() == ["ok", "dominance"]


# -- fast paths: the same results without a point object per firm ----------------------------
def _seeded_register(seed: int = 3, n: int = 6000) -> gpd.GeoDataFrame:
    """Gaussian towns with mixed divisions (ties in small clusters), noise, gaps."""
    rng = np.random.default_rng(seed)
    towns = rng.uniform(-30_000, 30_000, size=(25, 2))
    xy = np.vstack(
        [towns[rng.integers(0, 25, n // 2)] + rng.normal(0, 500, (n // 2, 2)),
         rng.uniform(-35_000, 35_000, (n - n // 2, 2))]
    )  # fmt: skip
    codes = np.array(["01", "10", "15", "26", "47", "56", "62"])
    div = rng.choice(codes, n).astype(object)
    div[rng.random(n) < 0.1] = None
    employees = np.where(rng.random(n) < 0.4, 3.0, np.round(rng.lognormal(1.5, 1.0, n)))
    employees[rng.random(n) < 0.05] = np.nan
    founded = rng.integers(1990, 2024, n).astype(float)
    founded[rng.random(n) < 0.1] = np.nan
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"f{i}" for i in range(n)],
            "sector_code": pd.Series([d or "" for d in div], dtype="str").replace("", None),
            "isic_division": pd.Series(div, dtype="str"),
            "employees": employees,
            "founded": pd.array(founded, "Float64").astype("Int64"),
            "women_led": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.3), "boolean"),
        },
        geometry=shapely.points(xy + [X0, Y0]),
        crs="EPSG:32614",
    )  # fmt: skip


def test_multipoints_from_wkb_equal_shapely_multipoints():
    from geocluster.clustering.firms import _multipoint_wkb

    def _multipoints(xy, sizes, order=None):
        return shapely.from_wkb(_multipoint_wkb(xy, sizes, order))

    rng = np.random.default_rng(0)
    labels = np.sort(rng.integers(0, 50, 2000))
    labels[:1] = 0
    xy = rng.normal(0, 1e5, (2000, 2))
    sizes = np.bincount(labels)
    # Reference: shapely's own constructor, one multipoint per label.
    ref = shapely.multipoints(xy, indices=labels)
    got = _multipoints(xy, sizes)
    assert (shapely.to_wkb(got) == shapely.to_wkb(ref)).all()
    perm = rng.permutation(2000)
    shuffled = np.empty_like(xy)
    shuffled[perm] = xy  # xy == shuffled[perm]: the same multipoints through ``order``
    assert (shapely.to_wkb(_multipoints(shuffled, sizes, perm)) == shapely.to_wkb(ref)).all()
    one = _multipoints(np.array([[1.5, -2.0]]), np.array([1]))
    assert shapely.equals_exact(one[0], shapely.MultiPoint([(1.5, -2.0)]), 0)


def _pandas_top2(c, e, k):
    # The former pandas computation: sort, two largest per group, sum.
    top = pd.DataFrame({"c": c, "e": e})
    out = np.full(k, np.nan)
    best = top.sort_values(["c", "e"], ascending=[True, False]).groupby("c").head(2)
    sums = best.groupby("c")["e"].sum()
    out[sums.index.to_numpy()] = sums.to_numpy()
    return out


def _pandas_mix(labels, div, k):
    # The former pandas group-by of (cluster, division) counts.
    dominant = np.full(k, None, dtype=object)
    share = np.full(k, np.nan)
    mix = np.full(k, "{}", dtype=object)
    sec = pd.DataFrame({"cluster_id": labels, "division": div.to_numpy(object)})
    sec = sec[(sec["cluster_id"] >= 0) & sec["division"].notna()]
    counts = sec.groupby(["cluster_id", "division"]).size().rename("n").reset_index()
    counts["total"] = counts.groupby("cluster_id")["n"].transform("sum")
    counts["share"] = counts["n"] / counts["total"]
    counts = counts.sort_values(["cluster_id", "n", "division"], ascending=[True, False, True])
    counts = counts[counts.groupby("cluster_id").cumcount() < 5]
    first = ~counts["cluster_id"].duplicated()
    dominant[counts.loc[first, "cluster_id"].to_numpy()] = counts.loc[first, "division"]
    share[counts.loc[first, "cluster_id"].to_numpy()] = counts.loc[first, "share"]
    parts = {}
    for cid, d, sh in zip(counts["cluster_id"], counts["division"], counts["share"]):
        parts.setdefault(cid, {})[str(d)] = round(float(sh), 4)
    for cid, top in parts.items():
        mix[cid] = json.dumps(top)
    return dominant, share, mix


def test_numpy_summaries_equal_the_pandas_group_bys():
    from geocluster.clustering.firms import _sector_mix, _top2_sums

    rng = np.random.default_rng(1)
    k = 300
    labels = rng.integers(-1, k, 20_000)
    labels[:k] = np.arange(k)  # every id used
    e = rng.integers(0, 6, 20_000).astype(float)  # many ties
    m = labels >= 0
    np.testing.assert_array_equal(_top2_sums(labels[m], e[m], k), _pandas_top2(labels[m], e[m], k))
    div = pd.Series(
        rng.choice(["01", "10", "15", "26", "47", "56", "62", None], 20_000), dtype="str"
    )
    for got, ref in zip(_sector_mix(labels, div, k), _pandas_mix(labels, div, k), strict=True):
        np.testing.assert_array_equal(got, ref)
    # one cluster without any known division keeps no dominant sector and an empty mix
    none = pd.Series([None] * 4, dtype="str")
    dom, share, mix = _sector_mix(np.array([0, 0, 1, -1]), none, 2)
    assert list(dom) == [None, None] and np.isnan(share).all() and list(mix) == ["{}", "{}"]


@pytest.mark.parametrize("weight", [None, "employees"])
def test_cluster_firm_table_equals_cluster_firms(weight):
    from geocluster.clustering.firms import FirmTable, cluster_firm_table

    firms = _seeded_register()
    ms = 40 if weight else 6
    ref = cluster_firms(firms, eps_m=600, min_samples=ms, weight=weight)
    got = cluster_firm_table(FirmTable.from_frame(firms), eps_m=600, min_samples=ms, weight=weight)
    assert ref.n_clusters > 20 and (got.n_clusters, got.noise) == (ref.n_clusters, ref.noise)
    assert got.params == ref.params
    pd.testing.assert_frame_equal(got.clusters.to_wkb(), ref.clusters.to_wkb(), check_exact=True)
    pd.testing.assert_frame_equal(
        got.labels, pd.DataFrame(ref.labels.drop(columns="geometry")), check_exact=True
    )
    np.testing.assert_array_equal(got.xy, shapely.get_coordinates(firms.geometry.values))


@pytest.mark.parametrize("cuts", [[3], [1, 5, 7], [0, 2, 4, 6, 8]])
def test_cluster_parts_of_any_split_add_up_to_the_whole_summary(firms, cuts):
    """Partial sums of disjoint firm sets (what the Dask engine's tiles compute where the
    firms are) combine to the summary of all firms; hand values of the fixture above."""
    from geocluster.clustering.firms import (
        _hulls,
        cluster_parts,
        combine_parts,
        summary_frame,
    )

    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, -1])
    core = np.array([True] * 8 + [False])
    ref = summarize_clusters(firms, labels, is_core=core, hull_ratio=1.0, reference_year=2024)
    frame = pd.DataFrame(firms.drop(columns="geometry"))
    xy = shapely.get_coordinates(firms.geometry.values)
    # labels with gaps and out of order in each part: parts keep cluster ids, not positions
    parts = [
        cluster_parts(
            frame.iloc[s].reset_index(drop=True),
            xy[s],
            labels[s],
            is_core=core[s],
            reference_year=2024,
        )
        for s in np.split(np.arange(9)[::-1], cuts)
    ]
    hull, kind = _hulls(xy, labels, 2, 1.0, 100.0)
    got = summary_frame(combine_parts(parts), hull, kind, firms.crs, 2024)
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")),
        pd.DataFrame(ref.drop(columns="geometry")),
        check_exact=False,
        rtol=1e-12,
    )
    assert got.attrs == ref.attrs == {"reference_year": 2024}
    # by hand: A has employees 1 + 5 + 20 + 9, top two 20 + 9; B has 2 + 3 + 250
    assert got["employees"].tolist() == [35.0, 255.0]
    assert got["top2_employees"].tolist() == [29.0, 253.0]
    # women-led among known: A 2 of 4 (one unknown), B 3 of 3
    assert got["women_led_share"].tolist() == [0.5, 1.0]


def test_combine_parts_rejects_parts_of_other_columns(firms):
    from geocluster.clustering.firms import cluster_parts, combine_parts

    frame = pd.DataFrame(firms.drop(columns="geometry"))
    xy = shapely.get_coordinates(firms.geometry.values)
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, -1])
    a = cluster_parts(frame, xy, labels, is_core=None, reference_year=2024)
    b = cluster_parts(
        frame.drop(columns="women_led"), xy, labels, is_core=None, reference_year=2024
    )
    with pytest.raises(InvalidInput, match="same columns"):
        combine_parts([a, b])


@pytest.mark.parametrize("k", [40, 2**15 + 3])
def test_members_by_cluster_equal_a_stable_argsort(k):
    # reference: NumPy's stable argsort of the labels, noise dropped
    from geocluster.clustering.firms import _members_by_cluster

    labels = np.random.default_rng(k).integers(-1, k, 200_000)
    want = np.argsort(labels, kind="stable")
    want = want[labels[want] >= 0]
    np.testing.assert_array_equal(_members_by_cluster(labels, k), want)


def test_hulls_beside_the_sums_give_the_sequential_summary(monkeypatch):
    # reference: the same summary computed one step after the other
    from geocluster.clustering import firms as fmod

    table = fmod.FirmTable.from_frame(_seeded_register())
    fit = fmod.cluster_firm_table(table, eps_m=600, min_samples=6)
    labels = fit.labels["cluster_id"].to_numpy()
    monkeypatch.setattr(fmod, "HULLS_BESIDE_PARTS", 10**12)
    one_by_one = fmod._summarize(table, labels)
    monkeypatch.setattr(fmod, "HULLS_BESIDE_PARTS", 0)
    beside = fmod._summarize(table, labels)
    pd.testing.assert_frame_equal(beside.to_wkb(), one_by_one.to_wkb(), check_exact=True)
    gap = np.where(labels == 1, 2, labels)  # cluster 1 has no member
    with pytest.raises(InvalidInput, match="without gaps"):
        fmod._summarize(table, gap)
