"""Analysis specs: one declaration -> the same analysis on both edges; disclosure by kind;
explicit inputs."""

from __future__ import annotations

import argparse
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pydantic import Field

from geocluster.analyses import spec as registry
from geocluster.analyses.result import DISCLOSURE_KINDS, Layer, Result
from geocluster.cli import main
from geocluster.cli.analyses import COMMON_FLAGS, add_spec, command_values, flag
from geocluster.disclosure import PERMISSIVE, Principal, apply
from geocluster.errors import InvalidInput
from tests.api.fixtures import build_demo_like_workspace, synthetic_firms

SPECS = registry.specs()
VIEWER = Principal("anonymous", "viewer")
EDITOR = Principal("ana", "editor")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_like_workspace(tmp_path_factory.mktemp("spec") / "ws")


def _parser(spec):
    parser = argparse.ArgumentParser(prog="geocluster")
    sub = parser.add_subparsers(dest="command")
    return add_spec(sub, spec)


def _required_values(spec) -> dict:
    """A value for every required field (placeholders: only validation runs)."""
    out = {}
    for name, field in spec.params.model_fields.items():
        if field.is_required():
            out[name] = ["R1", "R2"] if name == "ids" else "x"
    return out


def _cli_args(spec, values: dict) -> list[str]:
    args, positional = [], []
    for name, value in values.items():
        field = spec.params.model_fields[name]
        is_positional = any(getattr(m, "positional", False) for m in field.metadata)
        items = value if isinstance(value, list) else [value]
        if is_positional:
            positional += [str(v) for v in items]
        else:
            args += [flag(name), *map(str, items)]
    return positional + args


# -- parity --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_cli_and_http_take_the_same_fields(spec):
    from api.routers.analyses import request_model

    parser = _parser(spec)
    dests = {a.dest for a in parser._actions} - {"help", *COMMON_FLAGS, *spec.formats}
    dests -= set(spec.format_options)
    http = set(request_model(spec).model_fields) - {"async_"}
    assert dests == http == set(spec.params.model_fields)
    # every field is documented (the --help text and the OpenAPI description)
    assert all(f.description for f in spec.params.model_fields.values())


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_cli_and_http_defaults_are_the_same(spec):
    from api.routers.analyses import request_model

    values = _required_values(spec)
    if spec.name == "hotspots":
        values["values"] = {"R1": 1.0}
    if spec.name == "inequality":
        values["values"] = [1.0, 2.0]
    if spec.name == "zonal":
        values["boundaries"] = "b"
    cli_values = dict(values)
    if "values" in cli_values and isinstance(cli_values["values"], dict):
        cli_values["values"] = json.dumps(cli_values["values"])
    args = _parser(spec).parse_args(_cli_args(spec, cli_values))
    args.json = False
    from_cli = spec.parse(command_values(spec, args))
    body = request_model(spec).model_validate(values)
    from_http = spec.params.model_validate(body.model_dump(exclude={"async_"}))
    assert from_cli == from_http


def test_readme_command_lines_still_parse():
    from geocluster.cli import build_parser

    parser = build_parser(["clusters"])
    args = parser.parse_args(["clusters", "--firms", "f", "--sector", "15", "--eps-m", "2000"])
    params = registry.get("clusters").parse(command_values(registry.get("clusters"), args))
    assert params.sectors == ["15"] and params.eps_m == 2000.0 and params.method == "dbscan"
    args = parser.parse_args(["assets", "gaps", "--assets", "a", "--firms", "f"])
    params = registry.get("assets").parse(command_values(registry.get("assets"), args))
    assert params.analysis == "gaps" and params.radius_m == 5000.0
    args = parser.parse_args(["rank", "--clusters-run", "r"])  # the CLI's old name
    assert registry.get("ranking").parse(command_values(registry.get("ranking"), args))


