"""CLI over the store: --store (PostGIS), export, store migrate, --engine dask, serve refusal."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3

import numpy as np
import pyogrio
import pytest

from geocluster.cli import main
from geocluster.workspace import Workspace
from tests.api.fixtures import synthetic_firms
from tests.pgserver import pg_cluster, postgres_url  # noqa: F401 - session fixtures


def _run(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


@pytest.fixture
def ws(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", synthetic_firms(), name="firms")
    return ws


def test_export_gpkg_through_the_cli(ws, tmp_path):
    code, out = _run(["clusters", "--firms", "firms", "--eps-m", "400", "--min-samples", "5",
                      "--workspace", str(ws.path), "--json"])  # fmt: skip
    run_id = json.loads(out)["run_id"]
    target = tmp_path / "share" / "leon.gpkg"
    code, out = _run(["export", str(target), "--datasets", "firms", "--runs", run_id,
                      "--workspace", str(ws.path), "--json"])  # fmt: skip
    assert code == 0
    layers = {name for name, _ in pyogrio.list_layers(target)}
    assert "firms_v1" in layers and f"{run_id}_clusters".replace("-", "_") in layers
    con = sqlite3.connect(target)
    described = dict(con.execute("SELECT table_name, description FROM gpkg_contents"))
    con.close()
    assert "firms dataset firms@1" in described["firms_v1"]


def test_store_migrate_to_a_folder_and_to_postgis_and_use_it_with_store(ws, tmp_path, postgres_url):  # noqa: F811
    code, out = _run(["store", "migrate", "--to", str(tmp_path / "copy"),
                      "--workspace", str(ws.path), "--json"])  # fmt: skip
    assert code == 0 and json.loads(out)["versions"] == 1
    assert len(Workspace(tmp_path / "copy").read("firms")) == len(ws.read("firms"))
    url = f"{postgres_url}?schema=cli_{np.random.default_rng().integers(1 << 30)}"
    code, out = _run(["store", "migrate", "--to", url, "--workspace", str(ws.path), "--json"])
    assert code == 0 and json.loads(out)["versions"] == 1
    # every command takes --store: the same analysis on PostGIS gives the same answer
    args = ["clusters", "--firms", "firms", "--eps-m", "400", "--min-samples", "5", "--json"]
    _, local = _run([*args, "--workspace", str(ws.path)])
    code, remote = _run([*args, "--workspace", str(tmp_path / "pgws"), "--store", url])
    assert code == 0
    a, b = json.loads(local), json.loads(remote)
    assert (a["n_clusters"], a["noise"]) == (b["n_clusters"], b["noise"])
    code, out = _run(["datasets", "--workspace", str(tmp_path / "pgws"), "--store", url, "--json"])
    assert [d["id"] for d in json.loads(out)] == ["firms"]
    assert "password" not in out


@pytest.mark.slow
def test_engine_dask_gives_the_local_clusters(ws):
    args = ["clusters", "--firms", "firms", "--eps-m", "400", "--min-samples", "5",
            "--workspace", str(ws.path), "--json"]  # fmt: skip
    _, local = _run(args)
    code, dask = _run([*args, "--engine", "dask"])
    assert code == 0
    a, b = json.loads(local), json.loads(dask)
    assert b["params"]["engine"] == "dask"
    assert (a["n_clusters"], a["noise"]) == (b["n_clusters"], b["noise"])
    sizes = sorted(f["properties"]["n_firms"] for f in a["clusters"]["features"])
    assert sizes == sorted(f["properties"]["n_firms"] for f in b["clusters"]["features"])


def test_serve_refuses_a_public_bind_without_keys(ws, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--workspace", str(ws.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "keys" in err[0]


def test_engine_flags_are_validated(ws, capsys):
    code = main(["clusters", "--firms", "firms", "--scheduler", "tcp://127.0.0.1:1",
                 "--workspace", str(ws.path)])  # fmt: skip
    assert code == 2 and "needs --engine dask" in capsys.readouterr().err
