"""Benchmark: grid DBSCAN, FFT KDE and the region join against their reference tools.

Usage::

    python bench/clusters.py            # 100k and 1M firms (sklearn at 1M: ~20 s, ~8 GB)
    python bench/clusters.py --quick    # 100k firms only
    python bench/clusters.py --json out.json

Data (seeded, ``--seed``): ``n`` firms over a 500 x 500 km square in metres; 60% fall in
200 Gaussian clusters whose width (4 standard deviations, i.e. +-2 sigma) is uniform in
0.5-10 km, each clustered firm picking a cluster uniformly; 40% are uniform background.
Regions for the join: a Voronoi tessellation of 3,000 uniform seeds clipped to the square.

Each variant runs in its own fresh Python process (``--worker``), loading the data from
``.npy`` files, so that its peak memory (``ru_maxrss``) is its own. Times are wall-clock
around the work only (imports and data loading excluded). Peak memory is reported as the
process's peak RSS and as the growth over the RSS just before the work.

Variants:

* **DBSCAN**: ``GridDBSCAN(1000, min_samples=10)`` after ``warm_up()`` (numba's one-off
  start in the process and the load of the cached code, timed and printed apart) vs
  ``sklearn.cluster.DBSCAN(eps=1000, min_samples=10, algorithm="ball_tree")``. The results
  are compared: same core points and same core labels.
* **KDE**: ``kde_grid(X, bandwidth=4000, grid_size=1000)`` (about 1000 x 1000 nodes of
  500 m = h / 8) vs ``sklearn.neighbors.KernelDensity(bandwidth=4000)``, exact (its default
  ``rtol=0``) and with ``rtol=1e-3``. sklearn is far too slow on a million nodes, so it is
  timed on a random sample of nodes and its time scaled linearly to the full grid:
  ``fit + score_time * n_nodes / n_sample`` (printed as "SCALED"). Our values at the
  sampled nodes are compared with sklearn's exact ones (max relative error where the
  density is above 1% of the maximum).
* **Region join**: ``geocluster.specialization.assign_regions(xy, regions)`` vs
  ``geopandas.sjoin(points, regions, predicate="within")`` (point construction timed
  separately and not counted for sjoin). Assignments are compared.
* **numba compile**: the DBSCAN on 10k points in a process with an empty
  ``NUMBA_CACHE_DIR`` (compiles), then in a new process with the filled cache.

Targets (issue 3): DBSCAN at 1M >= 50x faster than sklearn and <= 0.5 GB peak; KDE >= 100x;
join >= 3x.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIDE_M = 500_000.0
N_CLUSTERS = 200
N_REGIONS = 3000
EPS_M = 1000.0
MIN_SAMPLES = 10
KDE_BANDWIDTH_M = 4000.0
KDE_GRID = 1000
KDE_SKLEARN_NODES = 2000


def synth_firms(n: int, seed: int = 0) -> np.ndarray:
    """Seeded firm coordinates (n, 2) in metres: 60% in 200 clusters, 40% background."""
    rng = np.random.default_rng(seed)
    n_clustered = int(round(0.6 * n))
    centres = rng.uniform(0, SIDE_M, (N_CLUSTERS, 2))
    sigma = rng.uniform(500.0, 10_000.0, N_CLUSTERS) / 4.0
    which = rng.integers(0, N_CLUSTERS, n_clustered)
    clustered = centres[which] + rng.normal(size=(n_clustered, 2)) * sigma[which, None]
    background = rng.uniform(0, SIDE_M, (n - n_clustered, 2))
    X = np.vstack([clustered, background])
    return X[rng.permutation(n)]


def synth_regions(seed: int = 0):
    """~3,000 Voronoi polygons clipped to the square, as a GeoDataFrame."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed + 1)
    seeds = shapely.multipoints(rng.uniform(0, SIDE_M, (N_REGIONS, 2)))
    box = shapely.box(0, 0, SIDE_M, SIDE_M)
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))
    cells = shapely.intersection(cells, box)
    return gpd.GeoDataFrame({"region_id": [f"R{i:04d}" for i in range(len(cells))]}, geometry=cells)


# -- workers (each in a fresh process) ----------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB on Linux