def test_hdbscan_min_samples_default_is_one_declaration():
    # the drift the specs remove: HTTP said 10, the CLI said None for HDBSCAN
    field = registry.get("clusters").params.model_fields["min_samples"]
    assert field.default is None
    args = _parser(registry.get("clusters")).parse_args(["--firms", "f", "--method", "hdbscan"])
    assert command_values(registry.get("clusters"), args) == {"firms": "f", "method": "hdbscan"}


def _cli_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("clusters", {"firms": "firms", "eps_m": 2500.0, "min_samples": 8}),
        ("kdistance", {"firms": "firms", "k": 6}),
        ("specialization", {"firms": "firms", "boundaries": "regions"}),
        (
            "hotspots",
            {"boundaries": "regions", "indicators": "indicators", "indicator": "gdp_pc",
             "permutations": 99},
        ),
        ("inequality", {"indicators": "indicators", "indicator": "gdp_pc"}),
        ("profile", {"region_id": "R00", "boundaries": "regions", "firms": "firms"}),
        ("assets", {"assets": "assets", "boundaries": "regions", "analysis": "density"}),
    ],
)  # fmt: skip
def test_same_result_on_both_edges(demo, capsys, name, body):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    spec = registry.get(name)
    if name == "profile":  # other tests add clusters runs to this workspace: name one
        body = {**body, "clusters_run": demo["clusters_run"]}
    argv = [name, *_cli_args(spec, body), "--workspace", str(demo["ws"].path), "--json"]
    via_cli = _cli_json(capsys, argv)
    with TestClient(create_app(Settings(workspace=demo["ws"].path))) as client:
        r = client.post(f"/analyses/{name}", json=body)
    assert r.status_code == 200, r.text
    via_http = r.json()

    def strip(obj):  # run ids and raster ids differ between two runs, nothing else
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in ("run_id", "collections")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    assert strip(via_cli) == strip(via_http)
    assert via_http["inputs"] and all("@" in i or "-" in i for i in via_http["inputs"])


# -- a toy analysis: one module, both edges ---------------------------------------------------
class ToyParams(registry.Params):
    """Parameters of the toy analysis."""

    firms: str = Field(..., description="firms dataset id")
    radius_m: float = Field(100.0, gt=0, description="radius in metres")


def _toy_run(ctx, params, progress):
    info = ctx.dataset(params.firms)
    n = int(info.rows)
    return Result(
        body={"n_firms": n, "radius_m": params.radius_m},
        layers={
            "cells": Layer("cell_counts", pd.DataFrame({"cell": ["a"], "n": [n]}), count_col="n")
        },
        inputs=(f"{info.id}@{info.version}",),
    )


@pytest.fixture
def toy():
    spec = registry.register(
        registry.AnalysisSpec(
            name="toy_count",
            summary="Count firms (a test analysis)",
            description="Counts the firms of a dataset.",
            params=ToyParams,
            run=_toy_run,
            examples=({"firms": "firms"},),
        )
    )
    yield spec
    registry.unregister("toy_count")


def test_a_toy_analysis_appears_on_both_edges(toy, demo, capsys):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    with TestClient(create_app(Settings(workspace=demo["ws"].path))) as client:
        openapi = client.get("/openapi.json").json()
        assert "/analyses/toy_count" in openapi["paths"]
        r = client.post("/analyses/toy_count", json={"firms": "firms", "radius_m": 50})
        assert r.status_code == 200, r.text
        assert r.json()["radius_m"] == 50 and r.json()["inputs"] == ["firms@1"]
        assert (
            client.post("/analyses/toy_count", json={"firms": "firms", "radius_m": 0}).status_code
            == 422
        )
    out = _cli_json(
        capsys, ["toy_count", "--firms", "firms", "--workspace", str(demo["ws"].path), "--json"]
    )
    assert out["radius_m"] == 100.0 and out["cells"][0]["n"] == out["n_firms"]
    assert main(["toy_count", "--firms", "firms", "--workspace", str(demo["ws"].path)]) == 0
    assert "inputs: firms@1" in capsys.readouterr().out


