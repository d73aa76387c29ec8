"""Disclosure policy: minimum contributors, dominance, rounding, firm points, hulls."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.disclosure import PERMISSIVE, DisclosurePolicy
from geocluster.errors import DisclosureError, InvalidInput


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region_id": ["a", "a", "b", "b"],
            "sector": ["15", "26", "15", "26"],
            "count": [2, 10, 5, 40],
            "employees": [30.0, 100.0, 50.0, 400.0],
            "top2": [30.0, 20.0, 48.0, 50.0],
        }
    )


def test_permissive_flags_but_keeps_values():
    out = PERMISSIVE.apply(_table(), kind="table", top_k_col="top2", total_col="employees")
    assert list(out.disclosure) == ["few_contributors", "ok", "dominance", "ok"]
    pd.testing.assert_series_equal(out.employees, _table().employees)


def test_enforced_policy_suppresses_flagged_cells():
    policy = DisclosurePolicy(enforce=True)
    out = policy.apply(_table(), kind="table", top_k_col="top2", total_col="employees")
    assert np.isnan(out.loc[0, "employees"]) and np.isnan(out.loc[2, "employees"])
    assert out.loc[1, "employees"] == 100.0 and out.loc[3, "count"] == 40
    assert list(out.region_id) == ["a", "a", "b", "b"]  # keys are never suppressed


def test_rounding_of_counts():
    out = DisclosurePolicy(round_to=5).apply(_table(), kind="table")
    assert list(out["count"]) == [0, 10, 5, 40]


def test_firm_points_can_be_forbidden():
    firms = gpd.GeoDataFrame({"firm_id": ["1"]}, geometry=[shapely.Point(0, 0)], crs=4326)
    assert PERMISSIVE.apply(firms, kind="firms") is firms
    with pytest.raises(DisclosureError, match="confidential"):
        DisclosurePolicy(firm_points=False).apply(firms, kind="firms")


def test_hulls_are_moved_off_firm_locations():
    corners = [(-99.0, 19.0), (-98.99, 19.0), (-98.99, 19.01), (-99.0, 19.01)]
    hull = shapely.Polygon(corners)
    clusters = gpd.GeoDataFrame({"cluster_id": [0], "n_firms": [12]}, geometry=[hull], crs=4326)
    out = DisclosurePolicy(firm_points=False).apply(clusters, kind="clusters")
    smoothed = out.geometry.iloc[0]
    assert smoothed.contains(hull)
    for corner in corners:  # no published vertex is a firm location
        assert not any(np.allclose(corner, v, atol=1e-7) for v in shapely.get_coordinates(smoothed))


def test_bad_policy_and_kind():
    with pytest.raises(InvalidInput):
        DisclosurePolicy(min_contributors=0)
    with pytest.raises(InvalidInput, match="output kind"):
        PERMISSIVE.apply(_table(), kind="nope")


# =========================================================================================
# disclosure.apply below editor: every kind, as a viewer receives it.
# References: Hundepool et al., *Statistical Disclosure Control* (Wiley 2012), ch. 4 and 6
# for the rules (threshold, (n, k) dominance, secondary suppression so every line has 0
# or >= 2 suppressed cells); morecantile's WebMercatorQuad for the tile grid; shapely
# point-in-polygon for the counts (independent of the grid arithmetic under test).
# =========================================================================================
import json  # noqa: E402

import morecantile  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from geocluster.analyses.result import Layer, Result  # noqa: E402
from geocluster.clustering.firms import summarize_clusters  # noqa: E402
from geocluster.disclosure import PUBLIC_ZOOM, Principal, apply  # noqa: E402

VIEWER = Principal("v", "viewer")
EDITOR = Principal("e", "editor")
WMQ = morecantile.tms.get("WebMercatorQuad")


def _firms(lon, lat, employees=None, **extra) -> gpd.GeoDataFrame:
    n = len(lon)
    frame = {"firm_id": [f"f{i}" for i in range(n)], "name": [f"Firm {i}" for i in range(n)]}
    if employees is not None:
        frame["employees"] = employees
    frame.update(extra)
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def _coords(obj) -> set[tuple[float, float]]:
    """Every coordinate pair of a GeoJSON-like body (rounded to 1e-9 degrees)."""
    out = set()

    def walk(o):
        if isinstance(o, dict):
            if "coordinates" in o:
                for x, y in shapely.get_coordinates(shapely.geometry.shape(o)):
                    out.add((round(x, 9), round(y, 9)))
            for k, v in o.items():
                if k != "coordinates":
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(obj)
    return out


def _numbers(obj) -> set[float]:
    out = set()
    if isinstance(obj, dict):
        for v in obj.values():
            out |= _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _numbers(v)
    elif isinstance(obj, float):
        out.add(round(obj, 9))
    return out


def _no_firm_coordinate(body, firms: gpd.GeoDataFrame) -> None:
    firm_xy = {(round(x, 9), round(y, 9)) for x, y in shapely.get_coordinates(firms.geometry)}
    assert not (_coords(body) & firm_xy), "a firm location is published"
    lons = {round(x, 9) for x, _ in firm_xy}
    lats = {round(y, 9) for _, y in firm_xy}
    nums = _numbers(body)
    assert not (nums & lons) and not (nums & lats), "a firm lon or lat is published"
    text = json.dumps(body)
    assert "Firm " not in text and '"f0"' not in text  # no names, no firm ids


points = st.lists(
    st.tuples(
        st.floats(-99.30, -99.00, allow_nan=False),
        st.floats(19.30, 19.60, allow_nan=False),
        st.integers(1, 500),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=points, threshold=st.integers(2, 6))
def test_viewer_firm_points_are_safe_grid_cells(points, threshold):
    lon, lat, emp = (np.array(v) for v in zip(*points, strict=True))
    firms = _firms(lon, lat, emp.astype(float))
    result = Result(body={}, layers={"firms": Layer("firm_points", firms, shape="features")})
    policy = DisclosurePolicy(min_contributors=threshold)
    out = apply(result, VIEWER, policy)
    cells = out.layers["firms"].frame
    assert "firm_id" not in cells.columns and "name" not in cells.columns
    published = cells[cells["disclosure"] == "ok"]
    # no published cell under the threshold, counted independently by point-in-polygon
    for _, cell in published.iterrows():
        inside = int(shapely.covers(cell.geometry, firms.geometry.values).sum())
        assert cell["n_firms"] >= threshold
        # a firm on a shared edge is covered by both cells: at least, never fewer
        assert inside >= cell["n_firms"]
        z, x, y = (int(v) for v in cell["cell"].split("/"))
        b = WMQ.bounds(morecantile.Tile(x, y, z))  # the cell is that tile, exactly
        np.testing.assert_allclose(cell.geometry.bounds, (b.left, b.bottom, b.right, b.top))
        assert z == PUBLIC_ZOOM
    suppressed = cells[cells["disclosure"] != "ok"]
    assert suppressed["n_firms"].isna().all() and suppressed["employees"].isna().all()
    # 0 or >= 2 suppressed: the total minus the published cells gives no single cell away
    assert len(suppressed) != 1 or len(cells) == 1
    _no_firm_coordinate(out.to_body(), firms)
    # an editor gets the firms themselves
    assert apply(result, EDITOR, policy).layers["firms"].frame is firms


def _region_sector(counts: np.ndarray) -> pd.DataFrame:
    rows = []
    total = counts.sum()
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            c = int(counts[i, j])
            # LQ of the cell (Isard's location quotient from the same counts)
            row_n, col_n = counts[i].sum(), counts[:, j].sum()
            lq = (c / row_n) / (col_n / total) if row_n and col_n else 0.0
            rows.append(
                {
                    "region_id": f"r{i}",
                    "sector": f"s{j}",
                    "count": c,
                    "employees": 10.0 * c,
                    "lq": lq,
                    "strong": lq > 1.25,
                }
            )
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.integers(2, 5).flatmap(
        lambda r: st.integers(2, 5).flatmap(
            lambda c: st.lists(
                st.lists(st.integers(0, 12), min_size=c, max_size=c), min_size=r, max_size=r
            )
        )
    ),
    threshold=st.integers(2, 5),
)
def test_viewer_region_tables_have_secondary_suppression_and_inherited_lq(counts, threshold):
    counts = np.array(counts)
    if counts.sum() == 0:
        counts[0, 0] = 1
    table = _region_sector(counts)
    regions = pd.DataFrame(
        {
            "region_id": [f"r{i}" for i in range(counts.shape[0])],
            "n_firms": counts.sum(axis=1),
            "dominant_sector": [f"s{int(np.argmax(r))}" for r in counts],
        }
    )
    result = Result(
        body={"rows": None, "regions": None},
        layers={
            "rows": Layer("region_table", table, count_col="count"),
            "regions": Layer("region_table", regions, count_col="n_firms"),
        },
    )
    body = apply(result, VIEWER, DisclosurePolicy(min_contributors=threshold)).to_body()
    rows = pd.DataFrame(body["rows"])
    sup = rows["disclosure"] != "ok"
    # no published cell of 1 .. threshold-1 firms
    published = rows.loc[~sup, "count"]
    assert ((published == 0) | (published >= threshold)).all()
    # every row and column: 0 or >= 2 suppressed
    for key in ("region_id", "sector"):
        per_line = sup.groupby(rows[key]).sum()
        assert not (per_line == 1).any(), per_line.to_dict()
    # LQ (and every derived value) null wherever its cell is suppressed
    assert rows.loc[sup, ["count", "employees", "lq", "strong"]].isna().all().all()
    assert rows.loc[~sup, "lq"].notna().all()
    # the dominant sector of a region goes with its cell
    cell = {(r, s): d for r, s, d in zip(rows.region_id, rows.sector, rows.disclosure)}
    for reg in body["regions"]:
        if reg["dominant_sector"] is not None:
            assert cell[(reg["region_id"], reg["dominant_sector"])] == "ok"
    # the regions table: one line (the national total is a margin) of 0 or >= 2
    reg = pd.DataFrame(body["regions"])
    assert (reg["disclosure"] != "ok").sum() != 1
    assert ((reg["n_firms"].dropna() == 0) | (reg["n_firms"].dropna() >= threshold)).all()


def _cluster_result(with_labels: bool = True):
    rng = np.random.default_rng(7)
    # cluster 0: 60 firms around one point (several safe cells); cluster 1: two firms;
    # cluster 2: 30 firms where one firm holds almost all employment (dominance)
    c0 = rng.normal((-99.13, 19.43), 0.02, (60, 2))
    c1 = np.array([[-99.5, 19.1], [-99.5005, 19.1004]])
    c2 = rng.normal((-98.8, 19.7), 0.003, (30, 2))
    noise = rng.uniform((-99.6, 19.0), (-98.6, 19.8), (20, 2))
    xy = np.vstack([c0, c1, c2, noise])
    labels = np.array([0] * 60 + [1] * 2 + [2] * 30 + [-1] * 20)
    emp = np.full(len(xy), 5.0)
    emp[62] = 10_000.0
    sectors = rng.choice(["10", "25", "46"], len(xy), p=[0.7, 0.25, 0.05])
    firms = _firms(xy[:, 0], xy[:, 1], emp, isic_division=sectors)
    projected = firms.to_crs("EPSG:32614")
    clusters = summarize_clusters(projected, labels).to_crs("EPSG:4326")
    layers = {
        "clusters": Layer(
            "cluster_summary",
            clusters,
            shape="features",
            count_col="n_firms",
            json_columns=("sector_mix",),
        )
    }
    if with_labels:
        layers["labels"] = Layer("firm_points", firms.assign(cluster_id=labels), shape="features")
    return firms, Result(body={"clusters": None}, layers=layers)


def test_viewer_clusters_are_suppressed_and_outlined_by_safe_cells():
    firms, result = _cluster_result()
    assert result.layers["clusters"].frame.geometry.notna().all()  # editors get hulls
    body = apply(result, VIEWER, DisclosurePolicy()).to_body()
    feats = {f["properties"]["cluster_id"]: f for f in body["clusters"]["features"]}
    # two firms: suppressed, with no outline; dominated: suppressed
    assert feats[1]["properties"]["disclosure"] == "few_contributors"
    assert feats[1]["geometry"] is None and feats[1]["properties"]["n_firms"] is None
    assert feats[2]["properties"]["disclosure"] == "dominance"
    assert feats[2]["geometry"] is None and feats[2]["properties"]["employees"] is None
    big = feats[0]
    assert big["properties"]["disclosure"] == "ok" and big["properties"]["n_firms"] == 60
    outline = shapely.geometry.shape(big["geometry"])
    # the outline is a union of zoom-13 tiles holding >= 3 of the cluster's firms
    xy = shapely.get_coordinates(firms.geometry)[:60]
    tiles = {}
    for x, y in xy:
        t = WMQ.tile(x, y, PUBLIC_ZOOM)
        tiles[t] = tiles.get(t, 0) + 1
    safe = [shapely.box(*WMQ.bounds(t)) for t, n in tiles.items() if n >= 3]
    assert outline.symmetric_difference(shapely.union_all(safe)).area < 1e-12
    # sector mix: only sectors with >= 3 firms in the cluster (and never just one hidden)
    mix = big["properties"]["sector_mix"]
    counts = pd.Series(firms["isic_division"][:60]).value_counts()
    assert all(counts[s] >= 3 for s in mix)
    assert big["properties"]["dominant_sector"] in mix
    _no_firm_coordinate(body, firms)


def test_viewer_clusters_without_firms_have_no_outline():
    firms, result = _cluster_result(with_labels=False)
    out = apply(result, VIEWER, DisclosurePolicy()).layers["clusters"].frame
    assert out.geometry.isna().all()
    assert out["centroid_lon"].isna().all()
    _no_firm_coordinate(apply(result, VIEWER, DisclosurePolicy()).to_body(), firms)
    # given the labels explicitly (as the API does from the run), the outline is back
    labelled = firms.assign(cluster_id=[0] * 60 + [1] * 2 + [2] * 30 + [-1] * 20)
    out = apply(result, VIEWER, DisclosurePolicy(), firms=labelled).layers["clusters"].frame
    assert out.set_index("cluster_id").geometry.loc[0] is not None


def _surface(bandwidth_m):
    frame = pd.DataFrame({"max_density": [12.5], "n_firms": [400], "total_weight": [400.0]})
    return Result(
        body={"raster_id": "kde-1", "bandwidth_m": bandwidth_m},
        layers={"*": Layer("surface", frame, shape="row", count_col="n_firms")},
    )


def test_viewer_surface_below_the_bandwidth_floor_is_withheld():
    policy = DisclosurePolicy(bandwidth_floor_m=1000.0)
    body = apply(_surface(1e-9), VIEWER, policy).to_body()
    assert body["raster_id"] is None and body["disclosure"] == "bandwidth_below_floor"
    assert body["max_density"] is None and body["n_firms"] is None
    ok = apply(_surface(2500.0), VIEWER, policy).to_body()
    assert ok["raster_id"] == "kde-1" and ok["max_density"] == 12.5
    # editors see any bandwidth
    assert apply(_surface(1e-9), EDITOR, policy).to_body()["raster_id"] == "kde-1"


def test_surface_withheld_rule():
    from geocluster.disclosure import surface_withheld

    policy = DisclosurePolicy(bandwidth_floor_m=500.0)
    assert surface_withheld(499.0, 100, policy) == "bandwidth_below_floor"
    assert surface_withheld(500.0, 100, policy) is None
    assert surface_withheld(None, 100, policy) == "bandwidth_unknown"
    assert surface_withheld(900.0, 2, policy) == "few_contributors"


def test_region_total_that_is_a_single_suppressed_cell_is_suppressed_too():
    # r0 has one sector only, dominated by one firm: its region total *is* that cell,
    # so the regions table must not publish it (and then one more region, for the
    # national total); hand-checked against Hundepool et al. 2012, §6.2
    rows = pd.DataFrame(
        {
            "region_id": ["r0", "r1", "r1", "r2", "r2"],
            "sector": ["s0", "s0", "s1", "s0", "s1"],
            "count": [10, 10, 12, 14, 16],
            "employees": [1000.0, 50.0, 60.0, 70.0, 80.0],
            "top2": [990.0, 20.0, 20.0, 20.0, 20.0],
            "lq": [1.5, 0.9, 1.1, 0.9, 1.1],
        }
    )
    regions = pd.DataFrame({"region_id": ["r0", "r1", "r2"], "n_firms": [10, 22, 30]})
    result = Result(
        body={},
        layers={
            "rows": Layer(
                "region_table", rows, count_col="count", top_k_col="top2", total_col="employees"
            ),
            "regions": Layer("region_table", regions, count_col="n_firms"),
        },
    )
    out = apply(result, VIEWER, DisclosurePolicy())
    cells = out.layers["rows"].frame.set_index(["region_id", "sector"])
    assert cells.loc[("r0", "s0"), "disclosure"] == "dominance"
    assert pd.isna(cells.loc[("r0", "s0"), "lq"])
    assert "top2" not in cells.columns  # top-k employment never leaves
    reg = out.layers["regions"].frame.set_index("region_id")
    assert reg.loc["r0", "disclosure"] == "secondary" and pd.isna(reg.loc["r0", "n_firms"])
    assert (reg["disclosure"] != "ok").sum() == 2
    # an editor sees every figure
    editor = apply(result, EDITOR, DisclosurePolicy()).layers["regions"].frame
    assert editor["n_firms"].tolist() == [10, 22, 30]
