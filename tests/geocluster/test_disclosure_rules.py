"""Disclosure algorithms for outputs below editor: grids, rules, secondary suppression.

References: the tile grid is checked against morecantile's WebMercatorQuad (the OGC
TileMatrixSet); the (n, k) dominance and p% rules against hand computations of the
formulas in Hundepool et al., *Statistical Disclosure Control* (Wiley 2012), §4.2.2.
"""

from __future__ import annotations

import math

import morecantile
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geocluster import disclosure as d
from geocluster.errors import InvalidInput

WMQ = morecantile.tms.get("WebMercatorQuad")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

lons = st.floats(-103.6, -103.0, allow_nan=False, width=64)
lats = st.floats(20.4, 20.9, allow_nan=False, width=64)


def _grid_values(zoom: int) -> tuple[set[float], set[float]]:
    """Every cell-edge lon and lat of the grid at ``zoom`` near the test area."""
    n = 1 << zoom
    ix0, ix1 = (int((lon + 180) / 360 * n) for lon in (-104.0, -102.5))
    iy = np.arange(0, n + 1)
    b = d.cell_bounds(zoom, np.arange(ix0, ix1 + 2), np.zeros(ix1 - ix0 + 2, dtype=int))
    lon_edges = set(b[:, 0]) | set(b[:, 2])
    lat_edges = set(np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * iy / n)))))
    return lon_edges, lat_edges


def _vertices(geoms) -> np.ndarray:
    return shapely.get_coordinates(np.asarray([g for g in geoms if g is not None]))


def test_grid_cells_are_webmercatorquad_tiles():
    rng = np.random.default_rng(3)
    lon = rng.uniform(-179.9, 179.9, 300)
    lat = rng.uniform(-85.0, 85.0, 300)
    for zoom in (0, 3, 9, 14, 20):
        ix, iy = d.grid_cells(lon, lat, zoom)
        expected = [WMQ.tile(a, b, zoom) for a, b in zip(lon, lat, strict=True)]
        assert list(ix) == [t.x for t in expected]
        assert list(iy) == [t.y for t in expected]
        # and the cell bounds are the tile bounds
        b = d.cell_bounds(zoom, ix[:5], iy[:5])
        for row, t in zip(b, expected[:5], strict=True):
            assert row == pytest.approx(tuple(WMQ.bounds(t)), abs=1e-9)