def test_registry_refuses_a_second_spec_of_the_same_name(toy):
    with pytest.raises(InvalidInput, match="already registered"):
        registry.register(registry.AnalysisSpec("toy_count", "s", "d", ToyParams, _toy_run))
    with pytest.raises(InvalidInput, match="radius_m"):  # a bad example is a bug in the spec
        registry.register(
            registry.AnalysisSpec("toy_bad", "s", "d", ToyParams, _toy_run, ({"radius_m": -1},))
        )


# -- disclosure by declared kind --------------------------------------------------------------
def _small_cells_layer(kind: str) -> Layer:
    """A layer of its kind where one row has 2 firms and one has 40."""
    boxes = [shapely.box(-103.4, 20.6, -103.3, 20.7), shapely.box(-101.7, 21.1, -101.6, 21.2)]
    if kind == "firm_points":
        # two firms alone in a cell, forty together in another, thirty in a third
        firms = synthetic_firms(36, 0).iloc[:72].copy()
        pts = (
            [shapely.Point(-103.35, 20.65)] * 2
            + [shapely.Point(-101.65, 21.15)] * 40
            + [shapely.Point(-100.65, 21.15)] * 30
        )
        firms = gpd.GeoDataFrame(firms.drop(columns="geometry"), geometry=pts, crs="EPSG:4326")
        return Layer("firm_points", firms, shape="features")
    frame = gpd.GeoDataFrame(
        {"region_id": ["small", "large"], "n_firms": [2, 40], "employees": [7.0, 300.0]},
        geometry=boxes,
        crs="EPSG:4326",
    )
    if kind == "public":
        return Layer("public", frame, shape="features")
    return Layer(kind, frame, shape="features", count_col="n_firms")


@pytest.mark.parametrize("kind", DISCLOSURE_KINDS)
def test_viewer_never_sees_a_cell_of_one_or_two_firms(kind):
    result = Result(body={}, layers={"layer": _small_cells_layer(kind)})
    open_mode = apply(result, None, PERMISSIVE).to_body()["layer"]["features"]
    viewer = apply(result, VIEWER, PERMISSIVE).layers["layer"].frame
    editor = apply(result, EDITOR, PERMISSIVE).layers["layer"].frame
    if kind == "public":  # nothing confidential: everyone sees the same
        assert viewer.equals(editor)
        return
    if kind == "firm_points":
        assert len(open_mode) == 72  # an editor (or open mode) sees the firms
        assert "name" not in viewer.columns and "firm_id" not in viewer.columns
        assert viewer.set_index("disclosure").loc["few_contributors", "n_firms"] != 2
        small = viewer[viewer["disclosure"] != "ok"]
        # the cell of two, and the smallest other (else the total minus 40 gives it)
        assert sorted(small["disclosure"]) == ["few_contributors", "secondary"]
        assert small["n_firms"].isna().all()
        assert viewer.loc[viewer["disclosure"] == "ok", "n_firms"].tolist() == [40]
        return
    small = viewer.set_index("region_id").loc["small"]
    assert small["disclosure"] == "few_contributors"
    assert pd.isna(small["n_firms"]) and pd.isna(small["employees"])
    large = viewer.set_index("region_id").loc["large"]
    if kind == "region_table":
        # one line of two regions: the larger is suppressed too, or the line total
        # minus it gives the small one away (secondary suppression)
        assert large["disclosure"] == "secondary" and pd.isna(large["n_firms"])
    else:
        assert large["n_firms"] == 40
    # the permissive policy only flags for editors
    assert editor.set_index("region_id").loc["small", "n_firms"] == 2
    if kind in ("cluster_summary", "cell_counts"):
        # the outline of a cell of two firms is itself their location
        assert viewer.set_index("region_id").geometry.loc["small"] is None


