"""Benchmark: the Dask engine against the local engine (issue 14).

Usage::

    python bench/dask.py                                  # 5M firms, then 50M firms
    python bench/dask.py --firms 1000000 --big-firms 0    # reduced: 1M, no 50M run
    python bench/dask.py --json out.json

Data (seeded, ``--seed``): firms over a 1000 x 1000 km square in metres (beyond 5M firms
a square grown with the register, same density: 3162 km for 50M), generated in
chunks of ``--chunk`` firms straight into Hilbert-sorted Parquet part files by
:func:`geocluster.engine.write_partitioned` (the generator never holds the whole
register): 60% in 2,000 Gaussian clusters of width 0.5-10 km, 40% uniform background;
an ISIC-like division (20 divisions, Zipf-skewed), a region code (a 20 x 20 grid of 50 km
squares) and employees (lognormal, 10% unknown).

Analyses, each timed on the local engine and on a ``DaskEngine`` with a LocalCluster of
``--workers`` worker processes (1 thread each):

* **DBSCAN**: ``dbscan(eps_m=--eps-m, min_samples=--min-samples)`` over all firms; the
  two engines' labels and core flags are compared (they must be equal).
* **national scan**: DBSCAN of each of the ``--sectors`` largest divisions
  (``map_sectors``: one task per division on Dask, one after the other locally).
* **specialisation**: ``region_sector_counts`` (region x division firms and employees),
  compared between engines; LQ follows from that table in microseconds.

Memory: the local engine runs in a fresh Python process per analysis, so its peak RSS
(``VmHWM``) is its own; on Dask the workers have
their peak RSS reset before each analysis and read afterwards (``client.run``); the
client's own peak is printed too.

50M firms (``--big-firms``): generated the same way, then DBSCAN and specialisation on
Dask only (the local engine needs the whole register's columns in one process); the
target is a per-worker peak under 8 GB.

Targets (issue 14) on this 2-core machine: Dask time <= 1.5x local, per-worker peak <=
1/2 of the local process's.

Through the specs (``--spec-firms N``, 0 to skip): the same generator's first N firms
stored in a workspace (GeoParquet, EPSG:4326 + working x, y) with a 20 x 20 grid of
50 km regions as boundaries, then ``specialization`` and ``clusters --by division`` run
through their registered specs on a local workspace and on one whose engine is the Dask
cluster (``Workspace.use_engine("dask", scheduler=...)``: the path of ``--engine dask``
and ``serve --engine dask``), and ``clusters`` (one DBSCAN) too; results compared
(counts equal, LQ within 1e-12, labels equal, cluster summaries within 1e-9 and hulls
equal). Times are of the whole analysis (reads, summaries and the saved run included),
with the workers' imports done beforehand (a one-time cost per worker process); peaks
are the local process's, the workers' and the Dask client's (which makes no cluster
summary: the workers do, where the firms are) for that analysis.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
# This file is named dask.py: its folder on sys.path would shadow the dask package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from geocluster.engine import LocalEngine, write_partitioned  # noqa: E402

GB = 1 << 30


def _peak_rss() -> int:
    """This process's peak RSS, bytes.

    ``VmHWM``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over fork and exec, so a
    worker or subprocess would report its parent's peak (e.g. the data generator's).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0: ``clear_refs`` 5); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def firm_chunks(n: int, chunk: int, seed: int):
    """Seeded firm chunks (DataFrames with x, y, division, region, employees)."""
    rng = np.random.default_rng(seed)
    # beyond 5M firms the square grows with the register, so that density (and thus
    # what DBSCAN finds) stays that of the 5M layout: at 50M firms on 1000 km every
    # background firm had ~60 neighbours within 1 km and the whole register chained
    # into one cluster
    scale = max(1.0, (n / 5_000_000) ** 0.5)
    side = 1_000_000.0 * scale
    k = int(round(2000 * scale * scale))
    per_row = int(np.ceil(side / 50_000))
    centres = rng.uniform(0, side, (k, 2))
    sigma = rng.uniform(500, 10_000, k) / 4
    zipf = 1.0 / np.arange(1, 21)
    p_div = zipf / zipf.sum()
    divisions = np.array([f"{d:02d}" for d in range(10, 30)])
    done = 0
    while done < n:
        m = min(chunk, n - done)
        nc = int(m * 0.6)
        c = rng.integers(0, k, nc)
        X = np.concatenate(
            [
                centres[c] + rng.normal(size=(nc, 2)) * sigma[c, None],
                rng.uniform(0, side, (m - nc, 2)),
            ]
        )
        X = np.clip(X, 0, side - 1)
        emp = np.round(rng.lognormal(1.5, 1.2, m))
        emp[rng.random(m) < 0.1] = np.nan
        reg = (X[:, 0] // 50_000).astype(int) * per_row + (X[:, 1] // 50_000).astype(int)
        yield pd.DataFrame(
            {
                "x": X[:, 0],
                "y": X[:, 1],
                "division": divisions[rng.choice(20, m, p=p_div)],
                "region": np.char.add("R", reg.astype(str)),
                "employees": emp,
            }
        )
        done += m


def make_files(n: int, folder: Path, *, chunk: int, seed: int, rows_per_file: int) -> list[str]:
    t0 = time.perf_counter()
    paths = write_partitioned(
        firm_chunks(n, chunk, seed), folder, rows_per_file=rows_per_file, prefix="firms"
    )
    print(f"  generated {n:,} firms in {len(paths)} files in {time.perf_counter() - t0:.1f} s")
    return [str(p) for p in paths]


def top_sectors(paths: list[str], k: int) -> list[str]:
    counts = (
        LocalEngine()
        .region_sector_counts(paths, sector="division", region="region")
        .groupby("sector")["n_firms"]
        .sum()
    )
    return counts.sort_values(ascending=False).index[:k].tolist()


# -- the analyses (module-level functions: they run in subprocesses and on workers) ----


def sector_dbscan(paths, eps_m, min_samples, sector):
    res = LocalEngine().dbscan(
        paths, eps_m=eps_m, min_samples=min_samples, filters=[("division", "==", sector)]
    )
    return res.n_clusters


def run_analysis(engine, name: str, paths, args, sectors):
    if name == "dbscan":
        return engine.dbscan(paths, eps_m=args.eps_m, min_samples=args.min_samples)
    if name == "scan":
        fn = functools.partial(sector_dbscan, paths, args.eps_m, args.min_samples)
        return engine.map_sectors(fn, sectors)
    if name == "specialisation":
        return engine.region_sector_counts(
            paths, sector="division", region="region", weight="employees"
        )
    raise ValueError(name)


def local_worker(spec_path: str) -> None:
    """Run one analysis on the local engine in this (fresh) process; print a JSON line."""
    spec = json.loads(Path(spec_path).read_text())
    args = argparse.Namespace(**spec["args"])
    from geocluster.clustering.dbscan import warm_up

    warm_up()
    _reset_peak()  # as on the workers: the peak from here on (imports included in RSS)
    base = _peak_rss()
    t0 = time.perf_counter()
    res = run_analysis(LocalEngine(), spec["name"], spec["paths"], args, spec["sectors"])
    dt = time.perf_counter() - t0
    if spec["name"] == "dbscan":
        np.save(spec["out"], np.stack([res.labels, res.core.astype(np.int64)]))
    elif spec["name"] == "specialisation":
        res.to_pickle(spec["out"])
    else:
        Path(spec["out"]).write_text(json.dumps(res))
    print(json.dumps({"seconds": dt, "peak": _peak_rss(), "base": base}))


def run_local(name, paths, args, sectors, tmp: Path) -> dict:
    spec = tmp / f"local-{name}.json"
    out = tmp / f"local-{name}.out"
    spec.write_text(
        json.dumps(
            {"name": name, "paths": paths, "args": vars(args), "sectors": sectors, "out": str(out)}
        )
    )
    run = subprocess.run(
        [sys.executable, __file__, "--local-worker", str(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1] if run.stderr else "failed"}
    r = json.loads(run.stdout.strip().splitlines()[-1])
    r["out"] = str(out) + (".npy" if name == "dbscan" else "")
    return r


def run_dask(engine, name, paths, args, sectors) -> tuple[dict, object]:
    engine.client.run(_warm)
    # Peak RSS of this analysis only: reset the workers' and the client's high-water marks
    # (restarting the workers instead was flaky under load here: they did not come back).
    if not all(engine.client.run(_reset_peak).values()):
        engine.client.restart()
        engine.client.run(_warm)
    _reset_peak()
    t0 = time.perf_counter()
    res = run_analysis(engine, name, paths, args, sectors)
    dt = time.perf_counter() - t0
    peaks = engine.client.run(_peak_rss)
    return {"seconds": dt, "worker_peaks": sorted(peaks.values()), "client_peak": _peak_rss()}, res


def _warm_specs():
    """Import what the spec tasks use (once per worker process; a server's stay warm)."""
    import dask_geopandas  # noqa: F401
    import geopandas  # noqa: F401

    import geocluster.analyses.specialization  # noqa: F401
    import geocluster.clustering.firms  # noqa: F401
    import geocluster.clustering.kde  # noqa: F401


def _warm():
    from geocluster.clustering.dbscan import warm_up

    warm_up()
    from geocluster.engine import _dbscan_tiles as T

    X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    T.tile_dbscan(X, None, np.ones(3, bool), 1.5, 2.0)


def compare(name, local_out, dask_res) -> str:
    if name == "dbscan":
        lab, core = np.load(local_out)
        ok = np.array_equal(lab, dask_res.labels) and np.array_equal(
            core.astype(bool), dask_res.core
        )
        return "labels and core equal" if ok else "DIFFERENT LABELS"
    if name == "specialisation":
        ref = pd.read_pickle(local_out)
        try:
            pd.testing.assert_frame_equal(ref, dask_res, check_exact=False, rtol=1e-9)
            return "tables equal"
        except AssertionError:
            return "DIFFERENT TABLES"
    ref = json.loads(Path(local_out).read_text())
    return "cluster counts equal" if ref == dask_res else "DIFFERENT COUNTS"


SPEC_CRS = "EPSG:32614"
SPEC_X0, SPEC_Y0 = 0.0, 1_800_000.0  # the 1000 km square inside UTM 14N's plane


def spec_workspace(n: int, folder: Path, seed: int):
    """A workspace with ``n`` firms of :func:`firm_chunks` and 50 km grid regions."""
    import geopandas as gpd
    import shapely

    from geocluster.workspace import Workspace

    t0 = time.perf_counter()
    df = next(firm_chunks(n, n, seed))
    ws = Workspace(folder)
    firms = gpd.GeoDataFrame(
        {
            "firm_id": [f"F{i}" for i in range(n)],
            "sector_code": np.char.add(df["division"].to_numpy(dtype=str), "11"),
            "isic_division": df["division"].to_numpy(dtype=str),
            "employees": df["employees"].to_numpy(),
        },
        geometry=gpd.points_from_xy(df["x"] + SPEC_X0, df["y"] + SPEC_Y0),
        crs=SPEC_CRS,
    )
    ws.add_dataset("firms", firms, name="firms", working_crs=SPEC_CRS)
    boxes = [
        shapely.box(SPEC_X0 + i * 50_000, SPEC_Y0 + j * 50_000,
                    SPEC_X0 + (i + 1) * 50_000, SPEC_Y0 + (j + 1) * 50_000)
        for i in range(20) for j in range(20)
    ]  # fmt: skip
    regions = gpd.GeoDataFrame(
        {"region_id": [f"R{k}" for k in range(len(boxes))], "level": 1},
        geometry=boxes,
        crs=SPEC_CRS,
    )
    ws.add_dataset("boundaries", regions, name="regions", working_crs=SPEC_CRS)
    print(f"  workspace of {n:,} firms written in {time.perf_counter() - t0:.1f} s")
    return ws


def run_specs(args, eng, tmp: Path) -> dict:
    """Specialisation and the national scan through the specs, local vs Dask."""
    from geocluster.analyses.spec import get
    from geocluster.workspace import Workspace

    local = spec_workspace(args.spec_firms, tmp / "ws", args.seed)
    remote = Workspace(local.path)
    remote.use_engine("dask", scheduler=eng.client.scheduler.address)
    remote.engine()  # connected before the clock starts, as a running server is
    eng.client.run(_warm_specs)
    jobs = {
        "specialization": {"firms": "firms", "boundaries": "regions"},
        "clusters --by division": {
            "firms": "firms",
            "by": "division",
            "eps_m": args.eps_m,
            "min_samples": args.min_samples,
        },
        "clusters": {"firms": "firms", "eps_m": args.eps_m, "min_samples": args.min_samples},
        "kde": {"firms": "firms", "cell_m": 2000.0},
    }
    out = {}
    for label, params in jobs.items():
        spec = get(label.split()[0])
        _reset_peak()
        t0 = time.perf_counter()
        a = spec(local, **params)
        t_local = time.perf_counter() - t0
        local_peak = _peak_rss()
        eng.client.run(_warm)
        eng.client.run(_reset_peak)
        _reset_peak()  # the client's peak of this analysis (the local run's memory freed)
        client_base = _peak_rss()  # what it already held (this process ran the local one)
        t0 = time.perf_counter()
        b = spec(remote, **params)
        t_dask = time.perf_counter() - t0
        wmax = max(eng.client.run(_peak_rss).values())
        client_peak = _peak_rss()
        if spec.name == "specialization":
            ra, rb = a.layers["rows"].frame, b.layers["rows"].frame
            same = ra["count"].equals(rb["count"]) and np.allclose(
                ra["lq"], rb["lq"], rtol=1e-12, atol=0, equal_nan=True
            )
            check = "tables equal" if same else "DIFFERENT TABLES"
        elif spec.name == "clusters":
            la = local.read_run(a.run_id, "labels")["cluster_id"].to_numpy()
            lb = remote.read_run(b.run_id, "labels")["cluster_id"].to_numpy()
            check = "labels equal" if np.array_equal(la, lb) else "DIFFERENT LABELS"
            check += ", " + _same_summaries(a.layers["clusters"].frame, b.layers["clusters"].frame)
        else:
            fa, fb = a.layers["*"].frame, b.layers["*"].frame
            same = np.isclose(fa["max_density"].item(), fb["max_density"].item(), rtol=1e-9)
            check = "surfaces equal" if same else "DIFFERENT SURFACES"
        print(
            f"  {label:24s} local {t_local:7.1f} s {local_peak / GB:5.2f} GB | dask "
            f"{t_dask:7.1f} s, worker peak {wmax / GB:5.2f} GB, client {client_peak / GB:5.2f} GB "
            f"(+{(client_peak - client_base) / GB:4.2f})"
            f" | time x{t_dask / t_local:.2f} | {check}"
        )
        out[label] = {
            "local_s": t_local,
            "local_peak": local_peak,
            "dask_s": t_dask,
            "worker_peak": wmax,
            "client_peak": client_peak,
            "client_base": client_base,
            "check": check,
        }
    remote.engine().close()
    return out


def _same_summaries(a, b) -> str:
    """Cluster summary tables compared: floats within 1e-9, hulls vertex for vertex."""
    import shapely

    try:
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.drop(columns="geometry")),
            pd.DataFrame(b.drop(columns="geometry")),
            check_exact=False,
            rtol=1e-9,
        )
    except AssertionError:
        return "DIFFERENT SUMMARIES"
    same = shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()
    return "summaries equal" if same else "DIFFERENT HULLS"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firms", type=int, default=5_000_000)
    ap.add_argument("--big-firms", type=int, default=50_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--eps-m", type=float, default=1000.0)
    ap.add_argument("--min-samples", type=float, default=10)
    ap.add_argument("--sectors", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=1_000_000)
    ap.add_argument("--rows-per-file", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--spec-firms", type=int, default=200_000, help="0: no spec runs")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the Parquet parts")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--local-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.local_worker:
        local_worker(args.local_worker)
        return 0

    from geocluster.engine.dask import DaskEngine

    report: dict = {"firms": args.firms, "big_firms": args.big_firms, "workers": args.workers}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmpd:
        tmp = Path(tmpd)
        print(f"== {args.firms:,} firms: local vs Dask ({args.workers} worker processes)")
        paths = make_files(
            args.firms,
            tmp / "firms",
            chunk=args.chunk,
            seed=args.seed,
            rows_per_file=args.rows_per_file,
        )
        sectors = top_sectors(paths, args.sectors)
        bench_args = argparse.Namespace(eps_m=args.eps_m, min_samples=args.min_samples)
        with DaskEngine(n_workers=args.workers, threads_per_worker=1) as eng:
            for name in ("dbscan", "scan", "specialisation"):
                loc = run_local(name, paths, bench_args, sectors, tmp)
                if "error" in loc:
                    print(f"  {name:15s} local FAILED: {loc['error']}")
                    continue
                dk, res = run_dask(eng, name, paths, bench_args, sectors)
                check = compare(name, loc["out"], res)
                wmax = max(dk["worker_peaks"])
                print(
                    f"  {name:15s} local {loc['seconds']:7.1f} s {loc['peak'] / GB:5.2f} GB | "
                    f"dask {dk['seconds']:7.1f} s, worker peak {wmax / GB:5.2f} GB, "
                    f"client {dk['client_peak'] / GB:5.2f} GB | time x{dk['seconds'] / loc['seconds']:.2f}, "
                    f"worker/local memory x{wmax / loc['peak']:.2f} | {check}"
                )
                report[name] = {"local": loc, "dask": dk, "check": check}
            if args.spec_firms:
                print(f"== {args.spec_firms:,} firms through the analysis specs")
                report["specs"] = run_specs(args, eng, tmp)

        if args.big_firms:
            print(f"== {args.big_firms:,} firms on Dask only")
            big = make_files(
                args.big_firms,
                tmp / "big",
                chunk=args.chunk,
                seed=args.seed + 1,
                rows_per_file=args.rows_per_file,
            )
            with DaskEngine(n_workers=args.workers, threads_per_worker=1) as eng:
                for name in ("dbscan", "specialisation"):
                    dk, res = run_dask(eng, name, big, bench_args, [])
                    wmax = max(dk["worker_peaks"])
                    extra = (
                        f"{res.n_clusters:,} clusters"
                        if name == "dbscan"
                        else f"{len(res):,} cells"
                    )
                    print(
                        f"  {name:15s} dask {dk['seconds']:7.1f} s, worker peak {wmax / GB:5.2f} GB "
                        f"({'under' if wmax < 8 * GB else 'OVER'} 8 GB), client "
                        f"{dk['client_peak'] / GB:5.2f} GB | {extra}"
                    )
                    report[f"big_{name}"] = dk
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
