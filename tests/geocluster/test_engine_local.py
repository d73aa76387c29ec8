"""LocalEngine (the reference of the Dask engine) and the streaming ingest helper.

References: scikit-learn's DBSCAN and KernelDensity, pandas crosstab/groupby on the raw
frame, and Python's own csv module for the row content of the part files.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.cluster import DBSCAN
from sklearn.neighbors import KernelDensity

from geocluster.engine import DBSCANResult, Engine, LocalEngine, get_engine, write_partitioned
from geocluster.engine.ingest import hilbert_sort
from geocluster.errors import InvalidInput, MissingColumns, UnusableFile

REPO = Path(__file__).resolve().parents[2]


def frame(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 20000, (12, 2))
    X = np.concatenate(
        [
            centres[rng.integers(0, 12, n)] + rng.normal(0, 150, (n, 2)),
            rng.uniform(0, 20000, (n // 3, 2)),
        ]
    )
    m = len(X)
    return pd.DataFrame(
        {
            "id": np.arange(m),
            "x": X[:, 0],
            "y": X[:, 1],
            "sector_code": np.array(["C10", "C25", "G47", None], dtype=object)[
                rng.integers(0, 4, m)
            ],
            "region": np.array(["A", "B", "C"])[rng.integers(0, 3, m)],
            "employees": np.where(rng.random(m) < 0.2, np.nan, rng.integers(1, 30, m)),
        }
    )


def files(df: pd.DataFrame, folder: Path, k: int = 3) -> list[str]:
    out = []
    for i, idx in enumerate(np.array_split(np.arange(len(df)), k)):
        p = folder / f"p{i}.parquet"
        pq.write_table(
            pa.Table.from_pandas(df.iloc[idx], preserve_index=False), p, row_group_size=500
        )
        out.append(str(p))
    return out


def test_local_engine_is_an_engine():
    assert isinstance(LocalEngine(), Engine)
    assert isinstance(get_engine("local"), LocalEngine)
    with pytest.raises(InvalidInput, match="expected engine"):
        get_engine("spark")
    with pytest.raises(InvalidInput, match="scheduler"):
        get_engine("local", scheduler="tcp://127.0.0.1:8786")


def test_local_dbscan_matches_sklearn_on_files_and_filters(tmp_path):
    df = frame()
    paths = files(df, tmp_path)
    flt = pc.field("sector_code").isin(["C10", "G47"])
    res = LocalEngine().dbscan(paths, eps_m=120.0, min_samples=5, filters=flt)
    assert isinstance(res, DBSCANResult)
    sub = df[df["sector_code"].isin(["C10", "G47"])]
    assert len(res.labels) == len(sub)
    # Reference: scikit-learn DBSCAN on the same rows in the same order.
    sk = DBSCAN(eps=120.0, min_samples=5).fit(sub[["x", "y"]].to_numpy())
    core = np.zeros(len(sub), bool)
    core[sk.core_sample_indices_] = True
    np.testing.assert_array_equal(res.core, core)
    np.testing.assert_array_equal(res.labels == -1, sk.labels_ == -1)
    np.testing.assert_array_equal(res.labels[core], sk.labels_[core])
    assert res.n_clusters == sk.labels_.max() + 1
    # The tuple form of filters gives the same rows.
    res2 = LocalEngine().dbscan(
        paths, eps_m=120.0, min_samples=5, filters=[("sector_code", "in", ["C10", "G47"])]
    )
    np.testing.assert_array_equal(res2.labels, res.labels)


def test_local_dbscan_weights_match_sklearn():
    df = frame(800)
    w = df["employees"].fillna(1.0).to_numpy()
    res = LocalEngine().dbscan(df.assign(w=w), eps_m=150.0, min_samples=40, weight="w")
    sk = DBSCAN(eps=150.0, min_samples=40).fit(df[["x", "y"]].to_numpy(), sample_weight=w)
    core = np.zeros(len(df), bool)
    core[sk.core_sample_indices_] = True
    np.testing.assert_array_equal(res.core, core)
    np.testing.assert_array_equal(res.labels == -1, sk.labels_ == -1)


def test_local_region_sector_counts_match_pandas(tmp_path):
    df = frame()
    got = LocalEngine().region_sector_counts(
        files(df, tmp_path), sector="sector_code", region="region", weight="employees"
    )
    # Reference: pandas groupby on the raw frame.
    ref = (
        df.groupby(["region", "sector_code"], dropna=False)
        .agg(n=("id", "size"), w=("employees", "sum"), k=("employees", "count"))
        .reset_index()
    )
    assert got["n_firms"].sum() == len(df)
    for row in ref.itertuples():
        s = None if pd.isna(row.sector_code) else row.sector_code
        m = (got.region == row.region) & (got.sector.isna() if s is None else got.sector == s)
        assert got.loc[m, "n_firms"].item() == row.n
        assert got.loc[m, "weight"].item() == pytest.approx(row.w)
        assert got.loc[m, "n_weight_known"].item() == row.k
    assert got["sector"].isna().to_numpy()[-1]  # missing sector last within the last region


def test_local_kde_matches_sklearn_kernel_density():
    df = frame(1500)
    h = 600.0
    g = LocalEngine().kde_grid(df, bandwidth_m=h, cell_m=h / 8, normalize=True)
    kd = KernelDensity(bandwidth=h, kernel="gaussian").fit(df[["x", "y"]].to_numpy())
    rng = np.random.default_rng(0)
    rows = rng.integers(0, g.density.shape[0], 60)
    cols = rng.integers(0, g.density.shape[1], 60)
    nodes = np.column_stack([g.x[cols], g.y[rows]])
    ref = np.exp(kd.score_samples(nodes))
    ours = g.density[rows, cols]
    big = ref > 0.01 * g.density.max()
    # Linear binning error bound of kde.py: within 1% where density > 1% of the max.
    np.testing.assert_allclose(ours[big], ref[big], rtol=0.01)


def test_local_engine_errors(tmp_path):
    df = frame(100)
    eng = LocalEngine()
    with pytest.raises(MissingColumns, match="weight_x"):
        eng.dbscan(df, eps_m=10.0, weight="weight_x")
    with pytest.raises(InvalidInput, match="exactly one"):
        eng.region_sector_counts(df, sector="sector_code")
    with pytest.raises(InvalidInput, match="filters"):
        eng.dbscan(df, eps_m=10.0, filters=42)
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(UnusableFile, match="file 1") as exc:
        eng.dbscan([str(bad)], eps_m=10.0)
    assert str(tmp_path) not in str(exc.value)
    with pytest.raises(InvalidInput):
        eng.dbscan([], eps_m=10.0)


# -- write_partitioned ------------------------------------------------------------------


def _write_csv(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "name": [f"firm {i}" for i in range(n)],
            "x": rng.uniform(0, 1e5, n),
            "y": rng.uniform(0, 1e5, n),
            "division": rng.integers(1, 99, n),
            "employees": rng.integers(1, 500, n),
        }
    )
    df.to_csv(path, index=False)


def test_write_partitioned_csv_round_trip(tmp_path):
    src = tmp_path / "firms.csv"
    _write_csv(src, 25_000)
    paths = write_partitioned(
        src, tmp_path / "out", rows_per_file=7_000, block_bytes=64 << 10, row_group_rows=1000
    )
    assert [p.name for p in paths] == [f"part-0000{i}.parquet" for i in range(4)]
    assert [pq.ParquetFile(p).metadata.num_rows for p in paths] == [7000, 7000, 7000, 4000]
    got = pd.concat([pq.read_table(p).to_pandas() for p in paths]).sort_values("id")
    # Reference: the csv module's reading of the same file.
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(got) == len(rows)
    assert got["name"].tolist() == [r["name"] for r in rows]
    np.testing.assert_array_equal(got["x"].to_numpy(), [float(r["x"]) for r in rows])
    # File k holds the rows after files 0..k-1 (source order between files).
    ids = [pq.read_table(p, columns=["id"])["id"].to_numpy() for p in paths]
    assert all(a.max() < b.min() for a, b in zip(ids, ids[1:]))
    # Hilbert order: row groups are compact (far smaller boxes than the whole extent).
    md = pq.ParquetFile(paths[0]).metadata
    areas = []
    for g in range(md.num_row_groups):
        sx, sy = md.row_group(g).column(2).statistics, md.row_group(g).column(3).statistics
        areas.append((sx.max - sx.min) * (sy.max - sy.min))
    assert np.median(areas) < 0.5 * 1e10
    # And the engines can read the parts as one source.
    res = LocalEngine().dbscan([str(p) for p in paths], eps_m=800.0, min_samples=4)
    assert len(res.labels) == 25_000


def test_write_partitioned_streams_a_parquet_file(tmp_path):
    src = tmp_path / "firms.csv"
    _write_csv(src, 12_000)
    big = tmp_path / "firms.parquet"
    pq.write_table(pa.csv.read_csv(src), big, row_group_size=5_000)
    paths = write_partitioned(big, tmp_path / "out", rows_per_file=5_000, block_bytes=32 << 10)
    assert [pq.ParquetFile(p).metadata.num_rows for p in paths] == [5000, 5000, 2000]
    got = pa.concat_tables([pq.read_table(p) for p in paths]).to_pandas().sort_values("id")
    ref = pd.read_csv(src)  # reference: pandas' own reading of the CSV
    np.testing.assert_array_equal(got["id"].to_numpy(), ref["id"].to_numpy())
    np.testing.assert_array_equal(got["x"].to_numpy(), ref["x"].to_numpy())


def test_write_partitioned_frames_and_transform(tmp_path):
    def chunks():
        for k in range(5):
            yield pd.DataFrame({"lon": np.arange(k * 10, k * 10 + 10, dtype=float), "lat": 1.0})

    def project(t: pa.Table) -> pa.Table:
        return t.append_column("x", pc.multiply(t["lon"], 1000.0)).append_column(
            "y", pc.multiply(t["lat"], 1000.0)
        )

    paths = write_partitioned(chunks(), tmp_path, rows_per_file=16, transform=project)
    t = pa.concat_tables([pq.read_table(p) for p in paths])
    assert [pq.ParquetFile(p).metadata.num_rows for p in paths] == [16, 16, 16, 2]
    assert sorted(t["x"].to_pylist()) == [i * 1000.0 for i in range(50)]
    with pytest.raises(UnusableFile, match="no rows"):
        write_partitioned(iter([]), tmp_path / "empty")
    with pytest.raises(InvalidInput, match="rows_per_file"):
        write_partitioned(chunks(), tmp_path, rows_per_file=0)
    with pytest.raises(UnusableFile, match="other columns"):
        write_partitioned(
            iter([pd.DataFrame({"a": [1]}), pd.DataFrame({"b": ["z"]})]), tmp_path / "mixed"
        )


def test_hilbert_sort_keeps_rows_and_puts_missing_last():
    t = pa.table({"x": [3.0, None, 0.0, 1.0], "y": [3.0, 1.0, 0.0, 1.0], "k": [1, 2, 3, 4]})
    s = hilbert_sort(t)
    assert sorted(s["k"].to_pylist()) == [1, 2, 3, 4]
    assert s["k"].to_pylist()[-1] == 2
    assert s["k"].to_pylist()[0] == 3  # the origin starts the curve


_MEMORY_PROBE = """
import json, sys, tracemalloc
import pyarrow as pa
from geocluster.engine.ingest import write_partitioned
tracemalloc.start()
write_partitioned(sys.argv[1], sys.argv[2], rows_per_file=20_000, block_bytes=128 << 10)
print(json.dumps({"py_peak": tracemalloc.get_traced_memory()[1],
                  "arrow_peak": pa.default_memory_pool().max_memory()}))
"""


def _peaks(src: Path, out: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(src), str(out)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_write_partitioned_memory_does_not_grow_with_the_input(tmp_path):
    small = tmp_path / "small.csv"
    _write_csv(small, 100_000)
    big = tmp_path / "big.csv"
    with open(small) as fh:
        header, *rows = fh.readlines()
    big.write_text(header + "".join(rows) * 3)  # 3x the rows, same columns
    p_small = _peaks(small, tmp_path / "s")
    p_big = _peaks(big, tmp_path / "b")
    assert len(list((tmp_path / "b").glob("*.parquet"))) == 15
    # Constant memory: 3x the input, about the same peak (Arrow and Python heaps). The
    # absolute level (~12 MB here) is the CSV read-ahead (~40 blocks) plus one part.
    assert p_big["arrow_peak"] < 1.3 * p_small["arrow_peak"], (p_small, p_big)
    assert p_big["py_peak"] < 1.3 * p_small["py_peak"] + (1 << 20), (p_small, p_big)