def test_grid_cells_nest_across_zooms():
    rng = np.random.default_rng(4)
    lon = rng.uniform(-103.5, -103.1, 500)
    lat = rng.uniform(20.5, 20.8, 500)
    for zoom in (8, 11, 14):
        ix, iy = d.grid_cells(lon, lat, zoom)
        cx, cy = d.grid_cells(lon, lat, zoom + 1)
        assert (cx // 2 == ix).all() and (cy // 2 == iy).all()
        coarse = d.grid_counts(lon, lat, zoom, min_count=1, p_percent=None)
        fine = d.grid_counts(lon, lat, zoom + 1, min_count=1, p_percent=None)
        fine["parent"] = [
            f"{zoom}/{a // 2}/{b // 2}" for a, b in zip(fine.ix, fine.iy, strict=True)
        ]
        summed = fine.groupby("parent")["count"].sum()
        assert summed.to_dict() == coarse.set_index("cell")["count"].to_dict()
        assert coarse["count"].sum() == 500


def test_bad_grid_input():
    with pytest.raises(InvalidInput):
        d.grid_cells([0.0], [0.0], 31)
    with pytest.raises(InvalidInput):
        d.grid_cells([0.0, 1.0], [0.0], 5)
    with pytest.raises(InvalidInput):
        d.grid_cells([np.nan], [0.0], 5)


def test_dominance_and_p_percent_by_hand():
    # cell a: 3 firms 100, 5, 5: top-2 share 105/110 = 0.955 > 0.85 -> dominance
    # cell b: 50, 40, 3: rest 3 < 0.10 * 50 = 5 -> p% (top-2 share 90/93 = 0.97 also
    #         dominates; dominance is reported first, as the stricter statement)
    # cell c: 50, 30, 3: top-2 80/83 = 0.964 -> dominance; with k = 0.99: rest 3 < 5 -> p%
    # cell d: 40, 30, 30: top-2 0.70, rest 30 >= 4 -> ok
    # cell e: 2 firms -> few_contributors
    cells = ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["d"] * 3 + ["e"] * 2
    emp = [100, 5, 5, 50, 40, 3, 50, 30, 3, 40, 30, 30, 10, 10]
    out = d.sensitive_cells(cells, emp)
    assert out["reason"].to_dict() == {
        "a": "dominance",
        "b": "dominance",
        "c": "dominance",
        "d": None,
        "e": "few_contributors",
    }
    loose = d.sensitive_cells(cells, emp, dominance_k=0.99)
    assert loose.loc[["b", "c"], "reason"].tolist() == ["p_percent", "p_percent"]
    # a with k = 0.99: top-2 0.955 passes, but rest 5 < 0.10 * 100 -> p%
    assert loose.loc["a", "reason"] == "p_percent"
    assert out.loc["a", ["top1", "top2", "top_n"]].tolist() == [100, 5, 105]


def test_dominance_and_p_percent_boundaries():
    # p% with p = 0.05: cell a rest 5 = 0.05 * 100 is not below it -> safe
    out = d.sensitive_cells(["a"] * 3, [100, 5, 5], dominance_k=0.99, p_percent=0.05)
    assert out.loc["a", "reason"] is None
    out = d.sensitive_cells(["a"] * 3, [100, 5, 4.9], dominance_k=0.99, p_percent=0.05)
    assert out.loc["a", "reason"] == "p_percent"
    with pytest.raises(InvalidInput):
        d.sensitive_cells(["a"], None, min_count=0)
    with pytest.raises(InvalidInput):
        d.sensitive_cells(["a"], None, dominance_k=1.5)


@FAST
@given(
    points=st.lists(st.tuples(lons, lats, st.integers(0, 500)), min_size=1, max_size=80),
    zoom=st.integers(9, 16),
    threshold=st.integers(2, 5),
)
def test_grid_counts_publish_no_small_cell_and_no_firm_coordinate(points, zoom, threshold):
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    emp = np.array([p[2] for p in points])
    out = d.grid_counts(lon, lat, zoom, employees=emp, min_count=threshold)
    published = out[out["disclosure"] == "ok"]
    assert (published["count"] >= threshold).all()
    suppressed = out[out["disclosure"] != "ok"]
    assert suppressed["count"].isna().all() and suppressed["employees"].isna().all()
    # every output coordinate is a grid edge (independent of the data) ...
    lon_edges, lat_edges = _grid_values(zoom)
    xy = _vertices(out.geometry)
    assert set(xy[:, 0]) <= lon_edges and set(xy[:, 1]) <= lat_edges
    # ... so no firm coordinate appears unless a firm sits exactly on a grid edge
    firm_values = (set(lon) - lon_edges) | (set(lat) - lat_edges)
    assert not firm_values & set(xy.ravel())
    assert np.nansum(out["count"]) <= len(points)


@FAST
@given(
    points=st.lists(st.tuples(lons, lats, st.integers(-1, 3)), min_size=1, max_size=80),
    zoom=st.integers(9, 15),
    threshold=st.integers(2, 4),
)
def test_cluster_outlines_are_unions_of_safe_cells(points, zoom, threshold):
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    labels = np.array([p[2] for p in points])
    out = d.safe_cluster_outlines(lon, lat, labels, zoom, min_count=threshold)
    assert set(out["cluster_id"]) == set(labels[labels != -1])
    ix, iy = d.grid_cells(lon, lat, zoom)
    lon_edges, lat_edges = _grid_values(zoom)
    for row in out.itertuples():
        members = labels == row.cluster_id
        if row.disclosure != "ok":
            assert row.geometry is None and math.isnan(row.n_firms)
            continue
        assert row.n_firms >= threshold
        # each cell inside the outline holds >= threshold firms of this cluster
        cells = pd.Series(list(zip(ix[members], iy[members], strict=True))).value_counts()
        safe = cells[cells >= threshold]
        union = shapely.union_all(
            d.cell_polygons(zoom, [c[0] for c in safe.index], [c[1] for c in safe.index])
        )
        assert row.geometry.equals(union)
        assert row.firms_in_outline == safe.sum()
        xy = _vertices([row.geometry])
        assert set(xy[:, 0]) <= lon_edges and set(xy[:, 1]) <= lat_edges
        firm_values = (set(lon) - lon_edges) | (set(lat) - lat_edges)
        assert not firm_values & set(xy.ravel())


def _lines(table, suppressed, margins, row_groups, col_groups):
    """Suppressed entries (cells + margin) per row, column and hierarchy margin."""
    frame = table.assign(_s=np.asarray(suppressed, dtype=int))
    frame["rg"] = frame["region_id"].map(row_groups)
    frame["cg"] = frame["sector"].map(col_groups)
    counts = {}
    for kind, keys in (
        ("row", ["region_id"]),
        ("col", ["sector"]),
        ("row_colgroup", ["region_id", "cg"]),
        ("col_rowgroup", ["sector", "rg"]),
    ):
        for key, group in frame.groupby(keys):
            key = key[0] if len(keys) == 1 else tuple(key)
            counts[(kind, key)] = int(group["_s"].sum()) + int((kind, key) in margins)
    return counts


tables = st.integers(2, 6).flatmap(
    lambda n_rows: st.integers(2, 6).flatmap(
        lambda n_cols: st.lists(
            st.integers(0, 9), min_size=n_rows * n_cols, max_size=n_rows * n_cols
        ).map(lambda counts: (n_rows, n_cols, counts))
    )
)


def _table(n_rows, n_cols, counts):
    regions = [f"r{i}" for i in range(n_rows)]
    sectors = [f"s{j}" for j in range(n_cols)]
    table = pd.DataFrame(
        [(r, s) for r in regions for s in sectors], columns=["region_id", "sector"]
    )
    table["count"] = counts
    table["employees"] = np.array(counts) * 7.0
    # LQ as specialisation computes it: (e_rs / e_r) / (e_s / e)
    e = table["employees"]
    e_r = table.groupby("region_id")["employees"].transform("sum")
    e_s = table.groupby("sector")["employees"].transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        table["lq"] = (e / e_r) / (e_s / e.sum())
    table["share"] = e / e_r
    row_groups = {r: f"state{i % 2}" for i, r in enumerate(regions)}
    col_groups = {s: f"section{j // 2}" for j, s in enumerate(sectors)}
    return table, row_groups, col_groups


@FAST
@given(spec=tables, threshold=st.integers(2, 4))
def test_secondary_suppression_leaves_no_line_with_one(spec, threshold):
    table, row_groups, col_groups = _table(*spec)
    primary = (table["count"] > 0) & (table["count"] < threshold)
    suppressed, margins = d.secondary_suppression(
        table, primary, row_groups=row_groups, col_groups=col_groups
    )
    assert (suppressed[primary]).all()  # primary stays suppressed
    for line, n in _lines(table, suppressed, margins, row_groups, col_groups).items():
        assert n == 0 or n >= 2, line


@FAST
@given(spec=tables, threshold=st.integers(2, 4))
def test_region_sector_table_inherits_suppression(spec, threshold):
    table, row_groups, col_groups = _table(*spec)
    out, margins = d.suppress_region_sector_table(
        table, min_count=threshold, row_groups=row_groups, col_groups=col_groups
    )
    published = out["disclosure"] == "ok"
    counts = out.loc[published, "count"]
    assert ((counts == 0) | (counts >= threshold)).all()  # no published cell < threshold
    hidden = ~published
    for col in ("count", "employees", "lq", "share"):
        assert out.loc[hidden, col].isna().all(), col  # LQ, shares null where suppressed
    small = (table["count"] > 0) & (table["count"] < threshold)
    assert (out.loc[small, "disclosure"] == "few_contributors").all()
    assert set(out.loc[hidden & ~small, "disclosure"]) <= {"secondary"}
    for line, n in _lines(table, hidden, margins, row_groups, col_groups).items():
        assert n == 0 or n >= 2, line


def test_secondary_suppression_by_hand():
    # 3 x 3, one primary cell (a, x) = 1. Lines in order: column x pairs it with its
    # smallest other cell (c, x) = 4; row a with its smallest (a, z) = 2; now row c and
    # column z each hold one, and (c, z) = 2 is the cell that closes both.
    table = pd.DataFrame(
        {
            "region_id": list("aaabbbccc"),
            "sector": list("xyzxyzxyz"),
            "count": [1, 5, 2, 7, 8, 9, 4, 5, 2],
        }
    )
    primary = table["count"] == 1
    suppressed, margins = d.secondary_suppression(table, primary)
    assert table.loc[suppressed, ["region_id", "sector"]].apply(tuple, axis=1).tolist() == [
        ("a", "x"),
        ("a", "z"),
        ("c", "x"),
        ("c", "z"),
    ]
    assert margins == set()
    # a line with a single cell cannot be protected by a cell: its margin goes
    single = pd.DataFrame(
        {"region_id": ["a", "b", "b"], "sector": ["x", "x", "y"], "count": [1, 5, 6]}
    )
    suppressed, margins = d.secondary_suppression(single, single["count"] == 1)
    assert ("row", "a") in margins
    with pytest.raises(InvalidInput):
        d.secondary_suppression(single, [True])


def test_inherit_and_dominant_sector():
    table = pd.DataFrame(
        {
            "region_id": ["a", "a", "b", "b"],
            "sector": ["x", "y", "x", "y"],
            "employees": [10.0, 90.0, 60.0, 40.0],
            "sector_mix": ["x:10", "y:90", "x:60", "y:40"],
            "lq": [0.2, 1.5, 1.2, 0.7],
        }
    )
    suppressed = np.array([False, True, False, True])
    out = d.inherit_suppression(table, suppressed, reason="dominance")
    assert out["lq"].isna().tolist() == [False, True, False, True]
    assert out["sector_mix"].tolist() == ["x:10", None, "x:60", None]
    assert out["disclosure"].tolist() == ["ok", "dominance", "ok", "dominance"]
    dom = d.safe_dominant_sector(table, suppressed)
    assert dom.to_dict() == {"a": None, "b": "x"}  # a's largest cell (y) is suppressed


def test_rounding_and_bandwidth_floor():
    assert d.round_to_base([0, 2, 3, 7, 12.5, np.nan], 5)[:5].tolist() == [0, 0, 5, 5, 15]
    assert np.isnan(d.round_to_base([np.nan], 5)[0])
    assert d.round_to_base([7], None).tolist() == [7]
    with pytest.raises(InvalidInput):
        d.round_to_base([1], 0)
    assert d.bandwidth_floor(1e-9, floor_m=500, sees_microdata=False) == (500.0, True)
    assert d.bandwidth_floor(800, floor_m=500, sees_microdata=False) == (800.0, False)
    assert d.bandwidth_floor(1e-9, floor_m=500, sees_microdata=True) == (1e-9, False)
    assert d.bandwidth_floor(None, floor_m=500, sees_microdata=False) == (None, False)
    with pytest.raises(InvalidInput):
        d.bandwidth_floor(-1, floor_m=500, sees_microdata=False)
    out = d.grid_counts([-103.3] * 7, [20.6] * 7, 12, round_to=5)
    assert out["count"].tolist() == [5]
