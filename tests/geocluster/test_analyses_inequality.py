"""run_inequality on a workspace (mexico example) vs PySAL, and its envelopes/errors."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from inequality.gini import Gini, Gini_Spatial
from inequality.theil import Theil, TheilD
from libpysal import examples
from libpysal.weights import Queen
from scipy import stats

from geocluster.analyses.inequality import chart_png, run_inequality
from geocluster.errors import DatasetNotFound, InvalidInput, WrongKind
from geocluster.inequality import williamson

YEARS = list(range(1940, 2001, 10))
PNG = b"\x89PNG\r\n\x1a\n"


def mexico_frames() -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    shp = gpd.read_file(examples.get_path("mexicojoin.shp")).set_crs("EPSG:4326")
    bounds = gpd.GeoDataFrame(
        {
            "region_id": shp["POLY_ID"].astype(str),
            "name": shp["NAME"],
            "level": 1,
            "parent_id": "MX",
            "hanson98": shp["HANSON98"].astype(int).astype(str),
        },
        geometry=shp.geometry,
        crs="EPSG:4326",
    )
    rows = []
    for year in YEARS:
        for rid, v in zip(bounds["region_id"], shp[f"PCGDP{year}"]):
            rows.append((rid, year, "pcgdp", float(v)))
        # a synthetic population, deterministic, to exercise the weighted path
        for rid in bounds["region_id"]:
            rows.append((rid, year, "population", 1000.0 * int(rid) + 50.0 * (year - 1900)))
    return bounds, pd.DataFrame(rows, columns=["region_id", "year", "indicator", "value"])


@pytest.fixture(scope="module")
def mexico_ws(tmp_path_factory):
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ineq") / "ws")
    bounds, ind = mexico_frames()
    ws.add_dataset("boundaries", bounds, name="mx")
    ws.add_dataset("indicators", ind, name="mxind")
    return ws


@pytest.fixture(scope="module")
def mexico_result(mexico_ws):
    return run_inequality(
        mexico_ws,
        indicators="mxind",
        indicator="pcgdp",
        boundaries="mx",
        group_by="hanson98",
        permutations=99,
        seed=3,
    )


def _ordered(ws):
    """Boundaries and values in the order the analysis uses (region_id as text, sorted)."""
    bounds = ws.read("mx").assign(region_id=lambda d: d["region_id"].astype(str))
    return bounds.sort_values("region_id").reset_index(drop=True)


def test_from_indicators_equals_pysal_every_year(mexico_ws, mexico_result):
    res = mexico_result
    assert res["mode"] == "indicators" and res["n"] == 32
    assert list(res["years"]) == [str(y) for y in YEARS]
    bounds = _ordered(mexico_ws)
    ind = mexico_ws.read("mxind")
    groups = bounds["hanson98"].to_numpy()
    w = Queen.from_dataframe(bounds, use_index=False)
    for year in YEARS:
        vals = (
            ind[(ind.indicator == "pcgdp") & (ind.year == year)]
            .set_index("region_id")
            .loc[bounds["region_id"], "value"]
            .to_numpy(float)
        )
        e = res["years"][str(year)]
        np.testing.assert_allclose(e["gini"], Gini(vals).g, atol=1e-8)
        np.testing.assert_allclose(e["theil_t"], Theil(vals).T, atol=1e-8)
        ref = TheilD(vals, groups)
        np.testing.assert_allclose(e["decomposition"]["between"], np.ravel(ref.bg)[0], atol=1e-8)
        np.testing.assert_allclose(e["decomposition"]["within"], np.ravel(ref.wg)[0], atol=1e-8)
        np.random.seed(3)  # noqa: NPY002 - Gini_Spatial draws from the global stream
        gs = Gini_Spatial(vals, w, permutations=99)
        sg = e["spatial_gini"]
        np.testing.assert_allclose([sg["wg"], sg["wcg"]], [gs.wg, gs.wcg], rtol=1e-12)
        np.testing.assert_allclose(sg["polarization"], gs.polarization, rtol=1e-12)
        assert sg["p_value"] == pytest.approx(gs.p_sim)
        assert "williamson" not in e and "hoover" not in e


def test_convergence_vs_independent_fits(mexico_result):
    conv = mexico_result["convergence"]
    assert conv["first_year"] == 1940 and conv["last_year"] == 2000
    _, ind = mexico_frames()
    wide = ind[ind.indicator == "pcgdp"].pivot(index="region_id", columns="year", values="value")
    y0, y1 = wide[1940].to_numpy(), wide[2000].to_numpy()
    ref = stats.linregress(np.log(y0), np.log(y1 / y0) / 60)
    np.testing.assert_allclose(conv["beta"]["beta"], ref.slope, rtol=1e-10)
    np.testing.assert_allclose(conv["beta"]["stderr"], ref.stderr, rtol=1e-8)
    cv = [mexico_result["years"][str(y)]["cv"] for y in YEARS]
    np.testing.assert_allclose(conv["sigma"]["cv"]["slope"], stats.linregress(YEARS, cv).slope)
    np.testing.assert_allclose(
        conv["rank_mobility"]["kendall_tau"], stats.kendalltau(y0, y1).statistic
    )


def test_run_is_stored_with_a_map_layer(mexico_ws, mexico_result):
    run = mexico_ws.run(mexico_result["run_id"])
    assert run.kind == "inequality"
    assert set(run.inputs) == {"mxind@1", "mx@1"}  # exact versions used
    regions = mexico_ws.read_run(run.id)
    assert isinstance(regions, gpd.GeoDataFrame) and len(regions) == 32
    np.testing.assert_allclose(
        regions["theil_contribution"].sum(), mexico_result["years"]["2000"]["theil_t"], atol=1e-10
    )
    indices = mexico_ws.read_run(run.id, "indices")
    assert sorted(indices["year"].tolist()) == YEARS
    json.dumps(mexico_result, allow_nan=False)


def test_population_weighted_from_indicators(mexico_ws):
    res = run_inequality(
        mexico_ws,
        indicators="mxind",
        indicator="pcgdp",
        population="population",
        years=[1990],
        permutations=0,
    )
    _, ind = mexico_frames()
    sub = ind[ind.year == 1990].pivot(index="region_id", columns="indicator", values="value")
    e = res["years"]["1990"]
    assert res["weighted"] and e["weighted"]
    np.testing.assert_allclose(e["williamson"], williamson(sub["pcgdp"], sub["population"]))
    # the population-weighted Gini equals the Gini over people (values repeated per head/1000)
    reps = (sub["population"] / 50).astype(int).to_numpy()
    np.testing.assert_allclose(
        e["gini"], Gini(np.repeat(sub["pcgdp"].to_numpy(), reps)).g, atol=1e-12
    )
    assert res["convergence"] is None  # a single year


def test_missing_years_and_unbalanced_regions(mexico_ws, tmp_path):
    with pytest.raises(InvalidInput, match="at least one year"):
        run_inequality(mexico_ws, indicators="mxind", indicator="pcgdp", years=[])
    with pytest.raises(InvalidInput, match=r"year\(s\) \[1945\].*available years"):
        run_inequality(mexico_ws, indicators="mxind", indicator="pcgdp", years=[1940, 1945])
    # a region without 1950 is left out of every year and reported
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    _, ind = mexico_frames()
    gap = ind[~((ind.region_id == "7") & (ind.year == 1950) & (ind.indicator == "pcgdp"))]
    ws.add_dataset("indicators", gap, name="gap")
    res = run_inequality(ws, indicators="gap", indicator="pcgdp", permutations=0)
    assert res["n"] == 31 and "7" not in res["regions"]
    assert res["excluded_regions"] == [{"region_id": "7", "reason": "no pcgdp in [1950]"}]
    vals = ind[(ind.indicator == "pcgdp") & (ind.year == 1940) & (ind.region_id != "7")]["value"]
    np.testing.assert_allclose(res["years"]["1940"]["gini"], Gini(vals.to_numpy()).g, atol=1e-12)


def test_inline_envelope_and_options():
    res = run_inequality(
        None,
        values=[1.0, 4.0, 2.0, 8.0],
        groups=["a", "a", "b", "b"],
        weights=[[0, 1], [2, 3]],
        permutations=19,
        seed=1,
    )
    assert res["mode"] == "inline" and res["n"] == 4 and not res["weighted"]
    e = res["result"]
    for key in ("gini", "theil_t", "theil_l", "atkinson", "cv", "decomposition", "spatial_gini"):
        assert key in e
    assert set(e["atkinson"]) == {"0.5", "1", "2"}
    assert set(e["decomposition"]) >= {"between", "within", "between_share", "p_value"}
    assert set(e["spatial_gini"]) >= {"gini", "wg", "wcg", "polarization", "p_value"}
    np.testing.assert_allclose(e["gini"], Gini(np.array([1.0, 4.0, 2.0, 8.0])).g)
    weighted = run_inequality(None, values=[1.0, 4.0], population=[3, 1], permutations=0)
    assert weighted["weighted"] and "williamson" in weighted["result"]
    zero = run_inequality(None, values=[0.0, 1.0, 3.0])
    assert zero["result"]["theil_l"] is None and "theil_l" in zero["result"]["undefined"]
    json.dumps(zero, allow_nan=False)


def test_inputs_are_checked(mexico_ws):
    with pytest.raises(InvalidInput, match="got both"):
        run_inequality(mexico_ws, values=[1.0], indicators="mxind", indicator="pcgdp")
    with pytest.raises(InvalidInput, match="expected inline values or an indicators"):
        run_inequality(mexico_ws)
    with pytest.raises(InvalidInput, match="negative"):
        run_inequality(None, values=[1.0, -1.0])
    with pytest.raises(InvalidInput, match="permutations"):
        run_inequality(None, values=[1.0, 2.0], permutations=-1)
    with pytest.raises(InvalidInput, match="no indicator 'gdp'.*pcgdp"):
        run_inequality(mexico_ws, indicators="mxind", indicator="gdp")
    with pytest.raises(InvalidInput, match="needs a boundaries"):
        run_inequality(mexico_ws, indicators="mxind", indicator="pcgdp", group_by="parent_id")
    with pytest.raises(InvalidInput, match="no column 'nope'.*hanson98"):
        run_inequality(
            mexico_ws, indicators="mxind", indicator="pcgdp", boundaries="mx", group_by="nope"
        )
    with pytest.raises(DatasetNotFound):
        run_inequality(mexico_ws, indicators="missing", indicator="pcgdp")
    with pytest.raises(WrongKind):
        run_inequality(mexico_ws, indicators="mx", indicator="pcgdp")


def test_group_by_parent_id_has_one_group(mexico_ws):
    res = run_inequality(
        mexico_ws,
        indicators="mxind",
        indicator="pcgdp",
        years=[2000],
        boundaries="mx",
        group_by="parent_id",
        permutations=0,
    )
    d = res["years"]["2000"]["decomposition"]
    assert d["between"] == pytest.approx(0, abs=1e-15) and len(d["groups"]) == 1


def test_charts(mexico_result):
    for kind in ("lorenz", "indices", "decomposition"):
        png = chart_png(kind, mexico_result)
        assert png.startswith(PNG) and len(png) > 2000
    assert chart_png("lorenz", mexico_result, years=[1970]).startswith(PNG)
    inline = run_inequality(None, values=[1.0, 2.0, 5.0])
    assert chart_png("lorenz", inline).startswith(PNG)
    with pytest.raises(InvalidInput, match="group"):
        chart_png("decomposition", inline)
    with pytest.raises(InvalidInput, match="several years"):
        chart_png("indices", inline)
    with pytest.raises(InvalidInput, match="chart kind"):
        chart_png("pie", inline)
    with pytest.raises(InvalidInput, match="1955"):
        chart_png("lorenz", mexico_result, years=[1955])


def test_one_region_from_data(tmp_path):
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ind = pd.DataFrame(
        {"region_id": ["a", "a"], "year": [2000, 2010], "indicator": "x", "value": [3.0, 5.0]}
    )
    ws.add_dataset("indicators", ind, name="one")
    res = run_inequality(ws, indicators="one", indicator="x", permutations=9)
    assert res["n"] == 1
    assert all(
        res["years"][y]["gini"] == 0 and res["years"][y]["theil_t"] == 0 for y in res["years"]
    )
    conv = res["convergence"]
    assert conv["beta"] is None and "at least 3 regions" in conv["undefined"]["beta"]
    assert conv["rank_mobility"]["kendall_tau"] is None
    json.dumps(res, allow_nan=False)


def test_mixed_levels_need_a_level(tmp_path):
    from geocluster.workspace import Workspace

    bounds, ind = mexico_frames()
    country = gpd.GeoDataFrame(
        {"region_id": ["MX"], "name": ["Mexico"], "level": [0], "parent_id": [None],
         "hanson98": [None]},
        geometry=[bounds.union_all()], crs="EPSG:4326",
    )  # fmt: skip
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("boundaries", pd.concat([country, bounds], ignore_index=True), name="b")
    national = pd.DataFrame(
        {"region_id": "MX", "year": YEARS, "indicator": "pcgdp", "value": 1000.0}
    )
    ws.add_dataset("indicators", pd.concat([ind, national], ignore_index=True), name="i")
    with pytest.raises(InvalidInput, match=r"several boundaries levels \[0, 1\].*level"):
        run_inequality(ws, indicators="i", indicator="pcgdp", boundaries="b", permutations=0)
    res = run_inequality(
        ws,
        indicators="i",
        indicator="pcgdp",
        boundaries="b",
        level=1,
        years=[1940],
        permutations=0,
    )
    assert res["n"] == 32
    assert res["excluded_regions"] == [{"region_id": "MX", "reason": "not a level-1 region of 'b'"}]