def worker(name: str, n: int, data: Path) -> dict:
    sys.path.insert(0, str(REPO))
    out: dict = {"variant": name, "n": n}
    if name in ("dbscan_ours", "compile_cold", "compile_cached"):
        import importlib

        mod = importlib.import_module("geocluster.clustering.dbscan")
        X = np.load(data / f"X_{n}.npy")
        out["rss_before_mb"] = _rss_mb()
        if name == "dbscan_ours":
            # numba's one-off runtime start and the cache load, timed on their own.
            t = time.perf_counter()
            mod.warm_up()
            out["warm_up_s"] = time.perf_counter() - t
        t = time.perf_counter()
        model = mod.GridDBSCAN(EPS_M, min_samples=MIN_SAMPLES).fit(X)
        out["wall_s"] = time.perf_counter() - t
        out["peak_mb"] = _peak_mb()
        t = time.perf_counter()
        mod.GridDBSCAN(EPS_M, min_samples=MIN_SAMPLES).fit(X)
        out["warm_wall_s"] = time.perf_counter() - t
        out["n_clusters"] = int(model.n_clusters_)
        if name == "dbscan_ours":
            np.save(data / f"ours_labels_{n}.npy", model.labels_)
            np.save(data / f"ours_core_{n}.npy", model.core_sample_indices_)
    elif name == "dbscan_sklearn":
        from sklearn.cluster import DBSCAN

        X = np.load(data / f"X_{n}.npy")
        out["rss_before_mb"] = _rss_mb()
        t = time.perf_counter()
        model = DBSCAN(eps=EPS_M, min_samples=MIN_SAMPLES, algorithm="ball_tree").fit(X)
        out["wall_s"] = time.perf_counter() - t
        out["peak_mb"] = _peak_mb()
        out["n_clusters"] = int(model.labels_.max() + 1)
        np.save(data / f"sk_labels_{n}.npy", model.labels_)
        np.save(data / f"sk_core_{n}.npy", model.core_sample_indices_)
    elif name == "kde_ours":
        from geocluster.clustering.kde import kde_grid

        X = np.load(data / f"X_{n}.npy")
        kde_grid(X[:1000], bandwidth=KDE_BANDWIDTH_M, grid_size=64)  # scipy FFT plan warm-up
        out["rss_before_mb"] = _rss_mb()
        t = time.perf_counter()
        g = kde_grid(X, bandwidth=KDE_BANDWIDTH_M, grid_size=KDE_GRID, normalize=True)
        out["wall_s"] = time.perf_counter() - t
        out["peak_mb"] = _peak_mb()
        out["grid"] = list(g.density.shape)
        rng = np.random.default_rng(5)
        flat = rng.choice(g.density.size, KDE_SKLEARN_NODES, replace=False)
        rows, cols = np.unravel_index(flat, g.density.shape)
        np.save(data / f"kde_nodes_{n}.npy", np.column_stack([g.x[cols], g.y[rows]]))
        np.save(data / f"kde_ours_{n}.npy", g.density[rows, cols])
        out["n_nodes"] = int(g.density.size)
    elif name == "kde_sklearn":
        from sklearn.neighbors import KernelDensity

        X = np.load(data / f"X_{n}.npy")
        nodes = np.load(data / f"kde_nodes_{n}.npy")
        # Exact (sklearn's default rtol=0) is slow: fewer sampled nodes for bigger n.
        n_exact = max(50, min(len(nodes), int(2e7 / n)))
        out["rss_before_mb"] = _rss_mb()
        t = time.perf_counter()
        kde = KernelDensity(kernel="gaussian", bandwidth=KDE_BANDWIDTH_M).fit(X)
        out["fit_s"] = time.perf_counter() - t
        t = time.perf_counter()
        exact = np.exp(kde.score_samples(nodes[:n_exact]))
        out["score_s"] = time.perf_counter() - t
        out["n_sample_nodes"] = n_exact
        # rtol=1e-3: sklearn's own approximation, closer to our accuracy class.
        approx = KernelDensity(kernel="gaussian", bandwidth=KDE_BANDWIDTH_M, rtol=1e-3).fit(X)
        t = time.perf_counter()
        approx.score_samples(nodes)
        out["score_rtol_s"] = time.perf_counter() - t
        out["n_sample_nodes_rtol"] = len(nodes)
        out["peak_mb"] = _peak_mb()
        np.save(data / f"kde_sk_{n}.npy", exact)
    elif name == "join_ours":
        import geopandas as gpd

        from geocluster.specialization import assign_regions

        X = np.load(data / f"X_{n}.npy")
        regions = gpd.read_parquet(data / "regions.parquet")
        out["rss_before_mb"] = _rss_mb()
        t = time.perf_counter()
        idx = assign_regions(X, regions)
        out["wall_s"] = time.perf_counter() - t
        out["peak_mb"] = _peak_mb()
        np.save(data / f"join_ours_{n}.npy", idx)
    elif name == "join_sjoin":
        import geopandas as gpd

        X = np.load(data / f"X_{n}.npy")
        regions = gpd.read_parquet(data / "regions.parquet")
        out["rss_before_mb"] = _rss_mb()
        t = time.perf_counter()
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(X[:, 0], X[:, 1]))
        out["points_s"] = time.perf_counter() - t
        t = time.perf_counter()
        joined = gpd.sjoin(pts, regions, predicate="within", how="left")
        out["wall_s"] = time.perf_counter() - t
        out["peak_mb"] = _peak_mb()
        joined = joined[~joined.index.duplicated(keep="first")]
        idx = joined["index_right"].fillna(-1).to_numpy().astype(np.int64)
        np.save(data / f"join_sjoin_{n}.npy", idx)
    else:
        raise SystemExit(f"unknown worker {name}")
    return out


