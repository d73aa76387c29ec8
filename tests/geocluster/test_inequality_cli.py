"""CLI: ``geocluster inequality``, ``compare``, ``profile``, ``peers``."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from inequality.gini import Gini
from inequality.theil import TheilD
from libpysal import examples

from geocluster.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def wsdir(tmp_path_factory):
    from geocluster.workspace import Workspace

    path = tmp_path_factory.mktemp("cli") / "ws"
    ws = Workspace(path)
    shp = gpd.read_file(examples.get_path("mexicojoin.shp")).set_crs("EPSG:4326")
    bounds = gpd.GeoDataFrame(
        {
            "region_id": shp["POLY_ID"].astype(str),
            "name": shp["NAME"],
            "level": 1,
            "parent_id": shp["HANSON98"].astype(int).astype(str),
        },
        geometry=shp.geometry,
        crs="EPSG:4326",
    )
    ws.add_dataset("boundaries", bounds, name="mexico")
    rows = [
        (rid, year, "pcgdp", float(v))
        for year in (1940, 1970, 2000)
        for rid, v in zip(bounds["region_id"], shp[f"PCGDP{year}"])
    ]
    ws.add_dataset(
        "indicators",
        pd.DataFrame(rows, columns=["region_id", "year", "indicator", "value"]),
        name="gdp",
    )
    return str(path)


def test_inline_values_json(capsys):
    code = main(["inequality", "--values", "1,2,3,4,10", "--groups", "a,a,b,b,b", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "inline"
    np.testing.assert_allclose(out["result"]["gini"], Gini(np.array([1.0, 2, 3, 4, 10])).g)
    ref = TheilD(np.array([1.0, 2, 3, 4, 10]), np.array(list("aabbb")))
    np.testing.assert_allclose(out["result"]["decomposition"]["between"], np.ravel(ref.bg)[0])


def test_inline_table_and_png(capsys, tmp_path):
    png = tmp_path / "lorenz.png"
    code = main(["inequality", "--values", "1,2,3", "--weights", "0-1,1-2", "--png", str(png)])
    assert code == 0
    text = capsys.readouterr().out
    assert "gini" in text and "polarization" in text
    assert png.read_bytes().startswith(PNG)


def test_from_indicators(wsdir, capsys, tmp_path):
    png = tmp_path / "decomp.png"
    args = ["inequality", "--workspace", wsdir, "--indicators", "gdp", "--indicator", "pcgdp",
            "--group-by", "parent_id", "--boundaries", "mexico", "--permutations", "9",
            "--png", str(png), "--chart", "decomposition", "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["years"]) == ["1940", "1970", "2000"] and out["run_id"]
    assert "spatial_gini" in out["years"]["2000"] and out["convergence"]["beta"]["n"] == 32
    assert png.read_bytes().startswith(PNG)
    # human-readable output mentions the convergence summary
    assert main(args[:-5] + ["--years", "1940,2000"]) == 0
    text = capsys.readouterr().out
    assert "beta convergence" in text and "run:" in text


def test_errors_exit_2(wsdir, capsys):
    assert main(["inequality", "--values", "1,x"]) == 2
    err = capsys.readouterr().err  # the same pydantic validation as over HTTP
    assert "values" in err and "valid number" in err
    assert main(["inequality", "--values", "1,-2"]) == 2
    assert "negative" in capsys.readouterr().err
    assert main(["inequality", "--workspace", wsdir, "--indicators", "gdp",
                 "--indicator", "pcgdp", "--years", "1950"]) == 2  # fmt: skip
    assert "available years" in capsys.readouterr().err
    assert main(["profile", "--workspace", wsdir, "--boundaries", "mexico", "999"]) == 2
    assert "no region '999'" in capsys.readouterr().err
    assert main(["compare", "--workspace", wsdir, "--boundaries", "mexico", "1"]) == 2
    err = capsys.readouterr().err  # the spec's constraint: 2-10 ids
    assert "ids" in err and "at least 2" in err


def test_profile_compare_peers(wsdir, capsys):
    assert main(["profile", "--workspace", wsdir, "--boundaries", "mexico", "4", "--json"]) == 0
    prof = json.loads(capsys.readouterr().out)
    assert prof["region_id"] == "4" and prof["indicators"]["values"][0]["year"] == 2000
    assert main(["profile", "--workspace", wsdir, "4"]) == 0
    assert "rank" in capsys.readouterr().out
    assert (
        main(["compare", "--workspace", wsdir, "--boundaries", "mexico", "4", "5", "--json"]) == 0
    )
    cmp_ = json.loads(capsys.readouterr().out)
    assert cmp_["ids"] == ["4", "5"]
    assert main(["compare", "--workspace", wsdir, "4", "5"]) == 0
    assert "pcgdp" in capsys.readouterr().out
    assert main(["peers", "--workspace", wsdir, "4", "-k", "3", "--json"]) == 0
    peers = json.loads(capsys.readouterr().out)
    assert len(peers["peers"]) == 3
