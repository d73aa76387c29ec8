"""CLI: exit codes, --json summaries, nothing stored on failure, SIGKILL during ingest."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from geocluster.cli import main
from geocluster.workspace import Workspace

CONTRACT_KEYS = {"id", "name", "kind", "rows", "rejected", "crs", "bbox"}


def _csv(path, n=50, seed=0, bad_rows=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "firm_id": [f"F{i}" for i in range(n)],
            "name": [f"Firm {i}" for i in range(n)],
            "isic": rng.choice(["1520", "2610", "5610"], n),
            "employees": rng.integers(1, 40, n),
            "lon": rng.uniform(-101.75, -101.6, n),
            "lat": rng.uniform(21.05, 21.18, n),
        }
    )
    if bad_rows:
        frame.loc[: bad_rows - 1, "lat"] = 95.0  # outside ±90
    frame.to_csv(path, index=False)
    return path


def test_ingest_json_summary_and_rejections(tmp_path, capsys):
    csv = _csv(tmp_path / "firms.csv", bad_rows=2)
    code = main(["ingest", "firms", str(csv), "--workspace", str(tmp_path / "ws"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert CONTRACT_KEYS <= set(summary)
    assert summary["kind"] == "firms" and summary["rows"] == 48 and summary["id"] == "firms"
    assert summary["crs"] == "EPSG:4326" and len(summary["bbox"]) == 4
    assert [r["row"] for r in summary["rejected"]] == [1, 2]
    assert all(r["column"] == "lat" for r in summary["rejected"])

    assert main(["datasets", "--workspace", str(tmp_path / "ws"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in listed] == ["firms"]


def test_unusable_file_exits_2_and_stores_nothing(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    ws_dir = tmp_path / "ws"
    code = main(["ingest", "firms", str(empty), "--workspace", str(ws_dir)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("geocluster: error: ") and "\n" not in err
    assert Workspace(ws_dir).datasets() == []


def test_missing_file_and_bad_option_exit_2(tmp_path, capsys):
    assert main(["ingest", "firms", str(tmp_path / "nope.csv"), "--workspace", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse rejects an unknown choice with exit 2
        main(["ingest", "firms", "x.csv", "--sector-scheme", "sic"])
    assert exc.value.code == 2


def test_human_output_lists_rejections(tmp_path, capsys):
    csv = _csv(tmp_path / "f.csv", n=10, bad_rows=1)
    assert main(["ingest", "firms", str(csv), "--workspace", str(tmp_path / "ws")]) == 0
    out = capsys.readouterr().out
    assert "9 rows stored (1 rejected)" in out and "rejected row 1 [lat]" in out


@pytest.mark.slow
def test_sigkill_during_cli_ingest_of_a_large_file(tmp_path):
    ws_dir = tmp_path / "ws"
    main(
        [
            "ingest",
            "firms",
            str(_csv(tmp_path / "small.csv", n=30)),
            "--workspace",
            str(ws_dir),
            "--name",
            "firms",
        ]
    )
    big = _csv(tmp_path / "big.csv", n=600_000, seed=3)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "geocluster",
            "ingest",
            "firms",
            str(big),
            "--name",
            "firms",
            "--workspace",
            str(ws_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gpkg = ws_dir / "catalog.sqlite"
    deadline = time.monotonic() + 120
    pending = 0
    while time.monotonic() < deadline and proc.poll() is None:
        con = sqlite3.connect(gpkg, timeout=5)
        pending = con.execute("SELECT count(*) FROM gc_pending").fetchone()[0]
        con.close()
        if pending:
            break
        time.sleep(0.01)
    assert pending, "the ingest never reached its write"
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ws = Workspace(ws_dir)
    # Atomic: either the old version alone, or the new one complete (if the kill came
    # after the commit); never a partial layer, and no temp file survives reopening.
    if ws.dataset("firms").version == 1:
        assert len(ws.read("firms")) == 30
    else:
        assert len(ws.read("firms")) == 600_000
    assert not [p for p in (ws_dir / "data").iterdir() if p.name.startswith(".tmp-")]
    con = sqlite3.connect(gpkg)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


# ---------------------------------------------------------------- ingest options (issue 11)
def test_ingest_flags_are_derived_from_ingest_options():
    from dataclasses import fields

    from geocluster.cli import build_parser
    from geocluster.ingest import IngestOptions

    parser = build_parser()
    ingest = parser._subparsers._group_actions[0].choices["ingest"]
    flags = {s for a in ingest._actions for s in a.option_strings}
    for f in fields(IngestOptions):
        flag = "--" + f.name.replace("_", "-")
        assert (flag in flags) == (f.name != "max_bytes"), flag
    for flag in ("--name-col", "--founded-col", "--women-led-col", "--youth-led-col",
                 "--informal-col", "--category-col", "--subtype-col"):  # fmt: skip
        assert flag in flags


def test_ingest_with_column_flags_and_bounds(tmp_path, capsys):
    csv = tmp_path / "empresas.csv"
    csv.write_text(
        "ref,lo,la,act,n,desde,mujer_dueña,joven,inf\n"
        "r1,-101.68,21.12,1520,3,1990,Sí,No,no\n"
        "r2,-101.69,21.13,1511,1000000000000,2005,No,Sí,sí\n",
        encoding="utf-8",
    )
    code = main([
        "ingest", "firms", str(csv), "--workspace", str(tmp_path / "ws"), "--json",
        "--id-col", "ref", "--lon-col", "lo", "--lat-col", "la", "--sector-col", "act",
        "--employees-col", "n", "--founded-col", "desde", "--women-led-col", "mujer_dueña",
        "--youth-led-col", "joven", "--informal-col", "inf",
    ])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 1
    assert summary["rejected"][0]["row"] == 2 and summary["rejected"][0]["column"] == "n"
    frame = Workspace(tmp_path / "ws").read("empresas")
    assert frame["founded"].tolist() == [1990] and bool(frame["women_led"].iloc[0]) is True
    assert "youth_led" in frame.columns and "sector_code_source" in frame.columns

    code = main([
        "ingest", "firms", str(csv), "--workspace", str(tmp_path / "ws"), "--json",
        "--lon-col", "lo", "--lat-col", "la", "--employees-col", "n",
        "--employees-max", "1000000000000",
    ])  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["rows"] == 2


def test_sector_scheme_without_a_sector_column_exits_2(tmp_path, capsys):
    csv = tmp_path / "f.csv"
    csv.write_text("id,lon,lat,employees\na,-101.68,21.12,4\n")
    ws_dir = tmp_path / "ws"
    code = main(
        ["ingest", "firms", str(csv), "--workspace", str(ws_dir), "--sector-scheme", "nace2"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "sector_scheme=nace2" in err and "--sector-col" in err
    assert Workspace(ws_dir).datasets() == []


def test_unknown_crs_and_degrees_in_utm_exit_2(tmp_path, capsys):
    csv = _csv(tmp_path / "f.csv", n=5)
    ws = str(tmp_path / "ws")
    assert main(["ingest", "firms", str(csv), "--workspace", ws, "--crs", "EPSG:999999"]) == 2
    assert "EPSG:999999" in capsys.readouterr().err
    assert main(["ingest", "firms", str(csv), "--workspace", ws, "--crs", "EPSG:32614"]) == 2
    assert "look like degrees: drop --crs" in capsys.readouterr().err


def test_unicode_file_name_gives_a_unicode_dataset_id(tmp_path, capsys):
    csv = _csv(tmp_path / "数据.csv", n=5)
    assert main(["ingest", "firms", str(csv), "--workspace", str(tmp_path / "ws"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "数据"
    assert Workspace(tmp_path / "ws").dataset("数据").rows == 5


def test_help_does_not_import_the_science_stack():
    # the parser is built from pydantic models only; run() imports the rest
    code = (
        "import sys, contextlib, io\n"
        "from geocluster.cli import main\n"
        "for argv in (['--help'], ['clusters', '--help'], ['inequality', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "heavy = [m for m in ('numpy', 'pandas', 'geopandas', 'shapely') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_analysis_flags_are_field_names(capsys):
    from geocluster.analyses.spec import get
    from geocluster.cli.analyses import flag

    with pytest.raises(SystemExit):
        main(["clusters", "--help"])
    text = capsys.readouterr().out
    for name in get("clusters").params.model_fields:
        assert flag(name) in text
    assert "DBSCAN radius in metres (default: 1000.0)" in " ".join(text.split())


def test_print_json_indents_small_documents_and_prints_large_ones_compact(capsys, monkeypatch):
    # reference: json.loads gives back the document either way
    import numpy as np

    from geocluster.cli import _common

    small = {"n": np.int64(3), "share": np.float64(0.5), "nan": None}
    _common.print_json(small)
    out = capsys.readouterr().out
    assert out.startswith('{\n  "n": 3') and json.loads(out) == {"n": 3, "share": 0.5, "nan": None}
    monkeypatch.setattr(_common, "INDENT_MAX_CHARS", 10)
    _common.print_json(small)
    out = capsys.readouterr().out
    assert out == '{"n": 3, "share": 0.5, "nan": null}\n'


def test_feature_collection_and_result_bodies_are_json_safe():
    # non-finite numbers become null in properties and in expanded JSON columns; the
    # body is walked once and still holds only plain Python values
    import geopandas as gpd
    import numpy as np
    import shapely

    from geocluster.analyses._common import feature_collection
    from geocluster.analyses.result import Layer, Result

    frame = gpd.GeoDataFrame(
        {
            "n_firms": [12, 30],
            "share": [np.nan, 0.25],
            "mix": ['{"15": NaN}', '{"15": 1.0}'],
        },
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)],
        crs="EPSG:4326",
    )
    fc = feature_collection(frame, json_columns=("mix",))
    props = [f["properties"] for f in fc["features"]]
    assert props[0]["share"] is None and props[0]["mix"] == {"15": None}
    assert props[1] == {"n_firms": 30, "share": 0.25, "mix": {"15": 1.0}}
    body = Result(
        body={"n": np.int64(2), "nested": {"x": np.float64("inf")}},
        layers={"clusters": Layer("cluster_summary", frame, shape="features",
                                  count_col="n_firms", json_columns=("mix",))},
        inputs=("firms@1",),
    ).to_body()  # fmt: skip
    assert json.loads(json.dumps(body, allow_nan=False)) == body
    assert body["n"] == 2 and type(body["n"]) is int and body["nested"] == {"x": None}
    assert body["clusters"] == fc and body["inputs"] == ["firms@1"]