def _run(name: str, n: int, data: Path, env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--n", str(n), "--data", str(data)]
    res = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"worker {name} (n={n}) failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- driver -------------------------------------------------------------------------------
def _fmt_mem(r: dict) -> str:
    return f"{r['peak_mb'] / 1e3:6.2f} GB peak ({(r['peak_mb'] - r['rss_before_mb']) / 1e3:+.2f})"


def bench(sizes: list[int], seed: int) -> dict:
    results: dict = {"sizes": sizes, "seed": seed, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-clusters-") as tmp:
        data = Path(tmp)
        synth_regions(seed).to_parquet(data / "regions.parquet")
        for n in [10_000, *sizes]:
            np.save(data / f"X_{n}.npy", synth_firms(n, seed))

        # numba: compile with an empty cache, then load from the cache in a new process.
        cache = data / "numba-cache"
        cache.mkdir()
        cold = _run("compile_cold", 10_000, data, {"NUMBA_CACHE_DIR": str(cache)})
        cached = _run("compile_cached", 10_000, data, {"NUMBA_CACHE_DIR": str(cache)})
        results["numba"] = {
            "first_call_no_cache_s": cold["wall_s"],
            "first_call_cached_s": cached["wall_s"],
            "warm_call_s": cached["warm_wall_s"],
        }
        print("numba (DBSCAN of 10k points, first call in a fresh process):")
        print(f"  no cache (compiles): {cold['wall_s']:.2f} s")
        print(
            f"  cache on disk:       {cached['wall_s']:.3f} s   warm call: {cached['warm_wall_s']:.3f} s"
        )

        for n in sizes:
            print(f"\n=== {n:,} firms ===")
            r: dict = {}
            r["dbscan_ours"] = _run("dbscan_ours", n, data)
            r["dbscan_sklearn"] = _run("dbscan_sklearn", n, data)
            ours, sk = r["dbscan_ours"], r["dbscan_sklearn"]
            same_core = np.array_equal(
                np.load(data / f"ours_core_{n}.npy"), np.load(data / f"sk_core_{n}.npy")
            )
            lo, ls = np.load(data / f"ours_labels_{n}.npy"), np.load(data / f"sk_labels_{n}.npy")
            core = np.load(data / f"sk_core_{n}.npy")
            same_labels = same_core and np.array_equal(lo[core], ls[core])
            same_noise = np.array_equal(lo == -1, ls == -1)
            ratio = sk["wall_s"] / ours["wall_s"]
            cold = ours["warm_up_s"] + ours["wall_s"]
            print(
                f"DBSCAN eps {EPS_M:.0f} m, min_samples {MIN_SAMPLES}:\n"
                f"  ours    {ours['wall_s']:8.3f} s  {_fmt_mem(ours)}  "
                f"{ours['n_clusters']:,} clusters\n"
                f"          (+ {ours['warm_up_s']:.3f} s once per process for numba's start and "
                f"the cached code, i.e. {cold:.3f} s as the first call; repeat call "
                f"{ours['warm_wall_s']:.3f} s)\n"
                f"  sklearn {sk['wall_s']:8.3f} s  {_fmt_mem(sk)}  "
                f"{sk['n_clusters']:,} clusters (ball_tree)\n"
                f"  speed-up {ratio:.0f}x ({sk['wall_s'] / cold:.0f}x counting the one-off start); "
                f"peak memory {sk['peak_mb'] / ours['peak_mb']:.1f}x less; same core points: "
                f"{same_core}, same core labels: {same_labels}, same noise: {same_noise}"
            )
            r["dbscan"] = {
                "speedup": ratio,
                "speedup_first_call": sk["wall_s"] / cold,
                "same_core": bool(same_core),
                "same_core_labels": bool(same_labels),
                "same_noise": bool(same_noise),
            }

            r["kde_ours"] = _run("kde_ours", n, data)
            r["kde_sklearn"] = _run("kde_sklearn", n, data)
            ko, ks = r["kde_ours"], r["kde_sklearn"]
            per_node = ko["n_nodes"] / ks["n_sample_nodes"]
            scaled = ks["fit_s"] + ks["score_s"] * per_node
            scaled_rtol = (
                ks["fit_s"] + ks["score_rtol_s"] * ko["n_nodes"] / ks["n_sample_nodes_rtol"]
            )
            a = np.load(data / f"kde_ours_{n}.npy")[: ks["n_sample_nodes"]]
            b = np.load(data / f"kde_sk_{n}.npy")
            m = b > 0.01 * b.max()
            rel = float(np.max(np.abs(a[m] - b[m]) / b[m])) if m.any() else float("nan")
            print(
                f"KDE bandwidth {KDE_BANDWIDTH_M:.0f} m on a {ko['grid'][0]} x {ko['grid'][1]} grid "
                f"(cell = h / {KDE_BANDWIDTH_M / (SIDE_M / KDE_GRID):.0f} or finer):\n"
                f"  ours    {ko['wall_s']:8.3f} s  {_fmt_mem(ko)}\n"
                f"  sklearn {scaled:8.1f} s SCALED from {ks['n_sample_nodes']:,} sampled nodes "
                f"(fit {ks['fit_s']:.2f} s + {ks['score_s']:.2f} s x {per_node:,.0f}; exact, "
                f"rtol=0)  {_fmt_mem(ks)} (on the sample)\n"
                f"  sklearn {scaled_rtol:8.1f} s SCALED from {ks['n_sample_nodes_rtol']:,} sampled "
                f"nodes with rtol=1e-3\n"
                f"  speed-up {scaled / ko['wall_s']:,.0f}x vs exact, {scaled_rtol / ko['wall_s']:,.0f}x "
                f"vs rtol=1e-3; max relative difference from exact where density > 1% of max: "
                f"{rel:.2e} ({int(m.sum())} nodes)"
            )
            r["kde"] = {
                "sklearn_scaled_s": scaled,
                "sklearn_rtol_scaled_s": scaled_rtol,
                "speedup": scaled / ko["wall_s"],
                "speedup_vs_rtol": scaled_rtol / ko["wall_s"],
                "max_rel": rel,
            }

            r["join_ours"] = _run("join_ours", n, data)
            r["join_sjoin"] = _run("join_sjoin", n, data)
            jo, js = r["join_ours"], r["join_sjoin"]
            same = np.array_equal(
                np.load(data / f"join_ours_{n}.npy"), np.load(data / f"join_sjoin_{n}.npy")
            )
            print(
                f"Region join to {N_REGIONS:,} Voronoi regions:\n"
                f"  assign_regions {jo['wall_s']:8.3f} s  {_fmt_mem(jo)}\n"
                f"  gpd.sjoin      {js['wall_s']:8.3f} s  {_fmt_mem(js)} "
                f"(+ {js['points_s']:.2f} s to build the points, not counted)\n"
                f"  speed-up {js['wall_s'] / jo['wall_s']:.1f}x; same assignment: {same}"
            )
            r["join"] = {"speedup": js["wall_s"] / jo["wall_s"], "same": bool(same)}
            results["runs"][str(n)] = r

    big = results["runs"].get(str(max(sizes)))
    if big and max(sizes) >= 1_000_000:
        print("\nTargets at 1M firms:")
        checks = [
            ("DBSCAN >= 50x faster than sklearn", big["dbscan"]["speedup"] >= 50),
            ("DBSCAN peak RSS <= 0.5 GB", big["dbscan_ours"]["peak_mb"] <= 500),
            ("KDE >= 100x faster than sklearn", big["kde"]["speedup"] >= 100),
            ("region join >= 3x faster than sjoin", big["join"]["speedup"] >= 3),
        ]
        for text, ok in checks:
            print(f"  [{'ok' if ok else 'MISSED'}] {text}")
        results["targets"] = {t: bool(ok) for t, ok in checks}
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100k firms only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, Path(args.data))))
        return 0
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    results = bench(sizes, args.seed)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