def test_disclosure_passes_nested_layers_and_dominance():
    frame = pd.DataFrame(
        {"sector": ["15", "26"], "count": [10, 10], "top2": [95.0, 20.0], "total": [100.0, 100.0]}
    )
    layer = Layer("region_table", frame, count_col="count", top_k_col="top2", total_col="total")
    result = Result(body={"sectors": {"top": None}}, layers={"sectors/top": layer})
    body = apply(result, VIEWER, PERMISSIVE).to_body()
    rows = {r["sector"]: r for r in body["sectors"]["top"]}
    assert rows["15"]["disclosure"] == "dominance" and rows["15"]["count"] is None
    # the only other cell of the line goes too (secondary), or the total gives 15 away
    assert rows["26"]["disclosure"] == "secondary" and rows["26"]["count"] is None
    editor = {r["sector"]: r for r in apply(result, EDITOR, PERMISSIVE).to_body()["sectors"]["top"]}
    assert editor["26"]["count"] == 10 and editor["15"]["count"] == 10


def test_a_layer_must_name_its_count_column():
    with pytest.raises(InvalidInput, match="count column"):
        Layer("cell_counts", pd.DataFrame({"n": [1]}))
    with pytest.raises(InvalidInput, match="disclosure kind"):
        Layer("guess", pd.DataFrame({"n": [1]}))


def test_principal_roles():
    assert not VIEWER.sees_microdata and EDITOR.sees_microdata
    with pytest.raises(InvalidInput):
        Principal("x", "root")


# -- explicit inputs --------------------------------------------------------------------------
@pytest.fixture
def two_runs(tmp_path):
    """A workspace with one firms dataset, two boundaries datasets and two clusters runs."""
    from geocluster.analyses.clusters import run_clusters

    built = build_demo_like_workspace(tmp_path / "ws")
    ws = built["ws"]
    regions = ws.read("regions")
    ws.add_dataset("boundaries", regions, name="regions_copy")
    footwear = run_clusters(ws, firms="firms", eps_m=3000.0, min_samples=10, sectors=["15"])
    return ws, built["clusters_run"], footwear["run_id"]


def test_profile_with_a_named_run_finds_its_clusters(two_runs):
    from geocluster.analyses.territories import profile_result, region_profile

    ws, all_run, footwear_run = two_runs
    # R00 holds the footwear town (sector 15 at -103.35, 20.67): the Oaxaca case of the demo
    body = region_profile(ws, "R00", boundaries="regions", firms="firms", clusters_run=footwear_run)
    assert body["clusters"]["run_id"] == footwear_run
    assert len(body["clusters"]["items"]) >= 1
    assert all(i["dominant_sector"] == "15" for i in body["clusters"]["items"])
    result = profile_result(ws, "R00", boundaries="regions", firms="firms", clusters_run=all_run)
    # every input named with its version (indicators and assets: the only candidates)
    assert {"regions@1", "firms@1", all_run} <= set(result.inputs)
    # two runs could apply: a clear error listing both
    with pytest.raises(InvalidInput, match="clusters_run") as err:
        region_profile(ws, "R00", boundaries="regions", firms="firms")
    assert all_run in str(err.value) and footwear_run in str(err.value)


def test_a_dataset_left_out_is_used_only_when_it_is_the_only_candidate(two_runs):
    from geocluster.analyses.territories import compare_regions

    ws, _, _ = two_runs
    with pytest.raises(InvalidInput, match="boundaries") as err:
        compare_regions(ws, ["R00", "R10"])
    assert "regions@1" in str(err.value) and "regions_copy@1" in str(err.value)
    body = compare_regions(ws, ["R00", "R10"], boundaries="regions_copy")
    assert body["inputs"][0] == "regions_copy@1" and "firms@1" in body["inputs"]


def test_explicit_input_errors_reach_both_edges(two_runs, capsys):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    ws, all_run, footwear_run = two_runs
    with TestClient(create_app(Settings(workspace=ws.path))) as client:
        r = client.get("/regions/R00/profile?boundaries=regions&firms=firms")
        assert r.status_code == 422 and footwear_run in r.json()["detail"]
        r = client.get(f"/regions/R00/profile?boundaries=regions&clusters_run={footwear_run}")
        assert r.status_code == 200 and r.json()["clusters"]["run_id"] == footwear_run
    argv = ["profile", "R00", "--boundaries", "regions", "--workspace", str(ws.path)]
    assert main(argv) == 2
    assert all_run in capsys.readouterr().err
    assert main([*argv, "--clusters-run", footwear_run]) == 0
    out = capsys.readouterr().out
    assert f"point clusters intersecting ({footwear_run})" in out
    assert f"inputs: regions@1, firms@1, {footwear_run}" in out or footwear_run in out


