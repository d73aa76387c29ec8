"""Chunked ingest of large firm files equals the in-memory ingest of the same file.

The reference is geocluster's own in-memory ingest (``Workspace.ingest`` without
``chunk_rows``), itself tested against hand-made files in ``test_ingest*.py``: a chunked
ingest must store the same rows in the same order, row groups and part files, with the
same rejections (row numbers of the file), warnings, working CRS and extent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geocluster.errors import UnusableFile
from geocluster.ingest import _chunked
from geocluster.workspace import Workspace


def _messy_register(n: int, seed: int = 7) -> pd.DataFrame:
    """Firms around Oaxaca with every kind of row a chunk boundary could break."""
    rng = np.random.default_rng(seed)
    lon = -96.7 + rng.normal(0, 0.3, n)
    lat = 17.05 + rng.normal(0, 0.3, n)
    divisions = np.array(["10", "14", "15", "47", "55", "56", "90", "13"])
    isic = rng.choice(divisions, n).astype(object)
    frame = pd.DataFrame(
        {
            "firm_id": [f"F{i:06d}" for i in range(n)],
            "name": [f"Firm {i}" for i in range(n)],
            "lon": lon.round(6).astype(object),
            "lat": lat.round(6),
            "isic": isic,
            "employees": rng.integers(1, 50, n).astype(object),
            "founded": rng.integers(1950, 2024, n).astype(object),
            "women_led": rng.choice(["true", "false"], n),
            "score": rng.integers(0, 100, n).astype(float),
        }
    )
    # duplicates inside one chunk and across chunks (first occurrence stays)
    frame.loc[[15, 4_100, 9_050, n - 1], "firm_id"] = ["F000003", "F000010", "F000010", "F004200"]
    frame.loc[[40, 5_000], "lon"] = ["abc", None]  # non-numeric, missing
    frame.loc[[41, 7_777], ["lon", "lat"]] = [0.0, 0.0]  # null island
    frame.loc[[42, 8_888], "isic"] = "9999"  # unknown code
    frame.loc[[43, 9_999], "isic"] = None  # no sector: kept, warned
    frame.loc[[44, 6_001], "employees"] = -3  # negative
    frame.loc[[45, 6_002], "employees"] = "NA"  # missing word
    frame.loc[[46, 8_000], "founded"] = "circa"  # not a year: unknown, warned
    frame.loc[7_000:, "score"] = frame.loc[7_000:, "score"] + 0.5  # ints, then floats
    return frame


def _layer(ws: Workspace, dataset: str) -> tuple[pa.Table, list[int], int]:
    row = ws.catalog.select("gc_datasets", id=dataset)[-1]
    files = ws.store.layer_files(row["layer"])
    tables = [pq.read_table(p) for p in files]
    groups = [
        pq.ParquetFile(p).metadata.row_group(g).num_rows
        for p in files
        for g in range(pq.ParquetFile(p).metadata.num_row_groups)
    ]
    return pa.concat_tables(tables), groups, len(files)


def _assert_same(ws: Workspace, whole, chunked) -> None:
    for field in ("rows", "working_crs", "source_crs", "columns", "bbox", "warnings"):
        assert getattr(chunked, field) == getattr(whole, field), field
    assert chunked.rejected == whole.rejected
    ta, ga, fa = _layer(ws, whole.id)
    tb, gb, fb = _layer(ws, chunked.id)
    assert tb.schema.equals(ta.schema, check_metadata=True)
    assert tb.equals(ta)
    assert (gb, fb) == (ga, fa)


@pytest.mark.parametrize("chunk_rows", [997, 3_000, 50_000])
def test_chunked_csv_equals_in_memory(tmp_path, chunk_rows):
    path = tmp_path / "register.csv"
    _messy_register(10_000).to_csv(path, index=False)
    ws = Workspace(tmp_path / "ws")
    whole = ws.ingest("firms", path, name="whole")
    chunked = ws.ingest("firms", path, name="chunked", options={"chunk_rows": chunk_rows})
    _assert_same(ws, whole, chunked)
    rows = {r["row"]: r["reason"] for r in chunked.rejected}
    # row numbers are the file's: data row k is frame index k - 1
    assert rows[4_101] == "duplicate firm_id 'F000010' (first at row 11)"
    assert rows[9_051] == "duplicate firm_id 'F000010' (first at row 11)"
    assert rows[10_000] == "duplicate firm_id 'F004200' (first at row 4201)"
    assert rows[16] == "duplicate firm_id 'F000003' (first at row 4)"
    assert rows[7_778].startswith("coordinates (0, 0)")
    assert any(w.startswith("2 firms have no sector code") for w in chunked.warnings)
    assert not list((tmp_path / "ws").rglob(".tmp-*")), "spill files left behind"


@pytest.mark.parametrize("batch_rows", [300, 2_000])
def test_large_divisions_written_in_key_ranges_equal_in_memory(tmp_path, monkeypatch, batch_rows):
    """Memory bound of the second pass: a division larger than BATCH_ROWS is written in
    Hilbert-key ranges read from spill pieces of PIECE_ROWS rows; the layer is the same."""
    monkeypatch.setattr(_chunked, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(_chunked, "PIECE_ROWS", 97)
    path = tmp_path / "register.csv"
    frame = _messy_register(10_000)
    frame.loc[::3, "isic"] = "47"  # one dominant division: ~4,000 firms
    frame.loc[5:60, ["lon", "lat"]] = [-96.7, 17.05]  # many equal keys at a range edge
    frame.to_csv(path, index=False)
    ws = Workspace(tmp_path / "ws")
    whole = ws.ingest("firms", path, name="whole")
    chunked = ws.ingest("firms", path, name="chunked", options={"chunk_rows": 1_234})
    _assert_same(ws, whole, chunked)


def test_key_ranges_cover_everything_once():
    class S:
        def __init__(self, pieces):
            self.groups = {"47": pieces}

    spills = [S([(0, 0, 9, 100), (1, 10, 10, 100), (2, 10, 50, 100)]), S([(0, 5, 10, 100)])]
    ranges = _chunked._key_ranges(spills, "47", 150)
    assert ranges[0][0] == 0 and ranges[-1][1] == 1 << 40
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous, no overlap
    assert all(lo < hi for lo, hi in ranges)
    assert _chunked._key_ranges(spills, "47", 1_000) == [(0, 1 << 40)]


def test_kept_positions_skip_dropped_rows():
    dropped = np.array([2, 3, 7])
    kept = np.setdiff1d(np.arange(12), dropped)
    j = np.arange(len(kept))
    assert (_chunked._kept_positions(j, dropped) == kept).all()


def test_chunked_geoparquet_equals_in_memory(tmp_path):
    import geopandas as gpd

    frame = _messy_register(10_000, seed=3)
    frame = frame[pd.to_numeric(frame["lon"], errors="coerce").notna()].copy()
    lon = frame.pop("lon").astype(float)
    lat = frame.pop("lat")
    frame["employees"] = pd.to_numeric(frame["employees"], errors="coerce")
    frame["founded"] = frame["founded"].astype(str)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    path = tmp_path / "register.parquet"
    gdf.to_parquet(path)
    ws = Workspace(tmp_path / "ws")
    whole = ws.ingest("firms", path, name="whole")
    chunked = ws.ingest("firms", path, name="chunked", options={"chunk_rows": 1_500})
    _assert_same(ws, whole, chunked)


def test_large_files_stream_by_default(tmp_path, monkeypatch):
    path = tmp_path / "register.csv"
    _messy_register(10_000).to_csv(path, index=False)
    ws = Workspace(tmp_path / "ws")
    monkeypatch.setenv("GEOCLUSTER_INGEST_CHUNK_MB", "0.1")
    seen: list[str] = []
    streamed = ws.ingest("firms", path, name="big", progress=lambda f, m: seen.append(m))
    assert any("validated 10,000 rows (chunk 1)" in m for m in seen)
    assert seen[-1].endswith("(1 chunk)")
    monkeypatch.setenv("GEOCLUSTER_INGEST_CHUNK_MB", "1000")
    whole = ws.ingest("firms", path, name="small")
    _assert_same(ws, whole, streamed)


def test_a_bad_later_chunk_stores_nothing(tmp_path):
    path = tmp_path / "register.csv"
    frame = _messy_register(10_000)
    text = frame.to_csv(index=False).splitlines()
    text[8_500] = text[8_500] + ',"one","field","too","many"'
    path.write_text("\n".join(text) + "\n")
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(UnusableFile) as err:
        ws.ingest("firms", path, name="bad", options={"chunk_rows": 1_000})
    assert "register.csv" in str(err.value) and str(tmp_path) not in str(err.value)
    assert ws.datasets() == []
    assert not [p for p in (tmp_path / "ws").rglob("*.parquet")]
    assert ws.catalog.select("gc_pending") == []


def test_merge_warnings_sums_counts():
    merged = _chunked.merge_warnings(
        [["3 firms have no sector code (isic empty)", "no id column found"],
         ["2 firms have no sector code (isic empty)", "no id column found", "1 x"]]
    )  # fmt: skip
    assert merged == ["5 firms have no sector code (isic empty)", "no id column found", "1 x"]


def test_chunk_rows_option_is_checked():
    from geocluster.errors import InvalidInput
    from geocluster.ingest import IngestOptions

    with pytest.raises(InvalidInput, match="chunk_rows"):
        IngestOptions.from_dict({"chunk_rows": 0})
    assert IngestOptions.from_dict({"chunk_rows": "5000"}).chunk_rows == 5000


@pytest.mark.parametrize("moment", ["spilling", "writing"])
def test_sigkill_during_a_chunked_ingest_leaves_the_workspace_as_it_was(tmp_path, moment):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    ws_dir = tmp_path / "ws"
    small = tmp_path / "small.csv"
    _messy_register(10_000).head(50).to_csv(small, index=False)
    before = Workspace(ws_dir).ingest("firms", small, name="firms")
    big = tmp_path / "big.csv"
    _messy_register(400_000, seed=5).to_csv(big, index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "geocluster", "ingest", "firms", str(big), "--name", "firms",
         "--workspace", str(ws_dir), "--chunk-rows", "20000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    data = ws_dir / "data"
    # spill files during the first pass, temp part files of the layer during the second
    want = ".spill" if moment == "spilling" else ".0.parquet"
    deadline = time.monotonic() + 120
    seen = False
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".tmp-") and want in p.name for p in data.iterdir()):
            seen = True
            break
        time.sleep(0.005)
    assert seen, f"the ingest never reached {moment}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ws = Workspace(ws_dir)
    assert ws.dataset("firms").version == 1
    assert len(ws.read("firms")) == before.rows == 45
    assert not [p for p in data.iterdir() if p.name.startswith(".tmp-")]
    assert len(list(data.glob("*.parquet"))) == len(ws.store.layer_files(ws.dataset("firms").layer))
    con = sqlite3.connect(ws_dir / "catalog.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_a_register_listed_twice_rejects_every_repeat_as_in_memory(tmp_path):
    frame = _messy_register(10_000)
    again = frame.assign(name="again")
    path = tmp_path / "twice.csv"
    pd.concat([frame, again]).to_csv(path, index=False)
    ws = Workspace(tmp_path / "ws")
    whole = ws.ingest("firms", path, name="whole")
    chunked = ws.ingest("firms", path, name="chunked", options={"chunk_rows": 2_500})
    _assert_same(ws, whole, chunked)
    assert sum("duplicate firm_id" in r["reason"] for r in chunked.rejected) > 9_000
