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
    gpkg = ws_dir / "workspace.gpkg"
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
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ws = Workspace(ws_dir)
    assert ws.dataset("firms").version == 1
    assert len(ws.read("firms")) == 30
    con = sqlite3.connect(gpkg)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


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