def test_results_record_exact_versions(demo):
    spec = registry.get("specialization")
    result = spec(demo["ws"], firms="firms", boundaries="regions")
    assert result.inputs == ("firms@1", "regions@1")
    assert demo["ws"].run(result.run_id).inputs == ["firms@1", "regions@1"]
    assert np.isfinite([r["lq"] for r in result.to_body()["rows"] if r["lq"] is not None]).all()


def test_raster_rescale_range_lives_in_the_library(demo):
    # the colour ramp of a KDE: 0 to its 98th percentile, as the tiles compute it
    from api.routers import tiles
    from geocluster.clustering.kde import raster_rescale_range

    info = demo["ws"].raster(demo["kde"])
    lo, hi = raster_rescale_range(info)
    assert lo == 0.0 and hi > 0
    assert tiles.raster_rescale_range is raster_rescale_range  # one copy, the library's


def test_every_stored_run_layer_records_its_disclosure_kind(demo):
    # items, tiles and downloads of a run read the kind from here: nothing to guess
    ws = demo["ws"]
    registry.get("assets")(ws, assets="assets", firms="firms", analysis="linkage")
    registry.get("inequality")(ws, indicators="indicators", indicator="gdp_pc")
    runs = [r for r in ws.runs() if r.kind != "toy"]
    assert {r.kind for r in runs} >= {"clusters", "specialization", "ranking", "assets"}
    for run in runs:
        kinds = run.summary["disclosure"]
        assert set(kinds) == set(run.layers), run.kind
        assert all(k["kind"] in DISCLOSURE_KINDS for k in kinds.values())
    clusters = ws.run(demo["clusters_run"]).summary["disclosure"]
    assert clusters["labels"]["kind"] == "firm_points"
    assert clusters["clusters"] == {"kind": "cluster_summary", "count_col": "n_firms"}


def test_a_viewer_comparison_hides_firm_figures_of_small_regions(two_runs):
    from geocluster.analyses.territories import compare_result
    from geocluster.disclosure import DisclosurePolicy

    ws, _, _ = two_runs
    result = compare_result(ws, ["R00", "R10"], boundaries="regions", firms="firms")
    strict = DisclosurePolicy(min_contributors=10_000)  # every region is "small" here
    body = apply(result, VIEWER, strict).to_body()
    table = {row["metric"]: row["values"] for row in body["table"]}
    assert table["firms.count"] == {"R00": None, "R10": None}
    assert all(v is not None for v in table["area_km2"].values())  # not firm-derived
    for profile in body["regions"]:
        assert profile["firms"]["count"] is None and profile["firms"]["disclosure"] != "ok"
        assert all(s["count"] is None for s in profile["sectors"]["top"])
    # an editor sees the counts
    editor = apply(result, EDITOR, strict).to_body()
    assert all(
        v > 0 for v in {r["metric"]: r["values"] for r in editor["table"]}["firms.count"].values()
    )


def test_hotspots_of_firm_derived_values_are_a_region_table(demo):
    ws = demo["ws"]
    run_id = registry.get("specialization")(ws, firms="firms", boundaries="regions").run_id
    spec = registry.get("hotspots")
    derived = spec(ws, boundaries="regions", specialization_run=run_id, permutations=9)
    assert derived.layers["regions"].kind == "region_table"
    assert derived.layers["regions"].count_col == "n_firms"
    public = spec(ws, boundaries="regions", indicators="indicators", indicator="gdp_pc")
    assert public.layers["regions"].kind == "public"
